//! The organizations with unsent events, as SQL shared by the relay's
//! batch (`relay.rs`) and the backlog metric (`backlog.rs`).

/// A recursive CTE, `waiting(organization_id)`, that skips through the
/// partial index `ix_events_unsent` (`(organization_id, sequence) WHERE
/// sent_at IS NULL`): one probe per organization that waits, whatever its
/// backlog or the sent events the outbox holds. Its last row is NULL (the
/// walk's end): filter it out (`WHERE w.organization_id IS NOT NULL`).
/// The same SQL on PostgreSQL and SQLite; follow it with `, name AS (…)`.
pub(super) const WAITING: &str = "\
    WITH RECURSIVE waiting(organization_id) AS ( \
        SELECT (SELECT organization_id FROM events WHERE sent_at IS NULL \
                ORDER BY organization_id LIMIT 1) \
        UNION ALL \
        SELECT (SELECT e.organization_id FROM events e \
                WHERE e.sent_at IS NULL AND e.organization_id > w.organization_id \
                ORDER BY e.organization_id LIMIT 1) \
        FROM waiting w WHERE w.organization_id IS NOT NULL \
    )";

/// An organization's first (`ORDER BY e.sequence`) or last (`ORDER BY
/// e.sequence DESC`) unsent event's `column`, for the organization of
/// `waiting w`'s row: one entry of `ix_events_unsent`.
pub(super) fn end_of_waiting(column: &str, order: &str) -> String {
    format!(
        "(SELECT e.{column} FROM events e \
          WHERE e.organization_id = w.organization_id AND e.sent_at IS NULL \
          ORDER BY e.sequence {order} LIMIT 1)"
    )
}
