//! Publishing a round's events: many in flight, each acknowledged by
//! JetStream, each organization's in order; an event NATS refuses for good
//! or that does not make a message is parked, and the round goes on with
//! the other organizations.

use std::{collections::HashSet, future::IntoFuture as _, time::Duration};

use anyhow::Context as _;
use async_nats::jetstream::{
    self,
    context::{PublishAckFuture, PublishErrorKind},
};
use opentelemetry::KeyValue;
use uuid::Uuid;

use super::{encode::encode, metrics::RelayMetrics, stream};
use crate::{
    config::{EventFormat, EventSettings},
    storage::{PendingEvent, RelayRound, Storage, UnreadableEvent},
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
    /// The stream's `max_msg_size` when last read, if it has one.
    max_message_size: Option<usize>,
}

/// Most events published in one round, spread across the organizations
/// that wait.
pub(super) const BATCH: u64 = 1_024;

/// How long JetStream may take to acknowledge one event.
pub(super) const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an event was not published.
#[derive(Debug)]
enum Failure {
    /// NATS refuses this event and would refuse it again (larger than its
    /// `max_payload` or the stream's `max_msg_size`), or it does not make
    /// a message: it is parked with this reason.
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
            max_message_size: None,
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
        self.max_message_size = usize::try_from(found.max_message_size).ok();
        for shortcoming in stream::stream_shortcomings(found, &self.config, self.retry_horizon) {
            tracing::warn!("{shortcoming}");
        }
        Ok(())
    }

    /// Publishes a fair batch of what waits (one relay at a time).
    ///
    /// The whole batch in flight at once: every event is sent, in the
    /// batch's order, on the one connection, then the acknowledgements are
    /// awaited together (`publish_batch`). An event refused for good, or
    /// that does not make a message, is parked and its organization's
    /// later events wait; a failure that may pass ends the round.
    pub(super) async fn round(
        &mut self,
        storage: &Storage,
        metrics: &RelayMetrics,
    ) -> anyhow::Result<Round> {
        if !self.ready {
            self.ensure_stream().await?;
            self.ready = true;
        }
        let Some(relay_round) = storage.begin_relay().await? else {
            return Ok(Round::default());
        };
        let batch = storage.pending_events(&relay_round, BATCH).await?;
        let full = batch.len() as u64 >= BATCH;
        let published = self.publish_batch(batch).await;
        let mut sent = Vec::with_capacity(published.stored.len());
        for event in &published.stored {
            let kind = [KeyValue::new("type", event.kind.as_str())];
            metrics.published.add(1, &kind);
            sent.push(event.id);
        }
        for refusal in published.refused {
            park(storage, &relay_round, metrics, refusal).await?;
        }
        storage.mark_sent(&relay_round, sent).await?;
        relay_round.finish().await?;
        Ok(Round {
            failed: published.failed,
            full,
        })
    }

    /// Sends the batch's events in its order (so each organization's in
    /// order, on one connection: NATS and JetStream keep that order), then
    /// awaits the acknowledgements together. An organization's events are
    /// taken as sent up to its first one not stored; from that one on they
    /// wait for a later round (what of them JetStream stored is
    /// deduplicated then by its message id).
    ///
    /// So that a refusal does not let an organization's later events into
    /// the stream ahead of the refused one, what may be refused is not
    /// followed in flight: an event that does not make a message, or that
    /// NATS refuses at once, is parked and its organization's later events
    /// are not sent; one larger than the stream's `max_msg_size` as last
    /// seen is sent alone, its organization's later events left for the
    /// next round.
    async fn publish_batch(&mut self, batch: Vec<Result<PendingEvent, UnreadableEvent>>) -> Batch {
        let mut published = Batch::default();
        let mut held = HashSet::new();
        let mut in_flight = Vec::with_capacity(batch.len());
        for event in batch {
            let organization = match &event {
                Ok(event) => event.organization_id,
                Err(unreadable) => unreadable.organization_id,
            };
            if published.failed || held.contains(&organization) {
                continue;
            }
            let event = match event {
                Ok(event) => event,
                Err(unreadable) => {
                    held.insert(organization);
                    published.refused.push(Refusal::unreadable(unreadable));
                    continue;
                }
            };
            match self.send(&event).await {
                Ok((ack, alone)) => {
                    if alone {
                        held.insert(organization);
                    }
                    in_flight.push((event, ack.into_future()));
                }
                Err(Failure::Refused(reason)) => {
                    held.insert(organization);
                    published.refused.push(Refusal::of(&event, reason));
                }
                Err(Failure::Passing(err)) => {
                    self.passing(&err, event.id);
                    published.failed = true;
                }
            }
        }
        let (events, acks): (Vec<_>, Vec<_>) = in_flight.into_iter().unzip();
        let acks = futures_util::future::join_all(acks).await;
        let mut stopped = HashSet::new();
        for (event, ack) in events.into_iter().zip(acks) {
            let organization = event.organization_id;
            if stopped.contains(&organization) {
                if ack.is_ok() {
                    // Only when JetStream lost or refused an event and took
                    // its organization's next one (a connection dropped
                    // between them, the stream's limit lowered under the
                    // relay): this one is in the stream ahead of that one.
                    tracing::warn!(event = %event.id, %organization,
                        "event stored ahead of an earlier event of its organization that \
                         was not; it is published again after that one");
                }
                continue;
            }
            match ack.map_err(failure) {
                Ok(_) => published.stored.push(event),
                Err(Failure::Refused(reason)) => {
                    stopped.insert(organization);
                    // The stream's limit may have changed: read it again.
                    self.ready = false;
                    published.refused.push(Refusal::of(&event, reason));
                }
                Err(Failure::Passing(err)) => {
                    stopped.insert(organization);
                    self.passing(&err, event.id);
                    published.failed = true;
                }
            }
        }
        published
    }

    /// A failure that may pass: logged; a missing stream is made again
    /// next round.
    fn passing(&mut self, err: &anyhow::Error, event: Uuid) {
        tracing::warn!(error = format!("{err:#}"), %event, "publishing an event");
        if err.downcast_ref::<StreamMissing>().is_some() {
            self.ready = false;
        }
    }

    /// Sends one event; its acknowledgement is to be awaited. True beside
    /// it when the stream may refuse it (larger than its `max_msg_size` as
    /// last seen): its organization's later events are not to follow it
    /// in flight.
    async fn send(&self, event: &PendingEvent) -> Result<(PublishAckFuture, bool), Failure> {
        let subject = format!(
            "{}.{}.{}",
            self.prefix,
            event.organization_id,
            event.kind.as_str()
        );
        let (headers, body) = encode(event, self.format, &self.dataschema)
            .map_err(|err| Failure::Refused(format!("{err:#}")))?;
        let alone = self
            .max_message_size
            .is_some_and(|max| wire_len(&headers) + body.len() > max);
        // A deleted stream is told on the acknowledgement ("no responders"
        // for the subject): the next round re-creates it.
        let ack = self
            .jetstream
            .publish_with_headers(subject, headers, body.into())
            .await
            .map_err(failure)?;
        Ok((ack, alone))
    }
}

/// The size of `headers` on the wire ("NATS/1.0\r\n", "name: value\r\n"
/// each, "\r\n"), which JetStream counts toward `max_msg_size`.
fn wire_len(headers: &async_nats::HeaderMap) -> usize {
    let lines: usize = headers
        .iter()
        .map(|(name, values)| {
            let name: &str = name.as_ref();
            values
                .iter()
                .map(|value| name.len() + value.as_str().len() + 4)
                .sum::<usize>()
        })
        .sum();
    b"NATS/1.0\r\n\r\n".len() + lines
}

/// What a round did: whether it ended on a failure that may pass, and
/// whether its batch was full (more may wait: the next round starts at
/// once).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Round {
    pub(super) failed: bool,
    pub(super) full: bool,
}

/// What publishing a batch did.
#[derive(Default)]
struct Batch {
    /// Stored by JetStream, to be marked sent.
    stored: Vec<PendingEvent>,
    /// To park.
    refused: Vec<Refusal>,
    /// A failure that may pass: the round ends.
    failed: bool,
}

/// An event that cannot be published, and why.
struct Refusal {
    id: Uuid,
    organization: Uuid,
    kind: String,
    reason: String,
}

impl Refusal {
    fn unreadable(unreadable: UnreadableEvent) -> Self {
        Self {
            id: unreadable.id,
            organization: unreadable.organization_id,
            kind: unreadable.event_type,
            reason: unreadable.reason,
        }
    }

    fn of(event: &PendingEvent, reason: String) -> Self {
        Self {
            id: event.id,
            organization: event.organization_id,
            kind: event.kind.as_str().to_owned(),
            reason,
        }
    }
}

/// Parks `refusal`'s event: logged, counted; its organization's later
/// events wait until an operator retries or drops it.
async fn park(
    storage: &Storage,
    round: &RelayRound,
    metrics: &RelayMetrics,
    refusal: Refusal,
) -> anyhow::Result<()> {
    tracing::error!(
        event = %refusal.id,
        organization = %refusal.organization,
        reason = refusal.reason,
        "event parked: NATS refuses it or it does not make a message; the organization's \
         later events wait until it is retried or dropped (workspace-service admin events)"
    );
    storage
        .park_event(round, refusal.id, &refusal.reason)
        .await?;
    metrics
        .parked
        .add(1, &[KeyValue::new("type", refusal.kind)]);
    Ok(())
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
