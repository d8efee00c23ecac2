//! `growth`: what each RPC costs as the data grows (issue 29). For each
//! size (1k, 100k and 1M workspaces by default) on PostgreSQL, and on
//! SQLite for the sizes asked:
//!
//! 1. Makes a database of its own (`<prefix>_<size>` on the PostgreSQL
//!    server given, dropped at the end unless `--keep`; a file in a
//!    temporary directory on SQLite), migrates it and loads the rows by
//!    SQL in one transaction (`load.rs`: workspaces, memberships, one
//!    idempotency record, one sent and one unsent event per workspace; an
//!    OWNER of 1,000 organizations, a MEMBER of up to 10,000 workspaces).
//! 2. Starts the release server on each (no `NATS_URL`: events are kept,
//!    nothing is published) on ephemeral ports.
//! 3. Calls each RPC `--calls` times, one call in flight (`rpcs.rs`), in
//!    `--rounds` rounds, each size's turn after the other's, so that a
//!    noisy neighbour slows every size alike; records p50/p99 and the
//!    server's and PostgreSQL's CPU per call (`cpu.rs`). The server's pool
//!    is small (`--pool`), so each pooled connection runs each statement
//!    past its 5th execution, where PostgreSQL may switch to a generic
//!    plan.
//! 4. Leaves the servers idle for `--idle-seconds` and records the CPU
//!    each and its database used per second, then stops them.
//!
//! Prints markdown tables of the loads, of every RPC at every size and of
//! the idle servers, then issue 29's Done-when items against this run.
//!
//! ```sh
//! cargo build --release --workspace
//! target/release/growth --postgres postgres://postgres@127.0.0.1:5432 --sqlite-sizes 1000,100000,1000000
//! ```

mod cpu;
mod load;
mod report;
mod rpcs;
#[path = "../../serving.rs"]
mod serving;

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Parser;
use sea_orm::{ConnectionTrait, Database};
use workspace_service::storage::Storage;

#[derive(Debug, Parser)]
#[command(about = "Each RPC's latency and CPU as the data grows")]
pub struct Args {
    /// `postgres://…` of a PostgreSQL server (no database): each size gets
    /// a database of its own there. Without it, PostgreSQL is skipped.
    #[arg(long)]
    postgres: Option<String>,
    /// Workspaces of each PostgreSQL size.
    #[arg(long, value_delimiter = ',', default_value = "1000,100000,1000000")]
    sizes: Vec<u64>,
    /// Workspaces of each SQLite size (none by default).
    #[arg(long, value_delimiter = ',')]
    sqlite_sizes: Vec<u64>,
    /// The PostgreSQL databases' names: `<prefix>_1k`, `<prefix>_100k`, ….
    #[arg(long, default_value = "growth")]
    prefix: String,
    /// The server binary to start.
    #[arg(long, default_value = "target/release/workspace-service")]
    server: PathBuf,
    /// Calls of each RPC (at least 20: PostgreSQL's generic plans come at
    /// the 6th execution of a statement on a connection).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(20..))]
    calls: u64,
    /// The server's DATABASE_MAX_CONNECTIONS.
    #[arg(long, default_value_t = 4)]
    pool: u32,
    /// Organizations the OWNER runs.
    #[arg(long, default_value_t = 1_000)]
    organizations: u64,
    /// The MEMBER's workspace memberships (at most half the workspaces).
    #[arg(long, default_value_t = 10_000)]
    memberships: u64,
    /// Rounds: each size's RPCs take turns, `calls / rounds` a round.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
    /// Seconds the idle servers are watched (the backlog is measured every
    /// 5 s: a longer watch averages more of them).
    #[arg(long, default_value_t = 30)]
    idle_seconds: u64,
    /// The server's RUST_LOG (its default, `info`, logs a line per call).
    #[arg(long, default_value = "info")]
    server_log: String,
    /// Keep the PostgreSQL databases instead of dropping them.
    #[arg(long)]
    keep: bool,
}

/// One size on one database, measured.
pub struct Sized {
    pub backend: &'static str,
    pub shape: load::Shape,
    pub loaded_in: Duration,
    pub rpcs: Vec<rpcs::Measured>,
    pub idle: cpu::Cpu,
    pub idle_seconds: u64,
}

/// One size, loaded: where it is, and its callers' tokens.
struct Loaded {
    backend: &'static str,
    shape: load::Shape,
    url: String,
    /// PostgreSQL's database name.
    database: Option<String>,
    loaded_in: Duration,
    tokens: (String, String),
    /// The SQLite file's directory, removed when dropped.
    _scratch: Option<tempfile::TempDir>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut loaded = Vec::new();
    let outcome = run(&args, &mut loaded).await;
    if let (Some(server), false) = (&args.postgres, args.keep) {
        let admin = Database::connect(format!("{server}/postgres")).await?;
        for database in loaded.iter().filter_map(|l| l.database.as_ref()) {
            let drop = format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)");
            admin.execute_unprepared(&drop).await?;
        }
    }
    report::print(&outcome?);
    Ok(())
}

/// Loads every size, then starts a server on each and measures them in
/// turn, round by round, so that a noisy neighbour slows every size alike;
/// then watches them idle, together.
async fn run(args: &Args, loaded: &mut Vec<Loaded>) -> anyhow::Result<Vec<Sized>> {
    if let Some(server) = &args.postgres {
        let admin = Database::connect(format!("{server}/postgres")).await?;
        for &size in &args.sizes {
            let name = format!("{}_{}", args.prefix, report::label(size).to_lowercase());
            let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            admin.execute_unprepared(&drop).await?;
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await?;
            let url = format!("{server}/{name}");
            loaded.push(load_one(args, "PostgreSQL", url, Some(name), None, size).await?);
        }
    }
    for &size in &args.sqlite_sizes {
        let scratch = tempfile::tempdir()?;
        let url = format!("sqlite://{}", scratch.path().join("growth.db").display());
        loaded.push(load_one(args, "SQLite", url, None, Some(scratch), size).await?);
    }
    // Killed when dropped, on an early return too.
    let mut servers = Vec::new();
    let mut targets = Vec::new();
    for l in loaded.iter() {
        let (grpc, http) = (serving::free_addr()?, serving::free_addr()?);
        let server = start_server(args, &l.url, grpc, http)?;
        targets.push(rpcs::Target {
            channel: serving::connect(grpc, 1).await?.remove(0),
            pid: server.id().context("the server has a pid")?,
            database: l.database.clone(),
            owner_token: l.tokens.0.clone(),
            member_token: l.tokens.1.clone(),
            calls: args.calls as usize,
            rounds: args.rounds as usize,
            walks: Default::default(),
        });
        servers.push(server);
    }
    let mut measured: Vec<Vec<rpcs::Measured>> = loaded.iter().map(|_| Vec::new()).collect();
    for round in 0..args.rounds as usize {
        for ((l, t), so_far) in loaded.iter().zip(&targets).zip(&mut measured) {
            let this = rpcs::every_rpc(t, round, l.shape.member_of()).await;
            if so_far.is_empty() {
                *so_far = this;
            } else {
                so_far.iter_mut().zip(this).for_each(|(m, r)| m.absorb(r));
            }
        }
        eprintln!("round {} of {} done", round + 1, args.rounds);
    }
    let idle = rpcs::idle(&targets, args.idle_seconds).await;
    for mut server in servers {
        server.kill().await.ok();
    }
    let sized = loaded.iter().zip(measured).zip(idle);
    Ok(sized
        .map(|((l, rpcs), idle)| Sized {
            backend: l.backend,
            shape: l.shape,
            loaded_in: l.loaded_in,
            rpcs,
            idle,
            idle_seconds: args.idle_seconds,
        })
        .collect())
}

/// Step 1 for one size: migrated, loaded, its callers' tokens issued.
async fn load_one(
    args: &Args,
    backend: &'static str,
    url: String,
    database: Option<String>,
    scratch: Option<tempfile::TempDir>,
    size: u64,
) -> anyhow::Result<Loaded> {
    let shape = load::Shape {
        workspaces: size,
        organizations: args.organizations,
        memberships: args.memberships,
    };
    if (size / 2) < 3 * args.calls {
        bail!("{size} workspaces: too few for 3 × {} calls", args.calls);
    }
    let storage = Storage::connect(&url, 2).await?;
    storage.migrate().await?;
    let started = Instant::now();
    load::load(&storage, shape).await?;
    let loaded_in = started.elapsed();
    eprintln!(
        "{backend} {}: loaded in {loaded_in:.1?}",
        report::label(size)
    );
    let issue = workspace_service::auth::issue::create_api_token;
    let owner_token = issue(&storage, load::OWNER, "growth", None, None)
        .await?
        .token;
    let member_token = issue(&storage, load::MEMBER, "growth", None, None)
        .await?
        .token;
    storage.connection().clone().close().await?;
    Ok(Loaded {
        backend,
        shape,
        url,
        database,
        loaded_in,
        tokens: (owner_token, member_token),
        _scratch: scratch,
    })
}

fn start_server(
    args: &Args,
    url: &str,
    grpc: SocketAddr,
    http: SocketAddr,
) -> anyhow::Result<tokio::process::Child> {
    tokio::process::Command::new(&args.server)
        .env("DATABASE_URL", url)
        .env("DATABASE_MAX_CONNECTIONS", args.pool.to_string())
        .env("LISTEN_ADDR", grpc.to_string())
        .env("HTTP_LISTEN_ADDR", http.to_string())
        .env("SEED_DEMO", "false")
        .env("RUST_LOG", &args.server_log)
        .env_remove("NATS_URL")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", args.server.display()))
}
