//! The cases a run measures side by side: uncontended (no two calls in
//! flight on one organization) and contended (several calls on one
//! organization's counter at once), each with its own organizations,
//! users and API tokens, its measurements and its shares round by round.

use std::{sync::Arc, time::Duration};

use tonic::transport::Channel;
use workspace_service::{
    domain::{OrganizationRole, WorkspaceCreationPolicy},
    storage::Storage,
};

use crate::{Args, ceilings::*, fastapi::FastApi, load::*};

/// Organizations × users per organization of the contended case, today's
/// default before issue 30.
const CONTENDED: (usize, usize) = (16, 4);

/// Organizations of the uncontended case (one user each), at least one
/// per call in flight.
const UNCONTENDED_ORGANIZATIONS: usize = 256;

/// The cases to run, as (name, organizations, users per organization):
/// both by default; one custom case when `--organizations` or
/// `--users-per-organization` is given (the other then takes the
/// contended case's value).
pub(crate) fn shapes(args: &Args) -> Vec<(&'static str, usize, usize)> {
    if args.organizations.is_some() || args.users_per_organization.is_some() {
        let organizations = args.organizations.unwrap_or(CONTENDED.0);
        let users = args.users_per_organization.unwrap_or(CONTENDED.1);
        return vec![("custom", organizations, users)];
    }
    vec![
        (
            "uncontended",
            UNCONTENDED_ORGANIZATIONS.max(args.concurrency),
            1,
        ),
        ("contended", CONTENDED.0, CONTENDED.1),
    ]
}

/// What the service answers on, for every case.
pub(crate) struct Target {
    pub(crate) channels: Vec<Channel>,
    pub(crate) http_url: String,
    /// The server process, whose CPU is read.
    pub(crate) pid: u32,
    /// Tells this run's workspace names and fixtures from others'.
    pub(crate) run_id: String,
}

/// One round's shares of one case.
#[derive(Clone, Copy)]
pub(crate) struct Shares {
    pub(crate) grpc_ceiling: f64,
    pub(crate) http_grpc: f64,
    pub(crate) grpc_replay: f64,
    /// The database's CPU per create in µs (`database_cpu_us`), the
    /// service's over gRPC and the cheapest form's: their share, and which
    /// of the two moves from round to round.
    pub(crate) database_cpu_us: (f64, f64),
    /// gRPC creates/s over the baseline server's, when one runs.
    pub(crate) grpc_baseline: Option<f64>,
    /// gRPC creates/s over the FastAPI stack's, when it runs.
    pub(crate) grpc_fastapi: Option<f64>,
}

/// What runs beside the service and is measured in its rounds.
#[derive(Clone, Copy)]
pub(crate) struct Beside<'a> {
    /// Another build of the server (`--baseline-server`).
    pub(crate) baseline: Option<&'a Target>,
    /// The FastAPI stack (`--fastapi`).
    pub(crate) fastapi: Option<&'a FastApi>,
}

/// One case: its callers, its measurements and its shares by round.
pub(crate) struct Case {
    pub(crate) name: &'static str,
    pub(crate) organizations: usize,
    pub(crate) users_per_organization: usize,
    pub(crate) callers: Arc<Vec<Caller>>,
    pub(crate) rows: Vec<CallerRow>,
    /// Where its rows start in `bench_callers` (pgbench's lookups).
    pub(crate) offset: usize,
    /// gRPC, HTTP, the cheapest-form ceiling, the service's statements.
    pub(crate) runs: [Run; 4],
    /// The baseline server's gRPC creates (`--baseline-server`).
    pub(crate) baseline: Option<Run>,
    /// The FastAPI stack's HTTP creates (`--fastapi`).
    pub(crate) fastapi: Option<Run>,
    pub(crate) by_round: Vec<Shares>,
}

impl Case {
    /// A case with its fixtures written: `organizations` organizations of
    /// `users` users, each with an API token.
    pub(crate) async fn new(
        storage: &Storage,
        (name, organizations, users): (&'static str, usize, usize),
        offset: usize,
        run_id: &str,
        postgres: bool,
    ) -> anyhow::Result<Case> {
        let (callers, rows) = fixtures(storage, name, organizations, users, run_id).await?;
        let (cheapest, replay) = ceiling_names(postgres);
        let runs = [
            "gRPC CreateWorkspace",
            "HTTP POST /api/v1/workspaces",
            cheapest,
            replay,
        ]
        .map(Run::new);
        Ok(Case {
            name,
            organizations,
            users_per_organization: users,
            callers,
            rows,
            offset,
            runs,
            baseline: None,
            fastapi: None,
            by_round: Vec::new(),
        })
    }

    /// Measures the baseline server's gRPC creates too, in every round.
    pub(crate) fn measure_baseline(&mut self) {
        self.baseline = Some(Run::new("gRPC CreateWorkspace, baseline server"));
    }

    /// Measures the FastAPI stack's HTTP creates too, in every round.
    pub(crate) fn measure_fastapi(&mut self) {
        self.fastapi = Some(Run::new("HTTP POST, FastAPI + SQLAlchemy"));
    }

    /// Unrecorded HTTP load on the FastAPI stack, as this case's users.
    pub(crate) async fn warm_up_fastapi(&self, args: &Args, fastapi: &FastApi, run_id: &str) {
        let prefix = format!("warm fastapi {} {run_id}", self.name);
        let calls = http_creates(
            fastapi.url.clone(),
            self.callers.clone(),
            args.concurrency,
            prefix,
        );
        let warmup = Duration::from_secs(args.warmup);
        measure("warm-up", args.concurrency, warmup, calls).await;
    }

    /// "256 organizations × 1 user".
    pub(crate) fn shape(&self) -> String {
        let users = self.users_per_organization;
        let plural = if users == 1 { "" } else { "s" };
        format!(
            "{} organizations × {users} user{plural}",
            self.organizations
        )
    }

    /// Its callers, as the ceilings see them.
    pub(crate) fn ceiling_callers(&self) -> Callers<'_> {
        Callers {
            name: self.name,
            rows: &self.rows,
            offset: self.offset,
        }
    }

    /// Unrecorded gRPC load on this case's organizations.
    pub(crate) async fn warm_up(&self, args: &Args, target: &Target) {
        let prefix = format!("warm {} {}", self.name, target.run_id);
        let calls = grpc_creates(
            target.channels.clone(),
            self.callers.clone(),
            args.concurrency,
            prefix,
        );
        let warmup = Duration::from_secs(args.warmup);
        measure("warm-up", args.concurrency, warmup, calls).await;
    }

    /// One round: the service over gRPC (then the baseline server's, if
    /// one runs), then over HTTP (then the FastAPI stack, if it runs),
    /// then its two ceilings on this case's callers, each with the CPU it
    /// cost.
    pub(crate) async fn round(
        &mut self,
        args: &Args,
        target: &Target,
        beside: Beside<'_>,
        database_url: &str,
        round: u64,
    ) -> anyhow::Result<()> {
        let (concurrency, duration) = (args.concurrency, Duration::from_secs(args.seconds));
        let names = self.runs.each_ref().map(|r| r.name.clone());
        let prefix = |over: &str| format!("{over} {} {round} {}", self.name, target.run_id);
        let g = self.grpc_round(args, target, &names[0], round).await?;
        let b = match (beside.baseline, &self.baseline) {
            (Some(other), Some(run)) => Some(self.grpc_round(args, other, &run.name, round).await?),
            _ => None,
        };
        let h = timed(target.pid, async {
            let calls = http_creates(
                target.http_url.clone(),
                self.callers.clone(),
                concurrency,
                prefix("http"),
            );
            Ok(measure(&names[1], concurrency, duration, calls).await)
        });
        let h = h.await?;
        let f = match beside.fastapi {
            Some(fastapi) => {
                let calls = http_creates(
                    fastapi.url.clone(),
                    self.callers.clone(),
                    concurrency,
                    prefix("fastapi"),
                );
                let name = "HTTP POST, FastAPI + SQLAlchemy";
                let run = timed(fastapi.pid, async {
                    Ok(measure(name, concurrency, duration, calls).await)
                });
                Some(run.await?)
            }
            None => None,
        };
        let (c, r) = ceilings(
            args,
            self.ceiling_callers(),
            database_url,
            round,
            target.pid,
        )
        .await?;
        let postgres = database_url.starts_with("postgres");
        let share = |a: &Run, b: &Run| a.per_second() / b.per_second();
        self.by_round.push(Shares {
            grpc_ceiling: share(&g, &c),
            http_grpc: share(&h, &g),
            grpc_replay: share(&g, &r),
            database_cpu_us: database_cpu_us(&g, &c, postgres),
            grpc_baseline: b.as_ref().map(|b| share(&g, b)),
            grpc_fastapi: f.as_ref().map(|f| share(&g, f)),
        });
        if let (Some(run), Some(f)) = (&mut self.fastapi, f) {
            run.absorb(f);
        }
        if let (Some(run), Some(b)) = (&mut self.baseline, b) {
            run.absorb(b);
        }
        for (run, got) in self.runs.iter_mut().zip([g, h, c, r]) {
            run.absorb(got);
        }
        Ok(())
    }
}

impl Case {
    /// One measurement of gRPC creates on `target` as this case's users.
    async fn grpc_round(
        &self,
        args: &Args,
        target: &Target,
        name: &str,
        round: u64,
    ) -> anyhow::Result<Run> {
        let (concurrency, duration) = (args.concurrency, Duration::from_secs(args.seconds));
        let prefix = format!("grpc {} {round} {}", self.name, target.run_id);
        let run = timed(target.pid, async {
            let calls = grpc_creates(
                target.channels.clone(),
                self.callers.clone(),
                concurrency,
                prefix,
            );
            Ok(measure(name, concurrency, duration, calls).await)
        });
        run.await
    }
}

/// The database's CPU per create in µs, the service's (`service`) and the
/// ceiling's: PostgreSQL's processes on PostgreSQL; on SQLite, which runs
/// inside the server and inside the bare loop, the server's CPU and the
/// bare loop's (this process's, the load generator being idle then).
pub(crate) fn database_cpu_us(service: &Run, ceiling: &Run, postgres: bool) -> (f64, f64) {
    let us = |run: &Run, cpu| run.per_call(cpu) * 1e6;
    if postgres {
        (
            us(service, service.cpu.database),
            us(ceiling, ceiling.cpu.database),
        )
    } else {
        (
            us(service, service.cpu.server),
            us(ceiling, ceiling.cpu.client),
        )
    }
}

/// The database's CPU per create, the service's over the ceiling's
/// (`database_cpu_us`).
pub(crate) fn database_cpu_share(service: &Run, ceiling: &Run, postgres: bool) -> f64 {
    let (service, ceiling) = database_cpu_us(service, ceiling, postgres);
    service / ceiling
}

/// `organizations` organizations of `users` users, each with an API
/// token: the callers, and their rows for the ceilings' own lookups.
async fn fixtures(
    storage: &Storage,
    case: &str,
    organizations: usize,
    users: usize,
    run_id: &str,
) -> anyhow::Result<(Arc<Vec<Caller>>, Vec<CallerRow>)> {
    let plan = storage
        .create_plan(&format!("bench-{run_id}-{case}"), true, None)
        .await?;
    let mut callers = Vec::new();
    let mut rows = Vec::new();
    for o in 0..organizations {
        let slug = format!("bench-{run_id}-{case}-{o}");
        let org = storage
            .create_organization(&slug, &slug, plan, WorkspaceCreationPolicy::RoleBased)
            .await?;
        for u in 0..users {
            let email = format!("bench-{run_id}-{case}-{o}-{u}@bench.test");
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
