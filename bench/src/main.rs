//! `workspace-bench`: CreateWorkspace under load, next to the ceilings that
//! bound it, measured in one run on one machine (shared machines are noisy:
//! only ratios within a run mean much).
//!
//! 1. Writes organizations, users and API tokens to the database, then
//!    starts the release server on it as its own process.
//! 2. Drives CreateWorkspace with fresh names from every user at a fixed
//!    concurrency for a fixed time: over gRPC, then over JSON/HTTP.
//! 3. Measures the ceilings: an empty RPC through the same server stack
//!    (the health check); the database doing the same work in its cheapest
//!    form (pgbench with `bench/create_workspace.cheapest.pgbench.sql`, one
//!    statement, on PostgreSQL; the fewest statements through the bare
//!    sqlx driver on SQLite), the ceiling the service is measured against;
//!    and, beside it, the service's own statements replayed without the
//!    service (`bench/create_workspace.pgbench.sql`; the same loop on
//!    SQLite), which tells the statements' cost from the rest.
//!    Steps 2 and 3 take turns for several rounds, so that a noisy
//!    neighbour slows the service and its ceilings alike.
//! 4. Prints calls/s, p50/p90/p99, errors by code, the server's peak
//!    resident memory, the service's throughput as a share of each
//!    ceiling, and that share round by round.
//!
//! ```sh
//! cargo build --release
//! cargo run --release -p workspace-bench -- --database sqlite
//! cargo run --release -p workspace-bench -- --database postgres://postgres@127.0.0.1:5432/bench
//! ```

mod ceilings;
mod cpu;
mod load;
mod report;

use ceilings::*;
use cpu::*;
use load::*;
use report::report;

use std::{net::SocketAddr, path::PathBuf, process::Stdio, sync::Arc, time::Duration};

use anyhow::Context;
use clap::Parser;
use uuid::Uuid;
use workspace_service::{
    domain::{OrganizationRole, WorkspaceCreationPolicy},
    storage::Storage,
};

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
    /// Rounds of measurements (service, then ceilings), taken in turn.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
    /// Seconds of unrecorded gRPC load first (pools fill, PostgreSQL's
    /// buffers and plans warm up).
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    #[arg(long, default_value_t = 16)]
    organizations: usize,
    #[arg(long, default_value_t = 4)]
    users_per_organization: usize,
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
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("{text:?} is not NAME=VALUE"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let duration = Duration::from_secs(args.seconds);
    let scratch = tempfile::tempdir()?;
    let database_url = database_url(&args, &scratch);
    let postgres = database_url.starts_with("postgres");

    // 1. Fixtures, then the server on them.
    let storage = Storage::connect(&database_url, 4).await?;
    storage.migrate().await?;
    let run_id = &Uuid::new_v4().simple().to_string()[..8];
    let (callers, rows) = fixtures(&storage, &args, run_id).await?;
    print_setup(&args, postgres);

    let (grpc_addr, http_addr) = (free_addr()?, free_addr()?);
    let mut server = start_server(&args, &database_url, grpc_addr, http_addr)?;
    let pid = server.id().context("the server has a pid")?;
    let channels = connect(grpc_addr, args.connections).await?;

    // 2. The service, after a warm-up that is not recorded.
    let create_over_grpc = |label: &str| {
        grpc_creates(
            channels.clone(),
            callers.clone(),
            format!("{label} {run_id}"),
        )
    };
    if args.warmup > 0 {
        let warmup = Duration::from_secs(args.warmup);
        measure(
            "warm-up",
            args.concurrency,
            warmup,
            create_over_grpc("warm"),
        )
        .await;
    }
    let create_over_http = |label: &str| {
        let url = format!("http://{http_addr}/api/v1/workspaces");
        http_creates(url, callers.clone(), format!("{label} {run_id}"))
    };
    let empty_call = || empty_calls(channels.clone());
    if postgres {
        pgbench_callers(&storage, &rows).await?;
    }

    // The service (2), then its ceilings (3), in turns.
    let mut runs = runs(postgres);
    let mut by_round = Vec::new();
    for round in 0..args.rounds {
        // Each measurement with the CPU it cost.
        let (concurrency, names) = (args.concurrency, runs.each_ref().map(|r| r.name.clone()));
        let g = timed(pid, async {
            let calls = create_over_grpc(&format!("grpc {round}"));
            Ok(measure(&names[0], concurrency, duration, calls).await)
        });
        let g = g.await?;
        let h = timed(pid, async {
            let calls = create_over_http(&format!("http {round}"));
            Ok(measure(&names[1], concurrency, duration, calls).await)
        });
        let h = h.await?;
        let e = timed(pid, async {
            Ok(measure(&names[2], concurrency, duration, empty_call()).await)
        });
        let e = e.await?;
        let (c, r) = ceilings(&args, &rows, &database_url, round, pid).await?;
        let share = |a: &Run, b: &Run| a.per_second() / b.per_second();
        by_round.push([share(&g, &c), share(&h, &g), share(&g, &r)]);
        for (run, got) in runs.iter_mut().zip([g, h, e, c, r]) {
            run.absorb(got);
        }
    }
    let peak_rss = peak_rss_kib(pid);
    server.kill().await.ok();

    // 4. The figures.
    report(&runs, &by_round, peak_rss);
    Ok(())
}

/// Organizations of users, each with an API token: the callers, and their
/// rows for the ceilings' own lookups.
async fn fixtures(
    storage: &Storage,
    args: &Args,
    run_id: &str,
) -> anyhow::Result<(Arc<Vec<Caller>>, Vec<CallerRow>)> {
    let plan = storage
        .create_plan(&format!("bench-{run_id}"), true, None)
        .await?;
    let mut callers = Vec::new();
    let mut rows = Vec::new();
    for o in 0..args.organizations {
        let slug = format!("bench-{run_id}-{o}");
        let org = storage
            .create_organization(&slug, &slug, plan, WorkspaceCreationPolicy::RoleBased)
            .await?;
        for u in 0..args.users_per_organization {
            let email = format!("bench-{run_id}-{o}-{u}@bench.test");
            let user = storage.create_user(&email, "Bench", true).await?;
            storage
                .put_organization_member(org, user, OrganizationRole::WorkspaceCreator)
                .await?;
            let token = workspace_service::auth::issue::create_api_token(
                storage, user, "bench", None, None,
            )
            .await?
            .token;
            rows.push((
                workspace_service::auth::hash_secret(&token),
                user,
                org,
                plan,
            ));
            callers.push(Caller { token });
        }
    }
    Ok((Arc::new(callers), rows))
}

/// The release server on the fixtures' database, as its own process.
fn start_server(
    args: &Args,
    database_url: &str,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
) -> anyhow::Result<tokio::process::Child> {
    tokio::process::Command::new(&args.server)
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
        .with_context(|| format!("starting {}", args.server.display()))
}

/// What is measured, before the figures.
fn print_setup(args: &Args, postgres: bool) {
    println!(
        "database: {}; {} organizations × {} users; concurrency {}; {} rounds of {} s per measurement",
        if postgres { "PostgreSQL" } else { "SQLite" },
        args.organizations,
        args.users_per_organization,
        args.concurrency,
        args.rounds,
        args.seconds
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

/// The measurements, in the order the report takes them: the service over
/// gRPC and HTTP, the empty call, the two ceilings.
fn runs(postgres: bool) -> [Run; 5] {
    let (cheapest, replay) = ceiling_names(postgres);
    [
        "gRPC CreateWorkspace",
        "HTTP POST /api/v1/workspaces",
        "gRPC empty call (health Check)",
        cheapest,
        replay,
    ]
    .map(Run::new)
}
