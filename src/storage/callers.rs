//! A CreateWorkspace caller's organizations as read with its credentials
//! (`CallerOrganizations`), and API-token callers kept in the process for
//! a while (`Callers`), so that a create asks the database once (its
//! write), not twice.
//!
//! What a kept caller decides is never taken on trust:
//! - a create written for a kept caller checks again, in its own
//!   statement, everything it was decided on (`Recheck`: the token still
//!   there and unexpired, its user validated, the membership's role, the
//!   organization's policy and plan as they were kept); when one of them
//!   changed, nothing is written and the call is decided again on a fresh
//!   read;
//! - whatever a kept caller would refuse, or answer without writing (a
//!   retry by `request_id`, `validate_only`), is decided on a fresh read.
//!
//! So a revoked token, a removed member, a changed role, policy or plan
//! never passes, a refusal is never older than the call, and a hit costs
//! no round trip. Entries live `KEPT_FOR` and there are at most `CAPACITY`
//! of them.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::{Caller, OrganizationRole, OrganizationSummary, Plan, WorkspaceCreationPolicy};

/// What CreateWorkspace needs to know about an organization, read at once.
#[derive(Debug, Clone)]
pub struct OrganizationContext {
    pub organization: OrganizationSummary,
    pub policy: WorkspaceCreationPolicy,
    pub plan: Plan,
    pub workspace_count: i32,
}

/// The caller's organizations, read with its credentials for a
/// CreateWorkspace (check 3 then asks nothing more): the first few of its
/// memberships by organization id, each with the organization's context.
#[derive(Debug, Clone)]
pub struct CallerOrganizations {
    memberships: Vec<(OrganizationRole, OrganizationContext)>,
    /// Whether `memberships` are all of the caller's.
    complete: bool,
    /// The token's hash, when these were kept from an earlier call
    /// (`callers.rs`) rather than read for this one.
    kept_for: Option<String>,
}

impl CallerOrganizations {
    /// How many memberships are read with the credentials.
    pub const READ: u64 = 8;

    /// The API token's hash when these were kept from an earlier call: a
    /// create decided on them checks them again as it writes
    /// (`NewWorkspace::recheck`).
    pub fn kept_for(&self) -> Option<&str> {
        self.kept_for.as_deref()
    }

    pub(super) fn kept(self, token_hash: &str) -> Self {
        Self {
            kept_for: Some(token_hash.to_owned()),
            ..self
        }
    }

    /// `memberships` read with the credentials; `complete` when they are
    /// all of the caller's.
    pub(super) fn read(
        memberships: Vec<(OrganizationRole, OrganizationContext)>,
        complete: bool,
    ) -> Self {
        Self {
            memberships,
            complete,
            kept_for: None,
        }
    }

    /// What `Storage::memberships(user, given, 2)` would answer, when these
    /// tell: always for no `given` organization; for one, when it is among
    /// them or they are all of the caller's.
    pub fn memberships(
        &self,
        given: Option<Uuid>,
    ) -> Option<Vec<(OrganizationRole, OrganizationContext)>> {
        match given {
            None => Some(self.memberships.iter().take(2).cloned().collect()),
            Some(id) => {
                let found = self
                    .memberships
                    .iter()
                    .find(|(_, context)| context.organization.id == id);
                match found {
                    Some(membership) => Some(vec![membership.clone()]),
                    None if self.complete => Some(Vec::new()),
                    None => None,
                }
            }
        }
    }
}

/// How long a caller is kept after it was read.
const KEPT_FOR: Duration = Duration::from_secs(30);

/// Most callers kept; when full, the oldest half is forgotten.
const CAPACITY: usize = 4_096;

/// A caller as read with its API token, and until when the token is valid.
#[derive(Debug, Clone)]
pub(super) struct TokenCaller {
    pub(super) caller: Caller,
    pub(super) organizations: CallerOrganizations,
    pub(super) expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug)]
struct Kept {
    found: TokenCaller,
    read_at: Instant,
}

/// Kept callers by their token's hash.
#[derive(Debug, Default)]
pub(super) struct Callers {
    kept: Mutex<HashMap<Arc<str>, Kept>>,
}

impl Callers {
    /// The caller kept for `token_hash`, read less than `KEPT_FOR` ago,
    /// whose token is not expired at `now`.
    pub(super) fn get(&self, token_hash: &str, now: DateTime<Utc>) -> Option<TokenCaller> {
        let kept = self.kept.lock().expect("callers lock");
        let found = kept.get(token_hash)?;
        let fresh = found.read_at.elapsed() < KEPT_FOR
            && found.found.expires_at.is_none_or(|expires| expires > now);
        fresh.then(|| found.found.clone())
    }

    /// Keeps `found` for `token_hash`, read just now.
    pub(super) fn keep(&self, token_hash: &str, found: TokenCaller) {
        let mut kept = self.kept.lock().expect("callers lock");
        if kept.len() >= CAPACITY && !kept.contains_key(token_hash) {
            forget_oldest_half(&mut kept);
        }
        kept.insert(
            token_hash.into(),
            Kept {
                found,
                read_at: Instant::now(),
            },
        );
    }

    /// Forgets `token_hash`'s caller (the token was not found).
    pub(super) fn forget(&self, token_hash: &str) {
        self.kept.lock().expect("callers lock").remove(token_hash);
    }
}

fn forget_oldest_half(kept: &mut HashMap<Arc<str>, Kept>) {
    let mut ages: Vec<Instant> = kept.values().map(|k| k.read_at).collect();
    ages.sort_unstable();
    let cut = ages[ages.len() / 2];
    kept.retain(|_, k| k.read_at > cut);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_caller(expires_at: Option<DateTime<Utc>>) -> TokenCaller {
        TokenCaller {
            caller: Caller {
                user_id: Uuid::nil(),
                validated: true,
                signin: None,
                workspace_scope: None,
                organization_scope: None,
            },
            organizations: CallerOrganizations::read(Vec::new(), true),
            expires_at,
        }
    }

    #[test]
    fn a_kept_caller_is_found_until_its_token_expires_or_it_is_forgotten() {
        let callers = Callers::default();
        let now = Utc::now();
        callers.keep("a", token_caller(Some(now + chrono::Duration::seconds(1))));
        assert!(callers.get("a", now).is_some());
        assert!(
            callers
                .get("a", now + chrono::Duration::seconds(1))
                .is_none()
        );
        assert!(callers.get("b", now).is_none());
        callers.forget("a");
        assert!(callers.get("a", now).is_none());
    }

    #[test]
    fn a_full_cache_forgets_its_oldest_half() {
        let callers = Callers::default();
        for i in 0..CAPACITY + 1 {
            callers.keep(&i.to_string(), token_caller(None));
        }
        let kept = callers.kept.lock().unwrap().len();
        assert!(kept <= CAPACITY / 2 + 1, "{kept}");
        assert!(callers.get(&CAPACITY.to_string(), Utc::now()).is_some());
    }
}
