//! One span and one set of measurements per HTTP request of the JSON/HTTP
//! mapping, as axum middleware on its routes. Names and attributes follow
//! the OpenTelemetry semantic conventions v1.40.0 for HTTP servers: the
//! span is named `METHOD /route` and is the parent of the gRPC call the
//! mapping makes in-process (so such a request is measured both as an HTTP
//! request and as an RPC). Besides the route it carries
//! `user_agent.original` and `server.address`/`server.port` (from the
//! `Host` header: the name the client used). `/metrics` scrapes are
//! measured but not traced unless `TRACE_PROBES` is on.

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

/// Routes that scrapers and probes call every few seconds: traced only
/// when asked.
const PROBE_ROUTES: &[&str] = &["/metrics"];

/// What the middleware needs: the metrics, and whether probes are traced.
#[derive(Clone)]
pub struct HttpTracing {
    pub metrics: Metrics,
    pub trace_probes: bool,
}

/// Traces and measures one request (use with `Router::route_layer`, which
/// knows the matched route).
pub async fn traced(
    State(HttpTracing {
        metrics,
        trace_probes,
    }): State<HttpTracing>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "_OTHER".to_owned(), |path| path.as_str().to_owned());
    let span = if PROBE_ROUTES.contains(&route.as_str()) && !trace_probes {
        tracing::Span::none()
    } else {
        let (host, port) = server_of(&request);
        tracing::info_span!(
            "http.request",
            otel.name = %format_args!("{method} {route}"),
            otel.kind = "server",
            http.request.method = %method,
            http.route = %route,
            url.path = %request.uri().path(),
            url.scheme = "http",
            user_agent.original = request
                .headers()
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok()),
            server.address = host,
            server.port = port,
        )
    };
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
    if span.is_none() {
        return response;
    }
    span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.set_attribute("error.type", status.as_u16().to_string());
        span.set_status(SpanStatus::error(status.to_string()));
    }
    response
}

/// `server.address` and `server.port`: the host and port the client named
/// (the request target's authority in HTTP/2, else `Host`); the port only
/// when written.
fn server_of(request: &Request) -> (Option<String>, Option<i64>) {
    let authority = request.uri().authority().cloned().or_else(|| {
        request
            .headers()
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .and_then(|host| host.parse::<http::uri::Authority>().ok())
    });
    match authority {
        Some(authority) => (
            Some(authority.host().trim_matches(['[', ']']).to_owned()),
            authority.port_u16().map(i64::from),
        ),
        None => (None, None),
    }
}
