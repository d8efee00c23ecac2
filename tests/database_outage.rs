//! Check 11's UNAVAILABLE and the health service, against a PostgreSQL
//! server of the test's own (initdb into a temporary directory, pg_ctl on a
//! free port) that the test stops and starts again. Never the machine's
//! shared server.

mod common;

use std::time::{Duration, Instant};
use workspace_service::domain::Reason;

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use common::{
    Backend, Org, OwnPostgres, PlanSpec, TestApp, assert_error, authed, named, spawn_app_at,
    spawn_app_with,
};
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use workspace_service::{
    proto::workspace_service_client::WorkspaceServiceClient, storage::entities::workspace,
};

async fn wait_for_health(
    health: &mut HealthClient<tonic::transport::Channel>,
    wanted: ServingStatus,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = health
            .check(HealthCheckRequest {
                service: "workspace.v1.WorkspaceService".into(),
            })
            .await
            .map(|r| r.into_inner().status());
        if status.as_ref().ok() == Some(&wanted) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "health never became {wanted:?} (last: {status:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_outage_is_unavailable_and_not_serving_then_recovers() {
    let Some(postgres) = OwnPostgres::start_new() else {
        return;
    };
    let url = postgres.url();
    let app = spawn_app_at(url).await;
    let org = app.organization(PlanSpec::default()).await;
    let mut health = HealthClient::new(app.channel().await);
    wait_for_health(&mut health, ServingStatus::Serving).await;
    app.create_named(&org, "Before the outage").await;

    postgres.stop();
    wait_for_health(&mut health, ServingStatus::NotServing).await;
    // Liveness does not follow the database: no restart for an outage.
    let liveness = health
        .check(HealthCheckRequest {
            service: "liveness".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status();
    assert_eq!(liveness, ServingStatus::Serving);
    // Not UNAUTHENTICATED, although the token cannot be looked up: the
    // caller's credentials may well be fine.
    assert_error(
        app.create(&org.owner.token, named(&org, "During the outage"))
            .await,
        Code::Unavailable,
        Reason::Unavailable,
    );

    // Both transports answer the outage alike, at once: the probe has
    // found the database away, so no call waits for a connection.
    let http = app.http_addr.expect("the HTTP listener is on");
    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(format!(
            "http://{http}/api/v1/organizations/{}/workspaces",
            org.id
        ))
        .bearer_auth(&org.owner.token)
        .header("grpc-timeout", "10S")
        .json(&serde_json::json!({"name": "During the outage over HTTP"}))
        .send()
        .await
        .unwrap();
    let http_took = started.elapsed();
    assert_eq!(
        response.status().as_u16(),
        503,
        "{:?}",
        response.text().await
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], 14, "{body}");
    let mut request = common::authed(&org.owner.token, named(&org, "During the outage, timed"));
    request
        .metadata_mut()
        .insert("grpc-timeout", "10S".parse().unwrap());
    let mut client = app.client().await;
    let started = Instant::now();
    let grpc = client.create_workspace(request).await;
    let grpc_took = started.elapsed();
    assert_eq!(
        grpc.expect_err("the database is away").code(),
        Code::Unavailable
    );
    for (transport, took) in [("HTTP", http_took), ("gRPC", grpc_took)] {
        assert!(
            took < Duration::from_secs(1),
            "{transport} took {took:?} to answer an outage the probe had found"
        );
    }

    postgres.start();
    wait_for_health(&mut health, ServingStatus::Serving).await;
    app.create_named(&org, "After the outage").await;
}

/// What one call of the load did.
struct Call {
    name: String,
    started: Instant,
    took: Duration,
    result: Result<String, Code>,
}

/// Workers creating workspaces with fresh names, each call with a 2 s
/// deadline, until `stop` is set.
async fn load(app: &TestApp, org: &Org, workers: usize, stop: Arc<AtomicBool>) -> Vec<Call> {
    let tasks: Vec<_> = (0..workers)
        .map(|worker| {
            let channel = connect_lazy(app);
            let token = org.owner.token.clone();
            let organization_id = org.id.to_string();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut client = WorkspaceServiceClient::new(channel);
                let mut calls = Vec::new();
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let name = format!("Load {worker}-{i}");
                    let mut request = authed(
                        &token,
                        workspace_service::proto::CreateWorkspaceRequest {
                            organization_id: organization_id.clone(),
                            name: name.clone(),
                            ..Default::default()
                        },
                    );
                    request.set_timeout(Duration::from_secs(2));
                    let started = Instant::now();
                    let result = client
                        .create_workspace(request)
                        .await
                        .map(|r| r.into_inner().id)
                        .map_err(|s| s.code());
                    let failed = result.is_err();
                    calls.push(Call {
                        name,
                        started,
                        took: started.elapsed(),
                        result,
                    });
                    if failed {
                        // A client backing off, not spinning.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                calls
            })
        })
        .collect();
    let mut calls = Vec::new();
    for task in tasks {
        calls.extend(task.await.unwrap());
    }
    calls
}

fn connect_lazy(app: &TestApp) -> tonic::transport::Channel {
    tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect_lazy()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_stopped_under_load_fails_fast_writes_nothing_half_and_recovers() {
    let Some(postgres) = OwnPostgres::start_new() else {
        return;
    };
    let url = postgres.url();
    // The harness probes every 200 ms.
    let app = spawn_app_at(url).await;
    let org = app.organization(PlanSpec::default()).await;
    let mut health = HealthClient::new(app.channel().await);
    wait_for_health(&mut health, ServingStatus::Serving).await;

    let stop = Arc::new(AtomicBool::new(false));
    let running = {
        let (app, org, stop) = (&app, &org, stop.clone());
        async move { load(app, org, 8, stop).await }
    };
    let outage = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let stopped_at = Instant::now();
        postgres.stop();
        wait_for_health(&mut health, ServingStatus::NotServing).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        postgres.start();
        let restarted_at = Instant::now();
        wait_for_health(&mut health, ServingStatus::Serving).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop.store(true, Ordering::Relaxed);
        (stopped_at, restarted_at)
    };
    let (calls, (stopped_at, restarted_at)) = tokio::join!(running, outage);

    // Every call ended by its deadline (2 s, plus scheduling slack), and
    // failures were UNAVAILABLE: no INTERNAL, no hang.
    let slowest = calls.iter().map(|c| c.took).max().unwrap();
    assert!(slowest < Duration::from_secs(3), "a call took {slowest:?}");
    let mut unavailable = 0;
    for call in &calls {
        match call.result {
            Ok(_) => {}
            Err(Code::Unavailable) => unavailable += 1,
            Err(code) => panic!("{}: {code:?} after {:?}", call.name, call.took),
        }
    }
    let ok: Vec<&Call> = calls.iter().filter(|c| c.result.is_ok()).collect();
    assert!(unavailable > 0, "the outage was not noticed");
    // Fast: the median failure took well under the deadline.
    let mut failed: Vec<Duration> = calls
        .iter()
        .filter(|c| c.result.is_err())
        .map(|c| c.took)
        .collect();
    failed.sort();
    let median = failed[failed.len() / 2];
    assert!(
        median < Duration::from_millis(500),
        "failures took {median:?} (median)"
    );
    // Calls succeeded before the stop and again after the restart, on the
    // same pool: no restart of the service.
    let before = ok.iter().filter(|c| c.started < stopped_at).count();
    let after = ok.iter().filter(|c| c.started > restarted_at).count();
    eprintln!(
        "{} calls: {before} OK before the stop, {after} OK after the restart, \
         {unavailable} UNAVAILABLE (median {median:?}, slowest call {slowest:?})",
        calls.len()
    );
    assert!(before > 5 && after > 5, "{before} OK before, {after} after");
    app.create_named(&org, "After the load").await;

    // Nothing half written: every workspace has its OWNER membership, the
    // counter matches, and every OK'd workspace is there. (A call cut while
    // its COMMIT was on the wire may have committed although it answered
    // UNAVAILABLE; a retry with its request_id finds it. It is whole too.)
    let workspaces = common::assert_whole(&app.storage, &org).await;
    let stored: std::collections::HashSet<String> =
        workspaces.iter().map(|w| w.id.to_string()).collect();
    for call in &ok {
        assert!(
            stored.contains(call.result.as_ref().unwrap()),
            "{} is lost",
            call.name
        );
    }
    assert_eq!(
        workspaces.len(),
        ok.len() + 1 + ambiguous(&calls, &workspaces)
    );
}

/// Calls answered UNAVAILABLE whose workspace exists: the COMMIT reached
/// the server, its answer did not come back.
fn ambiguous(calls: &[Call], stored: &[workspace::Model]) -> usize {
    calls
        .iter()
        .filter(|c| c.result.is_err() && stored.iter().any(|w| w.name == c.name))
        .count()
}

/// A restart quicker than any probe: the pool's connections all died with
/// the old server, and no health check noticed. The first call to meet a
/// dead connection fails with UNAVAILABLE; it makes the service distrust
/// every connection opened before it, so the calls after it get fresh ones
/// instead of each finding another dead one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_unseen_by_probes_costs_at_most_one_failed_call() {
    let Some(postgres) = OwnPostgres::start_new() else {
        return;
    };
    let url = postgres.url();
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.database.url = url.into();
        // No probe in this test's lifetime but the one a failed call asks
        // for, which finds the database back.
        s.database.health_check_interval_ms = 600_000;
    })
    .await
    .expect("the app starts");
    let org = app.organization(PlanSpec::default()).await;
    // Fill the pool: many calls at once each hold a connection.
    let channel = app.channel().await;
    let results = common::concurrently(16, |i| {
        let mut client = WorkspaceServiceClient::new(channel.clone());
        let request = authed(&org.owner.token, named(&org, &format!("Before {i}")));
        async move { client.create_workspace(request).await.map(|_| ()) }
    })
    .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let pooled = app.storage.pool_stats();
    assert!(pooled.idle + pooled.used >= 4, "the pool grew: {pooled:?}");

    postgres.stop();
    postgres.start();

    let mut failed = Vec::new();
    for i in 0..10 {
        match app
            .create(&org.owner.token, named(&org, &format!("After {i}")))
            .await
        {
            Ok(_) => {}
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                failed.push(i);
            }
        }
    }
    assert!(
        failed.len() <= 1 && failed.iter().all(|&i| i == 0),
        "calls failed after the restart: {failed:?} (pool had {pooled:?})"
    );
    let workspaces = common::assert_whole(&app.storage, &org).await;
    assert_eq!(workspaces.len(), 16 + 10 - failed.len());
}

/// A database that hangs (every PostgreSQL process stopped, connections
/// open): both transports answer within the call's deadline, and the
/// JSON gateway as the gRPC port does, UNAVAILABLE/503 or
/// DEADLINE_EXCEEDED/504, never after the database comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hung_database_is_answered_within_the_deadline_on_both_ports() {
    let Some(postgres) = OwnPostgres::start_new() else {
        return;
    };
    let app = spawn_app_at(postgres.url()).await;
    let org = app.organization(PlanSpec::default()).await;
    let workspace = app.create_named(&org, "Before the hang").await;
    let http = app.http_addr.expect("the HTTP listener is on");

    postgres.pause();
    let started = Instant::now();
    let response = reqwest::Client::new()
        .get(format!("http://{http}/api/v1/workspaces/{}", workspace.id))
        .bearer_auth(&org.owner.token)
        .header("grpc-timeout", "2S")
        .send()
        .await;
    let http_took = started.elapsed();
    let started = Instant::now();
    let grpc = app
        .client()
        .await
        .get_workspace(common::with_header(
            common::authed(
                &org.owner.token,
                workspace_service::proto::GetWorkspaceRequest {
                    id: workspace.id.clone(),
                },
            )
            .into_inner(),
            "grpc-timeout",
            "2S",
        ))
        .await;
    let grpc_took = started.elapsed();
    postgres.resume();

    let status = response.unwrap().status().as_u16();
    assert!(
        status == 503 || status == 504,
        "HTTP answered {status} after {http_took:?}"
    );
    assert!(
        http_took < Duration::from_secs(4),
        "HTTP took {http_took:?}"
    );
    let code = grpc.expect_err("the database is hung").code();
    assert!(
        code == Code::Unavailable || code == Code::DeadlineExceeded,
        "gRPC answered {code:?}"
    );
    assert!(
        grpc_took < Duration::from_secs(4),
        "gRPC took {grpc_took:?}"
    );
}
