//! The service's metrics, one set per application: OpenTelemetry
//! instruments read on demand for `/metrics` (Prometheus text) and, when an
//! OTLP endpoint is set, pushed there every `OTEL_METRIC_EXPORT_INTERVAL`.
//!
//! Names and attributes follow the OpenTelemetry semantic conventions
//! v1.40.0:
//! - `rpc.server.call.duration` (s), by `rpc.system.name`, `rpc.method`,
//!   `rpc.response.status_code` (and `error.type` for server errors): its
//!   count is the call count.
//! - `http.server.request.duration` (s) and `http.server.active_requests`
//!   for the JSON/HTTP mapping, by `http.request.method`, `url.scheme`,
//!   `http.route`, `http.response.status_code`. An HTTP request is also
//!   the RPC it maps to, counted by `rpc.server.call.duration` too.
//! - `db.client.connection.count` by `db.client.connection.state` (idle,
//!   used) and `db.client.connection.max`: the database pool.
//! - `process.*` (process.rs).
//!
//! The service's own, which no convention covers:
//! - `workspace_service.rpc.active_calls`, calls in flight, by method.
//! - `workspace_service.connections.open` (by `listener`: grpc, http),
//!   `.refused` (over MAX_CONNECTIONS) and `.timed_out` (idle or slow
//!   headers); `workspace_service.request_bodies.refused` by `reason`
//!   (`budget`: the memory budget was used up; `timeout`: the body stopped
//!   arriving). These counters start at 0 for every listener and reason,
//!   so that `rate()` in alerts and dashboards has a series before the
//!   first refusal.
//! - `workspace_service.database.available`: 1 while the health monitor
//!   finds the database answering, 0 while it does not (what readiness
//!   follows).

use std::{
    sync::{Arc, Weak},
    time::Duration,
};

use anyhow::Context as _;
use futures_util::future::BoxFuture;
use opentelemetry::{
    KeyValue,
    metrics::{Counter, Histogram, MeterProvider as _, UpDownCounter},
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{
    error::OTelSdkResult,
    metrics::{
        InstrumentKind, ManualReader, Pipeline, SdkMeterProvider, Temporality,
        data::ResourceMetrics, reader::MetricReader,
    },
};

use super::{SERVICE_NAME, prometheus};

/// Bucket bounds for durations in seconds (the semantic conventions'
/// advice): 5 ms to 10 s.
const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// The instruments and the readers behind them. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    provider: SdkMeterProvider,
    scrape: Arc<ManualReader>,
    pub(super) rpc_duration: Histogram<f64>,
    pub(super) rpc_active: UpDownCounter<i64>,
    pub(super) http_duration: Histogram<f64>,
    pub(super) http_active: UpDownCounter<i64>,
    connections_open: UpDownCounter<i64>,
    connections_refused: Counter<u64>,
    connections_timed_out: Counter<u64>,
    bodies_refused: Counter<u64>,
    /// What to bring up to date before `/metrics` is read.
    before_scrape: std::sync::Mutex<Vec<Refresh>>,
}

/// Brings a reading up to date (a database query, say) before a scrape.
pub type Refresh = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// The database pool as the metrics report it.
#[derive(Debug, Clone, Copy)]
pub struct PoolReading {
    pub idle: u32,
    pub used: u32,
    pub max: u32,
    /// Whether the database answers the health monitor.
    pub available: bool,
}

impl Metrics {
    /// The instruments, read by `/metrics`, and pushed over OTLP/gRPC to
    /// `otlp_endpoint` when there is one.
    pub fn new(otlp_endpoint: Option<&str>) -> anyhow::Result<Self> {
        let scrape = Arc::new(ManualReader::builder().build());
        let mut provider = SdkMeterProvider::builder()
            .with_resource(super::resource())
            .with_reader(SharedReader(scrape.clone()));
        if let Some(endpoint) = otlp_endpoint {
            let exporter = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()
                .with_context(|| format!("the OTLP metric exporter for {endpoint}"))?;
            provider = provider.with_periodic_exporter(exporter);
        }
        let provider = provider.build();
        let meter = provider.meter(SERVICE_NAME);
        super::process::register(&meter);
        let inner = Inner {
            rpc_duration: meter
                .f64_histogram("rpc.server.call.duration")
                .with_unit("s")
                .with_description("How long calls took, by method and gRPC status code.")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            rpc_active: meter
                .i64_up_down_counter("workspace_service.rpc.active_calls")
                .with_unit("{call}")
                .with_description("Calls in flight.")
                .build(),
            http_duration: meter
                .f64_histogram("http.server.request.duration")
                .with_unit("s")
                .with_description("How long HTTP requests took, by route and status.")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            http_active: meter
                .i64_up_down_counter("http.server.active_requests")
                .with_unit("{request}")
                .with_description("HTTP requests in flight.")
                .build(),
            connections_open: meter
                .i64_up_down_counter("workspace_service.connections.open")
                .with_unit("{connection}")
                .with_description("Client connections open, by listener.")
                .build(),
            connections_refused: meter
                .u64_counter("workspace_service.connections.refused")
                .with_unit("{connection}")
                .with_description("Connections closed at once: MAX_CONNECTIONS were open.")
                .build(),
            connections_timed_out: meter
                .u64_counter("workspace_service.connections.timed_out")
                .with_unit("{connection}")
                .with_description("Connections closed for idling or for headers too slow.")
                .build(),
            bodies_refused: meter
                .u64_counter("workspace_service.request_bodies.refused")
                .with_unit("{request}")
                .with_description(
                    "Request bodies refused: the memory budget was used up, or the body stopped arriving.",
                )
                .build(),
            provider,
            scrape,
            before_scrape: std::sync::Mutex::new(Vec::new()),
        };
        // Every series a refusal can make, at 0: a counter that appears
        // only with its first increment leaves `rate()` empty until then.
        for listener in ["grpc", "http"] {
            let attributes = [KeyValue::new("listener", listener)];
            inner.connections_refused.add(0, &attributes);
            inner.connections_timed_out.add(0, &attributes);
        }
        for reason in ["budget", "timeout"] {
            inner
                .bodies_refused
                .add(0, &[KeyValue::new("reason", reason)]);
        }
        let inner = Arc::new(inner);
        Ok(Self { inner })
    }

    /// A connection opened (`+1`) or closed (`-1`) on `listener`.
    pub fn connection_open(&self, listener: &'static str, delta: i64) {
        self.inner
            .connections_open
            .add(delta, &[KeyValue::new("listener", listener)]);
    }

    pub fn connection_refused(&self, listener: &'static str) {
        self.inner
            .connections_refused
            .add(1, &[KeyValue::new("listener", listener)]);
    }

    pub fn connection_timed_out(&self, listener: &'static str) {
        self.inner
            .connections_timed_out
            .add(1, &[KeyValue::new("listener", listener)]);
    }

    /// A request body refused: `reason` is `budget` or `timeout`.
    pub fn body_refused(&self, reason: &'static str) {
        self.inner
            .bodies_refused
            .add(1, &[KeyValue::new("reason", reason)]);
    }

    /// The meter other parts of the service register their instruments on.
    pub fn meter(&self) -> opentelemetry::metrics::Meter {
        self.inner.provider.meter(SERVICE_NAME)
    }

    /// Reports the database pool's use with every collection, as `read`
    /// tells it (the caller's storage: telemetry knows no database).
    pub fn observe_pool(&self, read: impl Fn() -> PoolReading + Send + Sync + 'static) {
        let meter = self.inner.provider.meter(SERVICE_NAME);
        let pool = || KeyValue::new("db.client.connection.pool.name", SERVICE_NAME.to_owned());
        let read = std::sync::Arc::new(read);
        let for_count = read.clone();
        let _ = meter
            .i64_observable_up_down_counter("db.client.connection.count")
            .with_unit("{connection}")
            .with_description("Open database connections, idle or in use.")
            .with_callback(move |observer| {
                let stats = for_count();
                for (state, value) in [("idle", stats.idle), ("used", stats.used)] {
                    observer.observe(
                        i64::from(value),
                        &[pool(), KeyValue::new("db.client.connection.state", state)],
                    );
                }
            })
            .build();
        let for_max = read.clone();
        let _ = meter
            .i64_observable_up_down_counter("db.client.connection.max")
            .with_unit("{connection}")
            .with_description("The most database connections the pool opens.")
            .with_callback(move |observer| {
                observer.observe(i64::from(for_max().max), &[pool()]);
            })
            .build();
        let _ = meter
            .i64_observable_gauge("workspace_service.database.available")
            .with_description(
                "1 while the database answers the health monitor, 0 while it does not (readiness follows it).",
            )
            .with_callback(move |observer| {
                observer.observe(i64::from(read().available), &[]);
            })
            .build();
    }

    /// Runs `refresh` before every `/metrics` read: a figure that costs a
    /// query is then as true as the scrape, and costs nothing between
    /// scrapes.
    pub fn refresh_before_scrape(&self, refresh: Refresh) {
        self.inner
            .before_scrape
            .lock()
            .expect("not poisoned")
            .push(refresh);
    }

    /// `prometheus_text`, after the refreshes `refresh_before_scrape`
    /// registered.
    pub async fn scraped_prometheus_text(&self) -> String {
        let refreshes = self
            .inner
            .before_scrape
            .lock()
            .expect("not poisoned")
            .clone();
        for refresh in refreshes {
            refresh().await;
        }
        self.prometheus_text()
    }

    /// Everything, in the Prometheus text exposition format.
    pub fn prometheus_text(&self) -> String {
        let mut collected = ResourceMetrics::default();
        match self.inner.scrape.collect(&mut collected) {
            Ok(()) => prometheus::encode(&collected),
            Err(err) => format!("# collecting metrics failed: {err}\n"),
        }
    }

    /// Pushes what is left over OTLP and stops the readers.
    pub fn shutdown(&self) {
        if let Err(err) = self
            .inner
            .provider
            .shutdown_with_timeout(Duration::from_secs(5))
        {
            tracing::debug!(%err, "stopping the metric readers");
        }
    }
}

/// The scrape reader, registered with the provider and still ours to read.
#[derive(Debug)]
struct SharedReader(Arc<ManualReader>);

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline);
    }

    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}
