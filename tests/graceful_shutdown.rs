//! Graceful shutdown: a call in flight when the signal comes finishes; a
//! call after it is refused; the server stops cleanly. A call that outlives
//! the grace period does not hold the process: the server returns (and the
//! process exits, ending the call).

mod common;

use std::time::Duration;

use common::{Backend, PlanSpec, authed, named, spawn_app_with};
use workspace_service::proto::workspace_service_client::WorkspaceServiceClient;

on_both_databases!(
    a_call_in_flight_finishes_and_new_calls_are_refused,
    shutdown_returns_after_the_grace_period_even_with_a_stuck_call,
);

async fn a_call_in_flight_finishes_and_new_calls_are_refused(backend: Backend) {
    let Some(mut app) = spawn_app_with(backend, |s| s.shutdown_grace_ms = 10_000).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let blocker = app.hold_organization(org.id).await;
    let mut client = WorkspaceServiceClient::new(app.channel().await);
    let request = authed(&org.owner.token, named(&org, "In flight"));
    let slow = tokio::spawn(async move { client.create_workspace(request).await });
    tokio::time::sleep(Duration::from_millis(300)).await;

    app.signal_shutdown();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A new caller gets nowhere: no connection, or a refused call.
    let addr = app.addr;
    let token = org.owner.token.clone();
    let late = tokio::time::timeout(Duration::from_secs(2), async move {
        let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        WorkspaceServiceClient::new(channel)
            .create_workspace(authed(&token, named(&org, "Too late")))
            .await
            .map_err(|s| s.to_string())
    })
    .await;
    assert!(
        !matches!(late, Ok(Ok(_))),
        "a call after shutdown was served"
    );

    blocker.rollback().await.unwrap();
    let finished = slow.await.unwrap().expect("the call in flight finishes");
    assert_eq!(finished.into_inner().name, "In flight");
    app.stop().await;
}

async fn shutdown_returns_after_the_grace_period_even_with_a_stuck_call(backend: Backend) {
    let Some(mut app) = spawn_app_with(backend, |s| s.shutdown_grace_ms = 300).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let blocker = app.hold_organization(org.id).await;
    let mut client = WorkspaceServiceClient::new(app.channel().await);
    let request = authed(&org.owner.token, named(&org, "Never finishes"));
    let slow = tokio::spawn(async move { client.create_workspace(request).await });
    tokio::time::sleep(Duration::from_millis(300)).await;

    app.signal_shutdown();
    // The server returns after the grace period although the call is stuck.
    tokio::time::timeout(Duration::from_secs(5), app.stop())
        .await
        .expect("the server stops after its grace period");
    // The test's database may be gone with the app (PostgreSQL drops it).
    let _ = blocker.rollback().await;
    slow.abort();
}
