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
//! - An organization's events go out in order: a failed publish ends the
//!   round; the next starts again from the first unsent event.
//! - NATS being away changes nothing for callers: the changes commit with
//!   their events, which wait in the outbox until NATS is back. The
//!   relay's lag and backlog are metrics
//!   (`workspace_service.events.lag`, `.pending`, `.published`).
//!
//! Messages carry a `workspace.v1.WorkspaceEvent` (protobuf) and
//! CloudEvents binary-mode headers, or with `EVENTS_FORMAT=cloudevents-json`
//! a structured JSON CloudEvent (see `encode`).

use std::{
    sync::{Arc, LazyLock, Mutex},
    time::Duration,
};

use anyhow::Context as _;
use async_nats::{HeaderMap, jetstream};
use chrono::{DateTime, Utc};
use opentelemetry::{KeyValue, metrics::Counter};
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

use crate::{
    config::{ByteSize, EventFormat, EventSettings, HumanDuration},
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

/// The event settings, checked at start (see
/// `EventSettings::check_stream_limits`).
pub fn check_settings(settings: &EventSettings) -> anyhow::Result<()> {
    settings.check_stream_limits(ACK_TIMEOUT)
}

/// The stream a relay creates when it is missing.
fn stream_config(settings: &EventSettings) -> jetstream::stream::Config {
    jetstream::stream::Config {
        name: settings.stream.clone(),
        subjects: vec![format!("{}.>", settings.subject_prefix)],
        max_age: settings.max_age.0,
        max_bytes: settings.max_bytes.0,
        num_replicas: settings.replicas,
        duplicate_window: settings.duplicate_window.0,
        // Full: the oldest events go (a consumer that far behind has lost
        // them either way), never the newest.
        discard: jetstream::stream::DiscardPolicy::Old,
        ..Default::default()
    }
}

/// What is wrong with a stream found in place for the relay's needs, one
/// sentence each: a duplicate window shorter than `wanted`'s (a publish
/// repeated after it is stored twice), no bound on its size or age.
fn stream_shortcomings(
    found: &jetstream::stream::Config,
    wanted: &jetstream::stream::Config,
    retry_horizon: Duration,
) -> Vec<String> {
    let mut shortcomings = Vec::new();
    let window = HumanDuration(found.duplicate_window);
    if found.duplicate_window < wanted.duplicate_window {
        let worse = if found.duplicate_window < retry_horizon {
            format!(
                "; it is even shorter than the relay's own retries ({}), so an event whose \
                 acknowledgement was lost can be stored twice",
                HumanDuration(retry_horizon)
            )
        } else {
            String::new()
        };
        shortcomings.push(format!(
            "the JetStream stream {} has a duplicate window of {window}, shorter than the {} the \
             relay needs (EVENTS_DUPLICATE_WINDOW): an event published again more than {window} \
             after JetStream stored it (a relay restarted after a crash) is stored twice{worse}; \
             raise the stream's duplicate_window or lower EVENTS_DUPLICATE_WINDOW",
            found.name,
            HumanDuration(wanted.duplicate_window),
        ));
    }
    let unbounded = found.max_age.is_zero() && found.max_bytes <= 0 && found.max_messages <= 0;
    if unbounded {
        shortcomings.push(format!(
            "the JetStream stream {} has no max_age, max_bytes or max_msgs: it grows until its \
             volume is full; give it limits (EVENTS_MAX_AGE {} and EVENTS_MAX_BYTES {} are what \
             the relay would create)",
            found.name,
            HumanDuration(wanted.max_age),
            ByteSize(wanted.max_bytes),
        ));
    }
    shortcomings
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
    /// The stream to create when missing; its name is the stream's.
    config: jetstream::stream::Config,
    prefix: String,
    format: EventFormat,
    dataschema: String,
    retry_horizon: Duration,
    /// Whether the stream is known to exist.
    ready: bool,
}

impl Publisher {
    fn new(client: async_nats::Client, settings: &EventSettings) -> Self {
        let mut jetstream = jetstream::new(client);
        jetstream.set_timeout(ACK_TIMEOUT);
        Self {
            jetstream,
            config: stream_config(settings),
            prefix: settings.subject_prefix.clone(),
            format: settings.format,
            dataschema: settings.dataschema.clone(),
            retry_horizon: settings.retry_horizon(ACK_TIMEOUT),
            ready: false,
        }
    }

    /// Finds the stream, or creates it with the configured limits; a
    /// stream found in place is used as it is, and what it lacks is
    /// logged.
    async fn ensure_stream(&mut self) -> anyhow::Result<()> {
        let stream = self
            .jetstream
            .get_or_create_stream(self.config.clone())
            .await
            .with_context(|| format!("the JetStream stream {}", self.config.name))?;
        let found = &stream.cached_info().config;
        for shortcoming in stream_shortcomings(found, &self.config, self.retry_horizon) {
            tracing::warn!("{shortcoming}");
        }
        Ok(())
    }

    /// Publishes what waits (one relay at a time); how many went out.
    async fn round(&mut self, storage: &Storage, metrics: &RelayMetrics) -> anyhow::Result<usize> {
        if !self.ready {
            self.ensure_stream().await?;
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
        let (headers, body) = encode(event, self.format, &self.dataschema)?;
        let ack = self
            .jetstream
            .publish_with_headers(subject, headers, body.into())
            .await
            .map_err(missing_or)?;
        // A deleted stream is told on the acknowledgement ("no responders"
        // for the subject): the next round re-creates it.
        ack.await
            .map_err(missing_or)
            .context("JetStream's acknowledgement")?;
        Ok(())
    }
}

/// A publish error, as `StreamMissing` when JetStream says the stream is
/// not there.
fn missing_or(err: jetstream::context::PublishError) -> anyhow::Error {
    match err.kind() {
        jetstream::context::PublishErrorKind::StreamNotFound => anyhow::Error::new(StreamMissing),
        _ => anyhow::Error::new(err),
    }
}

/// The JSON mapping of the events' messages.
static DESCRIPTORS: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(crate::proto::FILE_DESCRIPTOR_SET)
        .expect("the compiled-in descriptor set decodes")
});

/// CloudEvents' attributes of `event`, whatever the format.
struct Attributes {
    id: String,
    source: String,
    kind: String,
    subject: String,
    time: String,
}

impl Attributes {
    fn of(event: &PendingEvent) -> Self {
        Self {
            id: event.id.to_string(),
            source: format!("/workspace-service/organizations/{}", event.organization_id),
            kind: format!("workspace.v1.{}", event.kind.as_str()),
            subject: format!("workspaces/{}", event.workspace_id),
            time: event
                .occurred_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        }
    }
}

/// The message for `event`: its headers and body, in `format`.
/// - `protobuf`: the encoded `workspace.v1.WorkspaceEvent`, CloudEvents in
///   binary mode (`ce-*` headers), `content-type: application/protobuf`;
/// - `cloudevents-json`: a structured-mode CloudEvent
///   (`content-type: application/cloudevents+json`) whose `data` is the
///   event in proto3 JSON (lowerCamelCase names, enums by name, 64-bit
///   integers as strings, every field present).
///
/// Either way `Nats-Msg-Id` is the event's id (JetStream's deduplication)
/// and `traceparent` the change's trace, when it has one.
fn encode(
    event: &PendingEvent,
    format: EventFormat,
    dataschema: &str,
) -> anyhow::Result<(HeaderMap, Vec<u8>)> {
    let attributes = Attributes::of(event);
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", attributes.id.as_str());
    // The trace of the call that made the change: a consumer's spans join
    // it.
    if let Some(traceparent) = &event.traceparent {
        headers.insert("traceparent", traceparent.as_str());
    }
    match format {
        EventFormat::Protobuf => {
            headers.insert("ce-specversion", "1.0");
            headers.insert("ce-id", attributes.id.as_str());
            headers.insert("ce-type", attributes.kind.as_str());
            headers.insert("ce-source", attributes.source.as_str());
            headers.insert("ce-subject", attributes.subject.as_str());
            headers.insert("ce-time", attributes.time.as_str());
            headers.insert("ce-dataschema", dataschema);
            headers.insert("content-type", "application/protobuf");
            Ok((headers, event.payload.clone()))
        }
        EventFormat::CloudeventsJson => {
            let descriptor = DESCRIPTORS
                .get_message_by_name("workspace.v1.WorkspaceEvent")
                .context("workspace.v1.WorkspaceEvent in the descriptor set")?;
            let message = DynamicMessage::decode(descriptor, event.payload.as_slice())
                .with_context(|| format!("event {} does not decode", event.id))?;
            let data = message
                .serialize_with_options(
                    serde_json::value::Serializer,
                    &SerializeOptions::new().skip_default_fields(false),
                )
                .with_context(|| format!("event {} as JSON", event.id))?;
            let mut cloud_event = serde_json::json!({
                "specversion": "1.0",
                "id": attributes.id,
                "source": attributes.source,
                "type": attributes.kind,
                "subject": attributes.subject,
                "time": attributes.time,
                "datacontenttype": "application/json",
                "dataschema": dataschema,
                "data": data,
            });
            // CloudEvents' distributed tracing extension.
            if let Some(traceparent) = &event.traceparent {
                cloud_event["traceparent"] = traceparent.as_str().into();
            }
            headers.insert("ce-dataschema", dataschema);
            headers.insert("content-type", "application/cloudevents+json");
            Ok((headers, serde_json::to_vec(&cloud_event)?))
        }
    }
}

/// The stream was deleted under the relay: it is created again.
#[derive(Debug, thiserror::Error)]
#[error("the JetStream stream does not exist")]
struct StreamMissing;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn pending(traceparent: Option<&str>) -> PendingEvent {
        use prost::Message;
        let id = uuid::Uuid::now_v7();
        let (organization_id, workspace_id) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let payload = crate::proto::WorkspaceEvent {
            id: id.to_string(),
            r#type: crate::proto::EventType::WorkspaceCreated as i32,
            organization_id: organization_id.to_string(),
            workspace_id: workspace_id.to_string(),
            sequence: 7,
            ..Default::default()
        }
        .encode_to_vec();
        PendingEvent {
            id,
            organization_id,
            workspace_id,
            kind: crate::domain::EventKind::WorkspaceCreated,
            payload,
            occurred_at: chrono::Utc::now(),
            traceparent: traceparent.map(str::to_owned),
        }
    }

    #[test]
    fn both_formats_carry_the_cloudevents_attributes_and_the_dataschema() {
        let event = pending(Some(
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ));
        let (headers, body) = encode(&event, EventFormat::Protobuf, "urn:x").unwrap();
        let header = |name: &str| headers.get(name).map(|v| v.as_str().to_owned());
        assert_eq!(body, event.payload);
        assert_eq!(header("ce-dataschema").as_deref(), Some("urn:x"));
        assert_eq!(
            header("ce-type").as_deref(),
            Some("workspace.v1.workspace.created")
        );
        assert_eq!(
            header("ce-subject"),
            Some(format!("workspaces/{}", event.workspace_id))
        );
        assert_eq!(header("traceparent"), event.traceparent);

        let (headers, body) = encode(&event, EventFormat::CloudeventsJson, "urn:x").unwrap();
        let header = |name: &str| headers.get(name).map(|v| v.as_str().to_owned());
        assert_eq!(
            header("content-type").as_deref(),
            Some("application/cloudevents+json")
        );
        assert_eq!(header("ce-dataschema").as_deref(), Some("urn:x"));
        assert_eq!(header("Nats-Msg-Id"), Some(event.id.to_string()));
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["id"], event.id.to_string());
        assert_eq!(json["datacontenttype"], "application/json");
        assert_eq!(json["dataschema"], "urn:x");
        assert_eq!(json["traceparent"], event.traceparent.clone().unwrap());
        assert_eq!(json["data"]["type"], "EVENT_TYPE_WORKSPACE_CREATED");
        assert_eq!(json["data"]["workspaceId"], event.workspace_id.to_string());
        assert_eq!(
            json["data"]["sequence"], "7",
            "proto3 JSON: int64 as a string"
        );
        // Without a trace: no traceparent anywhere.
        let (headers, body) =
            encode(&pending(None), EventFormat::CloudeventsJson, "urn:x").unwrap();
        assert!(headers.get("traceparent").is_none());
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(json.get("traceparent").is_none());
    }

    #[test]
    fn a_stream_found_in_place_is_checked_against_what_the_relay_needs() {
        let settings = Settings::default().events;
        let wanted = stream_config(&settings);
        assert_eq!(wanted.max_age, Duration::from_secs(7 * 86_400));
        assert_eq!(wanted.max_bytes, 1 << 30);
        let horizon = settings.retry_horizon(ACK_TIMEOUT);
        // What the relay creates is what it needs.
        assert!(stream_shortcomings(&wanted, &wanted, horizon).is_empty());

        let short = jetstream::stream::Config {
            duplicate_window: Duration::from_secs(120),
            ..wanted.clone()
        };
        let found = stream_shortcomings(&short, &wanted, horizon);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("duplicate window of 2m, shorter than the 1h"),
            "{found:?}"
        );
        assert!(!found[0].contains("relay's own retries"));
        let shorter = jetstream::stream::Config {
            duplicate_window: Duration::from_secs(2),
            ..wanted.clone()
        };
        assert!(stream_shortcomings(&shorter, &wanted, horizon)[0].contains("relay's own retries"));

        // As the relay used to create it: no bound at all.
        let unbounded = jetstream::stream::Config {
            max_age: Duration::ZERO,
            max_bytes: -1,
            max_messages: -1,
            ..wanted.clone()
        };
        let found = stream_shortcomings(&unbounded, &wanted, horizon);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].contains("grows until its volume is full"),
            "{found:?}"
        );
    }
}
