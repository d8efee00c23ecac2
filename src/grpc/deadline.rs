//! A call's deadline: read once from `grpc-timeout` as the call arrives,
//! and kept.

use std::{future::Future, time::Duration};

use tonic::Status;

use crate::storage::Writes;

use super::status;

/// How much earlier than the caller's `grpc-timeout` a call is cut.
pub(super) const DEADLINE_MARGIN: Duration = Duration::from_millis(5);

/// When a call must have answered: set as it arrives, before its
/// credentials are checked, so that authentication and the call share the
/// caller's `grpc-timeout`.
#[derive(Clone, Copy, Debug)]
pub struct CallDeadline(pub tokio::time::Instant);

impl CallDeadline {
    /// The deadline of a call arriving now with `grpc_timeout` (the
    /// header's value): that long, a hair less, so that the answer is ours
    /// (DEADLINE_EXCEEDED with its reason) and not the client's own
    /// timer's (CANCELLED); at most `max`. `None` when the value is not a
    /// `grpc-timeout`. The one place the header is read: both transports
    /// call it once as a call arrives.
    pub fn of(grpc_timeout: Option<&http::HeaderValue>, max: Duration) -> Option<Self> {
        let timeout = match grpc_timeout {
            None => max,
            Some(value) => {
                let asked = value.to_str().ok().and_then(parse_grpc_timeout)?;
                asked
                    .saturating_sub(DEADLINE_MARGIN.min(asked / 10))
                    .min(max)
            }
        };
        Some(Self(tokio::time::Instant::now() + timeout))
    }

    /// How long is left.
    pub fn left(&self) -> Duration {
        self.0
            .saturating_duration_since(tokio::time::Instant::now())
    }
}

/// Runs `call` until `deadline` passes, then answers for it (the call is
/// dropped there: an open transaction rolls back): DEADLINE_EXCEEDED when
/// nothing can have been written, UNAVAILABLE with reason OUTCOME_UNKNOWN
/// when a commit was on its way (see `storage::deadline`). Timers tick in
/// milliseconds, so a shorter deadline has passed before any work starts.
pub(super) async fn run_within<T>(
    deadline: Duration,
    call: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    if deadline < Duration::from_millis(1) {
        return Err(status::deadline_exceeded());
    }
    let at = tokio::time::Instant::now() + deadline;
    let writes = Writes::default();
    let answered = tokio::time::timeout_at(
        at,
        crate::storage::deadline::within(at, writes.clone(), call),
    )
    .await;
    match answered {
        Ok(Ok(answer)) => Ok(answer),
        // A failure after a commit was sent (the connection lost under
        // it, a read after it cut short) does not know what was written.
        Ok(Err(_)) | Err(_) if writes.may_have_written() => Err(status::outcome_unknown()),
        Ok(Err(status)) => Err(status),
        Err(_) => Err(status::deadline_exceeded()),
    }
}

/// A `grpc-timeout` value (gRPC over HTTP/2: up to 8 digits and a unit:
/// H, M, S, m, u or n).
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let value = value.trim();
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}
