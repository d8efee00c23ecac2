//! `workspace-service`: parse settings, run a subcommand. Nothing else.

use anyhow::Context;
use clap::{Parser, Subcommand};
use workspace_service::{
    admin::{self, AdminArgs},
    config::Settings,
    startup::{Application, connect_and_migrate},
    telemetry,
};

#[derive(Debug, Parser)]
#[command(
    name = "workspace-service",
    version,
    about = "gRPC service that owns workspaces"
)]
struct Cli {
    #[command(flatten)]
    settings: Settings,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gRPC server (the default).
    Serve,
    /// Bring the database schema up to date, then exit.
    Migrate,
    /// Create organizations, users, memberships, plans, credentials, API
    /// tokens and sessions.
    Admin(AdminArgs),
    /// Write the protos' encoded descriptor set (with the google.api.http
    /// annotations) to stdout, for Envoy's grpc_json_transcoder.
    DescriptorSet,
    /// Ask the running server's gRPC health service (on LISTEN_ADDR's
    /// port, via 127.0.0.1) and exit 0 when it is SERVING: a container
    /// HEALTHCHECK without extra tools.
    HealthCheck {
        /// The health service name: "" (readiness, follows the database)
        /// or "liveness".
        #[arg(long, default_value = "")]
        service: String,
    },
}

fn main() -> anyhow::Result<()> {
    let Cli { settings, command } = Cli::parse();
    one_malloc_arena();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = settings.server.worker_threads {
        runtime.worker_threads(threads.into());
    }
    runtime
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(start(settings, command.unwrap_or(Command::Serve)))
}

/// glibc's malloc gives each thread an arena of its own; a buffer freed
/// on another thread than the one that made it (a request read by its
/// connection's task, dropped by its call's, on another worker) takes the
/// other arena's lock, and two workers contended for those locks on every
/// create (most of the server's futex calls under load). With one arena
/// for all (each thread keeps its own small cache in front of it), a
/// create cost 5 to 7 % less CPU with two workers and the process less memory (BENCHMARKS.md).
/// `MALLOC_ARENA_MAX` in the environment still decides when set.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets malloc's parameter; called before any
        // other thread of the process starts.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

async fn start(settings: Settings, command: Command) -> anyhow::Result<()> {
    // Only the server exports spans; the one-shot commands just log.
    let otlp_endpoint = match command {
        Command::Serve => settings.telemetry.otlp_endpoint()?,
        _ => None,
    };
    let telemetry = telemetry::init(settings.telemetry.log_format, otlp_endpoint)?;
    let result = run(settings, command).await;
    telemetry.shutdown();
    result
}

async fn run(settings: Settings, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let worker_threads = tokio::runtime::Handle::current().metrics().num_workers();
            tracing::info!(?settings, worker_threads, "starting");
            let seed_demo = settings.seeds_demo();
            let app = Application::build(settings).await?;
            if seed_demo {
                let token = admin::seed_demo(app.storage())
                    .await
                    .context("seeding the demo")?;
                print_demo(&token, app.local_addr().port());
            }
            app.run_until(shutdown_signal()).await
        }
        Command::Migrate => {
            connect_and_migrate(&settings).await?;
            tracing::info!("database schema is up to date");
            Ok(())
        }
        Command::DescriptorSet => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(workspace_service::proto::FILE_DESCRIPTOR_SET)?;
            stdout.flush()?;
            Ok(())
        }
        Command::HealthCheck { service } => {
            health_check(settings.server.listen_addr.port(), service).await
        }
        Command::Admin(args) => {
            let storage = connect_and_migrate(&settings).await?;
            admin::run(&storage, args).await
        }
    }
}

/// Exits 0 when the local server's health service says SERVING.
async fn health_check(port: u16, service: String) -> anyhow::Result<()> {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))?
        .connect_timeout(std::time::Duration::from_secs(2))
        .timeout(std::time::Duration::from_secs(3))
        .connect()
        .await
        .context("connecting to the local gRPC port")?;
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.clone(),
        })
        .await?
        .into_inner()
        .status();
    println!("{service:?}: {status:?}");
    anyhow::ensure!(status == ServingStatus::Serving, "not serving");
    Ok(())
}

/// The line a new user pastes to create a first workspace.
fn print_demo(token: &str, port: u16) {
    println!(
        "\nDemo organization '{slug}' is ready; its owner is {owner}. Create a workspace with:\n\n  \
         grpcurl -plaintext -H 'authorization: Bearer {token}' -d '{{\"name\": \"My first workspace\"}}' \
         localhost:{port} workspace.v1.WorkspaceService/CreateWorkspace\n",
        slug = admin::DEMO_SLUG,
        owner = admin::DEMO_OWNER,
    );
}

/// Ctrl-C or SIGTERM: stop accepting calls, finish the ones in flight.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; draining calls");
}
