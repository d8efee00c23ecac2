//! Driving calls at a fixed concurrency for a fixed time, and what one
//! measurement saw.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use tonic::Request;
use workspace_service::proto::{
    CreateWorkspaceRequest, workspace_service_client::WorkspaceServiceClient,
};

use crate::cpu::*;

/// One user who creates workspaces.
#[derive(Clone)]
pub(crate) struct Caller {
    pub(crate) token: String,
}

/// What one measurement saw.
pub(crate) struct Run {
    pub(crate) name: String,
    pub(crate) elapsed: Duration,
    pub(crate) latencies: Vec<Duration>,
    pub(crate) errors: BTreeMap<String, usize>,
    /// CPU time the server process and the database's processes used
    /// while it ran (`Cpu::since`).
    pub(crate) cpu: Cpu,
}

impl Run {
    pub(crate) fn new(name: &str) -> Self {
        Run {
            name: name.to_owned(),
            elapsed: Duration::ZERO,
            latencies: Vec::new(),
            errors: BTreeMap::new(),
            cpu: Cpu::default(),
        }
    }

    /// Adds another round of the same measurement.
    pub(crate) fn absorb(&mut self, round: Run) {
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

    /// `cpu` per successful call of this measurement.
    pub(crate) fn per_call(&self, cpu: Duration) -> f64 {
        cpu.as_secs_f64() / self.latencies.len().max(1) as f64
    }

    pub(crate) fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    pub(crate) fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[index]
    }

    pub(crate) fn print(&self) {
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
        let per_call = |cpu: Duration| format!("{:.0} µs", self.per_call(cpu) * 1e6);
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
pub(crate) async fn measure<F, Fut>(
    name: &str,
    concurrency: usize,
    duration: Duration,
    call: F,
) -> Run
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

/// `run` with the CPU the server process and the database's processes
/// used while it ran.
pub(crate) async fn timed(
    pid: u32,
    run: impl std::future::Future<Output = anyhow::Result<Run>>,
) -> anyhow::Result<Run> {
    let before = Cpu::sample(pid);
    let mut run = run.await?;
    run.cpu = Cpu::since(before, pid);
    Ok(run)
}

/// Which of `callers` callers worker `worker` of `concurrency` calls as on
/// its call `i`. With at least as many callers as workers, each worker has
/// callers of its own (`worker`, `worker + concurrency`, … taken in turn),
/// so no two calls in flight share a caller, nor, with one user per
/// organization, an organization; with fewer, worker w always calls as
/// caller w mod callers. pgbench's scripts pick by the same rule.
pub(crate) fn pick(worker: usize, i: usize, callers: usize, concurrency: usize) -> usize {
    let spread = (callers / concurrency.max(1)).max(1);
    (worker + concurrency * (i % spread)) % callers
}

/// One call of a load: its outcome, or the code it failed with.
pub(crate) type Call =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>;

/// CreateWorkspace over gRPC with fresh names (`{prefix} {worker} {i}`),
/// the callers as `pick` says, over the connections by worker.
pub(crate) fn grpc_creates(
    channels: Vec<Channel>,
    callers: Arc<Vec<Caller>>,
    concurrency: usize,
    prefix: String,
) -> impl Fn(usize, usize) -> Call + Send + Sync + 'static {
    move |w: usize, i: usize| {
        let mut client = WorkspaceServiceClient::new(channels[w % channels.len()].clone());
        let caller = &callers[pick(w, i, callers.len(), concurrency)];
        let mut request = Request::new(CreateWorkspaceRequest {
            name: format!("{prefix} {w} {i}"),
            ..Default::default()
        });
        let bearer = format!("Bearer {}", caller.token);
        request
            .metadata_mut()
            .insert("authorization", bearer.parse().unwrap());
        Box::pin(async move {
            client
                .create_workspace(request)
                .await
                .map(|_| ())
                .map_err(|s| format!("{:?}", s.code()))
        })
    }
}

/// POST `url` (seed 000's route) with fresh names, the callers as `pick`
/// says.
pub(crate) fn http_creates(
    url: String,
    callers: Arc<Vec<Caller>>,
    concurrency: usize,
    prefix: String,
) -> impl Fn(usize, usize) -> Call + Send + Sync + 'static {
    let client = reqwest::Client::new();
    move |w: usize, i: usize| {
        let caller = &callers[pick(w, i, callers.len(), concurrency)];
        let request = client
            .post(&url)
            .bearer_auth(&caller.token)
            .json(&serde_json::json!({"name": format!("{prefix} {w} {i}")}));
        Box::pin(async move {
            match request.send().await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(r.status().as_u16().to_string()),
                Err(e) => Err(format!("transport: {e}")),
            }
        })
    }
}

/// The empty call through the same server stack: the health check.
pub(crate) fn empty_calls(
    channels: Vec<Channel>,
) -> impl Fn(usize, usize) -> Call + Send + Sync + 'static {
    move |w: usize, _: usize| {
        let mut client = HealthClient::new(channels[w % channels.len()].clone());
        Box::pin(async move {
            client
                .check(HealthCheckRequest::default())
                .await
                .map(|_| ())
                .map_err(|s| format!("{:?}", s.code()))
        })
    }
}
