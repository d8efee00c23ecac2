//! An event of the transactional outbox: written with the change it
//! describes, published by the relay, kept `EVENTS_RETENTION_HOURS` after.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    /// 1, 2, 3, … per organization, in commit order.
    pub sequence: i64,
    pub workspace_id: Uuid,
    /// `workspace.created`, `member.added`, …
    pub event_type: String,
    /// The encoded `workspace.v1.WorkspaceEvent`.
    pub payload: Vec<u8>,
    pub occurred_at: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
    /// The W3C `traceparent` of the call that made the change; none for
    /// events from before it was kept, or made outside any trace.
    pub traceparent: Option<String>,
    /// When the relay parked the event: NATS refused it for good. Its
    /// organization's later events wait until it is retried or dropped
    /// (`workspace-service admin events`).
    pub parked_at: Option<DateTimeUtc>,
    /// Why NATS refused it.
    pub parked_reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
