//! The outbox relay: publishes the events the changes wrote (storage's
//! `events` table) to NATS JetStream, each organization's in commit order,
//! and marks them sent once JetStream acknowledged them.
//!
//! - Exactly once into the stream: the JetStream message id
//!   (`Nats-Msg-Id`) is the event's id, so a relay that publishes again
//!   after a crash between the acknowledgement and its commit is
//!   deduplicated by the stream, within its duplicate window
//!   (`EVENTS_DUPLICATE_WINDOW`, an hour by default).
//! - A stream the relay creates is bounded: `EVENTS_MAX_AGE` (7 days) and
//!   `EVENTS_MAX_BYTES` (1 GiB), oldest events dropped first, with
//!   `EVENTS_REPLICAS` copies. A stream created in advance is used as it
//!   is; a duplicate window shorter than `EVENTS_DUPLICATE_WINDOW`, or no
//!   bound at all, is reported at start.
//! - Replicas take turns (a PostgreSQL advisory lock per round), so two
//!   relays never publish the same events at once.
//! - The whole batch in flight, an organization's events in order: a
//!   round sends every event of its batch in order on the one connection
//!   (NATS and JetStream keep that order), then awaits the
//!   acknowledgements together and marks what was stored sent in one
//!   statement; an organization's events count as sent up to its first
//!   one not stored (`publish.rs`). A round whose batch was full is
//!   followed at once by the next. A failure that may pass (NATS away, a
//!   timeout) ends the round; the next starts again from each
//!   organization's first unsent event, after a pause that doubles with
//!   each failed round up to `MAX_PAUSE`.
//! - No tenant can block the others: an event NATS refuses for good (over
//!   its `max_payload`, the stream's `max_msg_size`), or whose row does not
//!   make a message (a payload that is not a `WorkspaceEvent`, an unknown
//!   type), is parked with the reason, a log line and a metric
//!   (`.parked`); its organization's later
//!   events wait until an operator retries or drops it
//!   (`workspace-service admin events`), and the round goes on with the
//!   other organizations. Each round reads a bounded batch spread across
//!   the organizations that wait (`Storage::pending_events`), so one
//!   organization's backlog delays another's events by one round at most.
//!   Events are bounded in size when written (`storage::events`).
//! - NATS being away changes nothing for callers: the changes commit with
//!   their events, which wait in the outbox until NATS is back. The
//!   relay's lag and backlog are metrics (`workspace_service.events.lag`,
//!   `.pending`, measured before every scrape at a cost that follows the
//!   organizations that wait; `.published`).
//! - The outbox is bounded: sent events are deleted after
//!   `EVENTS_RETENTION_HOURS`, and without `NATS_URL` unsent ones too
//!   (`.expired`), in batches (`purge.rs`).
//!
//! Messages carry a `workspace.v1.WorkspaceEvent` (protobuf) and
//! CloudEvents binary-mode headers, or with `EVENTS_FORMAT=cloudevents-json`
//! a structured JSON CloudEvent (see `encode.rs`). `publish.rs` publishes a
//! round and parks what NATS refuses; `stream.rs` is the stream's
//! configuration.

mod encode;
mod metrics;
mod publish;
mod purge;
mod stream;

use std::time::Duration;

use anyhow::Context as _;

use crate::{config::EventSettings, storage::Storage, telemetry::Metrics};
use metrics::RelayMetrics;
use publish::{ACK_TIMEOUT, Publisher};

/// The longest pause between rounds that failed (NATS away).
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// How often the backlog (pending events, the oldest one's age) is
/// measured besides before every scrape of `/metrics`: what OTLP pushes.
const BACKLOG_EVERY: Duration = Duration::from_secs(5);

/// The event settings, checked at start (see
/// `EventSettings::check_stream_limits`).
pub fn check_settings(settings: &EventSettings) -> anyhow::Result<()> {
    settings.check_stream_limits(ACK_TIMEOUT)
}

/// Runs the relay until the task is dropped: publishing when `NATS_URL` is
/// set, measuring the backlog and purging old events either way.
pub async fn relay(storage: Storage, settings: EventSettings, metrics: Metrics) {
    let instruments = RelayMetrics::new(&metrics, &storage);
    let mut publisher = None;
    if let Some(url) = &settings.nats_url {
        match connect(url).await {
            Ok(client) => publisher = Some(Publisher::new(client, &settings)),
            Err(err) => tracing::error!(
                error = format!("{err:#}"),
                "NATS: events stay in the outbox"
            ),
        }
    }
    let retention = purge::Retention::of(&settings);
    tokio::join!(
        publish(&storage, &settings, publisher, &instruments),
        measure(&instruments),
        purge::purge(&storage, retention, &instruments),
    );
}

/// Publishes a round every relay interval, and at once after a round whose
/// batch was full, while NATS takes the events.
async fn publish(
    storage: &Storage,
    settings: &EventSettings,
    publisher: Option<Publisher>,
    instruments: &RelayMetrics,
) {
    let Some(mut publisher) = publisher else {
        return;
    };
    let every = Duration::from_millis(settings.relay_interval_ms.max(10));
    let mut relay = tokio::time::interval(every);
    relay.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pause = Pause::new(every);
    loop {
        relay.tick().await;
        if !pause.over() {
            continue;
        }
        let round = publisher.round(storage, instruments).await;
        purge::keep_statistics(storage).await;
        match round {
            Ok(round) => {
                pause.after(round.failed);
                if round.full && !round.failed {
                    relay.reset_immediately();
                }
            }
            Err(err) => {
                tracing::warn!(error = format!("{err:#}"), "relaying events");
                pause.after(true);
            }
        }
    }
}

/// Measures the backlog on its own schedule, for OTLP's pushes (a scrape
/// of `/metrics` measures it anyway).
async fn measure(instruments: &RelayMetrics) {
    let mut measure = tokio::time::interval(BACKLOG_EVERY);
    measure.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        measure.tick().await;
        instruments.measure().await;
    }
}

/// A client that keeps reconnecting in the background; the first
/// connection may come later (NATS down at start).
async fn connect(url: &str) -> anyhow::Result<async_nats::Client> {
    async_nats::ConnectOptions::new()
        .name(env!("CARGO_PKG_NAME"))
        .retry_on_initial_connect()
        .connect(url)
        .await
        .with_context(|| format!("connecting to NATS at {url}"))
}

/// When the next round may run: right away after a round that did not
/// fail, else after a pause that doubles with each failed round, from the
/// relay's interval up to `MAX_PAUSE` (NATS away costs no busy loop).
struct Pause {
    every: Duration,
    current: Duration,
    until: tokio::time::Instant,
}

impl Pause {
    fn new(every: Duration) -> Self {
        Self {
            every,
            current: Duration::ZERO,
            until: tokio::time::Instant::now(),
        }
    }

    fn over(&self) -> bool {
        tokio::time::Instant::now() >= self.until
    }

    fn after(&mut self, failed: bool) {
        self.current = if failed {
            (self.current * 2).clamp(self.every, MAX_PAUSE)
        } else {
            Duration::ZERO
        };
        self.until = tokio::time::Instant::now() + self.current;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_rounds_pause_longer_up_to_a_bound_and_a_good_round_ends_the_pause() {
        let every = Duration::from_millis(200);
        let mut pause = Pause::new(every);
        assert!(pause.over());
        let mut pauses = Vec::new();
        for _ in 0..7 {
            pause.after(true);
            pauses.push(pause.current.as_millis());
        }
        assert_eq!(pauses, [200, 400, 800, 1_600, 3_200, 5_000, 5_000]);
        assert!(!pause.over());
        pause.after(false);
        assert_eq!(pause.current, Duration::ZERO);
        assert!(pause.over());
    }
}
