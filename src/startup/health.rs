//! The health service's readiness follows the database; liveness only
//! says the process is up.

use std::time::Duration;

use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    grpc::WorkspaceApi, proto::workspace_service_server::WorkspaceServiceServer, storage::Storage,
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
pub(super) async fn watch_database(storage: Storage, reporter: HealthReporter, every: Duration) {
    // The process itself answers: what a liveness probe asks. It does not
    // follow the database, so an outage does not restart every replica.
    reporter
        .set_service_status(LIVENESS_SERVICE, ServingStatus::Serving)
        .await;
    let mut last = None;
    loop {
        let answers = storage.probe().await;
        let status = if answers {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        if last != Some(status) {
            if answers {
                tracing::info!("database answers; health SERVING");
            } else {
                tracing::warn!("database does not answer; health NOT_SERVING");
            }
            for service in READINESS_SERVICES {
                reporter.set_service_status(service, status).await;
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
