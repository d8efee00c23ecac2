//! The ceilings: the database doing the same work in its cheapest form,
//! and the service's own statements replayed without the service.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context, bail};
use sea_orm::{ConnectionTrait, sqlx};
use uuid::Uuid;
use workspace_service::storage::Storage;

use crate::{Args, cpu::*, load::*};

pub(crate) type CallerRow = (String, Uuid, Uuid, Uuid);

/// One case's callers as the ceilings see them.
#[derive(Clone, Copy)]
pub(crate) struct Callers<'a> {
    /// The case's name, in the SQLite loops' workspace names.
    pub(crate) name: &'a str,
    pub(crate) rows: &'a [CallerRow],
    /// Where its rows start in `bench_callers`.
    pub(crate) offset: usize,
}

/// The callers pgbench's scripts pick from, as rows they can look up:
/// every case's, numbered from its offset on.
pub(crate) async fn pgbench_callers(
    storage: &Storage,
    cases: impl IntoIterator<Item = Callers<'_>>,
) -> anyhow::Result<()> {
    let db = storage.connection();
    db.execute_unprepared(
        "DROP TABLE IF EXISTS bench_callers; CREATE TABLE bench_callers (n int PRIMARY KEY, token_hash text, user_id uuid, organization_id uuid, plan_id uuid)",
    )
    .await?;
    for case in cases {
        for (n, (hash, user, org, plan)) in case.rows.iter().enumerate() {
            db.execute_unprepared(&format!(
                "INSERT INTO bench_callers VALUES ({}, '{hash}', '{user}', '{org}', '{plan}')",
                case.offset + n + 1
            ))
            .await?;
        }
    }
    Ok(())
}

/// The cheapest form of a create's database work (the ceiling).
pub(crate) const CHEAPEST_SCRIPT: &str = "create_workspace.cheapest.pgbench.sql";

/// The statements the service sends for a create, replayed.
pub(crate) const REPLAY_SCRIPT: &str = "create_workspace.pgbench.sql";

/// PostgreSQL without the service: pgbench running `script` (in `bench/`)
/// as `case`'s callers, each client picking them by the rule of `pick`.
pub(crate) async fn pgbench(
    args: &Args,
    case: Callers<'_>,
    database_url: &str,
    script: &str,
    name: &str,
) -> anyhow::Result<Run> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(script);
    let spread = (case.rows.len() / args.concurrency.max(1)).max(1);
    let output = tokio::process::Command::new(&args.pgbench)
        .args(["-n", "-M", "prepared"])
        .args(["-c", &args.concurrency.to_string(), "-j", "2"])
        .args(["-T", &args.seconds.to_string()])
        .args(["-D", &format!("callers={}", case.rows.len())])
        .args(["-D", &format!("offset={}", case.offset)])
        .args(["-D", &format!("clients={}", args.concurrency)])
        .args(["-D", &format!("spread={}", spread)])
        .arg("-f")
        .arg(&script)
        .arg(database_url)
        .output()
        .await
        .with_context(|| format!("running {}", args.pgbench.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "pgbench failed:\n{text}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let field = |prefix: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    let transactions = field("number of transactions actually processed:")
        .context("pgbench printed no transaction count")?;
    let tps = field("tps =").context("pgbench printed no tps")?;
    let average = field("latency average =").unwrap_or(0.0);
    // pgbench reports the average only: every sample is that average.
    Ok(Run {
        name: name.into(),
        elapsed: Duration::from_secs_f64(transactions / tps),
        latencies: vec![Duration::from_secs_f64(average / 1e3); transactions as usize],
        errors: BTreeMap::new(),
        cpu: Cpu::default(),
    })
}

/// What the bare-driver loop on SQLite sends per create. Both are one
/// transaction of two statements, as the service's create (sqlx runs each
/// SQLite connection on a thread of its own, and each statement is a
/// hand-over to it and back): the counter's conditional UPDATE numbering
/// the event, then the inserts as one batch (the workspace number's
/// counter, the workspace, the OWNER membership, the event).
#[derive(Clone, Copy)]
pub(crate) enum SqliteWork {
    /// The fewest statements the work allows: every check (the token, its
    /// user, the only membership, its organization and plan) inside the
    /// counter's UPDATE, which finds the organization by them.
    Cheapest,
    /// The service's statements for a kept caller (its steady state): the
    /// counter's UPDATE with the caller's decision checked again, then
    /// the inserts with every column sea-orm writes.
    Replay,
}

/// SQLite without the service: `work` through the bare sqlx driver, with
/// the service's pool settings, at the same concurrency.
pub(crate) async fn sqlite_loop(
    args: &Args,
    database_url: &str,
    case: Callers<'_>,
    round: u64,
    work: SqliteWork,
    name: &str,
) -> anyhow::Result<Run> {
    use sqlx::sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
    };
    let options: SqliteConnectOptions = database_url.parse()?;
    // As the service's pool: no ping before each checkout.
    let pool = SqlitePoolOptions::new()
        .max_connections(10)
        .test_before_acquire(false)
        .connect_with(
            options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true),
        )
        .await?;
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
            let (pool, rows, label) = (pool.clone(), rows.clone(), label.clone());
            async move {
                let (hash, user, org, _) = &rows[pick(w, i, rows.len(), concurrency)];
                let name = format!("{label} {round} {w} {i}");
                sqlite_create(&pool, work, hash, *user, *org, &name)
                    .await
                    .map_err(|e| e.to_string())
            }
        },
    )
    .await;
    Ok(run)
}

/// One create on SQLite, as `work` says.
pub(crate) async fn sqlite_create(
    pool: &sqlx::SqlitePool,
    work: SqliteWork,
    hash: &str,
    user: Uuid,
    org: Uuid,
    name: &str,
) -> Result<(), sqlx::Error> {
    let now = chrono::Utc::now();
    let workspace = Uuid::now_v7();
    let mut txn = pool.begin().await?;
    let (organization, sequence): (Uuid, i64) = match work {
        SqliteWork::Cheapest => {
            sqlx::query_as(CHEAPEST_COUNT)
                .bind(now)
                .bind(hash)
                .fetch_one(&mut *txn)
                .await?
        }
        SqliteWork::Replay => {
            let sequence = sqlx::query_scalar(REPLAY_COUNT)
                .bind(now)
                .bind(org)
                .bind(hash)
                .bind(user)
                .bind("WORKSPACE_CREATOR")
                .bind("ROLE_BASED")
                .bind(true)
                .fetch_one(&mut *txn)
                .await?;
            (org, sequence)
        }
    };
    // The workspace's number as the service takes it (migration
    // m20261203_000006); an outbox payload the size of the service's,
    // written as sent: it is no WorkspaceEvent, and the service's relay
    // never reads a sent event (the retention purge deletes it); the
    // partial indexes of unsent events get no entry, so the ceiling errs
    // high, never low.
    let inserted: i64 = sqlx::query_scalar(INSERTS)
        .bind(workspace)
        .bind(organization)
        .bind(name)
        .bind(workspace_service::domain::normalize_name(name))
        .bind(user)
        .bind(now)
        .bind(now)
        .bind(Uuid::now_v7())
        .bind(workspace)
        .bind(user)
        .bind(now)
        .bind(now)
        .bind(organization)
        .bind(now)
        .bind(Uuid::now_v7())
        .bind(organization)
        .bind(sequence)
        .bind(workspace)
        .bind(vec![42u8; 420])
        .bind(now)
        .bind(now)
        .fetch_one(&mut *txn)
        .await?;
    debug_assert!(inserted > 0);
    txn.commit().await
}

/// The cheapest form's counter: the organization found by every check of
/// the caller's (?2 the token's hash, ?1 the time).
const CHEAPEST_COUNT: &str = "UPDATE organizations SET workspace_count = workspace_count + 1, event_sequence = event_sequence + 1, updated_at = ?1 WHERE id = (SELECT m.organization_id FROM api_tokens t JOIN users u ON u.id = t.user_id JOIN organization_memberships m ON m.user_id = u.id JOIN organizations o ON o.id = m.organization_id JOIN plans p ON p.id = o.plan_id WHERE t.token_hash = ?2 AND (t.expires_at IS NULL OR t.expires_at > ?1) AND u.validated AND (m.role IN ('OWNER', 'ADMIN') OR o.workspace_creation = 'ALL_MEMBERS' OR (o.workspace_creation = 'ROLE_BASED' AND m.role = 'WORKSPACE_CREATOR')) AND p.creation_allowed LIMIT 1) AND workspace_count < COALESCE((SELECT plans.workspace_limit FROM plans WHERE plans.id = organizations.plan_id), 2147483647) RETURNING id, event_sequence";

/// The service's counter for a kept caller (storage/create/sqlite.rs,
/// `count`, with rows.rs's `still_allowed`), as it sends it.
const REPLAY_COUNT: &str = "UPDATE organizations SET workspace_count = workspace_count + 1, event_sequence = event_sequence + 1, updated_at = ?1 WHERE id = ?2 AND workspace_count < COALESCE((SELECT plans.workspace_limit FROM plans WHERE plans.id = organizations.plan_id), 2147483647) AND (?3 IS NULL OR ( EXISTS (SELECT 1 FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?3 AND t.user_id = ?4 AND u.validated AND (t.expires_at IS NULL OR t.expires_at > ?1)) AND EXISTS (SELECT 1 FROM organization_memberships om WHERE om.organization_id = ?2 AND om.user_id = ?4 AND om.role = ?5) AND EXISTS (SELECT 1 FROM organizations o JOIN plans p ON p.id = o.plan_id WHERE o.id = ?2 AND o.workspace_creation = ?6 AND p.creation_allowed) AND (NOT ?7 OR NOT EXISTS (SELECT 1 FROM organization_memberships other WHERE other.user_id = ?4 AND other.organization_id <> ?2)))) RETURNING event_sequence";

/// The inserts, one batch: its one row is the workspace's number.
const INSERTS: &str = "UPDATE workspace_numbers SET last = last + 1;
INSERT INTO workspaces (id, organization_id, name, normalized_name, description, workspace_type, document_upload_method, billing_account_email, workspace_document_store_credentials_id, pipeline_document_store_credentials_id, file_store_credentials_id, used_storage, files_count, created_by, created_at, updated_at, revision, number) VALUES (?, ?, ?, ?, '', 'CUSTOM', 'MANUAL', '', NULL, NULL, NULL, 0, 0, ?, ?, ?, 1, (SELECT last FROM workspace_numbers));
INSERT INTO workspace_memberships (id, workspace_id, user_id, role, created_at, updated_at, organization_id, workspace_created_at) VALUES (?, ?, ?, 'OWNER', ?, ?, ?, ?);
INSERT INTO events (id, organization_id, sequence, workspace_id, event_type, payload, occurred_at, sent_at) VALUES (?, ?, ?, ?, 'workspace.created', ?, ?, ?);
SELECT last FROM workspace_numbers";

/// The two ceilings' names: the cheapest form, and the service's own
/// statements replayed.
pub(crate) fn ceiling_names(postgres: bool) -> (&'static str, &'static str) {
    if postgres {
        (
            "ceiling: pgbench, cheapest form (one statement)",
            "pgbench, the service's statements",
        )
    } else {
        (
            "ceiling: bare sqlx, cheapest form",
            "bare sqlx, the service's statements",
        )
    }
}

/// One round of both ceilings on `case`'s callers, each with the CPU it
/// cost: pgbench on PostgreSQL, the bare driver on SQLite.
pub(crate) async fn ceilings(
    args: &Args,
    case: Callers<'_>,
    database_url: &str,
    round: u64,
    pid: u32,
) -> anyhow::Result<(Run, Run)> {
    let (cheapest, replay) = ceiling_names(database_url.starts_with("postgres"));
    if database_url.starts_with("postgres") {
        let c = timed(
            pid,
            pgbench(args, case, database_url, CHEAPEST_SCRIPT, cheapest),
        );
        let c = c.await?;
        let r = timed(
            pid,
            pgbench(args, case, database_url, REPLAY_SCRIPT, replay),
        );
        return Ok((c, r.await?));
    }
    let c = timed(
        pid,
        sqlite_loop(
            args,
            database_url,
            case,
            round,
            SqliteWork::Cheapest,
            cheapest,
        ),
    );
    let c = c.await?;
    let r = timed(
        pid,
        sqlite_loop(args, database_url, case, round, SqliteWork::Replay, replay),
    );
    Ok((c, r.await?))
}
