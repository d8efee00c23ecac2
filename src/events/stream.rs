//! The JetStream stream: what the relay creates when it is missing, and
//! what a stream found in place lacks for the relay's needs.

use std::time::Duration;

use async_nats::jetstream;

use crate::config::{ByteSize, EventSettings, HumanDuration};

/// The stream a relay creates when it is missing.
pub(super) fn stream_config(settings: &EventSettings) -> jetstream::stream::Config {
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
pub(super) fn stream_shortcomings(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{config::Settings, events::publish::ACK_TIMEOUT};

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
