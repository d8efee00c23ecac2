//! Logs, traces and metrics.
//!
//! - Logs go to stderr (the admin commands' stdout carries only their
//!   answers) as JSON lines or text; `RUST_LOG` picks what is logged
//!   (default `info`). JSON lines carry the trace and span ids.
//! - Traces: one span per call (`calls.rs` for gRPC, the HTTP mapping's
//!   own), child spans for database work, the caller's W3C trace context
//!   as parent. Exported over OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT`
//!   is set; otherwise the calls' spans still get ids (for the logs) and
//!   go nowhere, and database spans are not made.
//! - Metrics (`metrics.rs`): per application, read by `/metrics` and, with
//!   an endpoint, pushed over OTLP.
//!
//! `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`,
//! `OTEL_BSP_*` and `OTEL_METRIC_EXPORT_INTERVAL` work as the OpenTelemetry
//! SDK documents them.

mod calls;
mod json;
mod metrics;
mod process;
mod prometheus;
mod requests;
mod text;

use std::{io::IsTerminal, time::Duration};

use anyhow::Context as _;
use opentelemetry::{
    Context, KeyValue,
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::{TraceContextExt, TracerProvider as _},
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing::Level;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{
    EnvFilter, Layer, filter::filter_fn, fmt, layer::SubscriberExt, util::SubscriberInitExt,
};

pub use calls::{CallLayer, CallService, RpcMethods};
pub use metrics::{Metrics, PoolReading, Refresh};
pub use prometheus::CONTENT_TYPE as PROMETHEUS_CONTENT_TYPE;
pub use requests::{HttpTracing, traced as traced_http_request};

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The service name when `OTEL_SERVICE_NAME` does not give one.
pub const SERVICE_NAME: &str = "workspace-service";

/// Where spans come from: the crate's own targets. Library internals
/// (hyper, h2, sqlx) log but are not traced.
const TRACED_TARGET: &str = "workspace_service";

/// What `init` set up; `shutdown` flushes the spans not yet exported.
#[must_use = "dropping the guard does not flush; call shutdown()"]
pub struct TelemetryGuard {
    tracer_provider: SdkTracerProvider,
}

impl TelemetryGuard {
    /// Exports the spans still buffered, within a few seconds.
    pub fn shutdown(self) {
        if let Err(err) = self
            .tracer_provider
            .shutdown_with_timeout(Duration::from_secs(5))
        {
            tracing::warn!(%err, "flushing spans at exit");
        }
    }
}

/// Sets up logging and tracing for the process, once. `otlp_endpoint`
/// (`http://collector:4317`) turns span export on.
pub fn init(format: LogFormat, otlp_endpoint: Option<&str>) -> anyhow::Result<TelemetryGuard> {
    let mut tracer_provider = SdkTracerProvider::builder().with_resource(resource());
    if let Some(endpoint) = otlp_endpoint {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .with_context(|| format!("the OTLP span exporter for {endpoint}"))?;
        tracer_provider = tracer_provider.with_batch_exporter(exporter);
    }
    let tracer_provider = tracer_provider.build();
    let tracer = tracer_provider.tracer(SERVICE_NAME);

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = match format {
        // Colours only for a terminal: escape codes in a file or a pipe
        // are noise, and writing them costs every line.
        LogFormat::Text => fmt::layer()
            .event_format(text::TextLines {
                ansi: std::io::stderr().is_terminal(),
            })
            .fmt_fields(text::NoSpanFields)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => fmt::layer()
            .event_format(json::JsonLines)
            .fmt_fields(text::NoSpanFields)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    // With nowhere to export to, only the calls' spans are made (their
    // ids go into the log lines and the events' trace context); the
    // database's debug spans would be built for nothing.
    let exported = otlp_endpoint.is_some();
    // Spans carry the semantic conventions' attributes and nothing else: no
    // busy/idle times, thread, source location, level or target.
    let traces = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_tracked_inactivity(false)
        .with_threads(false)
        .with_location(false)
        .with_level(false)
        .with_target(false)
        // Spans only: a log line is not copied into its span as an event.
        .with_filter(filter_fn(move |meta| {
            meta.is_span()
                && meta.target().starts_with(TRACED_TARGET)
                && (exported || *meta.level() <= Level::INFO)
        }));
    // A second call (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(traces)
        .try_init();
    Ok(TelemetryGuard { tracer_provider })
}

/// Who is reporting: `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`,
/// else this service's name and version.
pub fn resource() -> Resource {
    let detected = Resource::builder().build();
    let mut builder = Resource::builder();
    let named = detected
        .get(&"service.name".into())
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    if !named {
        builder = builder.with_service_name(SERVICE_NAME);
    }
    if detected.get(&"service.version".into()).is_none() {
        builder =
            builder.with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    }
    builder.build()
}

/// The W3C trace context (`traceparent`, `tracestate`) in `headers`.
pub fn extract_context(headers: &http::HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&Headers(headers))
}

/// Writes the current span's trace context into `headers`, replacing any;
/// false (and `headers` untouched) when there is none.
pub fn inject_current_context(headers: &mut http::HeaderMap) -> bool {
    let context = tracing::Span::current().context();
    if !context.span().span_context().is_valid() {
        return false;
    }
    headers.remove("traceparent");
    headers.remove("tracestate");
    TraceContextPropagator::new().inject_context(&context, &mut HeadersMut(headers));
    true
}

/// Records the organization a call is about on the call's span.
pub fn record_organization(id: impl ToString) {
    tracing::Span::current().set_attribute("organization.id", id.to_string());
}

/// Records the workspace a call is about on the call's span.
pub fn record_workspace(id: impl ToString) {
    tracing::Span::current().set_attribute("workspace.id", id.to_string());
}

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeadersMut<'a>(&'a mut http::HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}
