//! The ceilings: the database doing the same work in its cheapest form,
//! and the service's own statements replayed without the service.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use sea_orm::ConnectionTrait;
use uuid::Uuid;
use workspace_service::storage::Storage;

use crate::{Args, cpu::*, load::*, sqlite_ceilings::*};

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
    let clients = args.ceiling_clients();
    let spread = (case.rows.len() / clients).max(1);
    let output = tokio::process::Command::new(&args.pgbench)
        .args(["-n", "-M", "prepared"])
        .args(["-c", &clients.to_string(), "-j", "2"])
        .args(["-T", &args.seconds.to_string()])
        .args(["-D", &format!("callers={}", case.rows.len())])
        .args(["-D", &format!("offset={}", case.offset)])
        .args(["-D", &format!("clients={clients}")])
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
