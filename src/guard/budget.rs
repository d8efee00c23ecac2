//! One memory budget for the request bodies being read, across all
//! connections of both listeners: a body takes its bytes from the budget
//! as they arrive and gives them back when it is dropped (read and decoded,
//! or abandoned). When the budget is used up the body fails at once with
//! RESOURCE_EXHAUSTED (`MEMORY_BUDGET_EXHAUSTED`, HTTP 429, a RetryInfo):
//! nothing waits in memory. A body must also arrive in full within the
//! body timeout from the request's start (DEADLINE_EXCEEDED,
//! `BODY_TIMEOUT`, HTTP 408): a client that stops sending does not hold
//! its buffer.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;
use tonic::Status;

use crate::{
    domain::Reason,
    grpc::{overloaded_with, status_of_reason},
    telemetry::Metrics,
};

/// The calls whose request is a stream a client may keep open between
/// messages (grpcurl and grpcui keep reflection's open for a session).
const STREAMING_REQUESTS: &str = "/grpc.reflection.";

/// The bytes of request bodies held at once, across connections.
#[derive(Clone, Debug)]
pub struct BodyBudget {
    limit: usize,
    used: Arc<AtomicUsize>,
}

impl BodyBudget {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            used: Arc::default(),
        }
    }

    /// Bytes of bodies held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    fn try_take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// Wraps every request's body in a [`GuardedBody`].
#[derive(Clone)]
pub struct BodyGuardLayer {
    budget: BodyBudget,
    timeout: Duration,
    metrics: Metrics,
}

impl BodyGuardLayer {
    pub fn new(budget: BodyBudget, timeout: Duration, metrics: Metrics) -> Self {
        Self {
            budget,
            timeout,
            metrics,
        }
    }

    /// `body`, held to the budget and the timeout.
    pub fn guard<B>(&self, body: B) -> GuardedBody<B> {
        GuardedBody {
            inner: body,
            budget: self.budget.clone(),
            held: 0,
            deadline: Some(Box::pin(tokio::time::sleep(self.timeout))),
            metrics: self.metrics.clone(),
            failed: false,
        }
    }

    /// `body` of a call whose request is a stream that may stay open
    /// (server reflection): held to the budget, not to the timeout.
    fn guard_stream<B>(&self, body: B) -> GuardedBody<B> {
        let mut guarded = self.guard(body);
        guarded.deadline = None;
        guarded
    }
}

impl<S> tower::Layer<S> for BodyGuardLayer {
    type Service = BodyGuard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BodyGuard {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct BodyGuard<S> {
    inner: S,
    layer: BodyGuardLayer,
}

impl<S, B> tower::Service<http::Request<B>> for BodyGuard<S>
where
    S: tower::Service<http::Request<tonic::body::Body>>,
    B: Body<Data = bytes::Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let (parts, body) = request.into_parts();
        let body = if parts.uri.path().starts_with(STREAMING_REQUESTS) {
            tonic::body::Body::new(self.layer.guard_stream(body))
        } else {
            tonic::body::Body::new(self.layer.guard(body))
        };
        self.inner.call(http::Request::from_parts(parts, body))
    }
}

/// A request body that takes its bytes from the budget as they arrive.
pub struct GuardedBody<B> {
    inner: B,
    budget: BodyBudget,
    held: usize,
    deadline: Option<Pin<Box<Sleep>>>,
    metrics: Metrics,
    failed: bool,
}

impl<B> Drop for GuardedBody<B> {
    fn drop(&mut self) {
        self.budget.give_back(self.held);
    }
}

impl<B> Body for GuardedBody<B>
where
    B: Body<Data = bytes::Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if self.failed {
            return Poll::Ready(None);
        }
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                let expired = self
                    .deadline
                    .as_mut()
                    .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
                if expired {
                    self.failed = true;
                    self.metrics.body_refused("timeout");
                    return Poll::Ready(Some(Err(status_of_reason(
                        Reason::BodyTimeout,
                        "The request body did not arrive in time.",
                    ))));
                }
                return Poll::Pending;
            }
        };
        match frame {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let bytes = data.remaining();
                    if !self.budget.try_take(bytes) {
                        self.failed = true;
                        self.metrics.body_refused("budget");
                        return Poll::Ready(Some(Err(overloaded_with(
                            Reason::MemoryBudgetExhausted,
                            "The server holds as many request bodies as it may; retry shortly.",
                        ))));
                    }
                    self.held += bytes;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(error)) => Poll::Ready(Some(Err(Status::from_error(error.into())))),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_shared_and_given_back() {
        let budget = BodyBudget::new(100);
        assert!(budget.try_take(60));
        assert!(!budget.try_take(41));
        assert!(budget.try_take(40));
        budget.give_back(100);
        assert_eq!(budget.used(), 0);
    }
}
