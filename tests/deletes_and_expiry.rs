//! Issue 29's deletes by index: DeleteWorkspace removes its workspace's
//! rows (by the foreign keys' cascade) and no other workspace's, and
//! idempotency records expire after `IDEMPOTENCY_RETENTION`, purged by
//! the server in batches of `IDEMPOTENCY_PURGE_BATCH`.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{Backend, Org, PlanSpec, TestApp, assert_error, authed, named, spawn_app_with};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait,
    QueryFilter, Statement, sea_query::Expr,
};
use sea_orm_migration::MigratorTrait;
use tonic::Code;
use uuid::Uuid;
use workspace_service::{
    config::{HumanDuration, Settings},
    domain::{OrganizationRole, Reason},
    proto::{CreateWorkspaceRequest, DeleteWorkspaceRequest, UpdateWorkspaceRequest, Workspace},
    storage::{
        entities::{idempotency_record, workspace_membership},
        migrations::Migrator,
    },
};

on_both_databases!(
    every_foreign_key_has_an_index,
    a_delete_removes_its_own_rows_and_no_others,
    records_past_the_window_are_purged_and_newer_kept,
    a_retry_after_its_record_expired_is_a_new_create,
    the_purge_deletes_in_batches,
);

/// Foreign keys whose column leads no index: a delete of their parent
/// would read the whole table (single-column keys, all this schema has).
const UNINDEXED_SQLITE: &str = r#"
SELECT m.name AS tbl, f."from" AS col
FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f
WHERE m.type = 'table' AND NOT EXISTS (
    SELECT 1 FROM pragma_index_list(m.name) il JOIN pragma_index_info(il.name) ii
    WHERE ii.seqno = 0 AND ii.name = f."from")"#;
const UNINDEXED_POSTGRES: &str = r#"
SELECT c.conrelid::regclass::text AS tbl, a.attname::text AS col
FROM pg_constraint c
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
WHERE c.contype = 'f' AND NOT EXISTS (
    SELECT 1 FROM pg_index i WHERE i.indrelid = c.conrelid AND i.indkey[0] = c.conkey[1])"#;

/// Every foreign key's column leads an index: DeleteWorkspace's cascade
/// (memberships, access tokens, idempotency records) and any other
/// parent's removal find the children by index.
async fn every_foreign_key_has_an_index(backend: Backend) {
    let Some(app) = app_purging(backend, "1d", 500).await else {
        return;
    };
    let db = app.storage.connection();
    let (sql, system) = match backend {
        Backend::Sqlite => (UNINDEXED_SQLITE, DbBackend::Sqlite),
        Backend::Postgres => (UNINDEXED_POSTGRES, DbBackend::Postgres),
    };
    let unindexed = async || {
        let mut found: Vec<(String, String)> = db
            .query_all_raw(Statement::from_string(system, sql))
            .await
            .unwrap()
            .iter()
            .map(|row| {
                (
                    row.try_get("", "tbl").unwrap(),
                    row.try_get("", "col").unwrap(),
                )
            })
            .collect();
        found.sort();
        found
    };
    assert_eq!(unindexed().await, []);
    // The query sees foreign keys at all.
    let keys = match backend {
        Backend::Sqlite => {
            "SELECT count(*) AS n FROM sqlite_master m \
             JOIN pragma_foreign_key_list(m.name) f WHERE m.type = 'table'"
        }
        Backend::Postgres => "SELECT count(*) AS n FROM pg_constraint WHERE contype = 'f'",
    };
    let row = db
        .query_one_raw(Statement::from_string(system, keys))
        .await
        .unwrap()
        .unwrap();
    assert!(row.try_get::<i64>("", "n").unwrap() >= 12);

    // The migration's down() takes its indexes away, up() brings them back.
    let names: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let position = names
        .iter()
        .position(|name| name == "m20261204_000002_deletes_by_index")
        .unwrap();
    let steps = u32::try_from(names.len() - position).unwrap();
    Migrator::down(db, Some(steps)).await.unwrap();
    let expected = [
        ("idempotency_records", "workspace_id"),
        ("organizations", "plan_id"),
        ("workspace_access_tokens", "user_id"),
    ]
    .map(|(table, column)| (table.to_owned(), column.to_owned()));
    assert_eq!(unindexed().await, expected);
    Migrator::up(db, None).await.unwrap();
    assert_eq!(unindexed().await, []);
}

/// A server whose purge runs every `interval`, with batches of `batch`.
async fn app_purging(backend: Backend, interval: &str, batch: u64) -> Option<TestApp> {
    spawn_app_with(backend, |settings: &mut Settings| {
        settings.idempotency.retention = HumanDuration(Duration::from_secs(3_600));
        settings.idempotency.purge_interval = interval.parse().unwrap();
        settings.idempotency.purge_batch = batch;
    })
    .await
}

async fn create_with_request_id(app: &TestApp, org: &Org, name: &str, id: &str) -> Workspace {
    app.create(
        &org.owner.token,
        CreateWorkspaceRequest {
            request_id: id.to_owned(),
            ..named(org, name)
        },
    )
    .await
    .unwrap()
}

/// `count` idempotency records of the organization's OWNER for
/// `workspace`, made `age` ago: what other creates would have left.
async fn add_records(
    app: &TestApp,
    org: &Org,
    workspace: Uuid,
    count: usize,
    age: chrono::Duration,
) {
    let records = (0..count).map(|_| idempotency_record::ActiveModel {
        id: Set(Uuid::new_v4()),
        user_id: Set(org.owner.id),
        request_id: Set(Uuid::new_v4().to_string()),
        request_fingerprint: Set("f".repeat(64)),
        workspace_id: Set(workspace),
        created_at: Set(Utc::now() - age),
    });
    idempotency_record::Entity::insert_many(records)
        .exec_without_returning(app.storage.connection())
        .await
        .unwrap();
}

async fn records_of(app: &TestApp, workspace: &str) -> u64 {
    idempotency_record::Entity::find()
        .filter(idempotency_record::Column::WorkspaceId.eq(workspace.parse::<Uuid>().unwrap()))
        .count(app.storage.connection())
        .await
        .unwrap()
}

async fn memberships(app: &TestApp, workspace: &str) -> u64 {
    workspace_membership::Entity::find()
        .filter(workspace_membership::Column::WorkspaceId.eq(workspace.parse::<Uuid>().unwrap()))
        .count(app.storage.connection())
        .await
        .unwrap()
}

async fn all_records(app: &TestApp) -> u64 {
    idempotency_record::Entity::find()
        .count(app.storage.connection())
        .await
        .unwrap()
}

/// Makes the record of `request_id` look `age` old.
async fn backdate(app: &TestApp, request_id: &str, age: chrono::Duration) {
    idempotency_record::Entity::update_many()
        .col_expr(
            idempotency_record::Column::CreatedAt,
            Expr::value(Utc::now() - age),
        )
        .filter(idempotency_record::Column::RequestId.eq(request_id))
        .exec(app.storage.connection())
        .await
        .unwrap();
}

/// Waits up to 10 s for `done`.
async fn eventually<F: AsyncFn() -> bool>(what: &str, done: F) {
    for _ in 0..200 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within 10 s");
}

async fn delete(app: &TestApp, org: &Org, workspace: &Workspace) {
    app.client()
        .await
        .delete_workspace(authed(
            &org.owner.token,
            DeleteWorkspaceRequest {
                id: workspace.id.clone(),
                etag: workspace.etag.clone(),
                allow_missing: false,
            },
        ))
        .await
        .unwrap();
}

/// The one way the rows go is the foreign keys' cascade: the deleted
/// workspace's memberships and idempotency record go, the 300 records and
/// the memberships of the other workspaces stay.
async fn a_delete_removes_its_own_rows_and_no_others(backend: Backend) {
    let Some(app) = app_purging(backend, "1d", 500).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let member = app.member(org.id, OrganizationRole::Member).await;
    let mut with_member = named(&org, "Deleted");
    with_member.first_member_id = member.id.to_string();
    with_member.request_id = "req-deleted".into();
    let deleted = app.create(&org.owner.token, with_member).await.unwrap();
    let kept = create_with_request_id(&app, &org, "Kept", "req-kept").await;
    let other = create_with_request_id(&app, &org, "Other", "req-other").await;
    for workspace in [&kept, &other] {
        let id = workspace.id.parse().unwrap();
        add_records(&app, &org, id, 150, chrono::Duration::zero()).await;
    }
    assert_eq!(records_of(&app, &deleted.id).await, 1);
    assert_eq!(memberships(&app, &deleted.id).await, 2);

    delete(&app, &org, &deleted).await;

    assert_eq!(records_of(&app, &deleted.id).await, 0);
    assert_eq!(memberships(&app, &deleted.id).await, 0);
    assert_eq!(records_of(&app, &kept.id).await, 151);
    assert_eq!(records_of(&app, &other.id).await, 151);
    assert_eq!(memberships(&app, &kept.id).await, 1);
    assert_eq!(all_records(&app).await, 302);
}

/// The server's purge, started with it: a record older than the window
/// goes, one within it stays, and `/metrics` counts what went.
async fn records_past_the_window_are_purged_and_newer_kept(backend: Backend) {
    let Some(app) = app_purging(backend, "100ms", 500).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let old = create_with_request_id(&app, &org, "Old request", "req-old").await;
    let new = create_with_request_id(&app, &org, "New request", "req-new").await;
    backdate(&app, "req-old", chrono::Duration::minutes(61)).await;
    backdate(&app, "req-new", chrono::Duration::minutes(59)).await;

    eventually("the old record purged", async || {
        records_of(&app, &old.id).await == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(records_of(&app, &new.id).await, 1);
    // The workspaces themselves stay.
    assert_eq!(
        app.storage
            .workspace_organization(old.id.parse().unwrap())
            .await
            .unwrap(),
        Some(org.id)
    );
    let metrics = reqwest::get(format!("http://{}/metrics", app.http_addr.unwrap()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counted = metrics
        .lines()
        .find(|line| line.starts_with("workspace_service_idempotency_purged_total"));
    assert!(
        counted.is_some_and(|line| line.ends_with(" 1")),
        "{metrics}"
    );
}

/// README: a retry after its record expired is a new create. The first
/// workspace still has the name: ALREADY_EXISTS (not the first workspace).
/// Once it is renamed: a second workspace.
async fn a_retry_after_its_record_expired_is_a_new_create(backend: Backend) {
    let Some(app) = app_purging(backend, "100ms", 500).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let first = create_with_request_id(&app, &org, "Retried late", "req-late").await;
    let retry = || CreateWorkspaceRequest {
        request_id: "req-late".into(),
        ..named(&org, "Retried late")
    };
    // Within the window, the retry is answered from the first call.
    let within = app.create(&org.owner.token, retry()).await.unwrap();
    assert_eq!(within.id, first.id);

    backdate(&app, "req-late", chrono::Duration::hours(2)).await;
    eventually("the record purged", async || {
        records_of(&app, &first.id).await == 0
    })
    .await;
    assert_error(
        app.create(&org.owner.token, retry()).await,
        Code::AlreadyExists,
        Reason::WorkspaceAlreadyExists,
    );
    app.client()
        .await
        .update_workspace(authed(
            &org.owner.token,
            UpdateWorkspaceRequest {
                id: first.id.clone(),
                name: "Renamed meanwhile".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let second = app.create(&org.owner.token, retry()).await.unwrap();
    assert_ne!(second.id, first.id);
    // And the new record answers the next retry.
    let again = app.create(&org.owner.token, retry()).await.unwrap();
    assert_eq!(again.id, second.id);
}

/// A batch deletes at most its size, oldest first; the server's purge
/// repeats batches until none is full.
async fn the_purge_deletes_in_batches(backend: Backend) {
    // The purge's first round runs at start, on an empty table; the next
    // one a day later.
    let Some(app) = app_purging(backend, "1d", 2).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let workspace = create_with_request_id(&app, &org, "Many requests", "req-fresh").await;
    let id = workspace.id.parse().unwrap();
    add_records(&app, &org, id, 5, chrono::Duration::hours(2)).await;
    let before = Utc::now() - chrono::Duration::hours(1);
    let mut batches = Vec::new();
    loop {
        let deleted = app
            .storage
            .purge_idempotency_batch(before, 2)
            .await
            .unwrap();
        batches.push(deleted);
        if deleted == 0 {
            break;
        }
    }
    assert_eq!(batches, [2, 2, 1, 0]);
    assert_eq!(all_records(&app).await, 1, "the fresh record stays");
    app.stop().await;

    // The server, with batches of 2: the 5 old records go, the fresh one
    // stays.
    let Some(app) = app_purging(backend, "100ms", 2).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let workspace = create_with_request_id(&app, &org, "Many requests", "req-fresh").await;
    add_records(
        &app,
        &org,
        workspace.id.parse().unwrap(),
        5,
        chrono::Duration::hours(2),
    )
    .await;
    eventually("5 old records purged", async || {
        all_records(&app).await == 1
    })
    .await;
    assert_eq!(records_of(&app, &workspace.id).await, 1);
}
