//! The tonic transport: decode the request, authenticate, call the use
//! case, encode the answer. Errors become `Status` in `status.rs` only.

mod authenticated;
mod convert;
mod status;

use std::{future::Future, sync::Arc, time::Duration};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Request, Response, Status};

use crate::{
    domain::DomainError,
    domain::{Caller, WorkspaceView},
    proto::{
        AddWorkspaceMemberRequest, CreateWorkspaceAccessTokenRequest,
        CreateWorkspaceAccessTokenResponse, CreateWorkspaceRequest, DeleteWorkspaceRequest,
        GetWorkspaceRequest, ListWorkspaceAccessTokensRequest, ListWorkspaceAccessTokensResponse,
        ListWorkspaceMembersRequest, ListWorkspaceMembersResponse, ListWorkspacesRequest,
        ListWorkspacesResponse, RemoveWorkspaceMemberRequest, RevokeWorkspaceAccessTokenRequest,
        UpdateWorkspaceMemberRequest, UpdateWorkspaceRequest, Workspace, WorkspaceMembership,
        workspace_service_server::WorkspaceService,
    },
    telemetry,
    workspaces::Workspaces,
};

pub use authenticated::{
    Authenticated, AuthenticatedCaller, CREATE_WORKSPACE_PATH, KnownOrganizations, SeedNameRules,
    authenticate_within, credentials,
};
pub use convert::create_input;
pub use status::{ERROR_DOMAIN, code_for, overloaded_with, status_of_reason};

/// How much earlier than the caller's `grpc-timeout` a call is cut.
const DEADLINE_MARGIN: Duration = Duration::from_millis(5);

/// When a call must have answered: set as it arrives, before its
/// credentials are checked, so that authentication and the call share the
/// caller's `grpc-timeout`.
#[derive(Clone, Copy, Debug)]
pub struct CallDeadline(pub tokio::time::Instant);

impl CallDeadline {
    /// The deadline of a call arriving now with `grpc_timeout` (the
    /// header's value): that long, a hair less, so that the answer is ours
    /// (DEADLINE_EXCEEDED with its reason) and not the client's own
    /// timer's (CANCELLED); at most `max`. `None` when the value is not a
    /// `grpc-timeout`. The one place the header is read: both transports
    /// call it once as a call arrives.
    pub fn of(grpc_timeout: Option<&http::HeaderValue>, max: Duration) -> Option<Self> {
        let timeout = match grpc_timeout {
            None => max,
            Some(value) => {
                let asked = value.to_str().ok().and_then(parse_grpc_timeout)?;
                asked
                    .saturating_sub(DEADLINE_MARGIN.min(asked / 10))
                    .min(max)
            }
        };
        Some(Self(tokio::time::Instant::now() + timeout))
    }

    /// How long is left.
    pub fn left(&self) -> Duration {
        self.0
            .saturating_duration_since(tokio::time::Instant::now())
    }
}

/// `workspace.v1.WorkspaceService`.
#[derive(Clone)]
pub struct WorkspaceApi {
    workspaces: Workspaces,
    /// Calls in flight, bounded: one more is shed at once rather than
    /// queued without bound behind a slow database.
    in_flight: Arc<Semaphore>,
    /// The longest a call may run, whatever its `grpc-timeout`.
    max_call_duration: Duration,
    /// The largest answer the server encodes; a List page is cut to fit.
    max_reply_bytes: usize,
}

impl WorkspaceApi {
    pub fn new(
        workspaces: Workspaces,
        max_concurrent_calls: usize,
        max_call_duration: Duration,
        max_reply_bytes: usize,
    ) -> Self {
        Self {
            workspaces,
            in_flight: Arc::new(Semaphore::new(max_concurrent_calls.max(1))),
            max_call_duration,
            max_reply_bytes,
        }
    }

    /// Runs `call` within the caller's `grpc-timeout`, capped by the
    /// server's longest call; DEADLINE_EXCEEDED when it passes. The call
    /// is dropped there: an open transaction rolls back.
    async fn within_deadline<T>(
        &self,
        extensions: &tonic::Extensions,
        call: impl Future<Output = Result<T, Status>>,
    ) -> Result<T, Status> {
        // Set when the call arrived, before authentication (the
        // `Authenticated` layer, or the HTTP gateway).
        let deadline = extensions
            .get::<CallDeadline>()
            .map_or(self.max_call_duration, CallDeadline::left);
        // Fail fast while the database is known to be away, and end calls
        // waiting on it the moment it is found to be.
        let storage = self.workspaces.storage();
        let availability = storage.availability();
        if !availability.is_up() {
            return Err(status::database_unavailable());
        }
        run_within(deadline, async {
            tokio::select! {
                biased;
                result = call => {
                    // The call itself met the database away: have it
                    // probed. (The refusal below comes from a probe.)
                    match &result {
                        Err(s) if s.code() == tonic::Code::Unavailable => storage.suspect_outage(),
                        // Possibly a transaction pooler DATABASE_POOLER
                        // does not name: have it looked at.
                        Err(s) if s.code() == tonic::Code::Internal => storage.suspect_pooler(),
                        _ => {}
                    }
                    result
                }
                () = availability.lost() => Err(status::database_unavailable()),
            }
        })
        .await
    }

    /// A place among the calls in flight, or RESOURCE_EXHAUSTED (reason
    /// OVERLOADED, with a RetryInfo) when all are taken.
    fn admit(&self) -> Result<OwnedSemaphorePermit, Status> {
        self.in_flight
            .clone()
            .try_acquire_owned()
            .map_err(|_| status::overloaded())
    }

    /// The common shape of a call: admitted, authenticated, within its
    /// deadline; `call` runs the use case, whose error becomes the status of
    /// `operation` failing.
    async fn serve<M, T, F, Fut>(
        &self,
        request: Request<M>,
        operation: &'static str,
        call: F,
    ) -> Result<Response<T>, Status>
    where
        F: FnOnce(Caller, M) -> Fut,
        Fut: Future<Output = Result<T, DomainError>>,
    {
        let _admitted = self.admit()?;
        let (_, extensions, message) = request.into_parts();
        self.within_deadline(&extensions, async {
            let caller = Self::caller(&extensions)?;
            call(caller, message)
                .await
                .map(Response::new)
                .map_err(|e| status::failed(operation, e))
        })
        .await
    }

    /// The caller the `Authenticated` layer (or the HTTP gateway) found
    /// before the body was read; the service is never served without it.
    fn caller(extensions: &tonic::Extensions) -> Result<Caller, Status> {
        extensions
            .get::<AuthenticatedCaller>()
            .map(|found| found.0)
            .ok_or_else(|| Status::internal("the call reached the service unauthenticated"))
    }
}

#[tonic::async_trait]
impl WorkspaceService for WorkspaceApi {
    async fn create_workspace(
        &self,
        mut request: Request<CreateWorkspaceRequest>,
    ) -> Result<Response<Workspace>, Status> {
        // Set only by the in-process JSON/HTTP call of a seed's route.
        let rules = request.extensions().get::<SeedNameRules>().map(|r| r.0);
        let organizations = request
            .extensions_mut()
            .remove::<KnownOrganizations>()
            .map(|known| known.0);
        self.serve(
            request,
            "create the workspace",
            |caller, message| async move {
                let input = convert::create_input(message);
                let workspace = self
                    .workspaces
                    .create(caller, organizations, &input, rules)
                    .await?;
                Ok(answer(workspace))
            },
        )
        .await
    }

    async fn get_workspace(
        &self,
        request: Request<GetWorkspaceRequest>,
    ) -> Result<Response<Workspace>, Status> {
        self.serve(request, "get the workspace", |caller, message| async move {
            let workspace = self.workspaces.get(caller, &message.id).await?;
            Ok(answer(workspace))
        })
        .await
    }

    async fn list_workspaces(
        &self,
        request: Request<ListWorkspacesRequest>,
    ) -> Result<Response<ListWorkspacesResponse>, Status> {
        self.serve(request, "list workspaces", |caller, message| async move {
            let ListWorkspacesRequest {
                organization_id,
                page_size,
                page_token,
            } = message;
            let mut page = self
                .workspaces
                .list(caller, &organization_id, page_size, &page_token)
                .await?;
            // However large the workspaces, the page fits in one answer:
            // what does not fit starts the next page.
            let mut workspaces: Vec<Workspace> = page
                .workspaces
                .iter()
                .cloned()
                .map(convert::workspace)
                .collect();
            page.truncate(fitting(
                &workspaces,
                self.max_reply_bytes.saturating_sub(REPLY_HEADROOM),
            ));
            workspaces.truncate(page.workspaces.len());
            Ok(ListWorkspacesResponse {
                workspaces,
                next_page_token: page.next_page_token,
            })
        })
        .await
    }

    async fn update_workspace(
        &self,
        request: Request<UpdateWorkspaceRequest>,
    ) -> Result<Response<Workspace>, Status> {
        self.serve(
            request,
            "update the workspace",
            |caller, message| async move {
                let id = message.id.clone();
                let input = convert::update_input(message);
                let view = self.workspaces.update(caller, &id, &input, None).await?;
                Ok(answer(view))
            },
        )
        .await
    }

    async fn delete_workspace(
        &self,
        request: Request<DeleteWorkspaceRequest>,
    ) -> Result<Response<()>, Status> {
        self.serve(
            request,
            "delete the workspace",
            |caller, message| async move {
                self.workspaces
                    .delete(caller, &message.id, &message.etag, message.allow_missing)
                    .await
            },
        )
        .await
    }

    async fn add_workspace_member(
        &self,
        request: Request<AddWorkspaceMemberRequest>,
    ) -> Result<Response<WorkspaceMembership>, Status> {
        self.serve(request, "add the member", |caller, message| async move {
            // ROLE_UNSPECIFIED is the default (MEMBER); a number the enum
            // does not have is refused, not read as the default.
            let role = convert::workspace_role(message.role);
            if role.is_none() && message.role != crate::proto::Role::Unspecified as i32 {
                return Err(DomainError::invalid(
                    "role",
                    crate::domain::Reason::InvalidRole,
                    "role must be ROLE_WORKSPACE_OWNER, ROLE_WORKSPACE_ADMIN or ROLE_WORKSPACE_MEMBER.",
                ));
            }
            let member = self
                .workspaces
                .add_member(caller, &message.workspace_id, &message.user_id, role)
                .await?;
            Ok(convert::membership(&message.workspace_id, &member))
        })
        .await
    }

    async fn update_workspace_member(
        &self,
        request: Request<UpdateWorkspaceMemberRequest>,
    ) -> Result<Response<WorkspaceMembership>, Status> {
        self.serve(request, "update the member", |caller, message| async move {
            let role = convert::workspace_role(message.role).ok_or_else(|| {
                DomainError::invalid(
                    "role",
                    crate::domain::Reason::InvalidRole,
                    "role must be ROLE_WORKSPACE_OWNER, ROLE_WORKSPACE_ADMIN or ROLE_WORKSPACE_MEMBER.",
                )
            })?;
            let member = self
                .workspaces
                .change_member(caller, &message.workspace_id, &message.user_id, Some(role))
                .await?
                .ok_or_else(|| DomainError::Internal(anyhow::anyhow!("no member after update")))?;
            Ok(convert::membership(&message.workspace_id, &member))
        })
        .await
    }

    async fn remove_workspace_member(
        &self,
        request: Request<RemoveWorkspaceMemberRequest>,
    ) -> Result<Response<()>, Status> {
        self.serve(request, "remove the member", |caller, message| async move {
            self.workspaces
                .change_member(caller, &message.workspace_id, &message.user_id, None)
                .await
                .map(|_| ())
        })
        .await
    }

    async fn list_workspace_members(
        &self,
        request: Request<ListWorkspaceMembersRequest>,
    ) -> Result<Response<ListWorkspaceMembersResponse>, Status> {
        self.serve(request, "list the members", |caller, message| async move {
            let page = self
                .workspaces
                .members(
                    caller,
                    &message.workspace_id,
                    message.page_size,
                    &message.page_token,
                )
                .await?;
            Ok(ListWorkspaceMembersResponse {
                memberships: page
                    .items
                    .iter()
                    .map(|m| convert::membership(&message.workspace_id, m))
                    .collect(),
                next_page_token: page.next_page_token,
            })
        })
        .await
    }

    async fn create_workspace_access_token(
        &self,
        request: Request<CreateWorkspaceAccessTokenRequest>,
    ) -> Result<Response<CreateWorkspaceAccessTokenResponse>, Status> {
        self.serve(
            request,
            "create the access token",
            |caller, message| async move {
                let expires_at = convert::time_of(message.expire_time);
                if message.expire_time.is_some() && expires_at.is_none() {
                    return Err(DomainError::invalid(
                        "expire_time",
                        crate::domain::Reason::ExpireTimeOutOfRange,
                        "expire_time is not a valid time.",
                    ));
                }
                let (token, secret) = self
                    .workspaces
                    .create_access_token(caller, &message.workspace_id, &message.name, expires_at)
                    .await?;
                Ok(CreateWorkspaceAccessTokenResponse {
                    access_token: Some(convert::access_token(&token)),
                    secret,
                })
            },
        )
        .await
    }

    async fn list_workspace_access_tokens(
        &self,
        request: Request<ListWorkspaceAccessTokensRequest>,
    ) -> Result<Response<ListWorkspaceAccessTokensResponse>, Status> {
        self.serve(
            request,
            "list the access tokens",
            |caller, message| async move {
                let page = self
                    .workspaces
                    .access_tokens(
                        caller,
                        &message.workspace_id,
                        message.page_size,
                        &message.page_token,
                    )
                    .await?;
                Ok(ListWorkspaceAccessTokensResponse {
                    access_tokens: page.items.iter().map(convert::access_token).collect(),
                    next_page_token: page.next_page_token,
                })
            },
        )
        .await
    }

    async fn revoke_workspace_access_token(
        &self,
        request: Request<RevokeWorkspaceAccessTokenRequest>,
    ) -> Result<Response<()>, Status> {
        self.serve(
            request,
            "revoke the access token",
            |caller, message| async move {
                self.workspaces
                    .revoke_access_token(caller, &message.workspace_id, &message.token_id)
                    .await
            },
        )
        .await
    }
}

/// Room in a List answer for its page token and framing.
const REPLY_HEADROOM: usize = 1024;

/// How many of `workspaces`, encoded as repeated fields, fit in `budget`
/// bytes.
fn fitting(workspaces: &[Workspace], budget: usize) -> usize {
    let mut used = 0;
    let mut count = 0;
    for workspace in workspaces {
        let len = prost::Message::encoded_len(workspace);
        used += 1 + prost::encoding::encoded_len_varint(len as u64) + len;
        if used > budget {
            break;
        }
        count += 1;
    }
    count
}

/// Runs `call` until `deadline` passes, then answers DEADLINE_EXCEEDED (the
/// call is dropped there: an open transaction rolls back). Timers tick in
/// milliseconds, so a shorter deadline has passed before any work starts.
async fn run_within<T>(
    deadline: Duration,
    call: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    if deadline < Duration::from_millis(1) {
        return Err(status::deadline_exceeded());
    }
    let at = tokio::time::Instant::now() + deadline;
    tokio::time::timeout_at(at, crate::storage::deadline::within(at, call))
        .await
        .unwrap_or_else(|_| Err(status::deadline_exceeded()))
}

/// The workspace as the API answers it; its id goes on the call's span
/// (the organization's went there when the call learnt it).
fn answer(workspace: WorkspaceView) -> Workspace {
    if let Some(id) = workspace.id {
        telemetry::record_workspace(id);
    }
    convert::workspace(workspace)
}

/// A `grpc-timeout` value (gRPC over HTTP/2: up to 8 digits and a unit:
/// H, M, S, m, u or n).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let value = value.trim();
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}
