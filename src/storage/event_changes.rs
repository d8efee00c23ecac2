//! The events this process marked sent or deleted since their table was
//! last analyzed (`statistics`, `Storage::keep_event_statistics`).

use std::sync::atomic::{AtomicU64, Ordering};

/// Events marked sent or deleted by this process after which the events
/// table's statistics are brought up to date. An ANALYZE samples a fixed
/// number of rows whatever the table's size (about 0.5 s on 1M events here):
/// at 10,000 events a second, one every 10 s of draining.
pub const EVENTS_CHANGED_BEFORE_ANALYZE: u64 = 100_000;

/// The events this process changed since their table was last analyzed.
#[derive(Debug, Default)]
pub(super) struct EventChanges(AtomicU64);

impl EventChanges {
    pub(super) fn add(&self, events: u64) {
        self.0.fetch_add(events, Ordering::Relaxed);
    }

    /// Whether enough changed for an ANALYZE; if so, counting starts again.
    pub(super) fn due(&self) -> bool {
        let changed = self.0.load(Ordering::Relaxed);
        changed >= EVENTS_CHANGED_BEFORE_ANALYZE
            && self
                .0
                .compare_exchange(changed, 0, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_analyze_is_due_once_per_so_many_changed_events() {
        let changes = EventChanges::default();
        changes.add(EVENTS_CHANGED_BEFORE_ANALYZE - 1);
        assert!(!changes.due());
        changes.add(1);
        assert!(changes.due());
        assert!(!changes.due(), "counting starts again");
        changes.add(EVENTS_CHANGED_BEFORE_ANALYZE);
        assert!(changes.due());
    }
}
