//! The create on PostgreSQL: one statement, one round trip.

use std::{sync::LazyLock, time::Duration};

use sea_orm::{
    DbErr,
    sqlx::{self, PgConnection, Row},
};
use tracing::Instrument;

use super::rows::{BELOW_LIMIT, Counted, CreateRows, still_allowed};
use crate::storage::{
    connection::{Db, from_sqlx},
    deadline::{self, CallClock},
    errors::{deadline_passed, is_deadline, sql_state},
};

/// How much earlier than the call's deadline the statement stops waiting:
/// this, and a tenth of the time left. A statement that gave up waiting
/// must say so before the call's timer fires, or the call, not knowing,
/// is answered OUTCOME_UNKNOWN instead of DEADLINE_EXCEEDED; on two busy
/// cores that answer can take tens of milliseconds to come back.
const DEADLINE_MARGIN: Duration = Duration::from_millis(5);

/// The create on PostgreSQL as one statement: one round trip, its own
/// transaction. For a kept caller, its decision checked again (`still`,
/// see `Recheck`); the conditional counter UPDATE (check 9; it locks the
/// organization's row, so its creates, and its events' numbers, go one at
/// a time) and, only when it counted, the workspace (check 10 is the
/// unique index: its violation undoes the whole statement), the
/// memberships, the idempotency record and the event, numbered by the same
/// UPDATE. One row: whether the kept caller's decision still holds, and
/// the workspace's number when one was written.
///
/// Four forms, by whether the caller was kept (the decision checked again)
/// and whether the call has a request id (an idempotency record): a form
/// holds only the parts its creates use, since every subquery and every
/// table written costs PostgreSQL time at each execution even when it
/// finds or writes nothing (BENCHMARKS.md, 2026-12-05, second session).
/// Their parameters are numbered alike; a form leaves some unused. A
/// kept caller's call with a request id is decided on a fresh read
/// (`workspaces::create`), so the fourth form is not sent today; it is
/// built with the others so that this write stays whole whatever its
/// caller decides.
static ONE_STATEMENT: LazyLock<[String; 4]> = LazyLock::new(|| {
    [(false, false), (false, true), (true, false), (true, true)]
        .map(|(recheck, remember)| one_statement(recheck, remember))
});

/// `ONE_STATEMENT`'s form for `rows`.
fn one_statement_for(rows: &CreateRows) -> &'static str {
    let form = 2 * usize::from(rows.recheck.is_some()) + usize::from(rows.record.is_some());
    ONE_STATEMENT[form].as_str()
}

fn one_statement(recheck: bool, remember: bool) -> String {
    let still_allowed = if recheck {
        still_allowed(["$29::text", "$13", "$2", "$30", "$31", "$1", "$32::boolean"])
    } else {
        "true".to_owned()
    };
    let remembered = if remember {
        r#", remembered AS (
    INSERT INTO idempotency_records (id, user_id, request_id, request_fingerprint, workspace_id, created_at)
    SELECT $20, $13, $21, $22, created.id, $1 FROM created
)"#
    } else {
        ""
    };
    format!(
        r#"WITH still AS (
    SELECT {still_allowed} AS allowed
), counted AS (
    UPDATE organizations
       SET workspace_count = workspace_count + 1, event_sequence = event_sequence + 1, updated_at = $1
     WHERE id = $2 AND (SELECT allowed FROM still) AND {BELOW_LIMIT}
       AND ($28::text IS NULL OR set_config('lock_timeout', $28, true) IS NOT NULL)
 RETURNING event_sequence
), created AS (
    INSERT INTO workspaces (id, organization_id, name, normalized_name, description, workspace_type,
                            document_upload_method, billing_account_email,
                            workspace_document_store_credentials_id, pipeline_document_store_credentials_id,
                            file_store_credentials_id, used_storage, files_count, created_by,
                            created_at, updated_at, revision)
    SELECT $3, $2, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0, 0, $13, $1, $1, 1 FROM counted
     WHERE $26::bigint IS NULL OR workspace_call_in_time(statement_timestamp() + $26 * interval '1 microsecond')
 RETURNING id, number
), members AS (
    INSERT INTO workspace_memberships (id, workspace_id, user_id, role, created_at, updated_at,
                                       organization_id, workspace_created_at)
    SELECT m.id, created.id, m.user_id, m.role, $1, $1, $2, $1
      FROM created, (VALUES ($14::uuid, $15::uuid, $16::text), ($17::uuid, $18::uuid, $19::text)) AS m (id, user_id, role)
     WHERE m.id IS NOT NULL
){remembered}, recorded AS (
    INSERT INTO events (id, organization_id, sequence, workspace_id, event_type, payload, occurred_at, traceparent)
    SELECT $23, $2, counted.event_sequence, created.id, $24, $25, $1, $27 FROM counted, created
)
SELECT still.allowed, created.number FROM still LEFT JOIN created ON true"#
    )
}

/// The create on PostgreSQL (`ONE_STATEMENT`): the workspace's number (its
/// identity column), or `None`: the organization is at its limit.
///
/// Once sent, the statement runs to its end even if the call is dropped.
/// So that it does not wait past the call, the statement is given the
/// time the call has left when it is sent (less a margin) and, once the
/// UPDATE holds the organization's row, `workspace_call_in_time`
/// (migration m20261129_000004) refuses to go on past it, which undoes the
/// whole statement. The time counts from the statement's start on the
/// database's clock, so the two clocks are never compared; the connection
/// is taken from the pool first, so the wait for one is not counted as
/// time left. A statement that passed the check may still commit after
/// the deadline: it is marked (`deadline::may_write`) before it is sent,
/// and a call cut while it runs is answered OUTCOME_UNKNOWN, not
/// DEADLINE_EXCEEDED. A call its client abandons without a deadline is not
/// seen by the database: its create ends whole, or not at all.
///
/// Behind a transaction pooler the statement runs in a transaction (as
/// every statement there does), committed only if the call still has
/// time once the statement is done.
///
/// The statement runs in a task of its own, to its end: a call dropped at
/// its deadline does not drop a statement on the wire (which could leave
/// its connection unusable), and the statement, bounded by the call's
/// time left, gives its connection back as soon as it ends.
pub(super) async fn write_in_one_statement(
    db: &Db,
    rows: CreateRows,
) -> (CreateRows, Result<Counted, DbErr>) {
    let db = db.clone();
    let clock = deadline::current();
    let task = tokio::spawn(
        async move {
            let written = write_to_the_end(&db, &rows, clock.as_ref()).await;
            (rows, written)
        }
        .in_current_span(),
    );
    task.await
        .unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()))
}

async fn write_to_the_end(
    db: &Db,
    rows: &CreateRows,
    clock: Option<&CallClock>,
) -> Result<Counted, DbErr> {
    let mut conn = db.create_connection().await?;
    if db.isolates_statements() {
        return write_in_a_transaction(db, &mut conn, rows, clock).await;
    }
    // Marked before the time left is read (see `deadline::may_write`).
    deadline::may_write(clock);
    let time_left = time_left(clock);
    let statement = sqlx::query(sqlx::AssertSqlSafe(one_statement_for(rows)));
    // The statement commits itself.
    let counted = deadline::committing(clock, async {
        bind(statement, rows, time_left)
            .fetch_one(&mut *conn)
            .await
            .map_err(from_sqlx)
    })
    .await;
    // Back whole (rows, or the database's refusal): the next create may
    // have the connection as it is (`handoff`).
    let whole = match &counted {
        Ok(_) => true,
        Err(err) => sql_state(err).is_some(),
    };
    if whole {
        db.create_done(conn);
    }
    match counted {
        Err(err) if clock.is_some() && sql_state(&err).is_some_and(|code| is_deadline(&code)) => {
            // The lock came too late: the call's timer answers.
            tokio::time::sleep_until(clock.map_or_else(tokio::time::Instant::now, |c| c.at)).await;
            Err(err)
        }
        Err(err) => Err(err),
        Ok(row) => {
            let counted = counted_of(&row)?;
            if !matches!(counted, Counted::Written(_)) {
                deadline::wrote_nothing(clock);
            }
            Ok(counted)
        }
    }
}

/// `ONE_STATEMENT`'s row.
fn counted_of(row: &sqlx::postgres::PgRow) -> Result<Counted, DbErr> {
    let allowed: Option<bool> = row.try_get(0).map_err(from_sqlx)?;
    let number: Option<i64> = row.try_get(1).map_err(from_sqlx)?;
    Ok(match (allowed, number) {
        (_, Some(number)) => Counted::Written(number),
        (Some(true), None) => Counted::LimitReached,
        (_, None) => Counted::CallerChanged,
    })
}

/// The time the call has left, less `DEADLINE_MARGIN` and a tenth.
fn time_left(clock: Option<&CallClock>) -> Option<Duration> {
    clock.map(|clock| {
        let left = clock
            .at
            .saturating_duration_since(tokio::time::Instant::now());
        left.saturating_sub(DEADLINE_MARGIN + left / 10)
    })
}

/// The create behind a transaction pooler: the statement in a transaction
/// of its own (BEGIN, the limits, the statement, COMMIT), the call's time
/// left as its lock and statement timeouts. The deadline is looked at
/// again before COMMIT: a call whose time ran out while the statement ran
/// rolls back, so it wrote nothing, and only a COMMIT sent in time can
/// make its outcome unknown.
async fn write_in_a_transaction(
    db: &Db,
    conn: &mut PgConnection,
    rows: &CreateRows,
    clock: Option<&CallClock>,
) -> Result<Counted, DbErr> {
    let mut txn = db.begin_on(conn).await?;
    if let Some(left) = time_left(clock) {
        let ms = left.as_millis().max(1);
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "SET LOCAL lock_timeout = '{ms}ms'; SET LOCAL statement_timeout = '{ms}ms'"
        )))
        .execute(&mut *txn)
        .await
        .map_err(from_sqlx)?;
    }
    let statement = sqlx::query(sqlx::AssertSqlSafe(one_statement_for(rows)));
    let row = bind(statement.persistent(false), rows, None)
        .fetch_one(&mut *txn)
        .await
        .map_err(from_sqlx)?;
    let counted = counted_of(&row)?;
    if !matches!(counted, Counted::Written(_)) {
        // At the limit, or the caller changed: nothing to keep.
        txn.rollback().await.map_err(from_sqlx)?;
        return Ok(counted);
    }
    // Marked before the deadline is looked at (see `deadline::may_write`).
    deadline::may_write(clock);
    if time_left(clock).is_some_and(|left| left.is_zero()) {
        let rolled_back = txn.rollback().await.map_err(from_sqlx);
        deadline::wrote_nothing(clock);
        rolled_back?;
        return Err(deadline_passed());
    }
    deadline::committing(clock, async { txn.commit().await.map_err(from_sqlx) }).await?;
    Ok(counted)
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// `ONE_STATEMENT`'s parameters.
fn bind<'q>(query: PgQuery<'q>, rows: &'q CreateRows, time_left: Option<Duration>) -> PgQuery<'q> {
    let w = &rows.workspace;
    let mut query = query
        .bind(w.created_at)
        .bind(w.organization_id)
        .bind(w.id)
        .bind(&w.name)
        .bind(&w.normalized_name)
        .bind(&w.description)
        .bind(&w.workspace_type)
        .bind(&w.document_upload_method)
        .bind(&w.billing_account_email)
        .bind(w.workspace_document_store_credentials_id)
        .bind(w.pipeline_document_store_credentials_id)
        .bind(w.file_store_credentials_id)
        .bind(w.created_by);
    debug_assert!(
        rows.memberships.len() <= 2,
        "the creator and a first member"
    );
    for i in 0..2 {
        let member = rows.memberships.get(i);
        query = query
            .bind(member.map(|m| m.id))
            .bind(member.map(|m| m.user_id))
            .bind(member.map(|m| m.role.as_str()));
    }
    let record = rows.record.as_ref();
    query
        .bind(record.map(|r| r.id))
        .bind(record.map(|r| r.request_id.as_str()))
        .bind(record.map(|r| r.request_fingerprint.as_str()))
        .bind(rows.event.id)
        .bind(&rows.event.event_type)
        .bind(&rows.event.payload)
        .bind(time_left.map(|left| left.as_micros() as i64))
        .bind(rows.event.traceparent.as_deref())
        // lock_timeout: 0 would mean none.
        .bind(time_left.map(|left| format!("{}ms", left.as_millis().max(1))))
        .bind(rows.recheck.as_ref().map(|r| r.token_hash.as_str()))
        .bind(rows.recheck.as_ref().map(|r| r.role))
        .bind(rows.recheck.as_ref().map(|r| r.policy))
        .bind(rows.recheck.as_ref().map(|r| r.only_organization))
}
