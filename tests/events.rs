//! Workspace events through the transactional outbox to a private NATS
//! JetStream server: each change exactly once, in its organization's order,
//! whatever crashes or goes away. The stream's configuration is in
//! event_stream.rs, the formats and trace context in event_formats.rs, what
//! no tenant can block in event_tenants.rs.

mod common;

use std::{collections::HashMap, time::Duration};

use common::{
    Backend, Org, PlanSpec, TestApp, authed, concurrently, named,
    nats::{Nats, app_with_nats, drained},
    process::ServiceProcess,
    spawn_app_with,
};
use workspace_service::{
    domain::OrganizationRole,
    proto::{
        AddWorkspaceMemberRequest, CreateWorkspaceAccessTokenRequest, CreateWorkspaceRequest,
        DeleteWorkspaceRequest, EventType, RemoveWorkspaceMemberRequest,
        RevokeWorkspaceAccessTokenRequest, Role, UpdateWorkspaceMemberRequest,
        UpdateWorkspaceRequest, workspace_service_client::WorkspaceServiceClient,
    },
    storage::all_events,
};

const STREAM: &str = "WORKSPACE_EVENTS";

on_both_databases!(
    every_change_is_one_event_with_its_payload,
    events_written_while_nats_is_down_are_published_once_in_order,
);

async fn every_change_is_one_event_with_its_payload(backend: Backend) {
    let Some(nats) = Nats::started() else {
        return;
    };
    let Some(app) = app_with_nats(backend, &nats).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let colleague = app.member(org.id, OrganizationRole::Member).await;
    let token = &org.owner.token;
    let mut grpc = WorkspaceServiceClient::new(app.channel().await);

    let workspace = app.create_named(&org, "Evented").await;
    let id = workspace.id.clone();
    grpc.update_workspace(authed(
        token,
        UpdateWorkspaceRequest {
            id: id.clone(),
            name: "Evented and renamed".into(),
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    grpc.add_workspace_member(authed(
        token,
        AddWorkspaceMemberRequest {
            workspace_id: id.clone(),
            user_id: colleague.id.to_string(),
            role: Role::WorkspaceMember as i32,
        },
    ))
    .await
    .unwrap();
    grpc.update_workspace_member(authed(
        token,
        UpdateWorkspaceMemberRequest {
            workspace_id: id.clone(),
            user_id: colleague.id.to_string(),
            role: Role::WorkspaceAdmin as i32,
        },
    ))
    .await
    .unwrap();
    let created = grpc
        .create_workspace_access_token(authed(
            token,
            CreateWorkspaceAccessTokenRequest {
                workspace_id: id.clone(),
                name: "CI".into(),
                expire_time: None,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let access_token = created.access_token.unwrap();
    grpc.revoke_workspace_access_token(authed(
        token,
        RevokeWorkspaceAccessTokenRequest {
            workspace_id: id.clone(),
            token_id: access_token.id.clone(),
        },
    ))
    .await
    .unwrap();
    grpc.remove_workspace_member(authed(
        token,
        RemoveWorkspaceMemberRequest {
            workspace_id: id.clone(),
            user_id: colleague.id.to_string(),
        },
    ))
    .await
    .unwrap();
    grpc.delete_workspace(authed(
        token,
        DeleteWorkspaceRequest {
            id: id.clone(),
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    // A refused change writes nothing.
    assert!(
        grpc.delete_workspace(authed(
            token,
            DeleteWorkspaceRequest {
                id: id.clone(),
                ..Default::default()
            }
        ))
        .await
        .is_err()
    );

    let events = nats.events(STREAM, 8).await;
    drained(&app).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        nats.events(STREAM, 8).await.len(),
        8,
        "exactly one per change"
    );
    let types: Vec<EventType> = events.iter().map(|e| e.event.r#type()).collect();
    assert_eq!(
        types,
        [
            EventType::WorkspaceCreated,
            EventType::WorkspaceUpdated,
            EventType::MemberAdded,
            EventType::MemberUpdated,
            EventType::AccessTokenCreated,
            EventType::AccessTokenRevoked,
            EventType::MemberRemoved,
            EventType::WorkspaceDeleted,
        ]
    );
    for (index, stored) in events.iter().enumerate() {
        let event = &stored.event;
        assert_eq!(event.sequence, index as i64 + 1);
        assert_eq!(event.organization_id, org.id.to_string());
        assert_eq!(event.workspace_id, id);
        assert_eq!(event.actor_id, org.owner.id.to_string());
        assert_eq!((&stored.msg_id, &stored.ce_id), (&event.id, &event.id));
        assert_eq!(stored.content_type, "application/protobuf");
        assert_eq!(
            stored.headers.get("ce-dataschema").map(String::as_str),
            Some("urn:workspace-service:proto:workspace.v1.WorkspaceEvent")
        );
        assert_eq!(
            stored.headers.get("ce-subject"),
            Some(&format!("workspaces/{id}"))
        );
        let kind = stored.ce_type.trim_start_matches("workspace.v1.");
        assert_eq!(
            stored.subject,
            format!("workspace.events.{}.{kind}", org.id)
        );
        assert!(event.time.is_some());
    }
    assert_eq!(events[0].event.workspace.as_ref().unwrap().name, "Evented");
    // Created by the relay with the default limits: bounded.
    let stream = nats.stream_config(STREAM).await;
    assert_eq!(stream.max_age, Duration::from_secs(7 * 86_400));
    assert_eq!(stream.max_bytes, 1 << 30);
    assert_eq!(stream.duplicate_window, Duration::from_secs(3_600));
    assert_eq!(
        events[1].event.workspace.as_ref().unwrap().name,
        "Evented and renamed"
    );
    let added = events[2].event.membership.as_ref().unwrap();
    assert_eq!(added.user_id, colleague.id.to_string());
    assert_eq!(
        events[3].event.membership.as_ref().unwrap().privileges,
        vec![Role::WorkspaceAdmin as i32]
    );
    // The token without its hash (no hash leaves in an event), and no other.
    assert!(!access_token.hash.is_empty());
    let sent = events[4].event.access_token.clone().unwrap();
    assert_eq!(
        sent,
        workspace_service::proto::WorkspaceAccessToken {
            hash: String::new(),
            ..access_token.clone()
        }
    );
    assert!(!format!("{:?}", events[4].event).contains(&access_token.hash));
    assert!(!format!("{:?}", events[4].event).contains(&created.secret));
    assert_eq!(
        events[7].event.workspace.as_ref().unwrap().name,
        "Evented and renamed",
        "a deletion carries the workspace as it was"
    );
}

/// Creates `per_org` workspaces in each of `orgs` at once; how many
/// succeeded.
async fn creates(app: &TestApp, orgs: &[Org], per_org: usize, tag: &str) -> usize {
    let channel = app.channel().await;
    let total = orgs.len() * per_org;
    let orgs = orgs.to_vec();
    let tag = tag.to_owned();
    concurrently(total, move |i| {
        let org = orgs[i % orgs.len()].clone();
        let mut grpc = WorkspaceServiceClient::new(channel.clone());
        let request = authed(&org.owner.token, named(&org, &format!("{tag} {i:03}")));
        async move { grpc.create_workspace(request).await.is_ok() }
    })
    .await
    .into_iter()
    .filter(|ok| *ok)
    .count()
}

/// Each organization's events in the stream: exactly 1..=n, in order.
fn assert_once_in_order(events: &[common::nats::StoredEvent], expected: usize) {
    assert_eq!(events.len(), expected, "no event lost, none twice");
    let mut last: HashMap<String, i64> = HashMap::new();
    let mut ids = std::collections::HashSet::new();
    for stored in events {
        assert!(ids.insert(stored.msg_id.clone()), "{} twice", stored.msg_id);
        let previous = last.insert(stored.event.organization_id.clone(), stored.event.sequence);
        assert_eq!(
            stored.event.sequence,
            previous.unwrap_or(0) + 1,
            "organization {}'s events out of order",
            stored.event.organization_id
        );
    }
}

async fn events_written_while_nats_is_down_are_published_once_in_order(backend: Backend) {
    let Some(mut nats) = Nats::started() else {
        return;
    };
    let Some(app) = app_with_nats(backend, &nats).await else {
        return;
    };
    let mut orgs = Vec::new();
    for _ in 0..3 {
        orgs.push(app.organization(PlanSpec::default()).await);
    }
    let mut created = creates(&app, &orgs, 5, "Before").await;
    nats.stop();
    // Creates keep working while NATS is away; their events wait.
    created += creates(&app, &orgs, 10, "During").await;
    assert_eq!(created, 45);
    let waiting = all_events(app.storage.connection())
        .await
        .unwrap()
        .iter()
        .filter(|e| e.sent_at.is_none())
        .count();
    assert!(waiting > 0, "nothing waited for NATS");
    nats.start();
    created += creates(&app, &orgs, 5, "After").await;
    drained(&app).await;
    let events = nats.events(STREAM, created).await;
    assert_once_in_order(&events, created);
}

/// Killed between commit and publish (NATS is away, so nothing can be
/// published): after a restart, every committed change's event is in the
/// stream once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_service_killed_before_publishing_publishes_after_its_restart() {
    let Some(mut nats) = Nats::stopped() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("killed.db").display());
    let nats_url = nats.url();
    let env = [
        ("DATABASE_URL", database_url.as_str()),
        ("NATS_URL", nats_url.as_str()),
        ("EVENTS_RELAY_INTERVAL_MS", "50"),
    ];
    let mut first = ServiceProcess::start(&env).await;
    let mut grpc = WorkspaceServiceClient::new(first.channel().await);
    for i in 0..5 {
        grpc.create_workspace(authed(
            &first.token,
            CreateWorkspaceRequest {
                name: format!("Before the kill {i}"),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    }
    first.kill().await;

    nats.start();
    let second = ServiceProcess::start(&env).await;
    let events = nats.events(STREAM, 5).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events_after = nats.events(STREAM, 5).await;
    assert_eq!(events.len(), events_after.len());
    assert_once_in_order(&events_after, 5);
    assert!(
        events_after
            .iter()
            .all(|e| e.event.r#type() == EventType::WorkspaceCreated)
    );
    drop(second);
}

/// Two replicas on one PostgreSQL database relay at once: no event twice,
/// none missing, each organization's in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_relaying_at_once_publish_each_event_once() {
    let Some(nats) = Nats::started() else {
        return;
    };
    let nats_url = nats.url();
    let mut database_url = String::new();
    let Some(first) = spawn_app_with(Backend::Postgres, |s| {
        database_url = s.database.url.expose().to_owned();
        s.events.nats_url = Some(nats_url.clone());
        s.events.relay_interval_ms = 20;
        s.server.max_concurrent_calls_per_organization = 1_000;
    })
    .await
    else {
        return;
    };
    let second = spawn_app_with(Backend::Sqlite, |s| {
        s.database.url = database_url.clone().into();
        s.events.nats_url = Some(nats_url.clone());
        s.events.relay_interval_ms = 20;
        s.server.max_concurrent_calls_per_organization = 1_000;
    })
    .await
    .unwrap();
    let mut orgs = Vec::new();
    for _ in 0..4 {
        orgs.push(first.organization(PlanSpec::default()).await);
    }
    let (a, b) = tokio::join!(
        creates(&first, &orgs, 10, "First"),
        creates(&second, &orgs, 10, "Second")
    );
    drained(&first).await;
    let events = nats.events(STREAM, a + b).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_once_in_order(&nats.events(STREAM, a + b).await, a + b);
    assert_eq!(events.len(), 80);
}
