//! Publishing a round's events: each acknowledged by JetStream, each
//! organization's in order; an event NATS refuses for good is parked, and
//! the round goes on with the other organizations.

use std::{collections::HashSet, time::Duration};

use anyhow::Context as _;
use async_nats::jetstream::{self, context::PublishErrorKind};
use opentelemetry::KeyValue;
use uuid::Uuid;

use super::{encode::encode, metrics::RelayMetrics, stream};
use crate::{
    config::{EventFormat, EventSettings},
    storage::{PendingEvent, Storage},
};

pub(super) struct Publisher {
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

/// Most events published in one round, spread across the organizations
/// that wait.
pub(super) const BATCH: u64 = 256;

/// How long JetStream may take to acknowledge one event.
pub(super) const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an event was not published.
#[derive(Debug)]
enum Failure {
    /// NATS refuses this event and would refuse it again (larger than its
    /// `max_payload` or the stream's `max_msg_size`, a payload that does
    /// not decode): it is parked with this reason.
    Refused(String),
    /// Anything that may pass (NATS away, a timeout, the stream missing):
    /// the round ends and the next starts again from the first unsent
    /// event of each organization.
    Passing(anyhow::Error),
}

impl Publisher {
    pub(super) fn new(client: async_nats::Client, settings: &EventSettings) -> Self {
        let mut jetstream = jetstream::new(client);
        jetstream.set_timeout(ACK_TIMEOUT);
        Self {
            jetstream,
            config: stream::stream_config(settings),
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
        for shortcoming in stream::stream_shortcomings(found, &self.config, self.retry_horizon) {
            tracing::warn!("{shortcoming}");
        }
        Ok(())
    }

    /// Publishes a fair batch of what waits (one relay at a time); true
    /// when the round ended on a failure that may pass.
    pub(super) async fn round(
        &mut self,
        storage: &Storage,
        metrics: &RelayMetrics,
    ) -> anyhow::Result<bool> {
        if !self.ready {
            self.ensure_stream().await?;
            self.ready = true;
        }
        let Some(relay_round) = storage.begin_relay().await? else {
            return Ok(false);
        };
        let mut failed = false;
        let mut sent = Vec::new();
        // Organizations whose first unsent event of the batch was parked:
        // their later events wait, in order.
        let mut held: HashSet<Uuid> = HashSet::new();
        for event in storage.pending_events(&relay_round, BATCH).await? {
            if held.contains(&event.organization_id) {
                continue;
            }
            let kind = [KeyValue::new("type", event.kind.as_str())];
            match self.publish(&event).await {
                Ok(()) => {
                    metrics.published.add(1, &kind);
                    sent.push(event.id);
                }
                Err(Failure::Refused(reason)) => {
                    tracing::error!(
                        event = %event.id,
                        organization = %event.organization_id,
                        reason,
                        "event parked: NATS refuses it; the organization's later events wait \
                         until it is retried or dropped (workspace-service admin events)"
                    );
                    storage.park_event(&relay_round, event.id, &reason).await?;
                    metrics.parked.add(1, &kind);
                    held.insert(event.organization_id);
                }
                Err(Failure::Passing(err)) => {
                    tracing::warn!(error = format!("{err:#}"), event = %event.id, "publishing an event");
                    if err.downcast_ref::<StreamMissing>().is_some() {
                        self.ready = false;
                    }
                    // The rest waits for the next round, in order: NATS
                    // being away costs one acknowledgement timeout a round.
                    failed = true;
                    break;
                }
            }
        }
        storage.mark_sent(&relay_round, sent).await?;
        relay_round.finish().await?;
        Ok(failed)
    }

    /// One event, acknowledged by JetStream.
    async fn publish(&self, event: &PendingEvent) -> Result<(), Failure> {
        let subject = format!(
            "{}.{}.{}",
            self.prefix,
            event.organization_id,
            event.kind.as_str()
        );
        let (headers, body) = encode(event, self.format, &self.dataschema)
            .map_err(|err| Failure::Refused(format!("{err:#}")))?;
        let ack = self
            .jetstream
            .publish_with_headers(subject, headers, body.into())
            .await
            .map_err(failure)?;
        // A deleted stream is told on the acknowledgement ("no responders"
        // for the subject): the next round re-creates it.
        ack.await.map_err(failure)?;
        Ok(())
    }
}

/// A publish error as a `Failure`: refused for good when NATS says the
/// message is too large (the client's `max_payload` check, or JetStream's
/// "message size exceeds maximum allowed"); `StreamMissing` when
/// JetStream says the stream is not there.
fn failure(err: jetstream::context::PublishError) -> Failure {
    match err.kind() {
        PublishErrorKind::MaxPayloadExceeded => Failure::Refused(err.to_string()),
        PublishErrorKind::StreamNotFound => Failure::Passing(anyhow::Error::new(StreamMissing)),
        PublishErrorKind::Other if too_large_for_the_stream(&err) => {
            Failure::Refused(format!("{err}: {}", source_text(&err)))
        }
        _ => Failure::Passing(anyhow::Error::new(err).context("JetStream's acknowledgement")),
    }
}

/// JetStream's "message size exceeds maximum allowed" (the stream's
/// `max_msg_size`, or the server's `max_payload` seen by JetStream).
fn too_large_for_the_stream(err: &jetstream::context::PublishError) -> bool {
    std::error::Error::source(err)
        .and_then(|source| source.downcast_ref::<jetstream::Error>())
        .is_some_and(|error| {
            error.error_code() == jetstream::ErrorCode::STREAM_MESSAGE_EXCEEDS_MAXIMUM
        })
}

fn source_text(err: &jetstream::context::PublishError) -> String {
    std::error::Error::source(err).map_or_else(String::new, ToString::to_string)
}

/// The stream was deleted under the relay: it is created again.
#[derive(Debug, thiserror::Error)]
#[error("the JetStream stream does not exist")]
struct StreamMissing;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_too_large_is_refused_for_good_and_the_rest_may_pass() {
        let refused = |kind| {
            matches!(
                failure(jetstream::context::PublishError::new(kind)),
                Failure::Refused(_)
            )
        };
        assert!(refused(PublishErrorKind::MaxPayloadExceeded));
        for passing in [
            PublishErrorKind::TimedOut,
            PublishErrorKind::BrokenPipe,
            PublishErrorKind::StreamNotFound,
            PublishErrorKind::Other,
        ] {
            assert!(!refused(passing), "{passing:?}");
        }
    }
}
