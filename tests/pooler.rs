//! Behind a real connection pooler (pgbouncer, Debian's package) in front
//! of the PostgreSQL of `TEST_DATABASE_URL`: in transaction mode, where
//! server connections are shared between transactions of different
//! clients, and in session mode with a pool exactly as large as
//! DATABASE_MAX_CONNECTIONS. Every answer is checked against what was
//! asked, and the stored rows against the answers, through a direct
//! connection.

mod common;

use common::reason_of as reason;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use common::{
    Backend, Org, PlanSpec, TestApp, authed, named,
    pgbouncer::{Pgbouncer, PoolMode},
    spawn_app_with,
};
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use workspace_service::{
    domain::Reason,
    proto::{
        GetWorkspaceRequest, ListWorkspacesRequest,
        workspace_service_client::WorkspaceServiceClient,
    },
    storage::{Pooler, Storage},
};

/// The service behind a fresh pgbouncer, and a direct connection to the
/// same database for checking what was stored.
struct Setup {
    app: TestApp,
    direct: Storage,
    _bouncer: Pgbouncer,
}

async fn behind(
    mode: PoolMode,
    server_pool: u32,
    pooler: Pooler,
    max_connections: u32,
) -> Option<Setup> {
    let server_url = match std::env::var("TEST_DATABASE_URL") {
        Ok(url) => url,
        Err(_) if std::env::var_os("REQUIRE_TEST_DATABASE").is_some() => {
            panic!("REQUIRE_TEST_DATABASE is set but TEST_DATABASE_URL is not")
        }
        Err(_) => {
            eprintln!("skipped: TEST_DATABASE_URL is not set");
            return None;
        }
    };
    let bouncer = Pgbouncer::start(&server_url, mode, server_pool)?;
    let mut direct_url = String::new();
    let app = spawn_app_with(Backend::Postgres, |settings| {
        direct_url = settings.database.url.expose().to_owned();
        settings.database.url = bouncer.url_for(&direct_url).into();
        settings.database.pooler = pooler;
        settings.database.max_connections = max_connections;
        // The load is many calls per organization at once; the
        // per-organization gate is tested elsewhere.
        settings.server.max_concurrent_calls_per_organization = 1_000;
    })
    .await?;
    let direct = Storage::connect(&direct_url, 2).await.unwrap();
    Some(Setup {
        app,
        direct,
        _bouncer: bouncer,
    })
}

/// `per_org` creates in each organization at once, each followed by a Get
/// of what it created and a List of its organization. Returns every
/// failure and every answer that does not match its question.
async fn mixed_load(app: &TestApp, orgs: &[Org], per_org: usize) -> Vec<String> {
    let channel = app.channel().await;
    let mut tasks = Vec::new();
    for (o, org) in orgs.iter().enumerate() {
        for i in 0..per_org {
            let mut client = WorkspaceServiceClient::new(channel.clone());
            let org = org.clone();
            tasks.push(tokio::spawn(async move {
                let name = format!("Load {o}-{i:03}");
                let created = match client
                    .create_workspace(authed(&org.owner.token, named(&org, &name)))
                    .await
                {
                    Ok(created) => created.into_inner(),
                    Err(status) => return vec![format!("create {name}: {status:?}")],
                };
                let mut wrong = Vec::new();
                if created.name != name || created.organization_id != org.id.to_string() {
                    wrong.push(format!("create {name} answered {created:?}"));
                }
                match client
                    .get_workspace(authed(
                        &org.owner.token,
                        GetWorkspaceRequest {
                            id: created.id.clone(),
                        },
                    ))
                    .await
                {
                    Ok(got) if got.get_ref().name == name && got.get_ref().id == created.id => {}
                    other => wrong.push(format!("get {name}: {other:?}")),
                }
                match client
                    .list_workspaces(authed(
                        &org.owner.token,
                        ListWorkspacesRequest {
                            organization_id: org.id.to_string(),
                            page_size: 5,
                            ..Default::default()
                        },
                    ))
                    .await
                {
                    Ok(page) => {
                        let page = page.into_inner();
                        if page.workspaces.is_empty()
                            || page
                                .workspaces
                                .iter()
                                .any(|w| w.organization_id != org.id.to_string())
                        {
                            wrong.push(format!("list for {name}: {page:?}"));
                        }
                    }
                    Err(status) => wrong.push(format!("list for {name}: {status:?}")),
                }
                wrong
            }));
        }
    }
    let mut failures = Vec::new();
    for task in tasks {
        failures.extend(task.await.unwrap());
    }
    failures
}

/// Every organization holds exactly the workspaces the load created, each
/// whole, its counter equal to their number (read past the pooler).
async fn assert_stored(direct: &Storage, orgs: &[Org], per_org: usize) {
    for (o, org) in orgs.iter().enumerate() {
        let stored = common::assert_whole(direct, org).await;
        let mut names: Vec<String> = stored.into_iter().map(|w| w.name).collect();
        names.sort();
        let wanted: Vec<String> = (0..per_org).map(|i| format!("Load {o}-{i:03}")).collect();
        assert_eq!(names, wanted, "organization {o}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transaction_pooler_shares_four_server_connections_between_sixteen_without_a_wrong_answer()
{
    // 16 client connections over 4 server connections: every transaction
    // may land on a server connection another client just used.
    let Some(setup) = behind(PoolMode::Transaction, 4, Pooler::Transaction, 16).await else {
        return;
    };
    let app = &setup.app;
    let mut orgs = Vec::new();
    for _ in 0..4 {
        orgs.push(app.organization(PlanSpec::default()).await);
    }
    let failures = mixed_load(app, &orgs, 50).await;
    assert!(
        failures.is_empty(),
        "{} of 200 calls went wrong, first: {:#?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_stored(&setup.direct, &orgs, 50).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transaction_pooler_keeps_the_workspace_limit_exact_under_racing_creates() {
    let Some(setup) = behind(PoolMode::Transaction, 3, Pooler::Transaction, 12).await else {
        return;
    };
    let app = &setup.app;
    let org = app.organization(PlanSpec::with_limit(10)).await;
    let channel = app.channel().await;
    let results = common::concurrently(40, |i| {
        let mut client = WorkspaceServiceClient::new(channel.clone());
        let request = authed(&org.owner.token, named(&org, &format!("Racing {i:02}")));
        async move { client.create_workspace(request).await }
    })
    .await;
    let successes = results.iter().filter(|r| r.is_ok()).count();
    let others: Vec<_> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .filter(|s| {
            s.code() != Code::ResourceExhausted || reason(s) != Reason::WorkspaceLimitReached
        })
        .collect();
    assert!(others.is_empty(), "unexpected errors: {others:?}");
    assert_eq!(successes, 10);
    assert_eq!(common::assert_whole(&setup.direct, &org).await.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn session_pooler_as_large_as_the_pool_never_reports_the_database_down_under_load() {
    // The pooler has exactly DATABASE_MAX_CONNECTIONS server connections:
    // the health check's connection is one of them, not an extra one that
    // would queue behind the pool's.
    let Some(setup) = behind(PoolMode::Session, 6, Pooler::Session, 6).await else {
        return;
    };
    let app = &setup.app;
    let mut orgs = Vec::new();
    for _ in 0..6 {
        orgs.push(app.organization(PlanSpec::default()).await);
    }
    let mut health = HealthClient::new(app.channel().await);
    let storage = app.storage.clone();
    let load_done = Arc::new(tokio::sync::Notify::new());
    let watcher = {
        let load_done = load_done.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let started = Instant::now();
            loop {
                let status = health
                    .check(HealthCheckRequest {
                        service: "workspace.v1.WorkspaceService".into(),
                    })
                    .await
                    .map(|r| r.into_inner().status());
                seen.push((status.ok(), storage.availability().is_up()));
                tokio::select! {
                    () = load_done.notified() => break,
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
                assert!(started.elapsed() < Duration::from_secs(120));
            }
            seen
        })
    };
    let failures = mixed_load(app, &orgs, 40).await;
    load_done.notify_one();
    let seen = watcher.await.unwrap();
    assert!(
        failures.is_empty(),
        "{} of 240 calls went wrong, first: {:#?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(seen.len() > 3, "the load was too quick to watch: {seen:?}");
    assert!(
        seen.iter()
            .all(|(status, up)| *status == Some(ServingStatus::Serving) && *up),
        "the database was reported down while it answered: {seen:?}"
    );
    assert_stored(&setup.direct, &orgs, 40).await;
}

/// Readiness (`""` and the service) and liveness, as the health service
/// answers them now.
async fn health_of(app: &TestApp) -> (Vec<ServingStatus>, ServingStatus) {
    let mut health = HealthClient::new(app.channel().await);
    let mut check = async |service: &str| {
        health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status()
    };
    let readiness = vec![
        check("").await,
        check("workspace.v1.WorkspaceService").await,
    ];
    (readiness, check("liveness").await)
}

/// Waits until the health monitor has run a few rounds (liveness is set by
/// its start; the tests check every 200 ms), then returns what readiness
/// says over another second.
async fn readiness_after_a_few_rounds(app: &TestApp) -> Vec<ServingStatus> {
    for _ in 0..100 {
        if health_of(app).await.1 == ServingStatus::Serving {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut seen = Vec::new();
    for _ in 0..5 {
        let (readiness, liveness) = health_of(app).await;
        assert_eq!(liveness, ServingStatus::Serving, "the process is up");
        seen.extend(readiness);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transaction_pooler_with_database_pooler_none_is_named_at_start_and_never_ready() {
    let Some(setup) = behind(PoolMode::Transaction, 4, Pooler::None, 6).await else {
        return;
    };
    let app = &setup.app;
    // Found by the look at start; on a busy machine that look may get no
    // answer in time, and the next, 5 s on, finds it.
    let mut diagnosis = app.storage.pooler_mismatch();
    for _ in 0..80 {
        if diagnosis.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        diagnosis = app.storage.pooler_mismatch();
    }
    let diagnosis = diagnosis.expect("the mismatch is found at start, or 5 s on");
    assert!(
        diagnosis.starts_with(
            "DATABASE_POOLER=none but the database is reached through a transaction-mode pooler"
        ) && diagnosis.contains("set DATABASE_POOLER=transaction"),
        "{diagnosis}"
    );
    let seen = readiness_after_a_few_rounds(app).await;
    assert!(
        seen.iter().all(|s| *s == ServingStatus::NotServing),
        "readiness while DATABASE_POOLER is wrong: {seen:?}"
    );
    assert!(
        app.storage.pooler_mismatch().is_some(),
        "later looks find it too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_pooler_with_database_pooler_none_and_a_transaction_pooler_named_are_ready() {
    // The control: what works is not reported.
    for (mode, pooler) in [
        (PoolMode::Session, Pooler::None),
        (PoolMode::Session, Pooler::Session),
        (PoolMode::Transaction, Pooler::Transaction),
    ] {
        let Some(setup) = behind(mode, 6, pooler, 6).await else {
            return;
        };
        let app = &setup.app;
        assert_eq!(app.storage.pooler_mismatch(), None, "{mode:?} {pooler:?}");
        let seen = readiness_after_a_few_rounds(app).await;
        assert!(
            seen.iter().all(|s| *s == ServingStatus::Serving),
            "{mode:?} {pooler:?}: {seen:?}"
        );
    }
}

/// As an operator sees it: the service process behind a transaction
/// pooler with `DATABASE_POOLER=none` says so by name in its log.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_wrong_pooler_setting_is_named_in_the_log_at_start() {
    let Some(postgres) = common::FreshPostgres::create().await else {
        return;
    };
    let Some(bouncer) = Pgbouncer::start(&postgres.url, PoolMode::Transaction, 4) else {
        return;
    };
    let url = bouncer.url_for(&postgres.url);
    let service = common::process::ServiceProcess::start(&[
        ("DATABASE_URL", url.as_str()),
        ("DATABASE_POOLER", "none"),
        ("SEED_DEMO", "false"),
    ])
    .await;
    let logs = service.logs();
    assert!(
        logs.iter().any(|line| line.contains("\"level\":\"ERROR\"")
            && line.contains(
                "DATABASE_POOLER=none but the database is reached through a transaction-mode pooler"
            )),
        "{}",
        logs.join("\n")
    );
}

/// The reverse, as far as it can be told: `DATABASE_POOLER=transaction`
/// straight to PostgreSQL works (three round trips a statement dearer), so
/// it is a warning at start and readiness is not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_pooler_transaction_without_a_pooler_is_a_warning_at_start() {
    let Some(postgres) = common::FreshPostgres::create().await else {
        return;
    };
    let service = common::process::ServiceProcess::start(&[
        ("DATABASE_URL", postgres.url.as_str()),
        ("DATABASE_POOLER", "transaction"),
        ("SEED_DEMO", "false"),
        ("HEALTH_CHECK_INTERVAL_MS", "200"),
    ])
    .await;
    let logs = service.logs();
    assert!(
        logs.iter().any(|line| line.contains("\"level\":\"WARN\"")
            && line
                .contains("DATABASE_POOLER=transaction but no transaction-mode pooler was seen")),
        "{}",
        logs.join("\n")
    );
    let mut health = HealthClient::new(service.channel().await);
    let mut status = None;
    for _ in 0..50 {
        status = Some(
            health
                .check(HealthCheckRequest::default())
                .await
                .unwrap()
                .into_inner()
                .status(),
        );
        if status == Some(ServingStatus::Serving) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, Some(ServingStatus::Serving), "it works: ready");
}

/// What PostgreSQL says when named statements clash (SQLSTATE 42P05, as
/// behind a transaction pooler the service was not told of) reaches the
/// log with the diagnosis, not only PostgreSQL's words.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_prepared_statement_clash_is_logged_with_the_pooler_diagnosis() {
    use sea_orm::ConnectionTrait;
    use workspace_service::domain::DomainError;
    let Some(postgres) = common::FreshPostgres::create().await else {
        return;
    };
    let storage = Storage::connect(&postgres.url, 2).await.unwrap();
    // One simple-protocol message: both run on one server connection.
    let clash = storage
        .connection()
        .execute_unprepared("PREPARE clash AS SELECT 1; PREPARE clash AS SELECT 2")
        .await
        .unwrap_err();
    let DomainError::Internal(cause) = DomainError::from(clash) else {
        panic!("not an internal error");
    };
    let logged = format!("{cause:#}");
    assert!(
        logged.contains("transaction-mode pooler with DATABASE_POOLER not set to transaction")
            && logged.contains("already exists"),
        "{logged}"
    );
    // Any other failure is left as it is.
    let other = storage
        .connection()
        .execute_unprepared("SELECT * FROM no_such_table")
        .await
        .unwrap_err();
    let DomainError::Internal(cause) = DomainError::from(other) else {
        panic!("not an internal error");
    };
    assert!(!format!("{cause:#}").contains("pooler"));
}
