//! One span and one set of measurements per HTTP request of the JSON/HTTP
//! mapping, as axum middleware on its routes. Names and attributes follow
//! the OpenTelemetry semantic conventions v1.40.0 for HTTP servers: the
//! span is named `METHOD /route` and is the parent of the gRPC call the
//! mapping makes in-process (so such a request is measured both as an HTTP
//! request and as an RPC).

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::Response,
};
use opentelemetry::{KeyValue, trace::Status as SpanStatus};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{Metrics, extract_context};

/// Traces and measures one request (use with `Router::route_layer`, which
/// knows the matched route).
pub async fn traced(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "_OTHER".to_owned(), |path| path.as_str().to_owned());
    let span = tracing::info_span!(
        "http.request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        url.path = %request.uri().path(),
        url.scheme = "http",
    );
    let _ = span.set_parent(extract_context(request.headers()));
    let mut attributes = vec![
        KeyValue::new("http.request.method", method),
        KeyValue::new("url.scheme", "http"),
    ];
    metrics.inner.http_active.add(1, &attributes);
    let started = Instant::now();

    let response = next.run(request).instrument(span.clone()).await;

    metrics.inner.http_active.add(-1, &attributes);
    let status = response.status();
    attributes.push(KeyValue::new("http.route", route));
    attributes.push(KeyValue::new(
        "http.response.status_code",
        i64::from(status.as_u16()),
    ));
    if status.is_server_error() {
        attributes.push(KeyValue::new("error.type", status.as_u16().to_string()));
    }
    metrics
        .inner
        .http_duration
        .record(started.elapsed().as_secs_f64(), &attributes);
    span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.set_attribute("error.type", status.as_u16().to_string());
        span.set_status(SpanStatus::error(status.to_string()));
    }
    response
}
