//! The use cases: CreateWorkspace, GetWorkspace and ListWorkspaces, for
//! whichever transport calls them. Runs the domain's rules, in the order of
//! the product contract, against storage.

use uuid::Uuid;

use crate::{
    domain::{Caller, Cursor, DomainError, NameRules, Reason, WorkspaceView, parse_id},
    storage::Storage,
    telemetry,
};

mod create;
mod gate;
mod lifecycle;
mod page_token;
mod rights;

pub use gate::OrganizationGate;
pub use lifecycle::Page;
pub(crate) use page_token::PageToken;

/// ListWorkspaces' page size when the caller gives none.
pub const DEFAULT_PAGE_SIZE: i32 = 50;
/// ListWorkspaces' largest page; larger requests are lowered to it.
pub const MAX_PAGE_SIZE: i32 = 1_000;

/// A request's `page_size`: the default for 0, at most MAX_PAGE_SIZE;
/// negative is INVALID_ARGUMENT.
fn page_size_of(page_size: i32) -> Result<i32, DomainError> {
    match page_size {
        size if size < 0 => Err(DomainError::invalid(
            "page_size",
            Reason::InvalidPageSize,
            "page_size must not be negative.",
        )),
        0 => Ok(DEFAULT_PAGE_SIZE),
        size => Ok(size.min(MAX_PAGE_SIZE)),
    }
}

/// One page of ListWorkspaces.
#[derive(Debug, Clone)]
pub struct WorkspacePage {
    pub workspaces: Vec<WorkspaceView>,
    /// Empty on the last page.
    pub next_page_token: String,
    /// The filter the page tokens are bound to.
    organization_id: Option<Uuid>,
}

impl WorkspacePage {
    /// Keeps the first `len` workspaces (at least one), the next page
    /// starting after them: for a transport whose message would not fit.
    pub fn truncate(&mut self, len: usize) {
        let len = len.max(1);
        if len >= self.workspaces.len() {
            return;
        }
        self.workspaces.truncate(len);
        if let Some(last) = self.workspaces.last().and_then(cursor_of) {
            self.next_page_token = PageToken::encode_at(last, self.organization_id);
        }
    }
}

/// Where a page ending with `workspace` ended (`None` for a preview).
fn cursor_of(workspace: &WorkspaceView) -> Option<Cursor> {
    Some(Cursor {
        created_at: workspace.created_at,
        id: workspace.id?,
    })
}

/// The workspace use cases.
#[derive(Clone, Debug)]
pub struct Workspaces {
    storage: Storage,
    rules: NameRules,
    gate: OrganizationGate,
}

impl Workspaces {
    pub fn new(storage: Storage, rules: NameRules, gate: OrganizationGate) -> Self {
        Self {
            storage,
            rules,
            gate,
        }
    }

    /// The database the use cases run against.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// GetWorkspace.
    pub async fn get(&self, caller: Caller, id: &str) -> Result<WorkspaceView, DomainError> {
        let not_found = || DomainError::WorkspaceNotFound { id: id.to_owned() };
        let uuid = parse_id("id", id)?;
        if caller.workspace_scope.is_some_and(|scope| scope != uuid) {
            return Err(not_found());
        }
        let mut workspace = self
            .storage
            .visible_workspace(uuid, caller.user_id)
            .await?
            .filter(|w| {
                // A bound credential sees its organization's workspaces only.
                caller
                    .organization_scope
                    .is_none_or(|bound| bound == w.organization.id)
            })
            .ok_or_else(not_found)?;
        telemetry::record_organization(workspace.organization.id);
        workspace.hide_token_hashes(caller.user_id);
        Ok(workspace)
    }

    /// ListWorkspaces.
    pub async fn list(
        &self,
        caller: Caller,
        organization_id: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<WorkspacePage, DomainError> {
        let organization_id = match organization_id.trim() {
            "" => None,
            id => Some(parse_id("organization_id", id)?),
        };
        let organization_id = caller.organization(organization_id)?;
        let page_size = page_size_of(page_size)?;
        let after = PageToken::decode_at(page_token, organization_id)?;
        if let Some(organization_id) = organization_id {
            telemetry::record_organization(organization_id);
        }
        if let Some(organization_id) = organization_id
            && self
                .storage
                .organization_role(organization_id, caller.user_id)
                .await?
                .is_none()
        {
            return Err(DomainError::NotOrganizationMember);
        }

        // A workspace access token sees its own workspace only: a page of
        // it alone, wherever it stands among the user's.
        if let Some(scope) = caller.workspace_scope {
            let own = self
                .storage
                .visible_workspace(scope, caller.user_id)
                .await?
                .filter(|w| {
                    after.is_none() && organization_id.is_none_or(|o| w.organization.id == o)
                })
                .map(|mut w| {
                    w.hide_token_hashes(caller.user_id);
                    w
                });
            return Ok(WorkspacePage {
                workspaces: own.into_iter().collect(),
                next_page_token: String::new(),
                organization_id,
            });
        }
        let page_size = page_size as usize;
        let mut workspaces = self
            .storage
            .visible_workspaces(caller.user_id, organization_id, after, page_size as u64 + 1)
            .await?;
        for workspace in &mut workspaces {
            workspace.hide_token_hashes(caller.user_id);
        }
        let next_page_token = if workspaces.len() > page_size {
            workspaces.truncate(page_size);
            let last = workspaces
                .last()
                .and_then(cursor_of)
                .expect("a full page has a last workspace");
            PageToken::encode_at(last, organization_id)
        } else {
            String::new()
        };
        Ok(WorkspacePage {
            workspaces,
            next_page_token,
            organization_id,
        })
    }
}
