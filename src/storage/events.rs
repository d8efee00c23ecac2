//! The transactional outbox: `record` writes an event in the transaction of
//! the change it describes; the relay (`crate::events`) reads what is
//! unsent, in each organization's order, and marks it sent once JetStream
//! acknowledged it.

use chrono::{DateTime, SubsecRound, Utc};
use prost::Message;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use super::{Storage, entities::*};
use crate::{
    domain::{AccessTokenView, EventKind, WorkspaceMember, WorkspaceView},
    messages, proto,
};

/// An event to write: what changed, where, by whom, and the state after.
#[derive(Debug, Clone, Copy)]
pub struct EventDraft<'a> {
    pub kind: EventKind,
    pub organization_id: Uuid,
    pub workspace_id: Uuid,
    pub actor: Uuid,
    pub workspace: Option<&'a WorkspaceView>,
    pub membership: Option<&'a WorkspaceMember>,
    pub access_token: Option<&'a AccessTokenView>,
}

/// An event waiting to be published.
#[derive(Debug, Clone)]
pub struct PendingEvent {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub workspace_id: Uuid,
    pub kind: EventKind,
    pub payload: Vec<u8>,
    pub occurred_at: DateTime<Utc>,
    /// The W3C trace context of the call that made the change.
    pub traceparent: Option<String>,
}

/// The PostgreSQL advisory lock one relay holds while it publishes a batch
/// ("wsrelay!" in ASCII): replicas take turns, so no two publish at once.
const RELAY_LOCK: i64 = 0x7773_7265_6c61_7921;

/// The next number of `organization_id`'s events. The organization's row
/// stays locked until the transaction ends: the organization's changes
/// commit one at a time, in the order of their numbers.
pub(super) async fn next_sequence(
    txn: &DatabaseTransaction,
    organization_id: Uuid,
) -> Result<i64, DbErr> {
    organization::Entity::update_many()
        .col_expr(
            organization::Column::EventSequence,
            Expr::col(organization::Column::EventSequence).add(1),
        )
        .filter(organization::Column::Id.eq(organization_id))
        .exec_with_returning(txn)
        .await?
        .first()
        .map(|organization| organization.event_sequence)
        .ok_or_else(|| DbErr::Custom(format!("no organization {organization_id}")))
}

/// `draft` as an outbox row, before it is numbered: its payload carries
/// no `sequence`; the relay's read stamps the row's (`pending_events`), so
/// a create can build its event before the statement that numbers it.
pub(super) fn row(draft: EventDraft<'_>) -> event::Model {
    let id = Uuid::now_v7();
    let now = Utc::now().trunc_subsecs(6);
    let event = proto::WorkspaceEvent {
        id: id.to_string(),
        r#type: messages::event_type(draft.kind) as i32,
        time: messages::timestamp(now),
        organization_id: draft.organization_id.to_string(),
        workspace_id: draft.workspace_id.to_string(),
        // As the organization's OWNERs see it: no caller's own role.
        workspace: draft.workspace.cloned().map(|mut view| {
            view.user_role = None;
            messages::workspace(view)
        }),
        actor_id: draft.actor.to_string(),
        membership: draft
            .membership
            .map(|m| messages::membership(&draft.workspace_id.to_string(), m)),
        access_token: draft.access_token.map(messages::access_token),
        sequence: 0,
    };
    event::Model {
        id,
        organization_id: draft.organization_id,
        sequence: 0,
        workspace_id: draft.workspace_id,
        event_type: draft.kind.as_str().to_owned(),
        payload: event.encode_to_vec(),
        occurred_at: now,
        sent_at: None,
        // The call's trace: the current span is the call's or one of its
        // children.
        traceparent: current_traceparent(),
    }
}

/// The current span's W3C `traceparent` (`00-<trace id>-<span id>-<flags>`),
/// when it is in a trace. (Here rather than in `telemetry`, which reads
/// storage's pool: no import loop.)
fn current_traceparent() -> Option<String> {
    use opentelemetry::propagation::TextMapPropagator;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let mut fields = std::collections::HashMap::new();
    opentelemetry_sdk::propagation::TraceContextPropagator::new()
        .inject_context(&tracing::Span::current().context(), &mut fields);
    fields.remove("traceparent")
}

/// Writes `draft` as event number `sequence` of its organization, in `txn`.
pub(super) async fn record(
    txn: &DatabaseTransaction,
    sequence: i64,
    draft: EventDraft<'_>,
) -> Result<(), DbErr> {
    insert(
        txn,
        event::Model {
            sequence,
            ..row(draft)
        },
    )
    .await
}

/// Inserts a numbered outbox row.
pub(super) async fn insert<C: ConnectionTrait>(conn: &C, row: event::Model) -> Result<(), DbErr> {
    event::Entity::insert(row.into_active_model())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// The payload to publish: the stored one with the row's number.
fn numbered_payload(row: &event::Model) -> Result<Vec<u8>, DbErr> {
    let mut event = proto::WorkspaceEvent::decode(row.payload.as_slice())
        .map_err(|err| DbErr::Custom(format!("event {} does not decode: {err}", row.id)))?;
    event.sequence = row.sequence;
    Ok(event.encode_to_vec())
}

/// One relay round's hold on the outbox: on PostgreSQL a transaction
/// holding the relay lock (replicas take turns); on SQLite nothing (one
/// process per file), so that no read transaction is held while events are
/// published and the marking write never has to upgrade it.
pub struct RelayRound {
    txn: Option<DatabaseTransaction>,
}

impl RelayRound {
    /// Ends the round; what was marked sent stays so.
    pub async fn finish(self) -> Result<(), DbErr> {
        match self.txn {
            Some(txn) => txn.commit().await,
            None => Ok(()),
        }
    }
}

impl Storage {
    /// Opens a relay round; `None` when another replica's relay holds the
    /// lock.
    pub async fn begin_relay(&self) -> Result<Option<RelayRound>, DbErr> {
        if self.db.get_database_backend() != sea_orm::DbBackend::Postgres {
            return Ok(Some(RelayRound { txn: None }));
        }
        let txn = self.db.begin().await?;
        let locked = txn
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                format!("SELECT pg_try_advisory_xact_lock({RELAY_LOCK}) AS locked"),
            ))
            .await?
            .map(|row| row.try_get::<bool>("", "locked"))
            .transpose()?
            .unwrap_or(false);
        if !locked {
            txn.rollback().await?;
            return Ok(None);
        }
        Ok(Some(RelayRound { txn: Some(txn) }))
    }

    /// Up to `limit` unsent events, each organization's in its order.
    pub async fn pending_events(
        &self,
        round: &RelayRound,
        limit: u64,
    ) -> Result<Vec<PendingEvent>, DbErr> {
        let query = event::Entity::find()
            .filter(event::Column::SentAt.is_null())
            .order_by_asc(event::Column::OrganizationId)
            .order_by_asc(event::Column::Sequence)
            .limit(limit);
        let rows = match &round.txn {
            Some(txn) => query.all(txn).await?,
            None => query.all(&self.db).await?,
        };
        rows.into_iter()
            .filter_map(|row| {
                let kind = EventKind::parse(&row.event_type)?;
                Some(numbered_payload(&row).map(|payload| PendingEvent {
                    kind,
                    id: row.id,
                    organization_id: row.organization_id,
                    workspace_id: row.workspace_id,
                    payload,
                    occurred_at: row.occurred_at,
                    traceparent: row.traceparent.clone(),
                }))
            })
            .collect()
    }

    /// Marks `ids` sent.
    pub async fn mark_sent(&self, round: &RelayRound, ids: Vec<Uuid>) -> Result<(), DbErr> {
        if ids.is_empty() {
            return Ok(());
        }
        let update = event::Entity::update_many()
            .col_expr(
                event::Column::SentAt,
                Expr::value(Utc::now().trunc_subsecs(6)),
            )
            .filter(event::Column::Id.is_in(ids));
        match &round.txn {
            Some(txn) => update.exec(txn).await?,
            None => update.exec(&self.db).await?,
        };
        Ok(())
    }

    /// Deletes events sent before `before`.
    pub async fn purge_sent_events(&self, before: DateTime<Utc>) -> Result<u64, DbErr> {
        Ok(event::Entity::delete_many()
            .filter(event::Column::SentAt.lt(before))
            .exec(&self.db)
            .await?
            .rows_affected)
    }

    /// How many events wait, and when the oldest of them happened.
    pub async fn outbox_backlog(&self) -> Result<(u64, Option<DateTime<Utc>>), DbErr> {
        let pending = event::Entity::find()
            .filter(event::Column::SentAt.is_null())
            .count(&self.db)
            .await?;
        let oldest: Option<DateTime<Utc>> = event::Entity::find()
            .select_only()
            .column(event::Column::OccurredAt)
            .filter(event::Column::SentAt.is_null())
            .order_by_asc(event::Column::OccurredAt)
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok((pending, oldest))
    }
}

/// `conn`'s events, for tests and tools: every event, oldest first.
pub async fn all_events<C: ConnectionTrait>(conn: &C) -> Result<Vec<event::Model>, DbErr> {
    event::Entity::find()
        .order_by_asc(event::Column::OrganizationId)
        .order_by_asc(event::Column::Sequence)
        .all(conn)
        .await
}
