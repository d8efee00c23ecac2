//! The relay's instruments: events published, failed, parked; the backlog.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use opentelemetry::metrics::Counter;

use crate::telemetry::Metrics;

/// What the relay last saw of the outbox, for the metrics.
#[derive(Debug, Default)]
pub(super) struct Backlog {
    pub(super) pending: u64,
    pub(super) oldest: Option<DateTime<Utc>>,
}

/// The relay's instruments.
pub(super) struct RelayMetrics {
    pub(super) published: Counter<u64>,
    pub(super) parked: Counter<u64>,
    pub(super) backlog: Arc<Mutex<Backlog>>,
}

impl RelayMetrics {
    pub(super) fn new(metrics: &Metrics) -> Self {
        let meter = metrics.meter();
        let backlog = Arc::new(Mutex::new(Backlog::default()));
        let pending = backlog.clone();
        let _ = meter
            .i64_observable_up_down_counter("workspace_service.events.pending")
            .with_unit("{event}")
            .with_description("Events written but not yet published.")
            .with_callback(move |observer| {
                let pending = pending.lock().expect("not poisoned").pending;
                observer.observe(i64::try_from(pending).unwrap_or(i64::MAX), &[]);
            })
            .build();
        let lag = backlog.clone();
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
            .with_description("Events parked because NATS refuses them, by type.")
            .build();
        Self {
            published,
            parked,
            backlog,
        }
    }
}
