//! The outbox's backlog for the metrics: how many events wait and how old
//! the oldest is, at a cost that follows the organizations that wait, not
//! the events the outbox holds or has sent.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement,
};

use super::waiting::{WAITING, end_of_waiting};
use crate::storage::{Storage, entities::event};

/// What waits in the outbox.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Backlog {
    /// Events written and not yet published (parked ones included).
    pub pending: u64,
    /// When the oldest of them happened; `None` when none waits.
    pub oldest: Option<DateTime<Utc>>,
}

/// How many wait: the organizations that wait are found by skipping
/// through the partial index `ix_events_unsent` (one probe each, the
/// relay's own walk); each one's count is its last unsent event's number
/// less its first's, plus one: an organization's events are numbered
/// without gaps in commit order and sent in that order, so its unsent ones
/// are consecutive (a parked event dropped is the first). Two index
/// entries per organization that waits, whatever its backlog; none read
/// for an idle outbox, whatever its history of sent events.
fn pending_sql() -> String {
    format!(
        "{WAITING}, ends AS ( \
             SELECT {} AS first, {} AS last \
             FROM waiting w WHERE w.organization_id IS NOT NULL \
         ) \
         SELECT CAST(COALESCE(SUM(last - first + 1), 0) AS BIGINT) AS pending FROM ends",
        end_of_waiting("sequence", "ASC"),
        end_of_waiting("sequence", "DESC"),
    )
}

impl Storage {
    /// How many events wait (see `pending_sql` for what it costs), and when
    /// the oldest of them happened (the first entry of the partial index
    /// `ix_events_unsent_occurred_at`).
    pub async fn outbox_backlog(&self) -> Result<Backlog, DbErr> {
        let backend = self.db.get_database_backend();
        let row = self
            .db
            .query_one_raw(Statement::from_string(backend, pending_sql()))
            .await?
            .ok_or_else(|| DbErr::Custom("the backlog query returned no row".into()))?;
        let pending: i64 = row.try_get("", "pending")?;
        let oldest: Option<DateTime<Utc>> = event::Entity::find()
            .select_only()
            .column(event::Column::OccurredAt)
            .filter(event::Column::SentAt.is_null())
            .order_by_asc(event::Column::OccurredAt)
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(Backlog {
            pending: u64::try_from(pending).unwrap_or(0),
            oldest,
        })
    }
}
