//! The outbox relay: publishes the events the changes wrote (storage's
//! `events` table) to NATS JetStream, each organization's in commit order,
//! and marks them sent once JetStream acknowledged them.
//!
//! - Exactly once into the stream: the JetStream message id
//!   (`Nats-Msg-Id`) is the event's id, so a relay that publishes again
//!   after a crash between the acknowledgement and its commit is
//!   deduplicated by the stream (its duplicate window is an hour).
//! - Replicas take turns (a PostgreSQL advisory lock per round), so two
//!   relays never publish the same events at once.
//! - An organization's events go out in order: a failed publish ends the
//!   round; the next starts again from the first unsent event.
//! - NATS being away changes nothing for callers: the changes commit with
//!   their events, which wait in the outbox until NATS is back. The
//!   relay's lag and backlog are metrics
//!   (`workspace_service.events.lag`, `.pending`, `.published`).
//!
//! Messages carry a `workspace.v1.WorkspaceEvent` (protobuf) and
//! CloudEvents binary-mode headers.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;
use async_nats::{HeaderMap, jetstream};
use chrono::{DateTime, Utc};
use opentelemetry::{KeyValue, metrics::Counter};

use crate::{
    config::EventSettings,
    storage::{PendingEvent, Storage},
    telemetry::Metrics,
};

/// Most events published in one round.
const BATCH: u64 = 256;

/// How often the backlog (pending events, the oldest one's age) is
/// counted for the metrics.
const BACKLOG_EVERY: Duration = Duration::from_secs(5);

/// How often sent events past their retention are deleted.
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// How long JetStream may take to acknowledge one event.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// What the relay last saw of the outbox, for the metrics.
#[derive(Debug, Default)]
struct Backlog {
    pending: u64,
    oldest: Option<DateTime<Utc>>,
}

/// The relay's instruments.
struct RelayMetrics {
    published: Counter<u64>,
    backlog: Arc<Mutex<Backlog>>,
}

impl RelayMetrics {
    fn new(metrics: &Metrics) -> Self {
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
        Self { published, backlog }
    }
}

/// Runs the relay until the task is dropped: publishing when `NATS_URL` is
/// set, measuring the backlog and purging old events either way.
pub async fn relay(storage: Storage, settings: EventSettings, metrics: Metrics) {
    let instruments = RelayMetrics::new(&metrics);
    let every = Duration::from_millis(settings.relay_interval_ms.max(10));
    let retention = chrono::Duration::hours(i64::try_from(settings.retention_hours).unwrap_or(24));
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
    // The backlog is counted, and old events purged, on their own
    // schedules: not two more queries every round of an idle relay.
    let mut measure = tokio::time::interval(BACKLOG_EVERY);
    let mut purge = tokio::time::interval(PURGE_EVERY);
    let mut relay = tokio::time::interval(every);
    for timer in [&mut measure, &mut purge, &mut relay] {
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    loop {
        tokio::select! {
            _ = relay.tick() => {
                if let Some(publisher) = publisher.as_mut()
                    && let Err(err) = publisher.round(&storage, &instruments).await
                {
                    tracing::warn!(error = format!("{err:#}"), "relaying events");
                }
            }
            _ = measure.tick() => {
                if let Ok((pending, oldest)) = storage.outbox_backlog().await {
                    *instruments.backlog.lock().expect("not poisoned") = Backlog { pending, oldest };
                }
            }
            _ = purge.tick() => {
                if let Err(err) = storage.purge_sent_events(Utc::now() - retention).await {
                    tracing::warn!(%err, "purging sent events");
                }
            }
        }
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

struct Publisher {
    jetstream: jetstream::Context,
    stream: String,
    prefix: String,
    /// Whether the stream is known to exist.
    ready: bool,
}

impl Publisher {
    fn new(client: async_nats::Client, settings: &EventSettings) -> Self {
        let mut jetstream = jetstream::new(client);
        jetstream.set_timeout(ACK_TIMEOUT);
        Self {
            jetstream,
            stream: settings.stream.clone(),
            prefix: settings.subject_prefix.clone(),
            ready: false,
        }
    }

    /// Publishes what waits (one relay at a time); how many went out.
    async fn round(&mut self, storage: &Storage, metrics: &RelayMetrics) -> anyhow::Result<usize> {
        if !self.ready {
            self.jetstream
                .get_or_create_stream(jetstream::stream::Config {
                    name: self.stream.clone(),
                    subjects: vec![format!("{}.>", self.prefix)],
                    duplicate_window: Duration::from_secs(3600),
                    ..Default::default()
                })
                .await
                .with_context(|| format!("the JetStream stream {}", self.stream))?;
            self.ready = true;
        }
        let Some(round) = storage.begin_relay().await? else {
            return Ok(0);
        };
        let events = storage.pending_events(&round, BATCH).await?;
        let mut sent = Vec::new();
        for event in events {
            match self.publish(&event).await {
                Ok(()) => {
                    metrics
                        .published
                        .add(1, &[KeyValue::new("type", event.kind.as_str())]);
                    sent.push(event.id);
                }
                Err(err) => {
                    tracing::warn!(error = format!("{err:#}"), event = %event.id, "publishing an event");
                    if err.downcast_ref::<StreamMissing>().is_some() {
                        self.ready = false;
                    }
                    // The rest waits for the next round, in order: NATS
                    // being away costs one acknowledgement timeout a round.
                    break;
                }
            }
        }
        let count = sent.len();
        storage.mark_sent(&round, sent).await?;
        round.finish().await?;
        Ok(count)
    }

    /// One event, acknowledged by JetStream.
    async fn publish(&self, event: &PendingEvent) -> anyhow::Result<()> {
        let subject = format!(
            "{}.{}.{}",
            self.prefix,
            event.organization_id,
            event.kind.as_str()
        );
        let mut headers = HeaderMap::new();
        let id = event.id.to_string();
        headers.insert("Nats-Msg-Id", id.as_str());
        headers.insert("ce-specversion", "1.0");
        headers.insert("ce-id", id.as_str());
        headers.insert(
            "ce-type",
            format!("workspace.v1.{}", event.kind.as_str()).as_str(),
        );
        headers.insert(
            "ce-source",
            format!("/workspace-service/organizations/{}", event.organization_id).as_str(),
        );
        headers.insert(
            "ce-time",
            event
                .occurred_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .as_str(),
        );
        headers.insert("content-type", "application/protobuf");
        let ack = self
            .jetstream
            .publish_with_headers(subject, headers, event.payload.clone().into())
            .await
            .map_err(|err| match err.kind() {
                jetstream::context::PublishErrorKind::StreamNotFound => {
                    anyhow::Error::new(StreamMissing)
                }
                _ => anyhow::Error::new(err),
            })?;
        ack.await.context("JetStream's acknowledgement")?;
        Ok(())
    }
}

/// The stream was deleted under the relay: it is created again.
#[derive(Debug, thiserror::Error)]
#[error("the JetStream stream does not exist")]
struct StreamMissing;
