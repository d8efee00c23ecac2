//! The outbox relay's settings: where events go, and the stream's limits.

use std::time::Duration;

use anyhow::bail;
use clap::Args;

use super::units::{ByteSize, HumanDuration};

/// The outbox relay: where workspace events are published.
#[derive(Clone, Debug, Args)]
pub struct EventSettings {
    /// NATS with JetStream (`nats://nats:4222`). Unset: events are written
    /// to the outbox and kept, nothing is published.
    #[arg(long, env = "NATS_URL", global = true)]
    pub nats_url: Option<String>,

    /// The JetStream stream the events go to (created when missing).
    #[arg(
        long,
        env = "EVENTS_STREAM",
        default_value = "WORKSPACE_EVENTS",
        global = true
    )]
    pub stream: String,

    /// Subjects are `<prefix>.<organization id>.<event type>`, such as
    /// `workspace.events.<id>.workspace.created`.
    #[arg(
        long,
        env = "EVENTS_SUBJECT_PREFIX",
        default_value = "workspace.events",
        global = true
    )]
    pub subject_prefix: String,

    /// How long a published event stays in the outbox.
    #[arg(
        long,
        env = "EVENTS_RETENTION_HOURS",
        default_value_t = 24,
        global = true
    )]
    pub retention_hours: u64,

    /// How often the relay looks for unsent events, in milliseconds.
    #[arg(
        long,
        env = "EVENTS_RELAY_INTERVAL_MS",
        default_value_t = 200,
        global = true
    )]
    pub relay_interval_ms: u64,

    /// Oldest an event may get in a stream the relay creates before
    /// JetStream drops it (the stream's `max_age`): `7d`, `36h`, `90m`.
    #[arg(long, env = "EVENTS_MAX_AGE", default_value = "7d", global = true)]
    pub max_age: HumanDuration,

    /// Largest a stream the relay creates may grow, its oldest events
    /// dropped first (`max_bytes`): `1GiB`, `512MiB`, or bytes.
    #[arg(long, env = "EVENTS_MAX_BYTES", default_value = "1GiB", global = true)]
    pub max_bytes: ByteSize,

    /// Copies of each event a stream the relay creates keeps in a JetStream
    /// cluster (`num_replicas`, 1 to 5; 3 for a cluster of three).
    #[arg(long, env = "EVENTS_REPLICAS", default_value_t = 1, global = true)]
    pub replicas: usize,

    /// How long JetStream remembers an event's id to drop a second publish
    /// of it (the stream's `duplicate_window`): the longest the relay may
    /// take to publish again an event JetStream stored but the relay did
    /// not record as sent (a lost acknowledgement, a crash and restart).
    /// A stream created in advance with a shorter window is reported at
    /// start.
    #[arg(
        long,
        env = "EVENTS_DUPLICATE_WINDOW",
        default_value = "1h",
        global = true
    )]
    pub duplicate_window: HumanDuration,

    /// How events are written: `protobuf` (a `workspace.v1.WorkspaceEvent`
    /// with CloudEvents binary-mode `ce-*` headers) or `cloudevents-json`
    /// (a structured-mode CloudEvent in JSON, its `data` the event in
    /// proto3 JSON: no proto needed to read it).
    #[arg(long, env = "EVENTS_FORMAT", value_enum, default_value_t = EventFormat::Protobuf, global = true)]
    pub format: EventFormat,

    /// The CloudEvents `dataschema` (`ce-dataschema` header, or the JSON
    /// event's attribute): a URI naming the schema of the data, such as
    /// your schema registry's address of `workspace.v1.WorkspaceEvent`.
    #[arg(
        long,
        env = "EVENTS_DATASCHEMA",
        default_value = "urn:workspace-service:proto:workspace.v1.WorkspaceEvent",
        global = true
    )]
    pub dataschema: String,
}

/// How events are written on the wire (`EVENTS_FORMAT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EventFormat {
    /// Protobuf payload, CloudEvents binary mode (`ce-*` headers).
    Protobuf,
    /// CloudEvents structured mode, JSON (`application/cloudevents+json`).
    CloudeventsJson,
}

impl EventSettings {
    /// The shortest duplicate window that covers the relay's own retries:
    /// an acknowledgement that timed out (`ack_timeout`) is published again
    /// the next round; twice that, for a margin.
    pub fn retry_horizon(&self, ack_timeout: Duration) -> Duration {
        2 * (ack_timeout + Duration::from_millis(self.relay_interval_ms))
    }

    /// The stream limits, checked: a bounded age and size, 1 to 5
    /// replicas, a duplicate window that covers the relay's retries and
    /// fits in the age (JetStream refuses a longer one).
    pub fn check_stream_limits(&self, ack_timeout: Duration) -> anyhow::Result<()> {
        if self.max_age.0.is_zero() {
            bail!("EVENTS_MAX_AGE must be more than 0: the stream would keep events forever");
        }
        if self.max_bytes.0 <= 0 {
            bail!("EVENTS_MAX_BYTES must be more than 0: the stream would grow without bound");
        }
        if !(1..=5).contains(&self.replicas) {
            bail!(
                "EVENTS_REPLICAS {} is not 1 to 5 (JetStream's range)",
                self.replicas
            );
        }
        let horizon = self.retry_horizon(ack_timeout);
        if self.duplicate_window.0 < horizon {
            bail!(
                "EVENTS_DUPLICATE_WINDOW {} is shorter than the relay's retries need ({}): an \
                 event published again after a lost acknowledgement could be stored twice",
                self.duplicate_window,
                HumanDuration(horizon)
            );
        }
        if self.duplicate_window.0 > self.max_age.0 {
            bail!(
                "EVENTS_DUPLICATE_WINDOW {} is longer than EVENTS_MAX_AGE {} (JetStream refuses it)",
                self.duplicate_window,
                self.max_age
            );
        }
        Ok(())
    }
}
