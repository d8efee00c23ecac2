//! CreateWorkspace: checks 2 to 11, in the order of the product contract.

use chrono::Utc;
use uuid::Uuid;

use super::Workspaces;
use crate::{
    domain::{
        Caller, CreateWorkspace, CreateWorkspaceInput, CredentialsKind, DomainError, NameRules,
        OrganizationRole, Reason, WorkspaceView, validate_create,
        workspace::{UPLOAD_METHOD_MANUAL, WORKSPACE_TYPE_CUSTOM},
    },
    storage::{
        CallerOrganizations, CreateOutcome, IdempotencyKey, NewWorkspace, OrganizationContext,
        Recheck,
    },
    telemetry,
};

/// Why `decide` gave no answer of its own.
enum NotDecided {
    /// A refusal, final for a caller read for this call.
    Refused(DomainError),
    /// Decided on a kept caller, the answer would come without the
    /// write's check (a retry, validate_only) or its decision no longer
    /// holds: decide again on a fresh read.
    AskFresh,
}

impl NotDecided {
    /// The answer of a create decided on a caller read for it, which
    /// never asks for a fresh read.
    fn into_error(self) -> DomainError {
        match self {
            Self::Refused(err) => err,
            Self::AskFresh => DomainError::Internal(anyhow::anyhow!(
                "a create decided on a caller read for it asked for a fresh read"
            )),
        }
    }
}

/// The API token's hash when `organizations` were kept from an earlier
/// call.
fn kept_for(organizations: &Option<CallerOrganizations>) -> Option<String> {
    organizations
        .as_ref()
        .and_then(CallerOrganizations::kept_for)
        .map(str::to_owned)
}

impl From<DomainError> for NotDecided {
    fn from(err: DomainError) -> Self {
        Self::Refused(err)
    }
}

impl Workspaces {
    /// CreateWorkspace: checks 2 to 11 (check 1, authentication, made
    /// `caller`). `rules` replaces the configured name rules for this
    /// call: a JSON/HTTP route speaking a seed's dialect applies that
    /// seed's (never settable by a gRPC caller).
    ///
    /// With a caller kept from an earlier call (`storage::callers`), only
    /// a create its write checks again succeeds on it: every refusal (but
    /// the deadline, the database or the organization's gate failing the
    /// call), a retry's answer, validate_only and a write that found the
    /// caller changed are decided again on a fresh read of the caller.
    pub async fn create(
        &self,
        caller: Caller,
        organizations: Option<CallerOrganizations>,
        input: &CreateWorkspaceInput,
        rules: Option<NameRules>,
    ) -> Result<WorkspaceView, DomainError> {
        let Some(token_hash) = kept_for(&organizations) else {
            let decided = self.decide(caller, organizations, None, input, rules).await;
            return decided.map_err(NotDecided::into_error);
        };
        let kept = Some(token_hash.as_str());
        match self.decide(caller, organizations, kept, input, rules).await {
            Ok(view) => return Ok(view),
            // Not the caller's doing, and a second try would hold the
            // call's place longer or write twice (OUTCOME_UNKNOWN).
            Err(NotDecided::Refused(
                err @ (DomainError::DeadlineExceeded
                | DomainError::Unavailable(_)
                | DomainError::Internal(_)
                | DomainError::OrganizationOverloaded { .. }),
            )) => return Err(err),
            Err(NotDecided::Refused(err)) => {
                tracing::debug!(error = %err, "a kept caller's refusal, decided again");
            }
            Err(NotDecided::AskFresh) => {}
        }
        let (caller, organizations) = Box::pin(self.storage.creator_of_api_token(
            &token_hash,
            Utc::now(),
            false,
        ))
        .await?
        .ok_or(DomainError::Unauthenticated)?;
        let fresh = Some(organizations);
        let decided = self.decide(caller, fresh, None, input, rules).await;
        decided.map_err(NotDecided::into_error)
    }

    /// Checks 2 to 11 on `caller` and its `organizations`, kept for the
    /// API token of hash `kept` when it is given.
    ///
    /// The reads are boxed: a future holds the state of every await it
    /// may reach, the database reads' (sea-orm's, sqlx's pool) run to
    /// kilobytes, and every move of the call's future (into its task,
    /// into tonic's box) copies it whole. With them and sqlx's acquire
    /// boxed, a create's future went from 18.5 to 3.9 KB in a release
    /// build, and memmove from 8-12 % of the server's samples to 7 %
    /// (BENCHMARKS.md).
    async fn decide(
        &self,
        caller: Caller,
        organizations: Option<CallerOrganizations>,
        kept: Option<&str>,
        input: &CreateWorkspaceInput,
        rules: Option<NameRules>,
    ) -> Result<WorkspaceView, NotDecided> {
        // 2. Well formed.
        let request = validate_create(input, &rules.unwrap_or(self.rules))?;
        // A workspace access token acts on its own workspace only.
        if caller.workspace_scope.is_some() {
            return Err(DomainError::AccessTokenNotAllowed {
                action: "create workspaces",
            }
            .into());
        }

        // A credential bound to another organization than the one named is
        // a non-member's, retry or not: it never sees that organization.
        let named = caller.organization(request.organization_id)?.is_some();

        // Answers that no write checks again come from a fresh read.
        if kept.is_some() && (request.request_id.is_some() || request.validate_only) {
            return Err(NotDecided::AskFresh);
        }

        // A retry of a call that succeeded answers what that call created,
        // before the checks below would refuse the now-taken name.
        if let (Some(request_id), false) = (&request.request_id, request.validate_only)
            && let Some(view) = Box::pin(self.replay(caller, request_id, &request)).await?
        {
            return Ok(view);
        }

        // 3. Member of the organization (given or inferred). A missing
        // organization answers the same as someone else's: no leak. Read
        // with its policy, plan and count in one query.
        let (role, context) =
            Box::pin(self.organization_and_role(caller, organizations, request.organization_id))
                .await?;
        let organization_id = context.organization.id;
        telemetry::record_organization(organization_id);
        // From here on the call waits on this organization (its row is
        // locked by the write): at most so many of its calls at once.
        let _slot = self.gate.enter(organization_id).await?;

        // 4. Account validated (read with the credentials).
        if !caller.validated {
            return Err(DomainError::AccountNotValidated.into());
        }

        // 5. Role or organization policy.
        context.policy.allows(role)?;

        // 6. Plan.
        context.plan.allows_creation()?;

        // 7 and 8.
        Box::pin(self.check_references(organization_id, &request)).await?;

        if request.validate_only {
            return Ok(Box::pin(self.preview(caller, &request, &context)).await?);
        }

        // 9, 10 and 11: decided by the database in one transaction, with
        // a kept caller's decision checked again.
        let recheck = kept.map(|token_hash| Recheck {
            token_hash,
            role,
            policy: context.policy,
            only_organization: !named,
        });
        self.write(caller, request, &context, recheck).await
    }

    /// Checks 7 and 8: the credentials are this organization's, of the
    /// right kind; the first member belongs to the organization.
    async fn check_references(
        &self,
        organization_id: Uuid,
        request: &CreateWorkspace,
    ) -> Result<(), DomainError> {
        // 7. Credentials of this organization, of the right kind.
        let mut credentials = Vec::new();
        if let Some(document_store) = &request.document_store {
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
        Ok(())
    }

    /// Checks 9, 10 and 11, decided by the database as it writes the
    /// workspace, its memberships, the idempotency record and the event.
    async fn write(
        &self,
        caller: Caller,
        request: CreateWorkspace,
        context: &OrganizationContext,
        recheck: Option<Recheck<'_>>,
    ) -> Result<WorkspaceView, NotDecided> {
        let limit = context.plan.workspace_limit;
        // 9, 10 and 11: decided by the database in one transaction.
        let idempotency = request
            .request_id
            .as_ref()
            .map(|request_id| IdempotencyKey {
                user_id: caller.user_id,
                request_id: request_id.clone(),
                fingerprint: request.fingerprint_in(Some(context.organization.id)),
            });
        let new = NewWorkspace {
            organization: &context.organization,
            creator: caller.user_id,
            request: &request,
            workspace_type: WORKSPACE_TYPE_CUSTOM,
            document_upload_method: UPLOAD_METHOD_MANUAL,
            recheck,
        };
        let outcome = self
            .storage
            .insert_workspace(new, idempotency.as_ref())
            .await
            .map_err(DomainError::from)?;
        match outcome {
            CreateOutcome::Created(view) => Ok(*view),
            CreateOutcome::LimitReached => Err(DomainError::WorkspaceLimitReached {
                limit: limit.unwrap_or(i32::MAX),
            }
            .into()),
            CreateOutcome::CallerChanged => Err(NotDecided::AskFresh),
            CreateOutcome::NameTaken | CreateOutcome::RequestIdTaken => {
                // A concurrent twin of this very call (same caller, same
                // request id) may have won: then its workspace is ours.
                if let Some(request_id) = &request.request_id
                    && let Some(view) = Box::pin(self.replay(caller, request_id, &request)).await?
                {
                    return Ok(view);
                }
                Err(DomainError::WorkspaceAlreadyExists { name: request.name }.into())
            }
        }
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
        // The same request: as recorded (a record from before the resolved
        // organization was part of it compares with the given one), or,
        // naming none, in the organization the first call created in.
        let same = record.request_fingerprint == request.fingerprint()
            || (request.organization_id.is_none()
                && self
                    .storage
                    .workspace_organization(record.workspace_id)
                    .await?
                    .is_some_and(|organization| {
                        record.request_fingerprint == request.fingerprint_in(Some(organization))
                    }));
        if !same {
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
        let given = caller.organization(given)?;
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
