//! SQLite's ceilings: the bare sqlx driver doing a create's work, no
//! service.
//!
//! sqlx runs each SQLite connection on a thread of its own, and every
//! command is a hand-over to that thread and back; a transaction begun
//! and committed through sqlx is two more, and a connection given back to
//! a pool two more again (a look at its state, a ping). So both loops
//! write as the service's creates do (storage/create/sqlite.rs): on one
//! connection kept for writes, which their tasks take in turns (SQLite
//! has one writer at a time), BEGIN and COMMIT sent inside the batches.

use std::{sync::Arc, time::Duration};

use sea_orm::sqlx::{
    self, ConnectOptions, SqliteConnection,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous},
};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::{Args, ceilings::Callers, load::*};

/// What the bare-driver loop on SQLite sends per create.
#[derive(Clone, Copy)]
pub(crate) enum SqliteWork {
    /// The fewest trips the work allows: one batch. BEGIN IMMEDIATE; the
    /// counter's conditional UPDATE, which finds the organization by every
    /// check (the token, its user, the only membership, its organization
    /// and plan); then each write only if the one before it wrote
    /// (`changes()`): the workspace number's counter, the workspace, the
    /// OWNER membership, the event; COMMIT.
    Cheapest,
    /// The service's statements for a kept caller (its steady state), in
    /// its two trips: BEGIN IMMEDIATE with the counter's UPDATE, the
    /// caller's decision checked again; then the inserts with every column
    /// sea-orm writes, and COMMIT.
    Replay,
}

/// SQLite without the service: `work` through the bare sqlx driver, with
/// the service's connection settings, at the same concurrency.
pub(crate) async fn sqlite_loop(
    args: &Args,
    database_url: &str,
    case: Callers<'_>,
    round: u64,
    work: SqliteWork,
    name: &str,
) -> anyhow::Result<Run> {
    let options: SqliteConnectOptions = database_url.parse()?;
    let writer = options
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(30))
        .foreign_keys(true)
        .connect()
        .await?;
    let writer = Arc::new(Mutex::new(writer));
    let rows = Arc::new(case.rows.to_vec());
    // Workspace names tell the two loops' rows apart.
    let label = match work {
        SqliteWork::Cheapest => "cheapest",
        SqliteWork::Replay => "replay",
    };
    let (label, concurrency) = (format!("{label} {}", case.name), args.concurrency);
    let run = measure(
        name,
        args.concurrency,
        Duration::from_secs(args.seconds),
        move |w, i| {
            let (writer, rows, label) = (writer.clone(), rows.clone(), label.clone());
            async move {
                let (hash, user, org, _) = &rows[pick(w, i, rows.len(), concurrency)];
                let name = format!("{label} {round} {w} {i}");
                let mut conn = writer.lock().await;
                let created = sqlite_create(&mut conn, work, hash, *user, *org, &name).await;
                if created.is_err() {
                    let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
                }
                created.map_err(|e| e.to_string())
            }
        },
    )
    .await;
    Ok(run)
}

/// One create on SQLite, as `work` says.
async fn sqlite_create(
    conn: &mut SqliteConnection,
    work: SqliteWork,
    hash: &str,
    user: Uuid,
    org: Uuid,
    name: &str,
) -> Result<(), sqlx::Error> {
    let now = chrono::Utc::now();
    let workspace = Uuid::now_v7();
    // An outbox payload the size of the service's, written as sent: it is
    // no WorkspaceEvent, and the service's relay never reads a sent event
    // (the retention purge deletes it); the partial indexes of unsent
    // events get no entry, so the ceiling errs high, never low.
    let payload = vec![42u8; 420];
    let normalized = workspace_service::domain::normalize_name(name);
    match work {
        SqliteWork::Cheapest => {
            let numbers: Vec<i64> = sqlx::query_scalar(CHEAPEST)
                .bind(now)
                .bind(hash)
                .bind(org)
                .bind(workspace)
                .bind(name)
                .bind(normalized)
                .bind(user)
                .bind(Uuid::now_v7())
                .bind(Uuid::now_v7())
                .bind(payload)
                .fetch_all(&mut *conn)
                .await?;
            if numbers.len() != 1 {
                return Err(sqlx::Error::RowNotFound);
            }
        }
        SqliteWork::Replay => {
            let sequence: Vec<i64> = sqlx::query_scalar(REPLAY_COUNT)
                .bind(now)
                .bind(org)
                .bind(hash)
                .bind(user)
                .bind("WORKSPACE_CREATOR")
                .bind("ROLE_BASED")
                .bind(true)
                .fetch_all(&mut *conn)
                .await?;
            let [sequence] = sequence[..] else {
                return Err(sqlx::Error::RowNotFound);
            };
            let numbers: Vec<i64> = sqlx::query_scalar(INSERTS)
                .bind(workspace)
                .bind(org)
                .bind(name)
                .bind(normalized)
                .bind(user)
                .bind(now)
                .bind(now)
                .bind(Uuid::now_v7())
                .bind(workspace)
                .bind(user)
                .bind(now)
                .bind(now)
                .bind(org)
                .bind(now)
                .bind(Uuid::now_v7())
                .bind(org)
                .bind(sequence)
                .bind(workspace)
                .bind(payload)
                .bind(now)
                .bind(now)
                .fetch_all(&mut *conn)
                .await?;
            if numbers.len() != 1 {
                return Err(sqlx::Error::RowNotFound);
            }
        }
    }
    Ok(())
}

/// The cheapest form, one batch: ?1 the time, ?2 the token's hash, ?3 the
/// organization (the counter's UPDATE counts only if the token's only
/// membership is in it), ?4 the workspace, ?5 and ?6 its name and key,
/// ?7 the user, ?8 the membership, ?9 the event, ?10 its payload. Its one
/// row is the workspace's number (migration m20261203_000006).
const CHEAPEST: &str = "BEGIN IMMEDIATE;
UPDATE organizations SET workspace_count = workspace_count + 1, event_sequence = event_sequence + 1, updated_at = ?1 WHERE id = ?3 AND id = (SELECT m.organization_id FROM api_tokens t JOIN users u ON u.id = t.user_id JOIN organization_memberships m ON m.user_id = u.id JOIN organizations o ON o.id = m.organization_id JOIN plans p ON p.id = o.plan_id WHERE t.token_hash = ?2 AND (t.expires_at IS NULL OR t.expires_at > ?1) AND u.validated AND (m.role IN ('OWNER', 'ADMIN') OR o.workspace_creation = 'ALL_MEMBERS' OR (o.workspace_creation = 'ROLE_BASED' AND m.role = 'WORKSPACE_CREATOR')) AND p.creation_allowed LIMIT 1) AND workspace_count < COALESCE((SELECT plans.workspace_limit FROM plans WHERE plans.id = organizations.plan_id), 2147483647);
UPDATE workspace_numbers SET last = last + 1 WHERE changes() > 0;
INSERT INTO workspaces (id, organization_id, name, normalized_name, description, workspace_type, document_upload_method, billing_account_email, workspace_document_store_credentials_id, pipeline_document_store_credentials_id, file_store_credentials_id, used_storage, files_count, created_by, created_at, updated_at, revision, number) SELECT ?4, ?3, ?5, ?6, '', 'CUSTOM', 'MANUAL', '', NULL, NULL, NULL, 0, 0, ?7, ?1, ?1, 1, last FROM workspace_numbers WHERE changes() > 0 RETURNING number;
INSERT INTO workspace_memberships (id, workspace_id, user_id, role, created_at, updated_at, organization_id, workspace_created_at) SELECT ?8, ?4, ?7, 'OWNER', ?1, ?1, ?3, ?1 WHERE changes() > 0;
INSERT INTO events (id, organization_id, sequence, workspace_id, event_type, payload, occurred_at, sent_at) SELECT ?9, ?3, event_sequence, ?4, 'workspace.created', ?10, ?1, ?1 FROM organizations WHERE id = ?3 AND changes() > 0;
COMMIT";

/// The service's first trip for a kept caller (storage/create/sqlite.rs,
/// `count`, with rows.rs's `still_allowed`), as it sends it.
const REPLAY_COUNT: &str = "BEGIN IMMEDIATE;
UPDATE organizations SET workspace_count = workspace_count + 1, event_sequence = event_sequence + 1, updated_at = ?1 WHERE id = ?2 AND workspace_count < COALESCE((SELECT plans.workspace_limit FROM plans WHERE plans.id = organizations.plan_id), 2147483647) AND (?3 IS NULL OR ( EXISTS (SELECT 1 FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?3 AND t.user_id = ?4 AND u.validated AND (t.expires_at IS NULL OR t.expires_at > ?1)) AND EXISTS (SELECT 1 FROM organization_memberships om WHERE om.organization_id = ?2 AND om.user_id = ?4 AND om.role = ?5) AND EXISTS (SELECT 1 FROM organizations o JOIN plans p ON p.id = o.plan_id WHERE o.id = ?2 AND o.workspace_creation = ?6 AND p.creation_allowed) AND (NOT ?7 OR NOT EXISTS (SELECT 1 FROM organization_memberships other WHERE other.user_id = ?4 AND other.organization_id <> ?2)))) RETURNING event_sequence";

/// The service's second trip: the inserts and COMMIT, one batch; its one
/// row is the workspace's number.
const INSERTS: &str = "UPDATE workspace_numbers SET last = last + 1;
INSERT INTO workspaces (id, organization_id, name, normalized_name, description, workspace_type, document_upload_method, billing_account_email, workspace_document_store_credentials_id, pipeline_document_store_credentials_id, file_store_credentials_id, used_storage, files_count, created_by, created_at, updated_at, revision, number) VALUES (?, ?, ?, ?, '', 'CUSTOM', 'MANUAL', '', NULL, NULL, NULL, 0, 0, ?, ?, ?, 1, (SELECT last FROM workspace_numbers));
INSERT INTO workspace_memberships (id, workspace_id, user_id, role, created_at, updated_at, organization_id, workspace_created_at) VALUES (?, ?, ?, 'OWNER', ?, ?, ?, ?);
INSERT INTO events (id, organization_id, sequence, workspace_id, event_type, payload, occurred_at, sent_at) VALUES (?, ?, ?, ?, 'workspace.created', ?, ?, ?);
SELECT last FROM workspace_numbers;
COMMIT";
