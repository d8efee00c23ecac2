//! The relay's instruments: events published, parked, expired; the
//! backlog, measured before every scrape (and every `BACKLOG_EVERY` for
//! OTLP's pushes), so that `/metrics` tells what waits at the moment it is
//! read, at a cost that follows the organizations that wait
//! (`Storage::outbox_backlog`).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::Utc;
use opentelemetry::metrics::Counter;

use crate::{
    storage::{Backlog, Storage},
    telemetry::Metrics,
};

/// The longest a scrape waits for the backlog; past it, the last reading
/// is shown.
const MEASURE_WITHIN: Duration = Duration::from_secs(1);

/// The relay's instruments.
pub(super) struct RelayMetrics {
    pub(super) published: Counter<u64>,
    pub(super) parked: Counter<u64>,
    pub(super) expired: Counter<u64>,
    backlog: Measured,
}

/// The last backlog read, and the storage to read it again from; one
/// reading at a time (scrapes at once share it).
#[derive(Clone)]
struct Measured {
    storage: Storage,
    last: Arc<Mutex<Backlog>>,
    reading: Arc<tokio::sync::Mutex<()>>,
}

impl Measured {
    async fn measure(&self) {
        let Ok(_reading) = self.reading.try_lock() else {
            // Another is reading it now: wait for its figures.
            let _ = self.reading.lock().await;
            return;
        };
        match tokio::time::timeout(MEASURE_WITHIN, self.storage.outbox_backlog()).await {
            Ok(Ok(backlog)) => *self.last.lock().expect("not poisoned") = backlog,
            Ok(Err(err)) => tracing::debug!(%err, "measuring the outbox's backlog"),
            Err(_) => tracing::debug!("measuring the outbox's backlog took over a second"),
        }
    }
}

impl RelayMetrics {
    pub(super) fn new(metrics: &Metrics, storage: &Storage) -> Self {
        let meter = metrics.meter();
        let backlog = Measured {
            storage: storage.clone(),
            last: Arc::new(Mutex::new(Backlog::default())),
            reading: Arc::new(tokio::sync::Mutex::new(())),
        };
        let before_scrape = backlog.clone();
        metrics.refresh_before_scrape(Arc::new(move || {
            let backlog = before_scrape.clone();
            Box::pin(async move { backlog.measure().await })
        }));
        let pending = backlog.last.clone();
        let _ = meter
            .i64_observable_up_down_counter("workspace_service.events.pending")
            .with_unit("{event}")
            .with_description("Events written but not yet published (parked ones included).")
            .with_callback(move |observer| {
                let pending = pending.lock().expect("not poisoned").pending;
                observer.observe(i64::try_from(pending).unwrap_or(i64::MAX), &[]);
            })
            .build();
        let lag = backlog.last.clone();
        let _ = meter
            .f64_observable_gauge("workspace_service.events.lag")
            .with_unit("s")
            .with_description("Age of the oldest event not yet published; 0 when none waits.")
            .with_callback(move |observer| {
                let oldest = lag.lock().expect("not poisoned").oldest;
                let age = oldest.map_or(0.0, |at| {
                    (Utc::now() - at).num_milliseconds().max(0) as f64 / 1e3
                });
                observer.observe(age, &[]);
            })
            .build();
        let published = meter
            .u64_counter("workspace_service.events.published")
            .with_unit("{event}")
            .with_description("Events JetStream acknowledged, by type.")
            .build();
        let parked = meter
            .u64_counter("workspace_service.events.parked")
            .with_unit("{event}")
            .with_description(
                "Events parked because NATS refuses them or they do not decode, by type.",
            )
            .build();
        let expired = meter
            .u64_counter("workspace_service.events.expired")
            .with_unit("{event}")
            .with_description(
                "Events deleted unpublished past EVENTS_RETENTION_HOURS (without NATS_URL).",
            )
            .build();
        expired.add(0, &[]);
        Self {
            published,
            parked,
            expired,
            backlog,
        }
    }

    /// Reads the backlog again.
    pub(super) async fn measure(&self) {
        self.backlog.measure().await;
    }
}
