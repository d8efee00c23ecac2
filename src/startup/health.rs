//! The health service (`grpc.health.v1.Health`): readiness follows the
//! database (it answers, and `DATABASE_POOLER` fits what is in front of
//! it); liveness only says the process is up.
//!
//! Served here rather than by tonic-health's server, which ends a `Watch`
//! of an unknown service with NOT_FOUND: the health protocol says to
//! answer SERVICE_UNKNOWN and keep the stream open, sending the service's
//! status should it become known (`Check` of an unknown service is
//! NOT_FOUND, as the protocol says).

use std::{collections::HashMap, pin::Pin, sync::Arc, time::Duration};

use futures_util::Stream;
use tokio::sync::watch;
use tonic::{Request, Response, Status};
use tonic_health::pb::{
    HealthCheckRequest, HealthCheckResponse,
    health_check_response::ServingStatus,
    health_server::{Health, HealthServer},
};

use crate::{
    grpc::WorkspaceApi,
    proto::workspace_service_server::WorkspaceServiceServer,
    storage::{STATISTICS_EVERY, Storage},
};

/// The health services that follow the database (readiness).
pub(super) const READINESS_SERVICES: [&str; 2] = [
    "",
    <WorkspaceServiceServer<WorkspaceApi> as tonic::server::NamedService>::NAME,
];

/// The health "service" that only says the process is up (liveness);
/// `""` and `workspace.v1.WorkspaceService` also follow the database
/// (readiness).
pub const LIVENESS_SERVICE: &str = "liveness";

/// Keeps the health service in step with the database: NOT_SERVING while it
/// does not answer, SERVING again once it does.
pub(super) async fn watch_database(storage: Storage, reporter: HealthStatuses, every: Duration) {
    // The process itself answers: what a liveness probe asks. It does not
    // follow the database, so an outage does not restart every replica.
    reporter.set_service_status(LIVENESS_SERVICE, ServingStatus::Serving);
    let mut last = None;
    // SQLite's statistics were brought up to date by the migration.
    let mut statistics_at = std::time::Instant::now();
    loop {
        let answers = storage.probe().await;
        if answers && statistics_at.elapsed() >= STATISTICS_EVERY {
            statistics_at = std::time::Instant::now();
            let storage = storage.clone();
            tokio::spawn(async move {
                if let Err(err) = storage.keep_statistics().await {
                    tracing::warn!(%err, "bringing SQLite's statistics up to date failed");
                }
            });
        }
        // A transaction pooler DATABASE_POOLER does not name fails calls
        // at random: not ready until the setting (or the pooler) is fixed.
        let mismatch = if answers {
            storage.recheck_pooler().await
        } else {
            None
        };
        let status = if answers && mismatch.is_none() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        if last != Some(status) {
            if let Some(reason) = &mismatch {
                tracing::error!(%reason, "the database answers, but DATABASE_POOLER is wrong; health NOT_SERVING");
            } else if answers {
                tracing::info!("database answers; health SERVING");
            } else {
                let reason = storage.last_probe_failure().unwrap_or_default();
                tracing::warn!(%reason, "database does not answer; health NOT_SERVING");
            }
            for service in READINESS_SERVICES {
                reporter.set_service_status(service, status);
            }
            last = Some(status);
        }
        // Next round on schedule, or at once when a failing call's probe
        // saw the database go away.
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = storage.availability().changed_from(answers) => {}
        }
    }
}

/// The status of every known health service. Cheap to clone; every clone
/// sets and serves the same statuses.
#[derive(Clone, Debug)]
pub(super) struct HealthStatuses(Arc<watch::Sender<HashMap<String, ServingStatus>>>);

impl HealthStatuses {
    pub(super) fn new() -> Self {
        Self(Arc::new(watch::Sender::new(HashMap::new())))
    }

    /// Sets `service`'s status; watchers hear of a change.
    pub(super) fn set_service_status(&self, service: &str, status: ServingStatus) {
        self.0.send_if_modified(|statuses| {
            statuses.insert(service.to_owned(), status) != Some(status)
        });
    }

    fn status(&self, service: &str) -> Option<ServingStatus> {
        self.0.borrow().get(service).copied()
    }

    pub(super) fn server(&self) -> HealthServer<Self> {
        HealthServer::new(self.clone())
    }
}

fn answer(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse {
        status: status as i32,
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Health for HealthStatuses {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = &request.get_ref().service;
        match self.status(service) {
            Some(status) => Ok(Response::new(answer(status))),
            None => Err(Status::not_found(format!(
                "no health service {service:?} here"
            ))),
        }
    }

    type WatchStream = WatchStream;

    /// The current status at once (SERVICE_UNKNOWN for a service not
    /// known), then each change, until the caller leaves or the server
    /// stops.
    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let service = request.into_inner().service;
        let statuses = self.0.subscribe();
        let stream = futures_util::stream::unfold(
            (statuses, None::<ServingStatus>),
            move |(mut statuses, sent)| {
                let service = service.clone();
                async move {
                    loop {
                        let now = statuses
                            .borrow_and_update()
                            .get(&service)
                            .copied()
                            .unwrap_or(ServingStatus::ServiceUnknown);
                        if sent != Some(now) {
                            return Some((Ok(answer(now)), (statuses, Some(now))));
                        }
                        statuses.changed().await.ok()?;
                    }
                }
            },
        );
        Ok(Response::new(Box::pin(stream)))
    }
}
