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

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::PathBuf,
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Parser;
use sea_orm::{ConnectionTrait, sqlx};
use tonic::{Request, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use uuid::Uuid;
use workspace_service::{
    domain::{OrganizationRole, WorkspaceCreationPolicy},
    proto::{CreateWorkspaceRequest, workspace_service_client::WorkspaceServiceClient},
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

/// One user who creates workspaces.
#[derive(Clone)]
struct Caller {
    token: String,
}

/// What one measurement saw.
struct Run {
    name: String,
    elapsed: Duration,
    latencies: Vec<Duration>,
    errors: BTreeMap<String, usize>,
    /// CPU time the server process and the database's processes used
    /// while it ran (`Cpu::since`).
    cpu: Cpu,
}

impl Run {
    fn new(name: &str) -> Self {
        Run {
            name: name.to_owned(),
            elapsed: Duration::ZERO,
            latencies: Vec::new(),
            errors: BTreeMap::new(),
            cpu: Cpu::default(),
        }
    }

    /// Adds another round of the same measurement.
    fn absorb(&mut self, round: Run) {
        self.cpu.server += round.cpu.server;
        self.cpu.database += round.cpu.database;
        self.cpu.client += round.cpu.client;
        self.elapsed += round.elapsed;
        self.latencies.extend(round.latencies);
        self.latencies.sort();
        for (code, count) in round.errors {
            *self.errors.entry(code).or_default() += count;
        }
    }

    fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[index]
    }

    fn print(&self) {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{:<34} {:>9.0}/s  p50 {:>6.2} ms  p90 {:>6.2} ms  p99 {:>6.2} ms  ok {:>7}  errors {:?}",
            self.name,
            self.per_second(),
            ms(self.percentile(0.50)),
            ms(self.percentile(0.90)),
            ms(self.percentile(0.99)),
            self.latencies.len(),
            self.errors
        );
        let calls = self.latencies.len().max(1) as f64;
        let per_call = |cpu: Duration| format!("{:.0} µs", cpu.as_secs_f64() * 1e6 / calls);
        println!(
            "{:<34} CPU per call: server {}, PostgreSQL {}, this process {}",
            "",
            per_call(self.cpu.server),
            per_call(self.cpu.database),
            per_call(self.cpu.client)
        );
    }
}

/// Runs `call` from `concurrency` workers for `duration`; each call gets
/// its worker and sequence numbers and answers Ok or an error code.
async fn measure<F, Fut>(name: &str, concurrency: usize, duration: Duration, call: F) -> Run
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let call = Arc::new(call);
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|worker| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors: BTreeMap<String, usize> = BTreeMap::new();
                let mut sequence = 0;
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    match call(worker, sequence).await {
                        Ok(()) => latencies.push(sent.elapsed()),
                        Err(code) => *errors.entry(code).or_default() += 1,
                    }
                    sequence += 1;
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut run = Run::new(name);
    for worker in workers {
        let (latencies, errors) = worker.await.expect("a worker panicked");
        run.latencies.extend(latencies);
        for (code, count) in errors {
            *run.errors.entry(code).or_default() += count;
        }
    }
    run.elapsed = started.elapsed();
    run.latencies.sort();
    run
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let duration = Duration::from_secs(args.seconds);
    let scratch = tempfile::tempdir()?;
    let database_url = if args.database == "sqlite" {
        format!("sqlite://{}", scratch.path().join("bench.db").display())
    } else {
        args.database.clone()
    };
    let postgres = database_url.starts_with("postgres");

    // 1. Fixtures, then the server on them.
    let storage = Storage::connect(&database_url, 4).await?;
    storage.migrate().await?;
    let run_id = &Uuid::new_v4().simple().to_string()[..8];
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
                &storage, user, "bench", None, None,
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
    let callers = Arc::new(callers);
    println!(
        "database: {}; {} organizations × {} users; concurrency {}; {} rounds of {} s per measurement",
        if postgres { "PostgreSQL" } else { "SQLite" },
        args.organizations,
        args.users_per_organization,
        args.concurrency,
        args.rounds,
        args.seconds
    );

    let grpc_addr = free_addr()?;
    let http_addr = free_addr()?;
    let mut server = tokio::process::Command::new(&args.server)
        .env("DATABASE_URL", &database_url)
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
        .with_context(|| format!("starting {}", args.server.display()))?;
    let pid = server.id().context("the server has a pid")?;
    let channels = connect(grpc_addr, args.connections).await?;

    // 2. The service, after a warm-up that is not recorded.
    let create_over_grpc = |label: &str| {
        let (channels, callers) = (channels.clone(), callers.clone());
        let prefix = format!("{label} {run_id}");
        move |w: usize, i: usize| {
            let mut client = WorkspaceServiceClient::new(channels[w % channels.len()].clone());
            let caller = &callers[(w + i) % callers.len()];
            let mut request = Request::new(CreateWorkspaceRequest {
                name: format!("{prefix} {w} {i}"),
                ..Default::default()
            });
            let bearer = format!("Bearer {}", caller.token);
            request
                .metadata_mut()
                .insert("authorization", bearer.parse().unwrap());
            async move {
                client
                    .create_workspace(request)
                    .await
                    .map(|_| ())
                    .map_err(|s| format!("{:?}", s.code()))
            }
        }
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
        let client = reqwest::Client::new();
        let url = format!("http://{http_addr}/api/v1/workspaces");
        let callers = callers.clone();
        let prefix = format!("{label} {run_id}");
        move |w: usize, i: usize| {
            let caller = &callers[(w + i) % callers.len()];
            let request = client
                .post(&url)
                .bearer_auth(&caller.token)
                .json(&serde_json::json!({"name": format!("{prefix} {w} {i}")}));
            async move {
                match request.send().await {
                    Ok(r) if r.status().is_success() => Ok(()),
                    Ok(r) => Err(r.status().as_u16().to_string()),
                    Err(e) => Err(format!("transport: {e}")),
                }
            }
        }
    };
    let empty_call = || {
        let channels = channels.clone();
        move |w: usize, _: usize| {
            let mut client = HealthClient::new(channels[w % channels.len()].clone());
            async move {
                client
                    .check(HealthCheckRequest::default())
                    .await
                    .map(|_| ())
                    .map_err(|s| format!("{:?}", s.code()))
            }
        }
    };
    if postgres {
        pgbench_callers(&storage, &rows).await?;
    }

    // The service (2), then its ceilings (3), in turns.
    let mut grpc = Run::new("gRPC CreateWorkspace");
    let mut http = Run::new("HTTP POST /api/v1/workspaces");
    let mut empty = Run::new("gRPC empty call (health Check)");
    let (cheapest_name, replay_name) = if postgres {
        (
            "ceiling: pgbench, cheapest form (one statement)",
            "pgbench, the service's statements",
        )
    } else {
        (
            "ceiling: bare sqlx, cheapest form",
            "bare sqlx, the service's statements",
        )
    };
    let mut cheapest = Run::new(cheapest_name);
    let mut replay = Run::new(replay_name);
    let mut by_round = Vec::new();
    for round in 0..args.rounds {
        // Each measurement with the CPU it cost.
        macro_rules! timed {
            ($run:expr) => {{
                let before = Cpu::sample(pid);
                let mut run = $run;
                run.cpu = Cpu::since(before, pid);
                run
            }};
        }
        let g = timed!(
            measure(
                &grpc.name,
                args.concurrency,
                duration,
                create_over_grpc(&format!("grpc {round}")),
            )
            .await
        );
        let h = timed!(
            measure(
                &http.name,
                args.concurrency,
                duration,
                create_over_http(&format!("http {round}")),
            )
            .await
        );
        let e = timed!(measure(&empty.name, args.concurrency, duration, empty_call()).await);
        let (c, r) = if postgres {
            (
                timed!(
                    pgbench(
                        &args,
                        rows.len(),
                        &database_url,
                        CHEAPEST_SCRIPT,
                        cheapest_name
                    )
                    .await?
                ),
                timed!(
                    pgbench(&args, rows.len(), &database_url, REPLAY_SCRIPT, replay_name).await?
                ),
            )
        } else {
            (
                timed!(
                    sqlite_loop(
                        &args,
                        &database_url,
                        &rows,
                        round,
                        SqliteWork::Cheapest,
                        cheapest_name
                    )
                    .await?
                ),
                timed!(
                    sqlite_loop(
                        &args,
                        &database_url,
                        &rows,
                        round,
                        SqliteWork::Replay,
                        replay_name
                    )
                    .await?
                ),
            )
        };
        by_round.push([
            g.per_second() / c.per_second(),
            h.per_second() / g.per_second(),
            g.per_second() / r.per_second(),
        ]);
        grpc.absorb(g);
        http.absorb(h);
        empty.absorb(e);
        cheapest.absorb(c);
        replay.absorb(r);
    }
    let peak_rss = peak_rss_kib(pid);
    server.kill().await.ok();

    // 4. The figures.
    println!();
    for run in [&grpc, &http, &empty, &cheapest, &replay] {
        run.print();
    }
    println!();
    println!(
        "server peak resident memory: {}",
        peak_rss.map_or("unknown".into(), |kib| format!(
            "{:.1} MiB",
            kib as f64 / 1024.0
        ))
    );
    let share = |a: &Run, b: &Run| a.per_second() / b.per_second();
    let rounds = |i: usize| {
        by_round
            .iter()
            .map(|r| format!("{:.2}", r[i]))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "gRPC creates / cheapest-form ceiling: {:.2} (by round {})",
        share(&grpc, &cheapest),
        rounds(0)
    );
    println!(
        "HTTP creates / gRPC creates:          {:.2} (by round {})",
        share(&http, &grpc),
        rounds(1)
    );
    println!(
        "gRPC creates / its own statements:    {:.2} (by round {})",
        share(&grpc, &replay),
        rounds(2)
    );
    println!(
        "HTTP creates / cheapest-form ceiling: {:.2}",
        share(&http, &cheapest)
    );
    println!(
        "gRPC creates / empty calls:           {:.2}",
        share(&grpc, &empty)
    );
    Ok(())
}

/// CPU time used, from /proc: by the server process, and by PostgreSQL's
/// processes (every live `postgres` process, plus what the postmaster's
/// exited backends used, as pgbench's backends exit before it is read).
/// Other work on the machine's PostgreSQL counts too: it is shared.
#[derive(Clone, Copy, Debug, Default)]
struct Cpu {
    server: Duration,
    database: Duration,
    /// This process: the load, or the bare-driver loop on SQLite.
    client: Duration,
}

impl Cpu {
    /// The counters now.
    fn sample(server: u32) -> Cpu {
        let mut database = 0;
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(stat) = proc_stat(&entry.path().join("stat")) else {
                continue;
            };
            if stat.comm == "postgres" {
                database += stat.own;
                if stat.parent_is_not_postgres() {
                    database += stat.children;
                }
            }
        }
        let server = proc_stat(std::path::Path::new(&format!("/proc/{server}/stat")))
            .map_or(0, |stat| stat.own);
        let client = proc_stat(std::path::Path::new("/proc/self/stat")).map_or(0, |stat| stat.own);
        Cpu {
            server: ticks(server),
            database: ticks(database),
            client: ticks(client),
        }
    }

    /// What was used between `before` and now.
    fn since(before: Cpu, server: u32) -> Cpu {
        let now = Cpu::sample(server);
        Cpu {
            server: now.server.saturating_sub(before.server),
            database: now.database.saturating_sub(before.database),
            client: now.client.saturating_sub(before.client),
        }
    }
}

/// Linux reports CPU time in USER_HZ ticks, 100 per second.
fn ticks(count: u64) -> Duration {
    Duration::from_millis(count * 10)
}

struct ProcStat {
    comm: String,
    parent: u32,
    /// utime + stime.
    own: u64,
    /// cutime + cstime: reaped children.
    children: u64,
}

impl ProcStat {
    fn parent_is_not_postgres(&self) -> bool {
        proc_stat(std::path::Path::new(&format!("/proc/{}/stat", self.parent)))
            .is_none_or(|parent| parent.comm != "postgres")
    }
}

fn proc_stat(path: &std::path::Path) -> Option<ProcStat> {
    let text = std::fs::read_to_string(path).ok()?;
    let (open, close) = (text.find('(')?, text.rfind(')')?);
    let comm = text[open + 1..close].to_owned();
    // Fields after the command: state (3), ppid (4), … utime (14),
    // stime (15), cutime (16), cstime (17).
    let fields: Vec<u64> = text[close + 2..]
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let field = |n: usize| fields.get(n - 4).copied().unwrap_or(0);
    Some(ProcStat {
        comm,
        parent: field(4) as u32,
        own: field(14) + field(15),
        children: field(16) + field(17),
    })
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// `count` connections to the server, once its health says SERVING.
async fn connect(addr: SocketAddr, count: usize) -> anyhow::Result<Vec<Channel>> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?;
    for _ in 0..300 {
        if let Ok(channel) = endpoint.connect().await {
            let serving = HealthClient::new(channel)
                .check(HealthCheckRequest::default())
                .await
                .is_ok_and(|r| r.into_inner().status == 1);
            if serving {
                let mut channels = Vec::new();
                for _ in 0..count.max(1) {
                    channels.push(endpoint.connect().await?);
                }
                return Ok(channels);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the server did not become SERVING in 30 s")
}

/// VmHWM of a process, in KiB (Linux).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

type CallerRow = (String, Uuid, Uuid, Uuid);

/// The callers pgbench's script picks from, as rows it can look up.
async fn pgbench_callers(storage: &Storage, rows: &[CallerRow]) -> anyhow::Result<()> {
    let db = storage.connection();
    db.execute_unprepared(
        "DROP TABLE IF EXISTS bench_callers; CREATE TABLE bench_callers (n int PRIMARY KEY, token_hash text, user_id uuid, organization_id uuid, plan_id uuid)",
    )
    .await?;
    for (n, (hash, user, org, plan)) in rows.iter().enumerate() {
        db.execute_unprepared(&format!(
            "INSERT INTO bench_callers VALUES ({}, '{hash}', '{user}', '{org}', '{plan}')",
            n + 1
        ))
        .await?;
    }
    Ok(())
}

/// The cheapest form of a create's database work (the ceiling).
const CHEAPEST_SCRIPT: &str = "create_workspace.cheapest.pgbench.sql";
/// The statements the service sends for a create, replayed.
const REPLAY_SCRIPT: &str = "create_workspace.pgbench.sql";

/// PostgreSQL without the service: pgbench running `script` (in `bench/`).
async fn pgbench(
    args: &Args,
    callers: usize,
    database_url: &str,
    script: &str,
    name: &str,
) -> anyhow::Result<Run> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(script);
    let output = tokio::process::Command::new(&args.pgbench)
        .args(["-n", "-M", "prepared"])
        .args(["-c", &args.concurrency.to_string(), "-j", "2"])
        .args(["-T", &args.seconds.to_string()])
        .args(["-D", &format!("callers={callers}")])
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

/// What the bare-driver loop on SQLite sends per create.
#[derive(Clone, Copy)]
enum SqliteWork {
    /// The fewest statements the work allows: one read that makes every
    /// check (the token, its user, the only membership, its organization
    /// and plan), then one transaction: the counter's conditional UPDATE
    /// numbering the event, the workspace, the OWNER membership, the event.
    Cheapest,
    /// The service's statements: the token with its user and the user's
    /// first organizations with their plans (one read), then the same
    /// transaction with the whole rows sea-orm asks for.
    Replay,
}

/// SQLite without the service: `work` through the bare sqlx driver, with
/// the service's pool settings, at the same concurrency.
async fn sqlite_loop(
    args: &Args,
    database_url: &str,
    rows: &[CallerRow],
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
    let rows = Arc::new(rows.to_vec());
    // Workspace names tell the two loops' rows apart.
    let label = match work {
        SqliteWork::Cheapest => "cheapest",
        SqliteWork::Replay => "replay",
    };
    let run = measure(
        name,
        args.concurrency,
        Duration::from_secs(args.seconds),
        move |w, i| {
            let (pool, rows) = (pool.clone(), rows.clone());
            async move {
                let (hash, user, org, _) = &rows[(w + i) % rows.len()];
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
async fn sqlite_create(
    pool: &sqlx::SqlitePool,
    work: SqliteWork,
    hash: &str,
    user: Uuid,
    org: Uuid,
    name: &str,
) -> Result<(), sqlx::Error> {
    use sqlx::Row;
    let now = chrono::Utc::now();
    let organization: Uuid = match work {
        SqliteWork::Cheapest => {
            sqlx::query_scalar("SELECT m.organization_id FROM api_tokens t JOIN users u ON u.id = t.user_id JOIN organization_memberships m ON m.user_id = u.id JOIN organizations o ON o.id = m.organization_id JOIN plans p ON p.id = o.plan_id WHERE t.token_hash = ? AND (t.expires_at IS NULL OR t.expires_at > ?) AND u.validated AND (m.role IN ('OWNER', 'ADMIN') OR o.workspace_creation = 'ALL_MEMBERS' OR (o.workspace_creation = 'ROLE_BASED' AND m.role = 'WORKSPACE_CREATOR')) AND p.creation_allowed LIMIT 1")
                .bind(hash)
                .bind(now)
                .fetch_one(pool)
                .await?
        }
        SqliteWork::Replay => {
            sqlx::query("SELECT t.expires_at, u.id AS user_id, u.validated, m.role, o.id AS organization_id, o.name AS organization_name, o.slug, o.workspace_creation, o.workspace_count, p.name AS plan_name, p.creation_allowed, p.workspace_limit FROM api_tokens t JOIN users u ON u.id = t.user_id LEFT JOIN organization_memberships m ON m.user_id = u.id LEFT JOIN organizations o ON o.id = m.organization_id LEFT JOIN plans p ON p.id = o.plan_id WHERE t.token_hash = ? ORDER BY m.organization_id LIMIT ?")
                .bind(hash)
                .bind(9_i64)
                .fetch_all(pool)
                .await?;
            org
        }
    };
    let returning = match work {
        SqliteWork::Cheapest => "event_sequence",
        SqliteWork::Replay => {
            "id, name, slug, plan_id, workspace_creation, workspace_count, event_sequence, created_at, updated_at"
        }
    };
    let workspace = Uuid::now_v7();
    let mut txn = pool.begin().await?;
    let sequence: i64 = sqlx::query(sqlx::AssertSqlSafe(format!("UPDATE organizations SET workspace_count = workspace_count + 1, event_sequence = event_sequence + 1, updated_at = ? WHERE id = ? AND workspace_count < (COALESCE((SELECT plans.workspace_limit FROM plans WHERE plans.id = organizations.plan_id), 2147483647)) RETURNING {returning}")))
        .bind(now)
        .bind(organization)
        .fetch_one(&mut *txn)
        .await?
        .try_get("event_sequence")?;
    sqlx::query("INSERT INTO workspaces (id, organization_id, name, normalized_name, description, workspace_type, document_upload_method, billing_account_email, workspace_document_store_credentials_id, pipeline_document_store_credentials_id, file_store_credentials_id, used_storage, files_count, created_by, created_at, updated_at, revision) VALUES (?, ?, ?, ?, '', 'CUSTOM', 'MANUAL', '', NULL, NULL, NULL, 0, 0, ?, ?, ?, 1)")
        .bind(workspace)
        .bind(organization)
        .bind(name)
        .bind(workspace_service::domain::normalize_name(name))
        .bind(user)
        .bind(now)
        .bind(now)
        .execute(&mut *txn)
        .await?;
    sqlx::query("INSERT INTO workspace_memberships (id, workspace_id, user_id, role, created_at, updated_at) VALUES (?, ?, ?, 'OWNER', ?, ?)")
        .bind(Uuid::now_v7())
        .bind(workspace)
        .bind(user)
        .bind(now)
        .bind(now)
        .execute(&mut *txn)
        .await?;
    // An outbox payload the size of the service's.
    sqlx::query("INSERT INTO events (id, organization_id, sequence, workspace_id, event_type, payload, occurred_at, sent_at) VALUES (?, ?, ?, ?, 'workspace.created', ?, ?, NULL)")
        .bind(Uuid::now_v7())
        .bind(organization)
        .bind(sequence)
        .bind(workspace)
        .bind(vec![42u8; 420])
        .bind(now)
        .execute(&mut *txn)
        .await?;
    txn.commit().await
}
