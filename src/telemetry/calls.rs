//! One span and one set of measurements per gRPC call, as a tower layer
//! around the tonic server (and around the service the HTTP mapping calls
//! in-process).
//!
//! Names and attributes follow the OpenTelemetry semantic conventions
//! v1.40.0 for RPC: the span is named by `rpc.method`
//! (`package.Service/Method`), is a child of the caller's W3C trace
//! context, and carries `rpc.system.name` (`grpc`), `rpc.method` and, once
//! the call ends, `rpc.response.status_code` (the code's name, `OK`,
//! `NOT_FOUND`) and, for the codes the conventions count as server errors,
//! `error.type`. A call ends when its response body ends: the status of a
//! successful call is in the trailers. A body dropped before its end is a
//! cancelled call.
//! Health checks are measured but not traced unless `TRACE_PROBES` is on:
//! probes every few seconds would bury the calls that matter.

use std::{
    collections::HashSet,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use opentelemetry::{KeyValue, trace::Status as SpanStatus};
use prost_reflect::DescriptorPool;
use tonic::Code;
use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{Metrics, extract_context};

/// The health service's name: measured, traced only when asked.
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

/// What calls to unknown paths are counted as, so that a caller inventing
/// method names cannot grow the metrics without bound.
const OTHER: &str = "_OTHER";

/// The `/package.Service/Method` paths this server answers.
#[derive(Clone, Debug, Default)]
pub struct RpcMethods(Arc<HashSet<String>>);

impl RpcMethods {
    /// Every method of every service in the encoded descriptor sets.
    pub fn from_descriptor_sets(sets: &[&[u8]]) -> anyhow::Result<Self> {
        let mut paths = HashSet::new();
        for set in sets {
            let pool = DescriptorPool::decode(*set)?;
            for service in pool.services() {
                for method in service.methods() {
                    paths.insert(format!("/{}/{}", service.full_name(), method.name()));
                }
            }
        }
        Ok(Self(Arc::new(paths)))
    }

    /// `rpc.method` of a path: `package.Service/Method` when this server
    /// answers it, `_OTHER` otherwise.
    fn name(&self, path: &str) -> String {
        match path.strip_prefix('/') {
            Some(method) if self.0.contains(path) => method.to_owned(),
            _ => OTHER.to_owned(),
        }
    }
}

/// Wraps a gRPC service in `CallService`.
#[derive(Clone)]
pub struct CallLayer {
    metrics: Metrics,
    methods: RpcMethods,
    trace_probes: bool,
}

impl CallLayer {
    pub fn new(metrics: Metrics, methods: RpcMethods) -> Self {
        Self {
            metrics,
            methods,
            trace_probes: false,
        }
    }

    /// Traces health checks too (`TRACE_PROBES`).
    pub fn tracing_probes(mut self, trace_probes: bool) -> Self {
        self.trace_probes = trace_probes;
        self
    }
}

impl<S> tower::Layer<S> for CallLayer {
    type Service = CallService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallService {
            inner,
            metrics: self.metrics.clone(),
            methods: self.methods.clone(),
            trace_probes: self.trace_probes,
        }
    }
}

/// A gRPC service whose calls are traced and measured.
#[derive(Clone)]
pub struct CallService<S> {
    inner: S,
    metrics: Metrics,
    methods: RpcMethods,
    trace_probes: bool,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for CallService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let mut call = Call::start(&self.metrics, &self.methods, self.trace_probes, &request);
        // The service that was polled ready answers; a clone waits for the
        // next call (tower's idiom for services that are Clone).
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let span = call.span.clone();
        Box::pin(async move {
            match inner.call(request).instrument(span).await {
                Ok(response) => Ok(call.watch(response)),
                Err(err) => {
                    call.finish(Code::Unknown as i32);
                    Err(err)
                }
            }
        })
    }
}

/// A call in flight: its span, when it started, what it counts under.
struct Call {
    /// `package.Service/Method`, for the log line.
    name: String,
    span: Span,
    metrics: Metrics,
    started: Instant,
    attributes: [KeyValue; 2],
    finished: bool,
}

impl Call {
    fn start<B>(
        metrics: &Metrics,
        methods: &RpcMethods,
        trace_probes: bool,
        request: &http::Request<B>,
    ) -> Self {
        let name = methods.name(request.uri().path());
        let span = if name.starts_with(HEALTH_SERVICE) && !trace_probes {
            Span::none()
        } else {
            tracing::info_span!(
                "grpc.call",
                otel.name = %name,
                otel.kind = "server",
                rpc.system.name = "grpc",
                rpc.method = %name,
            )
        };
        let _ = span.set_parent(extract_context(request.headers()));
        let attributes = [
            KeyValue::new("rpc.system.name", "grpc"),
            KeyValue::new("rpc.method", name.clone()),
        ];
        metrics.inner.rpc_active.add(1, &attributes);
        Self {
            name,
            span,
            metrics: metrics.clone(),
            started: Instant::now(),
            attributes,
            finished: false,
        }
    }

    /// Finishes now when the status is in the headers (an error, or a
    /// trailers-only answer); else when the body ends.
    fn watch(
        mut self,
        response: http::Response<tonic::body::Body>,
    ) -> http::Response<tonic::body::Body> {
        if let Some(code) = grpc_status(response.headers()) {
            self.finish(code);
            return response;
        }
        let (parts, body) = response.into_parts();
        let watched = WatchedBody {
            inner: body,
            call: Some(self),
        };
        http::Response::from_parts(parts, tonic::body::Body::new(watched))
    }

    fn finish(&mut self, code: i32) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        self.metrics.inner.rpc_active.add(-1, &self.attributes);
        let code = Code::from(code);
        let code_name = code_name(code);
        let failed = is_server_error(code);
        let mut attributes = Vec::with_capacity(self.attributes.len() + 2);
        attributes.extend_from_slice(&self.attributes);
        attributes.push(KeyValue::new("rpc.response.status_code", code_name));
        if failed {
            attributes.push(KeyValue::new("error.type", code_name));
        }
        self.metrics.inner.rpc_duration.record(elapsed, &attributes);

        if self.span.is_none() {
            return;
        }
        self.span
            .set_attribute("rpc.response.status_code", code_name);
        // One line per call, in the call's span (so it carries the trace id).
        let _entered = self.span.enter();
        let duration_ms = elapsed * 1e3;
        if failed {
            self.span.set_attribute("error.type", code_name);
            self.span.set_status(SpanStatus::error(code_name));
            tracing::warn!(rpc = %self.name, code = code_name, duration_ms, "call failed");
        } else {
            tracing::info!(rpc = %self.name, code = code_name, duration_ms, "call");
        }
    }
}

/// The code's name as gRPC's status codes document spells it
/// (`rpc.response.status_code`).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

impl Drop for Call {
    /// A call whose body was dropped before its end was cancelled.
    fn drop(&mut self) {
        self.finish(Code::Cancelled as i32);
    }
}

/// The codes the semantic conventions count as the server's failures.
fn is_server_error(code: Code) -> bool {
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

fn grpc_status(headers: &http::HeaderMap) -> Option<i32> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// A response body that finishes its call when it ends.
struct WatchedBody {
    inner: tonic::body::Body,
    call: Option<Call>,
}

impl WatchedBody {
    fn finish(&mut self, code: i32) {
        if let Some(mut call) = self.call.take() {
            call.finish(code);
        }
    }
}

impl http_body::Body for WatchedBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_status) {
                    self.finish(code);
                }
            }
            Poll::Ready(Some(Err(status))) => self.finish(status.code() as i32),
            // Ended without a status: not a gRPC answer.
            Poll::Ready(None) => self.finish(Code::Unknown as i32),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
