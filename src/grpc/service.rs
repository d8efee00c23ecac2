//! The RPCs of `workspace.v1.WorkspaceService`: each decodes its request,
//! calls its use case through the pipeline and encodes the answer.

use tonic::{Request, Response, Status};

use crate::{
    domain::DomainError,
    domain::WorkspaceView,
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
};

use super::{KnownOrganizations, SeedNameRules, WorkspaceApi, convert};

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

/// The workspace as the API answers it; its id goes on the call's span
/// (the organization's went there when the call learnt it).
fn answer(workspace: WorkspaceView) -> Workspace {
    if let Some(id) = workspace.id {
        telemetry::record_workspace(id);
    }
    convert::workspace(workspace)
}
