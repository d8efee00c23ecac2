//! Every row one create writes, built in memory before anything is sent.

use chrono::{SubsecRound, Utc};
use uuid::Uuid;

use crate::domain::{
    CreateWorkspace, EventKind, OrganizationRole, OrganizationSummary, WorkspaceCreationPolicy,
    WorkspaceView,
};
use crate::storage::{
    entities::*,
    events::{self, EventDraft},
    views::view_of,
};

/// A workspace to insert: a checked request, where and by whom.
#[derive(Debug, Clone, Copy)]
pub struct NewWorkspace<'a> {
    pub organization: &'a OrganizationSummary,
    pub creator: Uuid,
    pub request: &'a CreateWorkspace,
    pub workspace_type: &'a str,
    pub document_upload_method: &'a str,
    /// Set when the create was decided on a kept caller: checked again as
    /// it writes.
    pub recheck: Option<Recheck<'a>>,
}

/// What a create decided on a kept caller (`CallerOrganizations::kept_for`)
/// checks again in its write, where a change cannot slip between check
/// and write: the API token still there and unexpired, its user (the
/// creator) validated, the creator's role in the organization and the
/// organization's policy as they were kept, its plan still allowing
/// workspaces, and an organization inferred as the caller's only one still
/// its only one. Any of them changed: nothing is written
/// (`CreateOutcome::CallerChanged`).
#[derive(Debug, Clone, Copy)]
pub struct Recheck<'a> {
    pub token_hash: &'a str,
    pub role: OrganizationRole,
    pub policy: WorkspaceCreationPolicy,
    /// The organization was inferred as the caller's only one: it still
    /// has no other.
    pub only_organization: bool,
}

/// `Recheck` as the statement's parameters.
pub(super) struct RecheckRow {
    pub(super) token_hash: String,
    pub(super) role: &'static str,
    pub(super) policy: &'static str,
    pub(super) only_organization: bool,
}

impl RecheckRow {
    fn of(recheck: Recheck<'_>) -> Self {
        Self {
            token_hash: recheck.token_hash.to_owned(),
            role: recheck.role.as_str(),
            policy: recheck.policy.as_str(),
            only_organization: recheck.only_organization,
        }
    }
}

/// Remembers a successful create under the caller's request id (AIP-155).
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub user_id: Uuid,
    pub request_id: String,
    pub fingerprint: String,
}

/// Every row one create writes, built before anything is sent: ids and
/// the time are the service's, the event's payload is complete but for its
/// number (the relay stamps it), and `view` is the answer.
pub(super) struct CreateRows {
    pub(super) workspace: workspace::Model,
    pub(super) memberships: Vec<workspace_membership::Model>,
    pub(super) record: Option<idempotency_record::Model>,
    pub(super) event: event::Model,
    pub(super) view: WorkspaceView,
    pub(super) recheck: Option<RecheckRow>,
}

impl CreateRows {
    pub(super) fn new(new: NewWorkspace<'_>, idempotency: Option<&IdempotencyKey>) -> Self {
        // Microseconds: what PostgreSQL keeps, so the answer built here
        // equals what a later read returns.
        let now = Utc::now().trunc_subsecs(6);
        let request = new.request;
        let workspace = workspace::Model {
            // Random (version 4): seed 001's clients parse its ids as
            // `UUID4`. Lists order by (created_at, id), not by id.
            id: Uuid::new_v4(),
            organization_id: new.organization.id,
            name: request.name.clone(),
            normalized_name: request.normalized_name.clone(),
            description: request.description.clone(),
            workspace_type: new.workspace_type.to_owned(),
            document_upload_method: new.document_upload_method.to_owned(),
            billing_account_email: request.billing_account_email.clone(),
            workspace_document_store_credentials_id: request.document_store.map(|d| d.workspace),
            pipeline_document_store_credentials_id: request.document_store.map(|d| d.pipeline),
            file_store_credentials_id: request.file_store,
            used_storage: 0.0,
            files_count: 0,
            created_by: new.creator,
            created_at: now,
            updated_at: now,
            revision: 1,
            // Given by the database at insert (`insert_workspace`).
            number: 0,
        };
        let mut members = request.initial_member_views(new.creator, now, || Some(Uuid::new_v4()));
        // As every read orders them: by (created_at, id), one time here.
        members.sort_by_key(|m| m.id);
        let memberships = members
            .iter()
            .filter_map(|m| {
                Some(workspace_membership::Model {
                    id: m.id?,
                    workspace_id: workspace.id,
                    user_id: m.user_id,
                    role: m.role.as_str().to_owned(),
                    created_at: now,
                    updated_at: now,
                    organization_id: workspace.organization_id,
                    workspace_created_at: workspace.created_at,
                })
            })
            .collect();
        let record = idempotency.map(|key| idempotency_record::Model {
            id: Uuid::now_v7(),
            user_id: key.user_id,
            request_id: key.request_id.clone(),
            request_fingerprint: key.fingerprint.clone(),
            workspace_id: workspace.id,
            created_at: now,
        });
        let view = view_of(
            workspace.clone(),
            new.organization.clone(),
            members,
            new.creator,
        );
        let event = events::row(EventDraft {
            kind: EventKind::WorkspaceCreated,
            organization_id: workspace.organization_id,
            workspace_id: workspace.id,
            actor: new.creator,
            workspace: Some(&view),
            membership: None,
            access_token: None,
        });
        Self {
            workspace,
            memberships,
            record,
            event,
            view,
            recheck: new.recheck.map(RecheckRow::of),
        }
    }
}

/// What a create's write did.
pub(super) enum Counted {
    /// Wrote the workspace of this number.
    Written(i64),
    /// The organization is at its limit.
    LimitReached,
    /// The kept caller's decision no longer holds.
    CallerChanged,
}

/// Check 9 as a condition on the organization's counter: below its plan's
/// limit (none: no limit).
pub(super) const BELOW_LIMIT: &str = "workspace_count < COALESCE((SELECT plans.workspace_limit FROM plans WHERE plans.id = organizations.plan_id), 2147483647)";

/// The kept caller's decision, checked again (`Recheck`), as a condition:
/// `{token}` the token's hash, `{user}` the creator, `{org}` the
/// organization, `{role}` and `{policy}` as kept, `{now}` the create's
/// time, `{only}` whether the organization was inferred as the caller's
/// only one. True when nothing is to be checked again (`{token}` NULL).
///
/// "No other organization" is asked as none before `{org}` and none after
/// it: two ranges of the (user_id, organization_id) index, where `<>` left
/// PostgreSQL's plan a scan of every membership while the table is small
/// (BENCHMARKS.md, 2026-12-05, second session).
pub(super) fn still_allowed(p: [&str; 7]) -> String {
    let [token, user, org, role, policy, now, only] = p;
    format!(
        "({token} IS NULL OR (\
 EXISTS (SELECT 1 FROM api_tokens t JOIN users u ON u.id = t.user_id \
 WHERE t.token_hash = {token} AND t.user_id = {user} AND u.validated \
 AND (t.expires_at IS NULL OR t.expires_at > {now})) \
 AND EXISTS (SELECT 1 FROM organization_memberships om \
 WHERE om.organization_id = {org} AND om.user_id = {user} AND om.role = {role}) \
 AND EXISTS (SELECT 1 FROM organizations o JOIN plans p ON p.id = o.plan_id \
 WHERE o.id = {org} AND o.workspace_creation = {policy} AND p.creation_allowed) \
 AND (NOT {only} OR NOT EXISTS (SELECT 1 FROM organization_memberships other \
 WHERE other.user_id = {user} AND other.organization_id < {org}) \
 AND NOT EXISTS (SELECT 1 FROM organization_memberships other \
 WHERE other.user_id = {user} AND other.organization_id > {org}))))"
    )
}
