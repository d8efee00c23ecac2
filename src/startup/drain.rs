//! Shutting down: readiness first, a drain delay while load balancers stop
//! sending, then one grace period that both listeners share.

use std::future::Future;

use tokio::{sync::watch, task::AbortHandle, time::Instant};
use tonic_health::pb::health_check_response::ServingStatus;

use super::health::{HealthStatuses, READINESS_SERVICES};
use crate::config::ServerSettings;

/// One shutdown for both listeners and one grace for the process.
/// Readiness turns NOT_SERVING first (the monitor stopped, so it stays so)
/// and calls are still served for the drain delay, while load balancers
/// and Kubernetes' endpoints stop sending; then both listeners stop taking
/// calls and share one deadline to finish those in flight. Liveness stays
/// SERVING meanwhile.
#[derive(Clone)]
pub(super) struct Drain {
    stopped: watch::Receiver<Option<Instant>>,
}

impl Drain {
    /// Waits for `shutdown` in the background, then runs the sequence.
    pub(super) fn start(
        shutdown: impl Future<Output = ()> + Send + 'static,
        reporter: HealthStatuses,
        stop_monitor: AbortHandle,
        settings: &ServerSettings,
    ) -> Self {
        let (drain_delay, grace) = (settings.drain_delay(), settings.shutdown_grace());
        let (stop, stopped) = watch::channel(None::<Instant>);
        tokio::spawn(async move {
            shutdown.await;
            stop_monitor.abort();
            for service in READINESS_SERVICES {
                reporter.set_service_status(service, ServingStatus::NotServing);
            }
            if !drain_delay.is_zero() {
                tracing::info!(
                    ?drain_delay,
                    "shutting down: health NOT_SERVING, still serving for the drain delay"
                );
                tokio::time::sleep(drain_delay).await;
            }
            tracing::info!(?grace, "shutting down: refusing new calls, draining");
            let _ = stop.send(Some(Instant::now() + grace));
        });
        Self { stopped }
    }

    /// When calls in flight must have finished: set once the drain delay
    /// is over; never, if the sender is gone without a shutdown.
    pub(super) fn deadline(&self) -> impl Future<Output = Instant> + use<> {
        let mut stopped = self.stopped.clone();
        async move {
            let set = stopped
                .wait_for(Option::is_some)
                .await
                .ok()
                .and_then(|d| *d);
            match set {
                Some(deadline) => deadline,
                None => std::future::pending().await,
            }
        }
    }

    /// Completes when the listeners are to stop taking calls.
    pub(super) fn signal(&self) -> impl Future<Output = ()> + use<> {
        let deadline = self.deadline();
        async move {
            deadline.await;
        }
    }
}

/// Runs `server` until it ends; once shutdown has set the deadline, lets
/// it run until then, then drops what is left. `None`: cut short.
pub(super) async fn within_deadline<R>(
    deadline: impl Future<Output = Instant>,
    server: impl Future<Output = R>,
) -> Option<R> {
    tokio::pin!(server);
    let deadline = tokio::select! {
        result = &mut server => return Some(result),
        deadline = deadline => deadline,
    };
    match tokio::time::timeout_at(deadline, server).await {
        Ok(result) => Some(result),
        Err(_) => {
            tracing::warn!("calls still in flight at the end of the grace period; dropping them");
            None
        }
    }
}
