//! The JetStream stream the events go to: created bounded as configured,
//! a stream made in advance used as it is and reported, created again when
//! deleted under a running relay.

mod common;

use std::time::Duration;

use common::{
    Backend, PlanSpec, authed,
    nats::{Nats, app_with_nats, drained},
    process::ServiceProcess,
    spawn_app_with,
};

use workspace_service::proto::{
    CreateWorkspaceRequest, workspace_service_client::WorkspaceServiceClient,
};

const STREAM: &str = "WORKSPACE_EVENTS";

on_both_databases!(a_deleted_stream_is_created_again_within_a_round);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fresh_stream_has_the_configured_age_size_replicas_and_duplicate_window() {
    let Some(nats) = Nats::started() else {
        return;
    };
    let url = nats.url();
    let app = spawn_app_with(Backend::Sqlite, move |s| {
        s.events.nats_url = Some(url);
        s.events.relay_interval_ms = 50;
        s.events.max_age = "36h".parse().unwrap();
        s.events.max_bytes = "64MiB".parse().unwrap();
        s.events.duplicate_window = "10m".parse().unwrap();
        s.events.replicas = 1;
    })
    .await
    .unwrap();
    let org = app.organization(PlanSpec::default()).await;
    app.create_named(&org, "Bounded stream").await;
    nats.events(STREAM, 1).await;
    let stream = nats.stream_config(STREAM).await;
    assert_eq!(stream.max_age, Duration::from_secs(36 * 3_600));
    assert_eq!(stream.max_bytes, 64 << 20);
    assert_eq!(stream.num_replicas, 1);
    assert_eq!(stream.duplicate_window, Duration::from_secs(600));
    assert_eq!(
        stream.discard,
        async_nats::jetstream::stream::DiscardPolicy::Old
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn settings_that_would_let_the_stream_grow_without_bound_stop_the_start() {
    let mut settings = workspace_service::config::Settings::default();
    settings.events.max_bytes = "0".parse().unwrap();
    let refused = workspace_service::events::check_settings(&settings.events).unwrap_err();
    assert!(
        refused.to_string().contains("EVENTS_MAX_BYTES"),
        "{refused}"
    );
}

/// A stream a platform team created in advance with a duplicate window
/// shorter than the relay needs: used as it is, and reported at start with
/// both numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_made_in_advance_with_a_short_duplicate_window_is_reported_at_start() {
    let Some(nats) = Nats::started() else {
        return;
    };
    nats.jetstream()
        .await
        .create_stream(async_nats::jetstream::stream::Config {
            name: STREAM.into(),
            subjects: vec!["workspace.events.>".into()],
            max_age: Duration::from_secs(86_400),
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .unwrap();
    let url = nats.url();
    let service = ServiceProcess::start(&[
        ("NATS_URL", url.as_str()),
        ("EVENTS_RELAY_INTERVAL_MS", "50"),
    ])
    .await;
    let reported = |logs: &[String]| {
        logs.iter().any(|line| {
            line.contains("\"level\":\"WARN\"")
                && line.contains("duplicate window of 2m, shorter than the 1h the relay needs")
        })
    };
    for _ in 0..100 {
        if reported(&service.logs()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reported(&service.logs()), "{}", service.logs().join("\n"));
    // The stream is the team's: used as it is.
    assert_eq!(
        nats.stream_config(STREAM).await.duplicate_window,
        Duration::from_secs(120)
    );
}

/// The stream deleted under a running relay ("no stream found" arrives on
/// the acknowledgement): the relay creates it again and publishes what
/// waited, within a few rounds, no restart needed.
async fn a_deleted_stream_is_created_again_within_a_round(backend: Backend) {
    let Some(nats) = Nats::started() else {
        return;
    };
    let Some(app) = app_with_nats(backend, &nats).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    app.create_named(&org, "Before the deletion").await;
    drained(&app).await;
    nats.jetstream().await.delete_stream(STREAM).await.unwrap();
    for i in 0..3 {
        app.create_named(&org, &format!("After the deletion {i}"))
            .await;
    }
    // 50 ms rounds: drained well within drained()'s 30 s.
    drained(&app).await;
    let events = nats.events(STREAM, 3).await;
    assert_eq!(events.len(), 3, "the re-created stream holds what waited");
}

/// An event a stream made in advance refuses (over its `max_msg_size`) is
/// parked: an ERROR log line names it and NATS's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_the_stream_refuses_is_parked_with_an_error_log_line() {
    let Some(nats) = Nats::started() else {
        return;
    };
    nats.jetstream()
        .await
        .create_stream(async_nats::jetstream::stream::Config {
            name: STREAM.into(),
            subjects: vec!["workspace.events.>".into()],
            max_message_size: 2_048,
            max_age: Duration::from_secs(86_400),
            duplicate_window: Duration::from_secs(3_600),
            ..Default::default()
        })
        .await
        .unwrap();
    let url = nats.url();
    let service = ServiceProcess::start(&[
        ("NATS_URL", url.as_str()),
        ("EVENTS_RELAY_INTERVAL_MS", "50"),
    ])
    .await;
    let mut grpc = WorkspaceServiceClient::new(service.channel().await);
    let request = CreateWorkspaceRequest {
        name: "Too large".into(),
        description: "\u{20AC}".repeat(1_000),
        ..Default::default()
    };
    let id = grpc
        .create_workspace(authed(&service.token, request))
        .await
        .unwrap()
        .into_inner()
        .id;
    let parked = |logs: &[String]| {
        logs.iter().any(|line| {
            line.contains("\"level\":\"ERROR\"")
                && line.contains("event parked: NATS refuses it")
                && line.contains("message size exceeds maximum")
        })
    };
    for _ in 0..100 {
        if parked(&service.logs()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(parked(&service.logs()), "{}", service.logs().join("\n"));
    assert!(!id.is_empty(), "the change itself committed");
}
