//! `workspace-bench`: CreateWorkspace under load, next to the ceilings that
//! bound it, measured in one run on one machine (shared machines are noisy:
//! only ratios within a run mean much).
//!
//! 1. Writes organizations, users and API tokens to the database for each
//!    case, then starts the release server on it as its own process. By
//!    default two cases: uncontended (256 organizations of one user, at
//!    least one per call in flight, each worker calling as users of its
//!    own, so no two calls in flight touch one organization) and
//!    contended (16 organizations × 4 users: several calls in flight on
//!    one organization's counter at once); `--organizations` or
//!    `--users-per-organization` runs one custom case instead.
//! 2. Drives CreateWorkspace with fresh names from the case's users at a
//!    fixed concurrency for a fixed time: over gRPC, then over JSON/HTTP.
//! 3. Measures the ceilings: an empty RPC through the same server stack
//!    (the health check); the database doing the same work in its cheapest
//!    form (pgbench with `bench/create_workspace.cheapest.pgbench.sql`, one
//!    statement, on PostgreSQL; the fewest statements through the bare
//!    sqlx driver on SQLite), the ceiling the service is measured against;
//!    and, beside it, the service's own statements replayed without the
//!    service (`bench/create_workspace.pgbench.sql`; the same loop on
//!    SQLite), which tells the statements' cost from the rest.
//!    Steps 2 and 3 take turns for several rounds (in each: the first
//!    case's service and its ceilings, the second's, then the empty call),
//!    so that a noisy neighbour slows the cases and their ceilings alike.
//! 4. Prints, per case, calls/s, p50/p90/p99, errors by code and CPU per
//!    call of each measurement, the service's throughput as a share of
//!    each ceiling and the database's CPU per create as a share of the
//!    ceiling's, round by round; then the server's peak resident memory
//!    and a table of the cases side by side.
//!
//! With `--baseline-server OTHER`, a second build (main's before a change)
//! runs beside `--server` on the same database and is measured over gRPC
//! right after it in every round, on the same callers: the two builds'
//! creates/s by round and their CPU per create, what a change is worth.
//! With `--fastapi PYTHON`, the same create written with FastAPI,
//! SQLAlchemy's async ORM and asyncpg (`bench/fastapi/app.py`, two uvicorn
//! workers) runs on the same database and is measured over HTTP right
//! after the service's HTTP creates in every round (issue 30's
//! comparison).
//!
//! ```sh
//! cargo build --release
//! cargo run --release -p workspace-bench -- --database sqlite
//! cargo run --release -p workspace-bench -- --database postgres://postgres@127.0.0.1:5432/bench
//! ```

mod cases;
mod ceilings;
mod cpu;
mod fastapi;
mod load;
mod report;
mod serving;
mod sqlite_ceilings;

use cases::*;
use ceilings::*;
use cpu::*;
use load::*;
use report::report;
use serving::*;

use std::{net::SocketAddr, path::PathBuf, process::Stdio, time::Duration};

use anyhow::Context;
use clap::Parser;
use uuid::Uuid;
use workspace_service::storage::Storage;

/// What `--creates-only` sends its creates over.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Over {
    Grpc,
    Http,
}

#[derive(Debug, Parser)]
#[command(about = "Load on CreateWorkspace, with the ceilings that bound it")]
struct Args {
    /// `sqlite` (a fresh file in a temporary directory) or a
    /// `postgres://…` URL of an existing database.
    #[arg(long, default_value = "sqlite")]
    database: String,
    /// The server binary to start.
    #[arg(long, default_value = "target/release/workspace-service")]
    server: PathBuf,
    /// Calls in flight at any time.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds each measurement runs in each round.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Rounds of measurements (each case's service, then its ceilings),
    /// taken in turn.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
    /// Seconds of unrecorded gRPC load first (pools fill, PostgreSQL's
    /// buffers and plans warm up).
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// Run one custom case of this many organizations instead of the two
    /// default cases (uncontended: 256 × 1 user; contended: 16 × 4).
    #[arg(long)]
    organizations: Option<usize>,
    /// Run one custom case of this many users per organization (API
    /// tokens) instead of the two default cases.
    #[arg(long)]
    users_per_organization: Option<usize>,
    /// HTTP/2 connections the gRPC load is spread over.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// The server's RUST_LOG (its default, `info`, logs one line per call).
    #[arg(long, default_value = "info")]
    server_log: String,
    /// More of the server's environment, NAME=VALUE (repeatable): to
    /// measure what a setting costs.
    #[arg(long = "server-env", value_parser = parse_env)]
    server_env: Vec<(String, String)>,
    /// pgbench, for the PostgreSQL ceiling.
    #[arg(long, default_value = "pgbench")]
    pgbench: PathBuf,
    /// pgbench's clients (database connections) for the PostgreSQL
    /// ceilings. Unset: as many as the server's pool may open
    /// (`DATABASE_MAX_CONNECTIONS` given with `--server-env`, or the
    /// service's default of 10), at most `--concurrency`: the same work on
    /// the connections the service has. On two cores PostgreSQL spent
    /// 465-537 µs of CPU per cheapest-form transaction with 32 clients
    /// against 320-335 µs with 10, at 3,300-3,800 against 4,800-5,100/s.
    #[arg(long)]
    ceiling_connections: Option<usize>,
    /// Only creates (gRPC's, or `--over http`), each case once for
    /// `--seconds` (no warm-up, ceilings or report); then, when the server
    /// has a `NATS_URL` to relay to, waits, up to 60 s, until the outbox
    /// has no unsent event, for the relay's lag to be read from the outbox
    /// (`scripts/measure-relay-lag.py`).
    #[arg(long)]
    creates_only: bool,
    /// With `--creates-only`: the creates over gRPC, or over HTTP (seed
    /// 000's `POST /api/v1/workspaces`), to profile either path alone.
    #[arg(long, value_enum, default_value_t = Over::Grpc, requires = "creates_only")]
    over: Over,
    /// Another build of the server (main's before a change, say), started
    /// beside `--server` on the same database and measured over gRPC right
    /// after it in every round, on the same case's callers: what a change
    /// is worth, within one run.
    #[arg(long)]
    baseline_server: Option<PathBuf>,
    /// A Python with `bench/fastapi/requirements.txt` installed: the same
    /// create written with FastAPI, SQLAlchemy's async ORM and asyncpg
    /// (`bench/fastapi/app.py`, two uvicorn workers), measured over HTTP
    /// as the same case's users in every round. PostgreSQL only.
    #[arg(long)]
    fastapi: Option<PathBuf>,
}

impl Args {
    /// pgbench's clients for the ceilings (`--ceiling-connections`).
    fn ceiling_clients(&self) -> usize {
        let pool = || {
            self.server_env
                .iter()
                .rev()
                .find(|(name, _)| name == "DATABASE_MAX_CONNECTIONS")
                .and_then(|(_, value)| value.parse().ok())
                .unwrap_or(SERVICE_POOL)
        };
        self.ceiling_connections
            .unwrap_or_else(pool)
            .min(self.concurrency)
            .max(1)
    }
}

/// The service's `DATABASE_MAX_CONNECTIONS` when unset.
const SERVICE_POOL: usize = 10;

fn parse_env(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("{text:?} is not NAME=VALUE"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let scratch = tempfile::tempdir()?;
    let database_url = database_url(&args, &scratch);
    let postgres = database_url.starts_with("postgres");

    // 1. Each case's fixtures, then the server on them.
    let storage = Storage::connect(&database_url, 4).await?;
    storage.migrate().await?;
    let run_id = Uuid::new_v4().simple().to_string()[..8].to_owned();
    let mut cases = Vec::new();
    let mut offset = 0;
    for shape in shapes(&args) {
        let case = Case::new(&storage, shape, offset, &run_id, postgres).await?;
        offset += case.rows.len();
        cases.push(case);
    }
    if postgres {
        pgbench_callers(&storage, cases.iter().map(Case::ceiling_callers)).await?;
    }
    print_setup(&args, postgres, &cases);

    // Killed when dropped, on an early return too.
    let (mut server, target) = serve(&args, &args.server, &database_url, &run_id).await?;
    if args.creates_only {
        creates_only(&args, &cases, &target, &storage).await?;
        server.kill().await.ok();
        return Ok(());
    }
    let mut baseline = None;
    if let Some(binary) = &args.baseline_server {
        // Its own names: both servers create in the same organizations.
        let names = format!("{run_id}-baseline");
        let (process, target) = serve(&args, binary, &database_url, &names).await?;
        for case in &mut cases {
            case.measure_baseline();
        }
        baseline = Some((process, target));
    }
    let mut fastapi = None;
    if let Some(python) = &args.fastapi {
        fastapi = Some(fastapi::start(python, &database_url).await?);
        for case in &mut cases {
            case.measure_fastapi();
        }
    }

    // 2 and 3.
    let beside = Beside {
        baseline: baseline.as_ref().map(|(_, target)| target),
        fastapi: fastapi.as_ref(),
    };
    let empty = drive(&args, &mut cases, &target, beside, &database_url).await?;
    let peak_rss = peak_rss_kib(target.pid);
    server.kill().await.ok();
    if let Some((mut process, _)) = baseline {
        process.kill().await.ok();
    }
    drop(fastapi);

    // 4. The figures.
    report(&cases, &empty, peak_rss, postgres);
    Ok(())
}

/// `binary` started on the fixtures' database, and how to reach it.
async fn serve(
    args: &Args,
    binary: &std::path::Path,
    database_url: &str,
    run_id: &str,
) -> anyhow::Result<(tokio::process::Child, Target)> {
    let (grpc_addr, http_addr) = (free_addr()?, free_addr()?);
    let server = start_server(args, binary, database_url, grpc_addr, http_addr)?;
    let target = Target {
        channels: connect(grpc_addr, args.connections).await?,
        http_url: format!("http://{http_addr}/api/v1/workspaces"),
        pid: server.id().context("the server has a pid")?,
        run_id: run_id.to_owned(),
    };
    Ok((server, target))
}

/// The warm-ups, then the rounds: in each, every case's service and its
/// ceilings in turn, then the empty call. Answers the empty call's run.
async fn drive(
    args: &Args,
    cases: &mut [Case],
    target: &Target,
    beside: Beside<'_>,
    database_url: &str,
) -> anyhow::Result<Run> {
    if args.warmup > 0 {
        for case in cases.iter() {
            case.warm_up(args, target).await;
            if let Some(baseline) = beside.baseline {
                case.warm_up(args, baseline).await;
            }
            if let Some(fastapi) = beside.fastapi {
                case.warm_up_fastapi(args, fastapi, &target.run_id).await;
            }
        }
    }
    let mut empty = Run::new("gRPC empty call (health Check)");
    for round in 0..args.rounds {
        for case in cases.iter_mut() {
            case.round(args, target, beside, database_url, round)
                .await?;
        }
        let e = timed(target.pid, async {
            let calls = empty_calls(target.channels.clone());
            let duration = Duration::from_secs(args.seconds);
            Ok(measure(&empty.name, args.concurrency, duration, calls).await)
        });
        let e = e.await?;
        empty.absorb(e);
    }
    Ok(empty)
}

/// `--creates-only`: each case's gRPC creates for `--seconds`, then the
/// outbox drained (at most 60 s more).
async fn creates_only(
    args: &Args,
    cases: &[Case],
    target: &Target,
    storage: &Storage,
) -> anyhow::Result<()> {
    for case in cases {
        let prefix = format!("{:?} {} {}", args.over, case.name, target.run_id);
        let calls: Box<dyn Fn(usize, usize) -> load::Call + Send + Sync> = match args.over {
            Over::Grpc => Box::new(grpc_creates(
                target.channels.clone(),
                case.callers.clone(),
                args.concurrency,
                prefix,
            )),
            Over::Http => Box::new(http_creates(
                target.http_url.clone(),
                case.callers.clone(),
                args.concurrency,
                prefix,
            )),
        };
        let duration = Duration::from_secs(args.seconds);
        let run = timed(target.pid, async {
            Ok(measure(case.name, args.concurrency, duration, calls).await)
        });
        run.await?.print();
    }
    if let Some(kib) = peak_rss_kib(target.pid) {
        println!(
            "server peak resident memory: {:.1} MiB",
            kib as f64 / 1024.0
        );
    }
    // Without NATS the server relays nothing: no drain to wait for.
    let relayed = args.server_env.iter().any(|(name, _)| name == "NATS_URL")
        || std::env::var_os("NATS_URL").is_some();
    if !relayed {
        println!("no NATS_URL: the server relays no event, the outbox is left as it is");
        return Ok(());
    }
    let drained = std::time::Instant::now();
    loop {
        match storage.outbox_backlog().await {
            Ok(backlog) if backlog.pending == 0 => break,
            Ok(backlog) if drained.elapsed() > Duration::from_secs(60) => {
                println!("outbox not drained after 60 s: {} unsent", backlog.pending);
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(err) => {
                println!("reading the outbox's backlog: {err}");
                break;
            }
        }
    }
    println!(
        "outbox drained {:.2} s after the creates",
        drained.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The release server on the fixtures' database, as its own process.
fn start_server(
    args: &Args,
    binary: &std::path::Path,
    database_url: &str,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
) -> anyhow::Result<tokio::process::Child> {
    tokio::process::Command::new(binary)
        .env("DATABASE_URL", database_url)
        .env("LISTEN_ADDR", grpc_addr.to_string())
        .env("HTTP_LISTEN_ADDR", http_addr.to_string())
        .env("SEED_DEMO", "false")
        .env("RUST_LOG", &args.server_log)
        .envs(args.server_env.iter().cloned())
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))
}

/// What is measured, before the figures.
fn print_setup(args: &Args, postgres: bool, cases: &[Case]) {
    let shapes: Vec<String> = cases
        .iter()
        .map(|c| format!("{}: {}", c.name, c.shape()))
        .collect();
    let rounds = if args.creates_only {
        format!("{:?} creates only, {} s per case", args.over, args.seconds)
    } else if postgres {
        format!(
            "{} rounds of {} s per measurement; the ceilings on {} connections",
            args.rounds,
            args.seconds,
            args.ceiling_clients()
        )
    } else {
        format!(
            "{} rounds of {} s per measurement",
            args.rounds, args.seconds
        )
    };
    println!(
        "database: {}; {}; concurrency {}; {rounds}",
        if postgres { "PostgreSQL" } else { "SQLite" },
        shapes.join("; "),
        args.concurrency,
    );
}

/// The database to measure on: a SQLite file in `scratch`, or the URL given.
fn database_url(args: &Args, scratch: &tempfile::TempDir) -> String {
    if args.database == "sqlite" {
        format!("sqlite://{}", scratch.path().join("bench.db").display())
    } else {
        args.database.clone()
    }
}
