//! The relay's side of the outbox: a round's hold on it, a fair batch of
//! unsent events (or why one cannot be published), marking them sent or
//! parked.

use chrono::{SubsecRound, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait, QueryFilter,
    Statement, sea_query::Expr,
};
use uuid::Uuid;

use super::{
    PendingEvent, numbered_payload,
    waiting::{WAITING, end_of_waiting},
};
use crate::{
    domain::EventKind,
    storage::{Storage, entities::event},
};

/// An unsent event the relay cannot publish: parked with `reason`.
#[derive(Debug, Clone)]
pub struct UnreadableEvent {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub event_type: String,
    pub reason: String,
}

/// `row` as the message to publish, or why it cannot be one.
fn pending(row: event::Model) -> Result<PendingEvent, UnreadableEvent> {
    let readable = EventKind::parse(&row.event_type)
        .ok_or_else(|| format!("unknown event type {:?}", row.event_type))
        .and_then(|kind| Ok((kind, numbered_payload(&row).map_err(|err| err.to_string())?)));
    match readable {
        Ok((kind, payload)) => Ok(PendingEvent {
            kind,
            id: row.id,
            organization_id: row.organization_id,
            workspace_id: row.workspace_id,
            payload,
            occurred_at: row.occurred_at,
            traceparent: row.traceparent,
        }),
        Err(reason) => Err(UnreadableEvent {
            id: row.id,
            organization_id: row.organization_id,
            event_type: row.event_type,
            reason,
        }),
    }
}

/// The PostgreSQL advisory lock one relay holds while it publishes a batch
/// ("wsrelay!" in ASCII): replicas take turns, so no two publish at once.
const RELAY_LOCK: i64 = 0x7773_7265_6c61_7921;

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

/// Up to `limit` unsent events spread across the organizations that wait,
/// in turns: every organization's first event, then every second one, …
/// (within a turn, the organization whose first waiting event is the older
/// first), so one organization's backlog costs the others at most one
/// round. An organization with a parked event is left out: its later
/// events wait (the parked one is always its first unsent event).
///
/// What it reads follows `limit` and the organizations that wait, not
/// their backlogs: the organizations are found by skipping through the
/// partial index `ix_events_unsent` (`WAITING`), with each one's first
/// and last unsent event (its backlog, `last - first + 1`: unsent events
/// are consecutive, as `backlog.rs` says). From those the number of turns
/// the batch needs is worked out (`turns`: the fewest `t` for which
/// every organization's first `t`, or all of its backlog when shorter,
/// make `limit`), and each organization's candidates are that many of its
/// index entries (PostgreSQL: a LATERAL subquery; SQLite: a range join);
/// only the chosen events' rows are read whole.
fn fair_batch(backend: DbBackend, limit: u64) -> String {
    let (least, per_organization) = match backend {
        DbBackend::Postgres => (
            "LEAST",
            "FROM shares h CROSS JOIN LATERAL ( \
                 SELECT e.sequence FROM events e \
                 WHERE e.organization_id = h.organization_id AND e.sent_at IS NULL \
                 ORDER BY e.sequence LIMIT h.take) e",
        ),
        _ => (
            "MIN",
            "FROM shares h JOIN events e ON e.organization_id = h.organization_id \
             AND e.sent_at IS NULL AND e.sequence >= h.first \
             AND e.sequence < h.first + h.take",
        ),
    };
    // `ranked`: by backlog, the shortest first, with the backlogs up to
    // each (`below`). `turns`: at the first organization whose backlog,
    // taken as the turns of all from it on, makes `limit`, the turns the
    // rest of `limit` needs from it and the longer ones.
    format!(
        "{WAITING}, heads AS MATERIALIZED ( \
             SELECT w.organization_id, {first} AS first, {last} AS last, {since} AS since \
             FROM waiting w \
             WHERE w.organization_id IS NOT NULL AND w.organization_id NOT IN ( \
                 SELECT p.organization_id FROM events p WHERE p.parked_at IS NOT NULL) \
         ), ranked AS ( \
             SELECT h.organization_id, h.first, h.since, \
                    {least}(h.last - h.first + 1, {limit}) AS backlog, \
                    ROW_NUMBER() OVER (ORDER BY h.last - h.first, h.organization_id) AS i, \
                    COUNT(*) OVER () AS n, \
                    CAST(SUM({least}(h.last - h.first + 1, {limit})) OVER ( \
                        ORDER BY h.last - h.first, h.organization_id \
                        ROWS UNBOUNDED PRECEDING) AS BIGINT) AS below \
             FROM heads h \
         ), turns AS ( \
             SELECT COALESCE(( \
                 SELECT ({limit} - (r.below - r.backlog) + r.n - r.i) / (r.n - r.i + 1) \
                 FROM ranked r WHERE r.below + (r.n - r.i) * r.backlog >= {limit} \
                 ORDER BY r.i LIMIT 1), {limit}) AS t \
         ), shares AS ( \
             SELECT r.organization_id, r.first, r.since, {least}(r.backlog, t.t) AS take \
             FROM ranked r CROSS JOIN turns t \
         ), batch AS ( \
             SELECT h.organization_id, e.sequence, e.sequence - h.first AS turn, h.since \
             {per_organization} \
             ORDER BY turn, h.since, h.organization_id LIMIT {limit} \
         ) \
         SELECT events.* FROM batch JOIN events \
             ON events.organization_id = batch.organization_id \
             AND events.sequence = batch.sequence \
         ORDER BY batch.turn, batch.since, batch.organization_id",
        first = end_of_waiting("sequence", "ASC"),
        last = end_of_waiting("sequence", "DESC"),
        since = end_of_waiting("occurred_at", "ASC"),
    )
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
            .query_one_raw(Statement::from_string(
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

    /// Up to `limit` unsent events, each organization's in its order, the
    /// organizations in turns (see `fair_batch`). An event whose row does
    /// not make a message (its type unknown, its payload not a
    /// `WorkspaceEvent`: written by something other than this service) is
    /// an `UnreadableEvent`, in its place, for the relay to park.
    pub async fn pending_events(
        &self,
        round: &RelayRound,
        limit: u64,
    ) -> Result<Vec<Result<PendingEvent, UnreadableEvent>>, DbErr> {
        let backend = self.db.get_database_backend();
        let query = event::Entity::find()
            .from_raw_sql(Statement::from_string(backend, fair_batch(backend, limit)));
        let rows = match &round.txn {
            Some(txn) => query.all(txn).await?,
            None => query.all(&self.db).await?,
        };
        Ok(rows.into_iter().map(pending).collect())
    }

    /// Marks `ids` sent.
    pub async fn mark_sent(&self, round: &RelayRound, ids: Vec<Uuid>) -> Result<(), DbErr> {
        if ids.is_empty() {
            return Ok(());
        }
        self.event_changes.add(ids.len() as u64);
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

    /// Parks event `id` with `reason`: the relay passes it, and its
    /// organization's later events, until an operator retries or drops it.
    pub async fn park_event(
        &self,
        round: &RelayRound,
        id: Uuid,
        reason: &str,
    ) -> Result<(), DbErr> {
        let update = event::Entity::update_many()
            .col_expr(
                event::Column::ParkedAt,
                Expr::value(Utc::now().trunc_subsecs(6)),
            )
            .col_expr(event::Column::ParkedReason, Expr::value(reason))
            .filter(event::Column::Id.eq(id));
        match &round.txn {
            Some(txn) => update.exec(txn).await?,
            None => update.exec(&self.db).await?,
        };
        Ok(())
    }
}
