//! README "Overload": a DEADLINE_EXCEEDED the service answers (ErrorInfo
//! reason DEADLINE_EXCEEDED) means nothing was written; a call whose
//! commit was on its way when its time ran out is answered UNAVAILABLE,
//! reason OUTCOME_UNKNOWN; a retry with the same request_id then finds the
//! workspace or creates it, once. Tried the way the issue broke it: 1,000
//! creates under contention with short deadlines (both databases, and
//! behind pgbouncer in transaction mode), and commits stalled by a
//! synchronous standby that never comes (a PostgreSQL of the test's own).

mod common;

use std::{collections::HashMap, error::Error, sync::Arc, time::Duration};

use common::{
    Backend, Org, OwnPostgres, PlanSpec, TestApp, authed, named, pgbouncer, reason_of,
    spawn_app_with,
};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use tonic::{Code, Request, Status};
use uuid::Uuid;
use workspace_service::{
    proto::{CreateWorkspaceRequest, Workspace, workspace_service_client::WorkspaceServiceClient},
    storage::{Pooler, Storage, entities::workspace},
};

/// How one create ended, as its client saw it.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Created(String),
    /// The service's DEADLINE_EXCEEDED: it promises nothing was written.
    DeadlineExceeded,
    /// UNAVAILABLE, OUTCOME_UNKNOWN: it may have been written.
    OutcomeUnknown,
    /// The client's own timer ended the call before an answer came.
    ClientGaveUp,
    /// The connection was lost under the call.
    ConnectionLost,
    Other(Code, String),
}

const CREATES: usize = 1_000;
/// Calls in flight, pass by pass: a machine quick enough that none of the
/// first pass's calls runs out of time gets more at once.
const IN_FLIGHT: [usize; 3] = [16, 64, 192];
const ORGANIZATIONS: usize = 4;
/// The service's longest call (`MAX_CALL_DURATION_MS`) here: short enough
/// that calls queued on their organization's row run out of time while
/// they wait or while they commit. The service cuts them itself: a client
/// that enforces the same deadline (tonic's, grpcio's) gives up as the
/// service answers, and on two shared cores would see mostly its own
/// timer's verdict, which says nothing about what was written.
const CALL_CAP_MS: u64 = 100;
/// How long a client here waits for any answer.
const CLIENT_PATIENCE: Duration = Duration::from_secs(20);

fn create_request(org: &Org, name: &str, request_id: &str) -> Request<CreateWorkspaceRequest> {
    authed(
        &org.owner.token,
        CreateWorkspaceRequest {
            request_id: request_id.to_owned(),
            ..named(org, name)
        },
    )
}

fn seen(answer: Result<Result<Workspace, Status>, tokio::time::error::Elapsed>) -> Seen {
    match answer {
        Err(_) => Seen::ClientGaveUp,
        Ok(Ok(workspace)) => Seen::Created(workspace.id),
        Ok(Err(status)) => match (status.code(), reason_of(&status).as_str()) {
            (Code::DeadlineExceeded, "DEADLINE_EXCEEDED") => Seen::DeadlineExceeded,
            (Code::Unavailable, "OUTCOME_UNKNOWN") => Seen::OutcomeUnknown,
            // Without the service's ErrorInfo the answer is the client
            // library's: its own deadline, or the connection lost (hyper
            // ends a connection with GOAWAY `too_many_resets` when clients
            // cancel many calls before it took them; README "Answered as
            // they are"). Either way the client knows nothing.
            (_, "") if status.source().is_some() || status.code() != Code::Unknown => {
                Seen::ConnectionLost
            }
            (code, _) => Seen::Other(code, format!("{status:?}")),
        },
    }
}

/// The workspace of `name` in `org`, if one was written.
async fn stored(storage: &Storage, org: &Org, name: &str) -> Vec<workspace::Model> {
    workspace::Entity::find()
        .filter(workspace::Column::OrganizationId.eq(org.id))
        .filter(workspace::Column::Name.eq(name))
        .all(storage.connection())
        .await
        .unwrap()
}

/// Passes of `contended_pass`, with more calls in flight each, until calls
/// ran out of time in one: every pass's answers are checked.
async fn contended_creates_tell_the_truth(app: &TestApp, direct: &Storage) {
    let mut seen = Vec::new();
    for in_flight in IN_FLIGHT {
        let counts = contended_pass(app, direct, in_flight).await;
        let cut = counts.get("deadline exceeded").copied().unwrap_or(0);
        seen.push((in_flight, counts));
        if cut > 0 {
            return;
        }
    }
    panic!("no call ran out of time: the test tried nothing ({seen:?})");
}

/// 1,000 creates, `in_flight` at once over four organizations, each with a
/// short deadline that its client keeps too; then every answer is held
/// against what the database has, and every call not answered with a
/// workspace is retried with its request_id. The answers, by kind.
async fn contended_pass(
    app: &TestApp,
    direct: &Storage,
    in_flight: usize,
) -> HashMap<&'static str, usize> {
    let mut orgs = Vec::new();
    for _ in 0..ORGANIZATIONS {
        orgs.push(app.organization(PlanSpec::default()).await);
    }
    let client = WorkspaceServiceClient::new(app.channel().await);
    let gate = Arc::new(tokio::sync::Semaphore::new(in_flight));
    let mut calls = Vec::new();
    for i in 0..CREATES {
        let org = orgs[i % ORGANIZATIONS].clone();
        let mut client = client.clone();
        let gate = gate.clone();
        calls.push(tokio::spawn(async move {
            let _turn = gate.acquire_owned().await.unwrap();
            let name = format!("contended {i}");
            let request_id = Uuid::new_v4().to_string();
            let request = create_request(&org, &name, &request_id);
            let answer =
                tokio::time::timeout(CLIENT_PATIENCE, client.create_workspace(request)).await;
            (
                org,
                name,
                request_id,
                seen(answer.map(|a| a.map(|r| r.into_inner()))),
            )
        }));
    }
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.unwrap());
    }
    // Commits on their way when their calls ended land now.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut counts: HashMap<&'static str, usize> = HashMap::new();
    let mut written_behind_unknown = 0;
    for (org, name, request_id, seen) in &answers {
        let rows = stored(direct, org, name).await;
        assert!(rows.len() <= 1, "{name} written twice");
        let kind = match seen {
            Seen::Created(id) => {
                assert_eq!(rows.first().map(|w| w.id.to_string()).as_ref(), Some(id));
                "created"
            }
            Seen::DeadlineExceeded => {
                assert!(
                    rows.is_empty(),
                    "{name} was answered DEADLINE_EXCEEDED by the service and written"
                );
                "deadline exceeded"
            }
            Seen::OutcomeUnknown => {
                written_behind_unknown += rows.len();
                "outcome unknown"
            }
            Seen::ClientGaveUp => "client gave up",
            Seen::ConnectionLost => "connection lost",
            Seen::Other(code, message) => panic!("{name}: {code:?} {message}"),
        };
        *counts.entry(kind).or_default() += 1;
        if !matches!(seen, Seen::Created(_)) {
            // The retry README tells every caller that got no workspace
            // to make: it finds the first call's workspace, or creates it.
            let retried = retry(&client, org, name, request_id).await;
            if let Some(first) = rows.first() {
                assert_eq!(
                    retried.id,
                    first.id.to_string(),
                    "the retry of {name} made another"
                );
            }
            assert_eq!(stored(direct, org, name).await.len(), 1);
        }
    }
    eprintln!(
        "{:?}, {in_flight} in flight: {counts:?}; written behind OUTCOME_UNKNOWN: {written_behind_unknown}",
        app.backend
    );
    for org in &orgs {
        let workspaces = common::assert_whole(direct, org).await;
        assert_eq!(workspaces.len(), CREATES / ORGANIZATIONS);
    }
    counts
}

/// The retry with the same request_id, repeated (as a client would) while
/// the service still cannot say.
async fn retry(
    client: &WorkspaceServiceClient<tonic::transport::Channel>,
    org: &Org,
    name: &str,
    request_id: &str,
) -> Workspace {
    for _ in 0..50 {
        let answer = client
            .clone()
            .create_workspace(create_request(org, name, request_id))
            .await;
        match answer {
            Ok(workspace) => return workspace.into_inner(),
            Err(status) if matches!(status.code(), Code::DeadlineExceeded | Code::Unavailable) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(status) => panic!("the retry of {name} failed: {status:?}"),
        }
    }
    panic!("the retry of {name} never got an answer")
}

fn contended_settings(settings: &mut workspace_service::config::Settings) {
    settings.server.max_call_duration_ms = CALL_CAP_MS;
    // The organization's row is the contention, not the gate in front of
    // it (tests/row_locks.rs covers the gate).
    settings.server.max_concurrent_calls_per_organization = 1_000;
    // Nor the bound on calls in flight (the last pass sends 192 at once).
    settings.server.max_concurrent_calls = 1_000;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contended_creates_answered_deadline_exceeded_wrote_nothing_sqlite() {
    let app = spawn_app_with(Backend::Sqlite, contended_settings)
        .await
        .unwrap();
    contended_creates_tell_the_truth(&app, &app.storage).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contended_creates_answered_deadline_exceeded_wrote_nothing_postgres() {
    let Some(app) = spawn_app_with(Backend::Postgres, contended_settings).await else {
        return;
    };
    contended_creates_tell_the_truth(&app, &app.storage).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contended_creates_behind_a_transaction_pooler_tell_the_truth() {
    let Some(server_url) = common::test_database_url() else {
        return;
    };
    let Some(bouncer) =
        pgbouncer::Pgbouncer::start(&server_url, pgbouncer::PoolMode::Transaction, 8)
    else {
        return;
    };
    let mut direct_url = String::new();
    let app = spawn_app_with(Backend::Postgres, |settings| {
        contended_settings(settings);
        direct_url = settings.database.url.expose().to_owned();
        settings.database.url = bouncer.url_for(&direct_url).into();
        settings.database.pooler = Pooler::Transaction;
        settings.database.max_connections = 16;
    })
    .await
    .unwrap();
    let direct = Storage::connect(&direct_url, 2).await.unwrap();
    contended_creates_tell_the_truth(&app, &direct).await;
}

/// Commits that cannot end: `synchronous_standby_names` names a standby
/// that never connects, so every commit waits (PostgreSQL has written it
/// locally, and shows it once the wait ends). A create and an update cut
/// there are OUTCOME_UNKNOWN, over gRPC and HTTP, never DEADLINE_EXCEEDED;
/// once commits flow again the create's retry finds its workspace.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_commit_stalled_at_the_deadline_is_outcome_unknown() {
    let Some(postgres) = OwnPostgres::start_new() else {
        return;
    };
    let url = postgres.url();
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.database.url = url.into();
        settings.server.max_call_duration_ms = 1_000;
    })
    .await
    .unwrap();
    // A stalled commit keeps its organization's row locked (PostgreSQL
    // releases locks after the standby's answer): one organization per
    // call, so that each meets the stall and not the lock.
    let org = app.organization(PlanSpec::default()).await;
    let updated = app.organization(PlanSpec::default()).await;
    let over_http = app.organization(PlanSpec::default()).await;
    let lost = app.organization(PlanSpec::default()).await;
    let before = app.create_named(&updated, "Before the stall").await;
    let direct = Storage::connect(&postgres.url(), 2).await.unwrap();
    let stall = |names: &'static str| {
        let direct = direct.clone();
        async move {
            let db = direct.connection();
            db.execute_unprepared(&format!(
                "ALTER SYSTEM SET synchronous_standby_names = '{names}'"
            ))
            .await
            .unwrap();
            db.execute_unprepared("SELECT pg_reload_conf()")
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    stall("a_standby_that_never_comes").await;

    let mut client = app.client().await;
    let request_id = Uuid::new_v4().to_string();
    let create = client
        .create_workspace(create_request(&org, "Stalled", &request_id))
        .await;
    assert_outcome_unknown(create.map(|r| r.into_inner()));

    let update = authed(
        &updated.owner.token,
        workspace_service::proto::UpdateWorkspaceRequest {
            id: before.id.clone(),
            name: "Renamed while commits stall".into(),
            ..Default::default()
        },
    );
    assert_outcome_unknown(
        client
            .update_workspace(update)
            .await
            .map(|r| r.into_inner()),
    );

    let response = reqwest::Client::new()
        .post(common::http::url(&app, "/api/v1/workspaces"))
        .bearer_auth(&over_http.owner.token)
        .json(&serde_json::json!({"name": "Stalled over HTTP"}))
        .send()
        .await
        .unwrap();
    let (status, body) = common::http::answer(response).await;
    assert_eq!(status.as_u16(), 503, "{body}");
    // Seed 000's route answers in FastAPI's shape: the message, no reason.
    assert!(body.to_string().contains("may have been written"), "{body}");

    // A commit whose connection is lost while it waits: the call fails
    // before its deadline, and still cannot say.
    let lost_request_id = Uuid::new_v4().to_string();
    let started = std::time::Instant::now();
    let mut lost_client = client.clone();
    let lost_org = lost.clone();
    let lost_id = lost_request_id.clone();
    let call = tokio::spawn(async move {
        lost_client
            .create_workspace(create_request(&lost_org, "Lost", &lost_id))
            .await
            .map(|r| r.into_inner())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    direct
        .connection()
        .execute_unprepared(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'",
        )
        .await
        .unwrap();
    assert_outcome_unknown(call.await.unwrap());
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "answered by the deadline's timer, not by the lost connection"
    );

    stall("").await;
    let retried = retry(&client, &org, "Stalled", &request_id).await;
    let found = retry(&client, &lost, "Lost", &lost_request_id).await;
    assert_eq!(stored(&direct, &lost, "Lost").await.len(), 1);
    assert_eq!(
        found.id,
        stored(&direct, &lost, "Lost").await[0].id.to_string()
    );
    let rows = stored(&direct, &org, "Stalled").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(retried.id, rows[0].id.to_string());
}

#[track_caller]
fn assert_outcome_unknown<T: std::fmt::Debug>(answer: Result<T, Status>) {
    let status = answer.expect_err("a stalled commit cannot succeed");
    assert_eq!(
        (status.code(), reason_of(&status).as_str()),
        (Code::Unavailable, "OUTCOME_UNKNOWN"),
        "{status:?}"
    );
}
