//! Publishing a round's events: many in flight, each acknowledged by
//! JetStream, each organization's in order; an event NATS refuses for good
//! or that does not make a message is parked, and the round goes on with
//! the other organizations.

use std::{
    collections::{HashMap, VecDeque},
    future::IntoFuture as _,
    time::Duration,
};

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

    /// Publishes a fair batch of what waits (one relay at a time).
    ///
    /// In waves: each wave sends the next event of every organization in
    /// the batch, then awaits their acknowledgements together, so as many
    /// publishes are in flight as organizations wait (up to `BATCH`), and
    /// an organization's next event is sent only once JetStream stored the
    /// one before: whatever happens to one publish (refused, lost, timed
    /// out), none of its organization's later events can be in the stream
    /// ahead of it. An event refused for good, or that does not make a
    /// message, is parked and its organization's later events wait; a
    /// failure that may pass ends the round after the wave in flight.
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
        let mut queues = by_organization(batch);
        let mut sent = Vec::new();
        let mut failed = false;
        while !failed && !queues.is_empty() {
            let wave = self.wave(&mut queues).await;
            failed = wave.failed;
            for event in &wave.stored {
                let kind = [KeyValue::new("type", event.kind.as_str())];
                metrics.published.add(1, &kind);
                sent.push(event.id);
            }
            for refusal in wave.refused {
                queues.retain(|queue| queue.organization != refusal.organization);
                park(storage, &relay_round, metrics, refusal).await?;
            }
            queues.retain(|queue| !queue.events.is_empty());
        }
        storage.mark_sent(&relay_round, sent).await?;
        relay_round.finish().await?;
        Ok(Round { failed, full })
    }

    /// Sends each organization's next event, then awaits the
    /// acknowledgements together.
    async fn wave(&mut self, queues: &mut [Queue]) -> Wave {
        let mut wave = Wave::default();
        let mut events = Vec::new();
        let mut acks = Vec::new();
        for queue in queues.iter_mut() {
            match queue.events.pop_front() {
                Some(Ok(event)) => match self.send(&event).await {
                    Ok(ack) => {
                        events.push(event);
                        acks.push(ack.into_future());
                    }
                    Err(Failure::Refused(reason)) => wave.refused.push(Refusal::of(&event, reason)),
                    Err(Failure::Passing(err)) => {
                        self.passing(&err, event.id);
                        wave.failed = true;
                        break;
                    }
                },
                Some(Err(unreadable)) => wave.refused.push(Refusal {
                    id: unreadable.id,
                    organization: unreadable.organization_id,
                    kind: unreadable.event_type,
                    reason: unreadable.reason,
                }),
                None => {}
            }
        }
        let acks = futures_util::future::join_all(acks).await;
        for (event, ack) in events.into_iter().zip(acks) {
            match ack.map_err(failure) {
                Ok(_) => wave.stored.push(event),
                Err(Failure::Refused(reason)) => wave.refused.push(Refusal::of(&event, reason)),
                Err(Failure::Passing(err)) => {
                    self.passing(&err, event.id);
                    wave.failed = true;
                }
            }
        }
        wave
    }

    /// A failure that may pass: logged; a missing stream is made again
    /// next round.
    fn passing(&mut self, err: &anyhow::Error, event: Uuid) {
        tracing::warn!(error = format!("{err:#}"), %event, "publishing an event");
        if err.downcast_ref::<StreamMissing>().is_some() {
            self.ready = false;
        }
    }

    /// Sends one event; its acknowledgement is to be awaited.
    async fn send(&self, event: &PendingEvent) -> Result<PublishAckFuture, Failure> {
        let subject = format!(
            "{}.{}.{}",
            self.prefix,
            event.organization_id,
            event.kind.as_str()
        );
        let (headers, body) = encode(event, self.format, &self.dataschema)
            .map_err(|err| Failure::Refused(format!("{err:#}")))?;
        // A deleted stream is told on the acknowledgement ("no responders"
        // for the subject): the next round re-creates it.
        self.jetstream
            .publish_with_headers(subject, headers, body.into())
            .await
            .map_err(failure)
    }
}

/// What a round did: whether it ended on a failure that may pass, and
/// whether its batch was full (more may wait: the next round starts at
/// once).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Round {
    pub(super) failed: bool,
    pub(super) full: bool,
}

/// One organization's events of the batch, in order.
struct Queue {
    organization: Uuid,
    events: VecDeque<Result<PendingEvent, UnreadableEvent>>,
}

/// `batch` by organization, each one's events in order, the organizations
/// in the order the batch first names them.
fn by_organization(batch: Vec<Result<PendingEvent, UnreadableEvent>>) -> Vec<Queue> {
    let mut queues: Vec<Queue> = Vec::new();
    let mut index: HashMap<Uuid, usize> = HashMap::new();
    for event in batch {
        let organization = match &event {
            Ok(event) => event.organization_id,
            Err(unreadable) => unreadable.organization_id,
        };
        let at = *index.entry(organization).or_insert_with(|| {
            queues.push(Queue {
                organization,
                events: VecDeque::new(),
            });
            queues.len() - 1
        });
        queues[at].events.push_back(event);
    }
    queues
}

/// What one wave did.
#[derive(Default)]
struct Wave {
    stored: Vec<PendingEvent>,
    refused: Vec<Refusal>,
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
