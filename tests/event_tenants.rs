//! Workspace events that no tenant can block (issue 26, item 1), through a
//! private `nats-server -js`: a token flood by one organization does not
//! stop another's events, an event NATS refuses is parked (listed,
//! retried and dropped through `workspace-service admin events`) while the
//! other organizations' events flow, and one organization's backlog does
//! not delay another's event by more than a relay round.

mod common;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use async_nats::jetstream;
use chrono::Utc;
use prost::Message;
use sea_orm::{
    ColumnTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, TransactionTrait,
};
use uuid::Uuid;

use common::{
    Backend, Org, PlanSpec, TestApp, authed,
    nats::{Nats, app_with_nats_at, next_event, subscribe},
};
use workspace_service::{
    domain::EVENT_PAYLOAD_LIMIT,
    proto::{
        CreateWorkspaceAccessTokenRequest, CreateWorkspaceRequest, EventType, WorkspaceEvent,
        workspace_service_client::WorkspaceServiceClient,
    },
    storage::{
        all_events,
        entities::{event, workspace_access_token},
    },
};

const STREAM: &str = "WORKSPACE_EVENTS";

on_both_databases!(
    a_token_flood_does_not_stop_another_organizations_events,
    an_event_nats_refuses_is_parked_then_retried_or_dropped_by_the_admin_command,
    a_backlog_of_thousands_does_not_delay_another_organizations_event_past_a_round,
    events_of_one_organization_in_flight_together_arrive_in_order_and_a_parked_one_holds_only_its_own,
);

async fn create(app: &TestApp, org: &Org, name: &str, description: &str) -> String {
    let mut grpc = WorkspaceServiceClient::new(app.channel().await);
    let request = CreateWorkspaceRequest {
        organization_id: org.id.to_string(),
        name: name.into(),
        description: description.into(),
        ..Default::default()
    };
    grpc.create_workspace(authed(&org.owner.token, request))
        .await
        .unwrap()
        .into_inner()
        .id
}

/// Two organizations, the victim ordered after the attacker (the outbox's
/// order before issue 26 served organizations by id).
async fn attacker_and_victim(app: &TestApp) -> (Org, Org) {
    let one = app.organization(PlanSpec::default()).await;
    let two = app.organization(PlanSpec::default()).await;
    if one.id < two.id {
        (one, two)
    } else {
        (two, one)
    }
}

/// `count` tokens of `user` with 100-character names on `workspace`,
/// written as a flood of CreateWorkspaceAccessToken calls would leave
/// them.
async fn flood(app: &TestApp, workspace: &str, user: Uuid, count: usize) {
    let workspace_id = Uuid::parse_str(workspace).unwrap();
    let tokens: Vec<_> = (0..count)
        .map(|_| {
            workspace_access_token::Model {
                id: Uuid::now_v7(),
                workspace_id,
                user_id: user,
                name: "\u{FDFA}".repeat(100),
                token_hash: Uuid::new_v4().simple().to_string().repeat(2),
                created_at: Utc::now(),
                expires_at: None,
                revoked_at: None,
            }
            .into_active_model()
        })
        .collect();
    for chunk in tokens.chunks(300) {
        workspace_access_token::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(app.storage.connection())
            .await
            .unwrap();
    }
}

async fn a_token_flood_does_not_stop_another_organizations_events(backend: Backend) {
    let Some(nats) = Nats::started() else {
        return;
    };
    let Some((app, _)) = app_with_nats_at(backend, &nats).await else {
        return;
    };
    let (attacker, victim) = attacker_and_victim(&app).await;
    let workspace = create(&app, &attacker, "Flooded", "").await;
    // 2,600 tokens with 100-character names (1.1 MB in one event before
    // issue 26, over NATS's 1 MiB max_payload).
    flood(&app, &workspace, attacker.owner.id, 2_600).await;
    let mut victims = subscribe(&nats, victim.id).await;
    let mut grpc = WorkspaceServiceClient::new(app.channel().await);
    let request = CreateWorkspaceAccessTokenRequest {
        workspace_id: workspace.clone(),
        name: "\u{FDFA}".repeat(100),
        expire_time: None,
    };
    grpc.create_workspace_access_token(authed(&attacker.owner.token, request))
        .await
        .unwrap();
    create(&app, &victim, "Victim's", "").await;

    let event = next_event(&mut victims, Duration::from_secs(10))
        .await
        .expect("the victim's event is published");
    assert_eq!(event.r#type(), EventType::WorkspaceCreated);
    // The attacker's own events are stored too, the token's bounded.
    let stored = nats.events(STREAM, 3).await;
    let token_event = stored
        .iter()
        .map(|stored| &stored.event)
        .find(|event| event.r#type() == EventType::AccessTokenCreated)
        .expect("the attacker's token event is in the stream")
        .clone();
    assert!(token_event.encoded_len() <= EVENT_PAYLOAD_LIMIT);
    let snapshot = token_event.workspace.unwrap();
    assert!(
        snapshot
            .memberships
            .iter()
            .all(|m| m.access_tokens.is_empty())
    );
    assert!(token_event.access_token.unwrap().hash.is_empty());
    // No event in the outbox is over the limit or carries a token hash.
    for row in all_events(app.storage.connection()).await.unwrap() {
        let event = WorkspaceEvent::decode(row.payload.as_slice()).unwrap();
        let snapshot = event.workspace.unwrap_or_default();
        assert!(
            snapshot
                .memberships
                .iter()
                .all(|m| m.access_tokens.is_empty())
        );
        assert!(event.access_token.unwrap_or_default().hash.is_empty());
        assert!(
            row.payload.len() <= EVENT_PAYLOAD_LIMIT,
            "{} bytes",
            row.payload.len()
        );
    }
}

/// Runs `workspace-service admin events …` on `database_url`; its stdout.
fn admin_events(database_url: &str, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_workspace-service"))
        .args(["admin", "events"])
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "admin events {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The stream made in advance with messages of at most `max` bytes.
async fn stream_with_max_message_size(nats: &Nats, max: i32) {
    let context = nats.jetstream().await;
    let config = jetstream::stream::Config {
        name: STREAM.into(),
        subjects: vec!["workspace.events.>".into()],
        max_message_size: max,
        max_age: Duration::from_secs(3_600),
        duplicate_window: Duration::from_secs(3_600),
        ..Default::default()
    };
    if context.get_stream(STREAM).await.is_ok() {
        context.update_stream(config).await.unwrap();
    } else {
        context.create_stream(config).await.unwrap();
    }
}

/// Waits until `count` events are parked; their ids by organization.
async fn parked(app: &TestApp, count: usize) -> Vec<(Uuid, Uuid)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let parked = app.storage.parked_events().await.unwrap();
        if parked.len() >= count {
            return parked.iter().map(|e| (e.organization_id, e.id)).collect();
        }
        assert!(
            Instant::now() < deadline,
            "{} parked, not {count}",
            parked.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Each of `parked` is a line of `admin events parked`'s `listed`, with
/// its organization, its place and NATS's reason.
fn assert_listed(listed: &str, parked: &[(Uuid, Uuid)]) {
    for (organization, id) in parked {
        let line = listed
            .lines()
            .find(|line| line.starts_with(&id.to_string()))
            .unwrap_or_else(|| panic!("{id} not listed: {listed}"));
        assert!(
            line.contains(&format!("organization={organization}")),
            "{line}"
        );
        assert!(line.contains("sequence=1"), "{line}");
        assert!(line.contains("message size exceeds maximum"), "{line}");
    }
}

async fn an_event_nats_refuses_is_parked_then_retried_or_dropped_by_the_admin_command(
    backend: Backend,
) {
    let Some(nats) = Nats::started() else {
        return;
    };
    // A stream that refuses messages over 2 KiB: a workspace with a
    // 1,000-character description of 3-byte characters is refused, a
    // plain one is not.
    stream_with_max_message_size(&nats, 2_048).await;
    let Some((app, database_url)) = app_with_nats_at(backend, &nats).await else {
        return;
    };
    let (retried, victim) = attacker_and_victim(&app).await;
    let dropped = app.organization(PlanSpec::default()).await;
    let large = "\u{20AC}".repeat(1_000);
    create(&app, &retried, "Too large", &large).await;
    create(&app, &retried, "Plain after", "").await;
    create(&app, &dropped, "Too large", &large).await;
    create(&app, &dropped, "Plain after", "").await;
    create(&app, &victim, "Plain", "").await;

    // The other organization's event flows; the refused ones are parked,
    // and their organizations' later events wait.
    let parked = parked(&app, 2).await;
    let stored = nats.events(STREAM, 1).await;
    assert_eq!(stored[0].event.organization_id, victim.id.to_string());
    assert_listed(&admin_events(&database_url, &["parked"]), &parked);
    // Counted by type on /metrics.
    let metrics = reqwest::get(format!("http://{}/metrics", app.http_addr.unwrap()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counted = metrics.lines().find(|line| {
        line.starts_with("workspace_service_events_parked_total")
            && line.contains("type=\"workspace.created\"")
    });
    assert!(
        counted.is_some_and(|line| line.ends_with(" 2")),
        "{metrics}"
    );
    // Rounds pass: the parked events are not read or tried again (parked
    // again, their `parked_at` would move), the later events wait.
    let before = app.storage.parked_events().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.storage.parked_events().await.unwrap(), before);
    assert_eq!(
        nats.events(STREAM, 1).await.len(),
        1,
        "the later events wait"
    );

    // Dropped: never published; the organization's later event goes on.
    let (_, dropped_id) = parked.iter().find(|(org, _)| *org == dropped.id).unwrap();
    let answer = admin_events(&database_url, &["drop", "--id", &dropped_id.to_string()]);
    assert_eq!(answer.trim(), dropped_id.to_string());
    let event = nats.events(STREAM, 2).await[1].event.clone();
    assert_eq!(event.organization_id, dropped.id.to_string());
    assert_eq!(
        (event.sequence, event.workspace.unwrap().name.as_str()),
        (2, "Plain after")
    );

    // Retried once the stream takes it: published, then the later one.
    stream_with_max_message_size(&nats, -1).await;
    let (_, retried_id) = parked.iter().find(|(org, _)| *org == retried.id).unwrap();
    admin_events(&database_url, &["retry", "--id", &retried_id.to_string()]);
    let stored = nats.events(STREAM, 4).await;
    for (stored, (sequence, name)) in stored[2..]
        .iter()
        .zip([(1, "Too large"), (2, "Plain after")])
    {
        let event = &stored.event;
        assert_eq!(event.organization_id, retried.id.to_string());
        let workspace = event.workspace.as_ref().unwrap();
        assert_eq!((event.sequence, workspace.name.as_str()), (sequence, name));
    }
    assert_eq!(stored.len(), 4, "each event once");
    assert_eq!(
        admin_events(&database_url, &["parked"]).trim(),
        "no parked events"
    );
}

/// `count` events of organization `org` written straight into the
/// outbox, as a burst of changes leaves them: in one transaction, so the
/// relay sees all of them or none.
async fn backlog(app: &TestApp, org: Uuid, count: i64) {
    backlog_first_of_type(app, org, count, "workspace.updated").await;
}

/// `backlog`, its first event of type `first_type`.
async fn backlog_first_of_type(app: &TestApp, org: Uuid, count: i64, first_type: &str) {
    let rows: Vec<_> = (1..=count)
        .map(|sequence| {
            let id = Uuid::now_v7();
            let payload = WorkspaceEvent {
                id: id.to_string(),
                r#type: EventType::WorkspaceUpdated as i32,
                organization_id: org.to_string(),
                workspace_id: org.to_string(),
                ..Default::default()
            };
            event::Model {
                id,
                organization_id: org,
                sequence,
                workspace_id: org,
                event_type: if sequence == 1 {
                    first_type.into()
                } else {
                    "workspace.updated".into()
                },
                payload: payload.encode_to_vec(),
                occurred_at: Utc::now(),
                sent_at: None,
                traceparent: None,
                parked_at: None,
                parked_reason: None,
            }
            .into_active_model()
        })
        .collect();
    let txn = app.storage.connection().begin().await.unwrap();
    for chunk in rows.chunks(500) {
        event::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&txn)
            .await
            .unwrap();
    }
    txn.commit().await.unwrap();
}

/// How many of `org`'s events are marked sent.
async fn sent(app: &TestApp, org: Uuid) -> u64 {
    event::Entity::find()
        .filter(event::Column::OrganizationId.eq(org))
        .filter(event::Column::SentAt.is_not_null())
        .count(app.storage.connection())
        .await
        .unwrap()
}

async fn a_backlog_of_thousands_does_not_delay_another_organizations_event_past_a_round(
    backend: Backend,
) {
    let Some(nats) = Nats::started() else {
        return;
    };
    let Some((app, _)) = app_with_nats_at(backend, &nats).await else {
        return;
    };
    let victim = app.organization(PlanSpec::default()).await;
    // Ordered before every other organization.
    let busy = Uuid::from_u128(1);
    let mut victims = subscribe(&nats, victim.id).await;
    backlog(&app, busy, 20_000).await;
    let before = sent(&app, busy).await;
    create(&app, &victim, "Single", "").await;
    let event = next_event(&mut victims, Duration::from_secs(10))
        .await
        .expect("the single event is published");
    assert_eq!(event.sequence, 1);
    let after = sent(&app, busy).await;
    // A round publishes at most 1,024 events: between the single event's
    // write and its publishing, the round then under way and the one that
    // took it (and the next one, while this reads the outbox), not the
    // rest of the backlog.
    assert!(
        after - before < 4 * 1_024 && after < 20_000,
        "{} of the backlog went out ahead of the single event",
        after - before
    );
}

/// A round sends its whole batch before it awaits the acknowledgements,
/// so many events of one organization are in flight at once: each
/// organization's arrive in the stream in order, each once; an
/// organization whose first event cannot be published (parked) holds back
/// only its own later events.
async fn events_of_one_organization_in_flight_together_arrive_in_order_and_a_parked_one_holds_only_its_own(
    backend: Backend,
) {
    let Some(nats) = Nats::started() else {
        return;
    };
    let Some((app, _)) = app_with_nats_at(backend, &nats).await else {
        return;
    };
    let (first, second, stuck) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
    // Its first event does not make a message: parked.
    backlog_first_of_type(&app, stuck, 10, "workspace.unknown").await;
    backlog(&app, first, 1_500).await;
    backlog(&app, second, 1_500).await;

    let stored = nats.events(STREAM, 3_000).await;
    assert_eq!(
        stored.len(),
        3_000,
        "each event once, none of the parked one's organization"
    );
    for org in [first, second] {
        let sequences: Vec<i64> = stored
            .iter()
            .filter(|s| s.event.organization_id == org.to_string())
            .map(|s| s.event.sequence)
            .collect();
        assert_eq!(sequences, (1..=1_500).collect::<Vec<_>>(), "{org}");
    }
    let parked = app.storage.parked_events().await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!((parked[0].organization_id, parked[0].sequence), (stuck, 1));
    assert!(
        parked[0].reason.contains("unknown event type"),
        "{}",
        parked[0].reason
    );
    // Marked sent once acknowledged; the parked one's organization waits.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let events = all_events(app.storage.connection()).await.unwrap();
        let unsent = |org: Uuid| {
            events
                .iter()
                .filter(|e| e.organization_id == org && e.sent_at.is_none())
                .count()
        };
        let counts = (unsent(first), unsent(second), unsent(stuck));
        if counts == (0, 0, 10) {
            break;
        }
        assert!(Instant::now() < deadline, "unsent: {counts:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
