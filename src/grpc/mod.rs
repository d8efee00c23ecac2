//! The tonic transport: decode the request, authenticate, call the use
//! case, encode the answer. Errors become `Status` in `status.rs` only.

mod convert;
mod status;

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Request, Response, Status, metadata::MetadataMap};

use crate::{
    auth::{Authenticator, Credentials},
    domain::Caller,
    proto::{
        CreateWorkspaceRequest, GetWorkspaceRequest, ListWorkspacesRequest, ListWorkspacesResponse,
        Workspace, workspace_service_server::WorkspaceService,
    },
    workspaces::Workspaces,
};

pub use status::{ERROR_DOMAIN, status_with_reason};

/// `workspace.v1.WorkspaceService`.
#[derive(Clone)]
pub struct WorkspaceApi {
    workspaces: Workspaces,
    authenticator: Authenticator,
    /// Calls in flight, bounded: one more is shed at once rather than
    /// queued without bound behind a slow database.
    in_flight: Arc<Semaphore>,
}

impl WorkspaceApi {
    pub fn new(
        workspaces: Workspaces,
        authenticator: Authenticator,
        max_concurrent_calls: usize,
    ) -> Self {
        Self {
            workspaces,
            authenticator,
            in_flight: Arc::new(Semaphore::new(max_concurrent_calls.max(1))),
        }
    }

    /// A place among the calls in flight, or RESOURCE_EXHAUSTED (reason
    /// OVERLOADED, with a RetryInfo) when all are taken.
    fn admit(&self) -> Result<OwnedSemaphorePermit, Status> {
        self.in_flight
            .clone()
            .try_acquire_owned()
            .map_err(|_| status::overloaded())
    }

    /// Check 1: `authorization` or the `session` cookie.
    async fn caller(&self, metadata: &MetadataMap) -> Result<Caller, Status> {
        let authorization = metadata.get("authorization").and_then(|v| v.to_str().ok());
        let cookies = metadata
            .get_all("cookie")
            .iter()
            .filter_map(|v| v.to_str().ok());
        let credentials = Credentials::from_headers(authorization, cookies);
        Ok(self.authenticator.authenticate(credentials).await?)
    }
}

#[tonic::async_trait]
impl WorkspaceService for WorkspaceApi {
    #[tracing::instrument(skip_all, fields(rpc = "CreateWorkspace"))]
    async fn create_workspace(
        &self,
        request: Request<CreateWorkspaceRequest>,
    ) -> Result<Response<Workspace>, Status> {
        let _admitted = self.admit()?;
        let caller = self.caller(request.metadata()).await?;
        let input = convert::create_input(request.into_inner());
        let workspace = self.workspaces.create(caller, &input).await?;
        Ok(Response::new(convert::workspace(workspace)))
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetWorkspace"))]
    async fn get_workspace(
        &self,
        request: Request<GetWorkspaceRequest>,
    ) -> Result<Response<Workspace>, Status> {
        let _admitted = self.admit()?;
        let caller = self.caller(request.metadata()).await?;
        let workspace = self.workspaces.get(caller, &request.get_ref().id).await?;
        Ok(Response::new(convert::workspace(workspace)))
    }

    #[tracing::instrument(skip_all, fields(rpc = "ListWorkspaces"))]
    async fn list_workspaces(
        &self,
        request: Request<ListWorkspacesRequest>,
    ) -> Result<Response<ListWorkspacesResponse>, Status> {
        let _admitted = self.admit()?;
        let caller = self.caller(request.metadata()).await?;
        let ListWorkspacesRequest {
            organization_id,
            page_size,
            page_token,
        } = request.into_inner();
        let page = self
            .workspaces
            .list(caller, &organization_id, page_size, &page_token)
            .await?;
        Ok(Response::new(ListWorkspacesResponse {
            workspaces: page
                .workspaces
                .into_iter()
                .map(convert::workspace)
                .collect(),
            next_page_token: page.next_page_token,
        }))
    }
}
