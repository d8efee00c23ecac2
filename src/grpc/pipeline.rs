//! The shape every call takes: admitted among the calls in flight, within
//! its deadline, failed fast while the database is away, as the caller the
//! `Authenticated` layer found.

use std::{future::Future, sync::Arc, time::Duration};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Request, Response, Status};

use crate::{domain::Caller, domain::DomainError, workspaces::Workspaces};

use super::{
    AuthenticatedCaller,
    deadline::{CallDeadline, run_within},
    status,
};

/// `workspace.v1.WorkspaceService`.
#[derive(Clone)]
pub struct WorkspaceApi {
    pub(super) workspaces: Workspaces,
    /// Calls in flight, bounded: one more is shed at once rather than
    /// queued without bound behind a slow database.
    pub(super) in_flight: Arc<Semaphore>,
    /// The longest a call may run, whatever its `grpc-timeout`.
    pub(super) max_call_duration: Duration,
    /// The largest answer the server encodes; a List page is cut to fit.
    pub(super) max_reply_bytes: usize,
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
    pub(super) async fn serve<M, T, F, Fut>(
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
            // Boxed here, once: the layers around it (the deadline, the
            // call's clock, the timer, the outage watch, tonic's box) then
            // hold and move a pointer. A future is as large as its largest
            // state (a create's is kilobytes), and each layer that took it
            // by value copied it whole.
            Box::pin(call(caller, message))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{domain::NameRules, storage::Storage, workspaces::OrganizationGate};

    /// A call holds its use case's future in a box: however large that
    /// future, the layers around it move a pointer (see `serve`).
    #[tokio::test]
    async fn a_call_holds_its_use_case_boxed() {
        let (storage, _dir) = Storage::temporary(1).await;
        let api = WorkspaceApi::new(
            Workspaces::new(storage, NameRules::default(), OrganizationGate::new(1)),
            1,
            Duration::from_secs(1),
            1 << 20,
        );
        const LARGE: usize = 16 * 1024;
        let use_case = |_: Caller, (): ()| async {
            let state = [7u8; LARGE];
            tokio::task::yield_now().await;
            Ok::<_, DomainError>(std::hint::black_box(state)[0])
        };
        let call = api.serve(Request::new(()), "measure", use_case);
        let size = std::mem::size_of_val(&call);
        // The layers' own state is 1.5 KB in a debug build.
        assert!(size < LARGE / 4, "serve's future is {size} bytes");
    }
}
