//! The tasks that run beside the listeners, from start to shutdown: the
//! database's health monitor, the outbox relay, the purge of idempotency
//! records past their window.

use tokio::task::{AbortHandle, JoinHandle};
use tonic_health::pb::health_check_response::ServingStatus;

use super::{
    health::{HealthStatuses, READINESS_SERVICES, watch_database},
    purge::purge_idempotency_records,
};
use crate::{config::Settings, storage::Storage, telemetry::Metrics};

/// The running tasks; `stop` ends them.
pub(super) struct Background {
    monitor: JoinHandle<()>,
    relay: JoinHandle<()>,
    purge: JoinHandle<()>,
}

impl Background {
    /// The database's health monitor, which readiness follows (not ready
    /// until the database has answered once: the monitor's first check
    /// turns it SERVING); the outbox relay, which sends the events of
    /// committed changes to NATS JetStream; the idempotency purge.
    pub(super) fn start(
        storage: &Storage,
        settings: &Settings,
        metrics: &Metrics,
        reporter: &HealthStatuses,
    ) -> Self {
        for service in READINESS_SERVICES {
            reporter.set_service_status(service, ServingStatus::NotServing);
        }
        let monitor = tokio::spawn(watch_database(
            storage.clone(),
            reporter.clone(),
            settings.database.health_check_interval(),
        ));
        let relay = tokio::spawn(crate::events::relay(
            storage.clone(),
            settings.events.clone(),
            metrics.clone(),
        ));
        let purge = tokio::spawn(purge_idempotency_records(
            storage.clone(),
            settings.idempotency.clone(),
            metrics.clone(),
        ));
        Self {
            monitor,
            relay,
            purge,
        }
    }

    /// Stops the health monitor alone (shutdown's first step: readiness
    /// then stays NOT_SERVING).
    pub(super) fn monitor(&self) -> AbortHandle {
        self.monitor.abort_handle()
    }

    /// Ends every task, once the listeners have drained. What the relay has
    /// not published waits in the outbox for the next start; the purge's
    /// batch in flight commits whole or not at all.
    pub(super) fn stop(self) {
        self.monitor.abort();
        self.relay.abort();
        self.purge.abort();
    }
}
