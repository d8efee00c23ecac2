//! Load shedding: calls beyond MAX_CONCURRENT_CALLS are answered at once
//! with RESOURCE_EXHAUSTED (reason OVERLOADED, HTTP 429) instead of queueing,
//! and the service recovers when the load goes. A call runs within its
//! `grpc-timeout`, capped by MAX_CALL_DURATION_MS, and leaves nothing
//! behind when it is cut.

mod common;

use std::time::{Duration, Instant};
use workspace_service::domain::Reason;

use common::{Backend, PlanSpec, authed, named, spawn_app_with};
use tonic::Code;
use tonic_types::StatusExt;
use workspace_service::proto::workspace_service_client::WorkspaceServiceClient;

on_both_databases!(
    calls_beyond_the_limit_are_shed_at_once_and_the_service_recovers,
    one_organization_held_up_does_not_starve_another,
);

/// A row lock held on organization A holds A's creates; beyond
/// MAX_CONCURRENT_CALLS_PER_ORGANIZATION they are refused at once
/// (ORGANIZATION_OVERLOADED), so organization B's calls still get places.
async fn one_organization_held_up_does_not_starve_another(backend: Backend) {
    use workspace_service::proto::{GetWorkspaceRequest, ListWorkspacesRequest};
    let Some(app) = spawn_app_with(backend, |s| {
        s.server.max_concurrent_calls = 12;
        s.server.max_concurrent_calls_per_organization = 4;
    })
    .await
    else {
        return;
    };
    let a = app.organization(PlanSpec::default()).await;
    let b = app.organization(PlanSpec::default()).await;
    let b_workspace = app.create_named(&b, "Of B").await;
    let blocker = app.hold_organization(a.id).await;

    let channel = app.channel().await;
    let held: Vec<_> = (0..30)
        .map(|i| {
            let mut client = WorkspaceServiceClient::new(channel.clone());
            let request = authed(&a.owner.token, named(&a, &format!("Of A {i}")));
            tokio::spawn(async move { client.create_workspace(request).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // B reads while A's creates wait, 6 at a time (within the 12 places
    // less A's 4): every one served.
    for _round in 0..5 {
        let reads: Vec<_> = (0..6)
            .map(|i| {
                let mut client = WorkspaceServiceClient::new(channel.clone());
                let token = b.owner.token.clone();
                let id = b_workspace.id.clone();
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        client
                            .get_workspace(authed(&token, GetWorkspaceRequest { id }))
                            .await
                            .map(|_| ())
                    } else {
                        client
                            .list_workspaces(authed(&token, ListWorkspacesRequest::default()))
                            .await
                            .map(|_| ())
                    }
                })
            })
            .collect();
        for read in reads {
            read.await.unwrap().expect("B is served while A is held up");
        }
    }

    blocker.rollback().await.unwrap();
    let mut created = 0;
    let mut refused = 0;
    let mut refused_for_the_organization = 0;
    for call in held {
        match call.await.unwrap() {
            Ok(_) => created += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                let details = status.get_error_details();
                // In the first burst some find every place taken before
                // their organization is known.
                let reason = details.error_info().unwrap().reason.clone();
                assert!(
                    reason == Reason::OrganizationOverloaded || reason == Reason::Overloaded,
                    "{status:?}"
                );
                if reason == Reason::OrganizationOverloaded {
                    refused_for_the_organization += 1;
                }
                assert!(details.retry_info().is_some());
                refused += 1;
            }
        }
    }
    assert_eq!(created, 4, "{refused} refused");
    assert!(refused_for_the_organization > 0);
    // Recovered: A creates again.
    app.create_named(&a, "A after").await;
    app.stop().await;
}

/// On SQLite a call queued for a write lock that another connection holds
/// is not cut at its deadline: it waits inside SQLite's busy handler (see
/// the README). So this one runs on PostgreSQL only.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_end_at_their_deadline_capped_by_the_server_on_postgres() {
    calls_end_at_their_deadline_capped_by_the_server(Backend::Postgres).await;
}

async fn calls_beyond_the_limit_are_shed_at_once_and_the_service_recovers(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| s.server.max_concurrent_calls = 3).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;

    let blocker = app.hold_organization(org.id).await;

    let channel = app.channel().await;
    let slow: Vec<_> = (0..3)
        .map(|i| {
            let mut client = WorkspaceServiceClient::new(channel.clone());
            let request = authed(&org.owner.token, named(&org, &format!("Slow {i}")));
            tokio::spawn(async move { client.create_workspace(request).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let started = Instant::now();
    for i in 0..10 {
        let mut client = WorkspaceServiceClient::new(channel.clone());
        let status = client
            .create_workspace(authed(&org.owner.token, named(&org, &format!("Shed {i}"))))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        let details = status.get_error_details();
        assert_eq!(details.error_info().unwrap().reason, Reason::Overloaded);
        assert!(details.retry_info().is_some());
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "shedding took {:?}: calls were queued",
        started.elapsed()
    );
    // Over HTTP the same limit answers 429.
    let http = reqwest::Client::new()
        .post(format!(
            "http://{}/api/v1/workspaces",
            app.http_addr.unwrap()
        ))
        .bearer_auth(&org.owner.token)
        .json(&serde_json::json!({"name": "Shed over HTTP"}))
        .send()
        .await
        .unwrap();
    assert_eq!(http.status().as_u16(), 429);

    blocker.rollback().await.unwrap();
    for call in slow {
        call.await.unwrap().expect("the calls in flight finish");
    }
    // Recovered.
    app.create_named(&org, "After the storm").await;
}

async fn calls_end_at_their_deadline_capped_by_the_server(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| s.server.max_call_duration_ms = 1_000).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let blocker = app.hold_organization(org.id).await;
    let mut client = app.client().await;

    // The caller's deadline, shorter than the cap.
    let mut request = authed(&org.owner.token, named(&org, "Short deadline"));
    request.set_timeout(Duration::from_millis(200));
    let started = Instant::now();
    let status = client.create_workspace(request).await.unwrap_err();
    let short = started.elapsed();
    // The server answers DEADLINE_EXCEEDED a hair before the deadline; on a
    // busy machine tonic's own timers (client or server side) may answer
    // first, with CANCELLED "Timeout expired". Either way the call ends at
    // the caller's deadline, not at the cap.
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    assert!(short < Duration::from_millis(900), "took {short:?}");

    // A longer deadline is cut to the server's cap.
    let mut request = authed(&org.owner.token, named(&org, "Long deadline"));
    request.set_timeout(Duration::from_secs(60));
    let started = Instant::now();
    let status = client.create_workspace(request).await.unwrap_err();
    let capped = started.elapsed();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(
        status.get_error_details().error_info().unwrap().reason,
        Reason::DeadlineExceeded,
        "the server's cap answered"
    );
    assert!(
        capped >= Duration::from_millis(900) && capped < Duration::from_secs(5),
        "took {capped:?}"
    );

    // Cut calls wrote nothing: both names are still free.
    blocker.rollback().await.unwrap();
    app.create_named(&org, "Short deadline").await;
    app.create_named(&org, "Long deadline").await;
}
