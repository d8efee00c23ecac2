//! The use cases: CreateWorkspace, GetWorkspace and ListWorkspaces, for
//! whichever transport calls them. Runs the domain's rules, in the order of
//! the product contract, against storage.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use uuid::Uuid;

use crate::{
    domain::{
        Caller, CreateWorkspace, CreateWorkspaceInput, CredentialsKind, DomainError, NameRules,
        OrganizationRole, Reason, WorkspaceView, parse_id, validate_create,
        workspace::{UPLOAD_METHOD_MANUAL, WORKSPACE_TYPE_CUSTOM},
    },
    storage::{
        CallerOrganizations, CreateOutcome, IdempotencyKey, NewWorkspace, OrganizationContext,
        Storage,
    },
    telemetry,
};

mod gate;
mod lifecycle;

pub use gate::OrganizationGate;
pub use lifecycle::Page;

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
        if let Some(last) = self.workspaces.last().and_then(|w| w.id) {
            self.next_page_token = PageToken::encode(last, self.organization_id);
        }
    }
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

    /// CreateWorkspace: checks 2 to 11 (check 1, authentication, made
    /// `caller`). `rules` replaces the configured name rules for this
    /// call: a JSON/HTTP route speaking a seed's dialect applies that
    /// seed's (never settable by a gRPC caller).
    pub async fn create(
        &self,
        caller: Caller,
        organizations: Option<CallerOrganizations>,
        input: &CreateWorkspaceInput,
        rules: Option<NameRules>,
    ) -> Result<WorkspaceView, DomainError> {
        // 2. Well formed.
        let request = validate_create(input, &rules.unwrap_or(self.rules))?;
        // A workspace access token acts on its own workspace only.
        if caller.workspace_scope.is_some() {
            return Err(DomainError::AccessTokenNotAllowed {
                action: "create workspaces",
            });
        }

        // A retry of a call that succeeded answers what that call created,
        // before the checks below would refuse the now-taken name.
        if let (Some(request_id), false) = (&request.request_id, request.validate_only)
            && let Some(view) = self.replay(caller, request_id, &request).await?
        {
            return Ok(view);
        }

        // 3. Member of the organization (given or inferred). A missing
        // organization answers the same as someone else's: no leak. Read
        // with its policy, plan and count in one query.
        let (role, context) = self
            .organization_and_role(caller, organizations, request.organization_id)
            .await?;
        let organization_id = context.organization.id;
        telemetry::record_organization(organization_id);
        // From here on the call waits on this organization (its row is
        // locked by the write): at most so many of its calls at once.
        let _slot = self.gate.enter(organization_id).await?;

        // 4. Account validated (read with the credentials).
        if !caller.validated {
            return Err(DomainError::AccountNotValidated);
        }

        // 5. Role or organization policy.
        context.policy.allows(role)?;

        // 6. Plan.
        context.plan.allows_creation()?;

        // 7. Credentials of this organization, of the right kind.
        let mut credentials = Vec::new();
        if let Some(document_store) = request.document_store {
            credentials.push((
                "document_store_credentials.workspace_document_store_credentials_id",
                document_store.workspace,
                CredentialsKind::DocumentStore,
            ));
            credentials.push((
                "document_store_credentials.pipeline_document_store_credentials_id",
                document_store.pipeline,
                CredentialsKind::DocumentStore,
            ));
        }
        if let Some(file_store) = request.file_store {
            credentials.push((
                "file_store_credentials.file_store_credentials_id",
                file_store,
                CredentialsKind::FileStore,
            ));
        }
        if !credentials.is_empty() {
            let ids: Vec<Uuid> = credentials.iter().map(|(_, id, _)| *id).collect();
            let found = self
                .storage
                .credentials_kinds(organization_id, &ids)
                .await?;
            for (field, id, kind) in credentials {
                if found.get(&id) != Some(&kind) {
                    return Err(DomainError::CredentialsNotFound { field, id });
                }
            }
        }

        // 8. First member belongs to the organization.
        if let Some(user_id) = request.first_member_id
            && self
                .storage
                .organization_role(organization_id, user_id)
                .await?
                .is_none()
        {
            return Err(DomainError::FirstMemberNotFound { user_id });
        }

        let limit = context.plan.workspace_limit;
        if request.validate_only {
            return self.preview(caller, &request, &context).await;
        }

        // 9, 10 and 11: decided by the database in one transaction.
        let idempotency = request
            .request_id
            .as_ref()
            .map(|request_id| IdempotencyKey {
                user_id: caller.user_id,
                request_id: request_id.clone(),
                fingerprint: request.fingerprint(),
            });
        let new = NewWorkspace {
            organization: &context.organization,
            creator: caller.user_id,
            request: &request,
            workspace_type: WORKSPACE_TYPE_CUSTOM,
            document_upload_method: UPLOAD_METHOD_MANUAL,
        };
        let outcome = self
            .storage
            .insert_workspace(new, idempotency.as_ref())
            .await?;
        match outcome {
            CreateOutcome::Created(view) => Ok(*view),
            CreateOutcome::LimitReached => Err(DomainError::WorkspaceLimitReached {
                limit: limit.unwrap_or(i32::MAX),
            }),
            CreateOutcome::NameTaken | CreateOutcome::RequestIdTaken => {
                // A concurrent twin of this very call (same caller, same
                // request id) may have won: then its workspace is ours.
                if let Some(request_id) = &request.request_id
                    && let Some(view) = self.replay(caller, request_id, &request).await?
                {
                    return Ok(view);
                }
                Err(DomainError::WorkspaceAlreadyExists { name: request.name })
            }
        }
    }

    /// GetWorkspace.
    pub async fn get(&self, caller: Caller, id: &str) -> Result<WorkspaceView, DomainError> {
        let not_found = || DomainError::WorkspaceNotFound { id: id.to_owned() };
        let uuid = parse_id("id", id)?;
        if caller.workspace_scope.is_some_and(|scope| scope != uuid) {
            return Err(not_found());
        }
        let workspace = self
            .storage
            .visible_workspace(uuid, caller.user_id)
            .await?
            .ok_or_else(not_found)?;
        telemetry::record_organization(workspace.organization.id);
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
        let page_size = page_size_of(page_size)?;
        let after = PageToken::decode(page_token, organization_id)?;
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

        let page_size = page_size as usize;
        let mut workspaces = self
            .storage
            .visible_workspaces(caller.user_id, organization_id, after, page_size as u64 + 1)
            .await?;
        // A workspace access token sees its own workspace only.
        if let Some(scope) = caller.workspace_scope {
            workspaces.retain(|w| w.id == Some(scope));
        }
        let next_page_token = if workspaces.len() > page_size {
            workspaces.truncate(page_size);
            let last = workspaces
                .last()
                .and_then(|w| w.id)
                .expect("a full page has a last workspace");
            PageToken::encode(last, organization_id)
        } else {
            String::new()
        };
        Ok(WorkspacePage {
            workspaces,
            next_page_token,
            organization_id,
        })
    }

    /// The workspace an earlier successful call with this request id
    /// created, if there was one; REQUEST_ID_REUSED if that call asked for
    /// something else.
    async fn replay(
        &self,
        caller: Caller,
        request_id: &str,
        request: &CreateWorkspace,
    ) -> Result<Option<WorkspaceView>, DomainError> {
        let Some(record) = self
            .storage
            .idempotency_record(caller.user_id, request_id)
            .await?
        else {
            return Ok(None);
        };
        if record.request_fingerprint != request.fingerprint() {
            return Err(DomainError::invalid(
                "request_id",
                Reason::RequestIdReused,
                format!("request_id '{request_id}' was already used for a different request."),
            ));
        }
        let view = self
            .storage
            .visible_workspace(record.workspace_id, caller.user_id)
            .await?;
        view.map(Some).ok_or(DomainError::WorkspaceNotFound {
            id: record.workspace_id.to_string(),
        })
    }

    /// Check 3: the organization to create in (the one given, or the
    /// caller's only one), the caller's role in it, and what checks 5, 6
    /// and 9 need to know of it.
    async fn organization_and_role(
        &self,
        caller: Caller,
        known: Option<CallerOrganizations>,
        given: Option<Uuid>,
    ) -> Result<(OrganizationRole, OrganizationContext), DomainError> {
        // Two are enough to tell "only one" from "several"; read with the
        // credentials when they tell.
        let mut memberships = match known.and_then(|known| known.memberships(given)) {
            Some(memberships) => memberships,
            None => self.storage.memberships(caller.user_id, given, 2).await?,
        };
        match memberships.len() {
            0 => Err(DomainError::NotOrganizationMember),
            1 => Ok(memberships.remove(0)),
            _ => Err(DomainError::invalid(
                "organization_id",
                Reason::OrganizationRequired,
                "You belong to several organizations; say which one in organization_id.",
            )),
        }
    }

    /// validate_only: checks 9 and 10 as reads, and the workspace as it
    /// would be, without an id. Nothing is written.
    async fn preview(
        &self,
        caller: Caller,
        request: &CreateWorkspace,
        context: &OrganizationContext,
    ) -> Result<WorkspaceView, DomainError> {
        if let Some(limit) = context.plan.workspace_limit
            && context.workspace_count >= limit
        {
            return Err(DomainError::WorkspaceLimitReached { limit });
        }
        if self
            .storage
            .name_taken(context.organization.id, &request.normalized_name)
            .await?
        {
            return Err(DomainError::WorkspaceAlreadyExists {
                name: request.name.clone(),
            });
        }
        Ok(request.preview(caller.user_id, context.organization.clone(), Utc::now()))
    }
}

/// The opaque cursor of every List: the last id of a page, bound to what
/// the list was of (ListWorkspaces' organization filter, the workspace of
/// ListWorkspaceMembers and ListWorkspaceAccessTokens).
pub(crate) struct PageToken;

impl PageToken {
    const VERSION: &'static str = "v1";

    pub(crate) fn encode(last: Uuid, organization_id: Option<Uuid>) -> String {
        let organization = organization_id.map(|id| id.to_string()).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(format!("{}|{organization}|{last}", Self::VERSION))
    }

    pub(crate) fn decode(
        token: &str,
        organization_id: Option<Uuid>,
    ) -> Result<Option<Uuid>, DomainError> {
        if token.is_empty() {
            return Ok(None);
        }
        let invalid = || {
            DomainError::invalid(
                "page_token",
                Reason::InvalidPageToken,
                "page_token is not one this service returned for this list.",
            )
        };
        let text = URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(invalid)?;
        let mut parts = text.split('|');
        let (Some(Self::VERSION), Some(organization), Some(last), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let expected = organization_id.map(|id| id.to_string()).unwrap_or_default();
        if organization != expected {
            return Err(invalid());
        }
        Uuid::try_parse(last).map(Some).map_err(|_| invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_are_bound_to_their_filter() {
        let last = Uuid::now_v7();
        let organization = Some(Uuid::now_v7());
        let token = PageToken::encode(last, organization);
        assert_eq!(PageToken::decode(&token, organization).unwrap(), Some(last));
        assert!(PageToken::decode(&token, None).is_err());
        assert!(PageToken::decode("garbage", None).is_err());
        assert_eq!(PageToken::decode("", None).unwrap(), None);
    }
}
