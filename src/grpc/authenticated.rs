//! Check 1 before the body: WorkspaceService calls are authenticated from
//! their headers as they arrive, and one without valid credentials is
//! answered UNAUTHENTICATED without a byte of its body being read or held.
//! The caller goes on in the request's extensions for the handler.

use std::{
    convert::Infallible,
    task::{Context, Poll},
    time::Duration,
};

use super::CallDeadline;

use futures_util::future::BoxFuture;
use tonic::{Status, server::NamedService};

use super::status;
use crate::{
    auth::{Authenticator, Credentials},
    domain::Caller,
    storage::CallerOrganizations,
};

/// The caller a request was authenticated as: set here, or by the HTTP
/// gateway, which authenticates before it reads a body too. Extensions
/// never come from the network.
#[derive(Clone, Copy, Debug)]
pub struct AuthenticatedCaller(pub Caller);

/// The caller's organizations, read with its credentials for a
/// CreateWorkspace (`Authenticator::authenticate_creator`); like the
/// caller, never from the network.
#[derive(Clone, Debug)]
pub struct KnownOrganizations(pub CallerOrganizations);

/// CreateWorkspace's gRPC path: its authentication reads the caller's
/// organizations too.
pub const CREATE_WORKSPACE_PATH: &str = "/workspace.v1.WorkspaceService/CreateWorkspace";

/// The name rules of the seed whose dialect a JSON/HTTP route speaks, put
/// in the call's extensions by the in-process HTTP call: like the caller,
/// never from the network.
#[derive(Clone, Copy, Debug)]
pub struct SeedNameRules(pub crate::domain::NameRules);

/// `inner` behind authentication from headers.
#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    authenticator: Authenticator,
    /// The longest authentication may take (the longest call).
    limit: Duration,
}

impl<S> Authenticated<S> {
    pub fn new(inner: S, authenticator: Authenticator, limit: Duration) -> Self {
        Self {
            inner,
            authenticator,
            limit,
        }
    }
}

impl<S: NamedService> NamedService for Authenticated<S> {
    const NAME: &'static str = S::NAME;
}

/// The credentials in `headers`: `authorization`, else the `session`
/// cookie.
pub fn credentials(headers: &http::HeaderMap) -> Option<Credentials> {
    let authorization = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let cookies = headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    Credentials::from_headers(authorization, cookies)
}

impl<S, B> tower::Service<http::Request<B>> for Authenticated<S>
where
    S: tower::Service<
            http::Request<B>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The clone that was made ready serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let authenticator = self.authenticator.clone();
        let limit = self.limit;
        Box::pin(async move {
            // The call's deadline runs from here: authentication and the
            // call share it. (The HTTP gateway sets it for its calls.) A
            // `grpc-timeout` that does not parse is no deadline of its own.
            if request.extensions().get::<CallDeadline>().is_none() {
                let deadline = CallDeadline::of(request.headers().get("grpc-timeout"), limit)
                    .or_else(|| CallDeadline::of(None, limit))
                    .expect("no header is always a deadline");
                request.extensions_mut().insert(deadline);
            }
            let deadline = request
                .extensions()
                .get::<CallDeadline>()
                .expect("set above")
                .0;
            if request.extensions().get::<AuthenticatedCaller>().is_none() {
                let creating = request.uri().path() == CREATE_WORKSPACE_PATH;
                let (caller, organizations) = match authenticate_within(
                    &authenticator,
                    request.headers(),
                    creating,
                    deadline,
                )
                .await
                {
                    Ok(found) => found,
                    Err(status) => return Ok(status.into_http()),
                };
                request.extensions_mut().insert(AuthenticatedCaller(caller));
                if let Some(organizations) = organizations {
                    request
                        .extensions_mut()
                        .insert(KnownOrganizations(organizations));
                }
            }
            inner.call(request).await
        })
    }
}

/// Check 1 for either transport, from a call's `headers`: the credentials'
/// caller (and, for a create, the organizations read with them), within
/// the call's `deadline` (DEADLINE_EXCEEDED past it), and UNAVAILABLE at
/// once while the database is known to be down or as soon as it is lost
/// (a failure that looks like an outage asks the health monitor to probe).
pub async fn authenticate_within(
    authenticator: &Authenticator,
    headers: &http::HeaderMap,
    creating: bool,
    deadline: tokio::time::Instant,
) -> Result<(Caller, Option<CallerOrganizations>), Status> {
    let storage = authenticator.storage();
    let availability = storage.availability();
    if !availability.is_up() {
        return Err(status::database_unavailable());
    }
    let credentials = credentials(headers);
    let authenticated = async {
        tokio::select! {
            biased;
            result = authenticator.authenticate_creator(credentials, creating) => {
                result.map_err(Status::from)
            }
            () = availability.lost() => Err(status::database_unavailable()),
        }
    };
    match tokio::time::timeout_at(deadline, authenticated).await {
        Ok(Ok(found)) => Ok(found),
        Ok(Err(status)) => {
            if status.code() == tonic::Code::Unavailable {
                storage.suspect_outage();
            }
            Err(status)
        }
        Err(_) => Err(status::deadline_exceeded()),
    }
}
