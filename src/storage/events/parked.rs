//! Parked events, for the operator (`workspace-service admin events …`):
//! listed, retried (the relay takes the event again, first of its
//! organization) or dropped (deleted, never published).

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::Expr,
};
use uuid::Uuid;

use crate::storage::{Storage, entities::event};

/// An event the relay parked: NATS refused it for good.
#[derive(Debug, Clone, PartialEq)]
pub struct ParkedEvent {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub sequence: i64,
    pub event_type: String,
    /// The stored payload's size in bytes.
    pub size: usize,
    pub parked_at: DateTime<Utc>,
    pub reason: String,
}

impl Storage {
    /// Every parked event, the oldest parked first.
    pub async fn parked_events(&self) -> Result<Vec<ParkedEvent>, DbErr> {
        let rows = event::Entity::find()
            .filter(event::Column::ParkedAt.is_not_null())
            .order_by_asc(event::Column::ParkedAt)
            .order_by_asc(event::Column::Id)
            .limit(1_000)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| ParkedEvent {
                id: row.id,
                organization_id: row.organization_id,
                sequence: row.sequence,
                size: row.payload.len(),
                event_type: row.event_type,
                parked_at: row.parked_at.unwrap_or_default(),
                reason: row.parked_reason.unwrap_or_default(),
            })
            .collect())
    }

    /// Unparks event `id`: the relay's next round publishes it, then its
    /// organization's later events. False when no such event is parked.
    pub async fn retry_parked_event(&self, id: Uuid) -> Result<bool, DbErr> {
        let retried = event::Entity::update_many()
            .col_expr(event::Column::ParkedAt, Expr::value(None::<DateTime<Utc>>))
            .col_expr(event::Column::ParkedReason, Expr::value(None::<String>))
            .filter(event::Column::Id.eq(id))
            .filter(event::Column::ParkedAt.is_not_null())
            .exec(&self.db)
            .await?;
        Ok(retried.rows_affected > 0)
    }

    /// Deletes parked event `id`, never published: its organization's
    /// later events go on (consumers see a gap in its `sequence`). False
    /// when no such event is parked.
    pub async fn drop_parked_event(&self, id: Uuid) -> Result<bool, DbErr> {
        let dropped = event::Entity::delete_many()
            .filter(event::Column::Id.eq(id))
            .filter(event::Column::ParkedAt.is_not_null())
            .exec(&self.db)
            .await?;
        Ok(dropped.rows_affected > 0)
    }
}
