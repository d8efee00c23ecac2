//! `list-growth`: what a ListWorkspaces page costs when the caller sees a
//! lot (issue 29). Loads, with SQL, a database of `--workspaces`
//! workspaces: half in one organization where a MEMBER has
//! `--memberships` of them (and is ADMIN of 5 other organizations), half
//! spread over `--organizations` organizations of one OWNER; every
//! workspace has an OWNER membership of its creator. Then times
//! `Storage::visible_workspaces` (the List's statement and the page's
//! views) for each caller, first page and pages deep; on PostgreSQL prints
//! EXPLAIN (ANALYZE, BUFFERS) of the statement at its 1st and 7th
//! execution (the 6th and later may use the generic plan); on SQLite times
//! it again after `PRAGMA optimize`.
//!
//! ```sh
//! createdb -h 127.0.0.1 -U postgres list_growth
//! cargo run --release -p workspace-bench --bin list-growth -- --database postgres://postgres@127.0.0.1:5432/list_growth
//! cargo run --release -p workspace-bench --bin list-growth -- --database sqlite:///tmp/list-growth.db
//! ```

use std::time::{Duration, Instant};

use clap::Parser;
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
use uuid::Uuid;
use workspace_service::{
    domain::Cursor,
    storage::{Storage, first_sql},
};

#[derive(Debug, Parser)]
#[command(about = "The cost of a ListWorkspaces page as what the caller sees grows")]
struct Args {
    /// `sqlite://FILE` or `postgres://…` of an empty database.
    #[arg(long)]
    database: String,
    #[arg(long, default_value_t = 200_000)]
    workspaces: u64,
    /// The MEMBER's workspace memberships, in its one organization.
    #[arg(long, default_value_t = 10_000)]
    memberships: u64,
    /// The organizations the OWNER runs.
    #[arg(long, default_value_t = 1_000)]
    organizations: u64,
    /// Timed calls per measurement.
    #[arg(long, default_value_t = 30)]
    calls: usize,
    /// The database was loaded by an earlier run (with the same sizes):
    /// measure it again, as it is (to compare two versions of the
    /// statement on the same rows).
    #[arg(long)]
    loaded: bool,
}

const OWNER: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0001);
const MEMBER: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0002);
const CREATOR: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0003);
const PLAN: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0004);
const BIG: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0005);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let storage = Storage::connect(&args.database, 4).await?;
    let db = storage.connection();
    if !args.loaded {
        storage.migrate().await?;
        let started = Instant::now();
        load(&storage, &args).await?;
        println!("loaded in {:.1?}", started.elapsed());
        if db.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared("VACUUM ANALYZE").await?;
        }
    }
    measure(&storage, &args, "").await?;
    if db.get_database_backend() == DbBackend::Postgres {
        explain(&storage, OWNER, "OWNER").await?;
        explain(&storage, MEMBER, "MEMBER").await?;
    } else {
        db.execute_unprepared("PRAGMA optimize=0x10002").await?;
        measure(&storage, &args, " after PRAGMA optimize").await?;
    }
    Ok(())
}

/// The rows, in one transaction (one connection: temporary tables).
async fn load(storage: &Storage, args: &Args) -> anyhow::Result<()> {
    let backend = storage.connection().get_database_backend();
    let new_id = match backend {
        DbBackend::Postgres => "gen_random_uuid()",
        _ => "randomblob(16)",
    };
    // The time `n` milliseconds into 2026, as the service writes times.
    let at_ms = |n: &str| match backend {
        DbBackend::Postgres => {
            format!("(timestamptz '2026-01-01 00:00:00+00' + {n} * interval '1 millisecond')")
        }
        _ => format!(
            "strftime('%Y-%m-%dT%H:%M:%f+00:00', '2026-01-01', '+' || ({n} / 1000.0) || ' seconds')"
        ),
    };
    let (at, start, at_x) = (at_ms("n"), at_ms("0"), at_ms("x.n"));
    let id = |id: Uuid| match backend {
        DbBackend::Postgres => format!("'{id}'::uuid"),
        _ => format!("x'{}'", id.simple()),
    };
    let (owner, member, creator, plan, big) =
        (id(OWNER), id(MEMBER), id(CREATOR), id(PLAN), id(BIG));
    let (w, k, m) = (args.workspaces, args.organizations, args.memberships);
    let every = (w / 2 / m.max(1)).max(1);
    let series = |to: u64| {
        format!(
            "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {to}) SELECT n, {new_id} AS id FROM s"
        )
    };
    let statements = [
        format!("CREATE TEMPORARY TABLE g_orgs AS {}", series(k)),
        format!("CREATE TEMPORARY TABLE g_ws AS {}", series(w)),
        format!(
            "INSERT INTO plans (id, name, creation_allowed, workspace_limit, created_at) VALUES ({plan}, 'growth', true, NULL, {})",
            start
        ),
        format!(
            "INSERT INTO users (id, email, display_name, validated, created_at) SELECT u.id, u.email, u.email, true, {} FROM (SELECT {owner} AS id, 'owner@growth' AS email UNION ALL SELECT {member}, 'member@growth' UNION ALL SELECT {creator}, 'creator@growth') u",
            start
        ),
        format!(
            "INSERT INTO organizations (id, name, slug, plan_id, workspace_creation, workspace_count, created_at, updated_at, event_sequence) SELECT {big}, 'big', 'big', {plan}, 'ROLE_BASED', {}, {t}, {t}, 0",
            w - w / 2,
            t = start
        ),
        format!(
            "INSERT INTO organizations (id, name, slug, plan_id, workspace_creation, workspace_count, created_at, updated_at, event_sequence) SELECT id, 'org ' || n, 'org-' || n, {plan}, 'ROLE_BASED', 0, {at}, {at}, 0 FROM g_orgs"
        ),
        format!(
            "INSERT INTO organization_memberships (id, organization_id, user_id, role, created_at) SELECT {new_id}, id, {owner}, 'OWNER', {at} FROM g_orgs"
        ),
        format!(
            "INSERT INTO organization_memberships (id, organization_id, user_id, role, created_at) SELECT {new_id}, id, {member}, 'ADMIN', {at} FROM g_orgs WHERE n <= 5"
        ),
        format!(
            "INSERT INTO organization_memberships (id, organization_id, user_id, role, created_at) SELECT {new_id}, {big}, u, 'MEMBER', {} FROM (SELECT {member} AS u UNION ALL SELECT {creator}) c",
            start
        ),
        // Even workspaces in the big organization, odd ones round the others.
        format!(
            "INSERT INTO workspaces (id, organization_id, name, normalized_name, description, workspace_type, document_upload_method, billing_account_email, used_storage, files_count, created_by, created_at, updated_at, revision, number) SELECT x.id, CASE WHEN x.n % 2 = 0 THEN {big} ELSE o.id END, 'w ' || x.n, 'w ' || x.n, '', 'CUSTOM', 'MANUAL', '', 0, 0, {creator}, {at_x}, {at_x}, 1, x.n FROM g_ws x JOIN g_orgs o ON o.n = 1 + (x.n / 2) % {k}"
        ),
        format!(
            "INSERT INTO workspace_memberships (id, workspace_id, user_id, role, created_at, updated_at, organization_id, workspace_created_at) SELECT {new_id}, w.id, {creator}, 'OWNER', w.created_at, w.created_at, w.organization_id, w.created_at FROM workspaces w"
        ),
        format!(
            "INSERT INTO workspace_memberships (id, workspace_id, user_id, role, created_at, updated_at, organization_id, workspace_created_at) SELECT {new_id}, w.id, {member}, 'MEMBER', w.created_at, w.created_at, w.organization_id, w.created_at FROM g_ws x JOIN workspaces w ON w.id = x.id WHERE x.n % 2 = 0 AND (x.n / 2) % {every} = 0"
        ),
    ];
    let txn = storage.connection().begin().await?;
    for statement in statements {
        txn.execute_unprepared(&statement).await?;
    }
    txn.commit().await?;
    Ok(())
}

/// p50 and p99 of a page for each caller: the first page, and pages from
/// the middle of what it sees.
async fn measure(storage: &Storage, args: &Args, when: &str) -> anyhow::Result<()> {
    for (name, caller, organization) in [
        ("OWNER of the organizations", OWNER, None),
        ("MEMBER (10k memberships + 5 ADMIN)", MEMBER, None),
        ("MEMBER, its organization only", MEMBER, Some(BIG)),
    ] {
        for size in [50u64, 1000] {
            let mut first = Vec::new();
            let mut deep = Vec::new();
            let mut cursor: Option<Cursor> = None;
            for call in 0..args.calls {
                let started = Instant::now();
                let page = storage
                    .visible_workspaces(caller, organization, cursor, size + 1)
                    .await?;
                let took = started.elapsed();
                if call == 0 {
                    first.push(took);
                } else {
                    deep.push(took);
                }
                let last = page.get(size as usize - 1).or(page.last());
                cursor = last.map(|w| Cursor {
                    created_at: w.created_at,
                    id: w.id.expect("a stored workspace"),
                });
            }
            for _ in 1..args.calls.min(10) {
                let started = Instant::now();
                storage
                    .visible_workspaces(caller, organization, None, size + 1)
                    .await?;
                first.push(started.elapsed());
            }
            println!(
                "{name}, page {size}{when}: first page p50 {:.1?} p99 {:.1?}; next pages p50 {:.1?} p99 {:.1?}",
                quantile(&mut first, 0.5),
                quantile(&mut first, 0.99),
                quantile(&mut deep, 0.5),
                quantile(&mut deep, 0.99),
            );
        }
    }
    Ok(())
}

fn quantile(times: &mut [Duration], q: f64) -> Duration {
    times.sort();
    let at = ((times.len() as f64 - 1.0) * q).round() as usize;
    times.get(at).copied().unwrap_or_default()
}

/// EXPLAIN (ANALYZE, BUFFERS) of the List's statement, prepared once on
/// one connection, at its 1st and 7th execution, for a page in the middle
/// of what `caller` sees.
async fn explain(storage: &Storage, caller: Uuid, name: &str) -> anyhow::Result<()> {
    let txn = storage.connection().begin().await?;
    let middle = txn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT created_at::text AS at, id::text AS id FROM workspaces WHERE number = (SELECT max(number) / 2 FROM workspaces)",
        ))
        .await?
        .expect("a workspace in the middle");
    let (at, id): (String, String) = (middle.try_get("", "at")?, middle.try_get("", "id")?);
    txn.execute_unprepared(&format!(
        "PREPARE page (uuid, bigint, timestamptz, uuid) AS {}",
        first_sql(DbBackend::Postgres, true, false)
    ))
    .await?;
    let execute = format!("EXECUTE page ('{caller}', 51, '{at}', '{id}')");
    for execution in 1..=7 {
        if execution == 1 || execution == 7 {
            let plan = txn
                .query_all_raw(Statement::from_string(
                    DbBackend::Postgres,
                    format!("EXPLAIN (ANALYZE, BUFFERS) {execute}"),
                ))
                .await?;
            println!("--- {name}, page of 50 after {at}, execution {execution}:");
            for row in plan {
                println!("{}", row.try_get::<String>("", "QUERY PLAN")?);
            }
        } else {
            txn.execute_unprepared(&execute).await?;
        }
    }
    txn.rollback().await?;
    Ok(())
}
