//! An outbox whose cost is its batch (issue 29), through a private
//! `nats-server -js` where events are published: an event whose payload
//! is not a `WorkspaceEvent` is parked while other organizations' events
//! flow; `events_pending` and `events_lag_seconds` are the backlog at the
//! moment of the scrape; old events are deleted in batches, and without
//! `NATS_URL` unsent ones too; many publishes in flight keep each
//! organization's order, a refused event holding its organization's
//! later ones; a full batch is followed by the next round at once.

mod common;

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use async_nats::jetstream;
use chrono::Utc;
use prost::Message;
use sea_orm::{EntityTrait, IntoActiveModel};
use uuid::Uuid;

use common::{
    Backend, PlanSpec, TestApp, authed, named,
    nats::{Nats, app_with_nats, drained, next_event, subscribe},
    spawn_app_at, spawn_app_with,
};
use workspace_service::{
    proto::{EventType, WorkspaceEvent, workspace_service_client::WorkspaceServiceClient},
    storage::{all_events, entities::event},
};

const STREAM: &str = "WORKSPACE_EVENTS";

on_both_databases!(
    an_event_that_does_not_decode_is_parked_while_other_organizations_events_flow,
    pending_and_lag_are_the_backlog_at_the_moment_of_the_scrape,
    sent_events_are_deleted_a_batch_at_a_time,
    without_nats_unsent_events_past_the_retention_are_deleted_and_counted,
    many_in_flight_keep_each_organizations_order_and_a_refused_event_holds_the_later_ones,
    a_full_batch_is_followed_by_the_next_round_at_once,
);

/// Event `sequence` of `org`, as the service writes it, `pad` bytes of
/// description in its snapshot, happened `age` ago.
fn row(org: Uuid, sequence: i64, pad: usize, age: chrono::Duration) -> event::Model {
    let id = Uuid::now_v7();
    let payload = WorkspaceEvent {
        id: id.to_string(),
        r#type: EventType::WorkspaceUpdated as i32,
        organization_id: org.to_string(),
        workspace_id: org.to_string(),
        workspace: Some(workspace_service::proto::Workspace {
            description: "x".repeat(pad),
            ..Default::default()
        }),
        ..Default::default()
    };
    event::Model {
        id,
        organization_id: org,
        sequence,
        workspace_id: org,
        event_type: "workspace.updated".into(),
        payload: payload.encode_to_vec(),
        occurred_at: Utc::now() - age,
        sent_at: None,
        traceparent: None,
        parked_at: None,
        parked_reason: None,
    }
}

async fn insert(app: &TestApp, rows: Vec<event::Model>) {
    let rows: Vec<_> = rows.into_iter().map(|r| r.into_active_model()).collect();
    for chunk in rows.chunks(500) {
        event::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(app.storage.connection())
            .await
            .unwrap();
    }
}

/// `count` events of `org` numbered from 1.
fn backlog(org: Uuid, count: i64) -> Vec<event::Model> {
    (1..=count)
        .map(|sequence| row(org, sequence, 0, chrono::Duration::zero()))
        .collect()
}

/// The value of the unlabelled sample `name` on `/metrics`.
async fn sample(app: &TestApp, name: &str) -> f64 {
    let text = reqwest::get(format!("http://{}/metrics", app.http_addr.unwrap()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .parse()
        .unwrap()
}

async fn an_event_that_does_not_decode_is_parked_while_other_organizations_events_flow(
    backend: Backend,
) {
    let Some(nats) = Nats::started() else {
        return;
    };
    let Some(app) = app_with_nats(backend, &nats).await else {
        return;
    };
    let victim = app.organization(PlanSpec::default()).await;
    let mut victims = subscribe(&nats, victim.id).await;
    // Written by SQL as workspace-bench's pgbench ceiling wrote them: a
    // 420-byte payload that is not a WorkspaceEvent, then a good event of
    // the same organization; and an event of an unknown type.
    let broken = Uuid::from_u128(1);
    let unknown = Uuid::from_u128(2);
    let mut rows = backlog(broken, 2);
    rows[0].payload = vec![0x2a; 420];
    let mut strange = row(unknown, 1, 0, chrono::Duration::zero());
    strange.event_type = "workspace.exploded".into();
    rows.push(strange);
    let parked_ids = [rows[0].id, rows[2].id];
    insert(&app, rows).await;

    let mut grpc = WorkspaceServiceClient::new(app.channel().await);
    for name in ["First one", "Second one"] {
        grpc.create_workspace(authed(&victim.owner.token, named(&victim, name)))
            .await
            .unwrap();
    }
    for sequence in [1, 2] {
        let event = next_event(&mut victims, Duration::from_secs(10))
            .await
            .expect("the other organization's events are published");
        assert_eq!(event.sequence, sequence);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let parked = loop {
        let parked = app.storage.parked_events().await.unwrap();
        if parked.len() == 2 || Instant::now() > deadline {
            break parked;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(parked.len(), 2, "{parked:?}");
    for event in &parked {
        assert!(parked_ids.contains(&event.id));
        let why = if event.organization_id == broken {
            "does not decode"
        } else {
            "unknown event type"
        };
        assert!(event.reason.contains(why), "{}", event.reason);
    }
    // The broken organization's later event waits behind its parked one.
    let stream = nats.events(STREAM, 2).await;
    assert_eq!(stream.len(), 2);
    assert!(
        stream
            .iter()
            .all(|e| e.event.organization_id == victim.id.to_string())
    );
}

async fn pending_and_lag_are_the_backlog_at_the_moment_of_the_scrape(backend: Backend) {
    let Some(mut nats) = Nats::stopped() else {
        return;
    };
    let Some(app) = app_with_nats(backend, &nats).await else {
        return;
    };
    // NATS is away: what is written waits. Events of three organizations,
    // one of them waiting behind a parked event, the oldest a minute old.
    let orgs = [Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7()];
    let mut rows = backlog(orgs[0], 5);
    rows.extend(backlog(orgs[1], 2));
    rows.push(row(orgs[2], 1, 0, chrono::Duration::seconds(60)));
    rows[0].parked_at = Some(Utc::now());
    rows[0].parked_reason = Some("refused".into());
    let parked_at = rows[0].occurred_at;
    insert(&app, rows).await;
    let org = app.organization(PlanSpec::default()).await;
    let mut grpc = WorkspaceServiceClient::new(app.channel().await);
    grpc.create_workspace(authed(&org.owner.token, named(&org, "Fresh")))
        .await
        .unwrap();

    assert_eq!(sample(&app, "workspace_service_events_pending").await, 9.0);
    let lag = sample(&app, "workspace_service_events_lag_seconds").await;
    assert!((60.0..62.0).contains(&lag), "lag {lag}");

    // Once NATS is back and the outbox drained (but the parked event and
    // the four behind it), the next scrape says so.
    nats.start();
    let deadline = Instant::now() + Duration::from_secs(20);
    while all_events(app.storage.connection())
        .await
        .unwrap()
        .iter()
        .filter(|e| e.sent_at.is_none())
        .count()
        > 5
    {
        assert!(Instant::now() < deadline, "the outbox did not drain");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sample(&app, "workspace_service_events_pending").await, 5.0);
    let lag = sample(&app, "workspace_service_events_lag_seconds").await;
    let age = (Utc::now() - parked_at).num_milliseconds() as f64 / 1e3;
    assert!(
        (age - 1.0..=age + 0.1).contains(&lag),
        "lag {lag}, the parked event's age {age}"
    );
}

async fn sent_events_are_deleted_a_batch_at_a_time(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |_| {}).await else {
        return;
    };
    let org = Uuid::now_v7();
    // Sent two hours ago: within the service's own retention (24 hours),
    // so only this test's purges delete them.
    let mut rows = backlog(org, 1_201);
    let two_hours_ago = Utc::now() - chrono::Duration::hours(2);
    for row in &mut rows[..1_200] {
        row.sent_at = Some(two_hours_ago);
    }
    rows[1_200].sent_at = Some(Utc::now());
    insert(&app, rows).await;
    let hour_ago = Utc::now() - chrono::Duration::hours(1);
    let mut batches = Vec::new();
    loop {
        let deleted = app.storage.purge_sent_events(hour_ago, 500).await.unwrap();
        batches.push(deleted);
        if deleted < 500 {
            break;
        }
    }
    assert_eq!(batches, [500, 500, 200]);
    let left = all_events(app.storage.connection()).await.unwrap();
    assert_eq!(left.len(), 1, "the recently sent event stays");
}

async fn without_nats_unsent_events_past_the_retention_are_deleted_and_counted(backend: Backend) {
    // The first service has a NATS_URL (where nothing answers): it keeps
    // unsent events whatever their age.
    let mut database_url = String::new();
    let Some(first) = spawn_app_with(backend, |s| {
        database_url = s.database.url.expose().to_owned();
        s.events.nats_url = Some(format!("nats://127.0.0.1:{}", common::free_port()));
    })
    .await
    else {
        return;
    };
    let org = Uuid::now_v7();
    let mut rows: Vec<_> = (1..=3)
        .map(|sequence| row(org, sequence, 0, chrono::Duration::hours(30)))
        .collect();
    rows.push(row(org, 4, 0, chrono::Duration::hours(1)));
    insert(&first, rows).await;
    // A service started now purges at once: without NATS_URL, the unsent
    // events older than EVENTS_RETENTION_HOURS (24) go, and are counted.
    let second = spawn_app_at(database_url).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while all_events(second.storage.connection()).await.unwrap().len() > 1 {
        assert!(Instant::now() < deadline, "the old unsent events stay");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let left = all_events(second.storage.connection()).await.unwrap();
    assert_eq!(left[0].sequence, 4, "the recent event stays");
    assert_eq!(
        sample(&second, "workspace_service_events_expired_total").await,
        3.0
    );
    assert_eq!(
        sample(&first, "workspace_service_events_expired_total").await,
        0.0
    );
}

async fn many_in_flight_keep_each_organizations_order_and_a_refused_event_holds_the_later_ones(
    backend: Backend,
) {
    let Some(nats) = Nats::started() else {
        return;
    };
    // Messages over 2 KiB are refused: organization 0's event 150 is.
    let context = nats.jetstream().await;
    context
        .create_stream(jetstream::stream::Config {
            name: STREAM.into(),
            subjects: vec!["workspace.events.>".into()],
            max_message_size: 2_048,
            duplicate_window: Duration::from_secs(3_600),
            max_age: Duration::from_secs(3_600),
            ..Default::default()
        })
        .await
        .unwrap();
    let Some(app) = app_with_nats(backend, &nats).await else {
        return;
    };
    let orgs: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
    let mut rows = Vec::new();
    for org in &orgs {
        rows.extend(backlog(*org, 300));
    }
    rows[149] = row(orgs[0], 150, 4_000, chrono::Duration::zero());
    let refused = rows[149].id;
    insert(&app, rows).await;

    let stream = nats.events(STREAM, 149 + 4 * 300).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let parked = loop {
        let parked = app.storage.parked_events().await.unwrap();
        if !parked.is_empty() || Instant::now() > deadline {
            break parked;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].id, refused);
    let mut last: HashMap<String, i64> = HashMap::new();
    for stored in &stream {
        let event = &stored.event;
        let previous = last.insert(event.organization_id.clone(), event.sequence);
        assert_eq!(
            event.sequence,
            previous.unwrap_or(0) + 1,
            "organization {}'s events out of order",
            event.organization_id
        );
    }
    assert_eq!(
        last[&orgs[0].to_string()],
        149,
        "none after the refused one"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = nats.events(STREAM, 149 + 4 * 300).await;
    assert_eq!(again.len(), stream.len(), "the later events wait");
}

async fn a_full_batch_is_followed_by_the_next_round_at_once(backend: Backend) {
    let Some(nats) = Nats::started() else {
        return;
    };
    let mut database_url = String::new();
    let Some(first) = spawn_app_with(backend, |s| {
        database_url = s.database.url.expose().to_owned();
    })
    .await
    else {
        return;
    };
    // Five batches' worth, written before a relay whose interval is a
    // minute starts: only rounds that follow full ones at once publish
    // them all before its second tick.
    insert(&first, backlog(Uuid::now_v7(), 1_200)).await;
    let nats_url = nats.url();
    let second = spawn_app_with(backend, |s| {
        s.database.url = database_url.into();
        s.events.nats_url = Some(nats_url);
        s.events.relay_interval_ms = 60_000;
    })
    .await
    .unwrap();
    // `events` waits 30 s at most: half the interval.
    let stream = nats.events(STREAM, 1_200).await;
    assert_eq!(stream.len(), 1_200);
    drained(&second).await;
}
