//! The ids each seed document's typed client accepts: seed 001's workspace
//! and membership ids are version-4 UUIDs; seed 002's `id` is an integer,
//! the workspace's number, unique, never reused, the same on every read.

mod common;

use common::http::post_json;
use common::{Backend, PlanSpec, TestApp, authed, spawn_app, spawn_app_with};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;
use workspace_service::{
    http::ApiV1Dialect,
    proto::{DeleteWorkspaceRequest, GetWorkspaceRequest, ListWorkspacesRequest, Workspace},
};

on_both_databases!(
    seed_001_ids_are_version_4_uuids,
    seed_002_ids_are_the_workspaces_numbers,
    the_id_migrations_go_down_and_up_again,
);

fn version(id: &Value) -> usize {
    Uuid::parse_str(id.as_str().expect("a string id"))
        .expect("a UUID")
        .get_version_num()
}

async fn seed_001_ids_are_version_4_uuids(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| {
        s.server.http_api_v1_dialect = ApiV1Dialect::Seed001;
    })
    .await
    else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let colleague = app
        .member(org.id, workspace_service::domain::OrganizationRole::Member)
        .await;
    for name in ["One", "Two"] {
        let body = json!({"name": name, "billingAccountEmail": "b@example.com", "firstMemberId": colleague.id});
        let (status, created) = post_json(&app, "/api/v1/workspaces", &org.owner.token, body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(version(&created["id"]), 4, "{created}");
        let memberships = created["memberships"].as_array().unwrap();
        assert_eq!(memberships.len(), 2);
        for membership in memberships {
            assert_eq!(version(&membership["id"]), 4, "{membership}");
            assert_eq!(version(&membership["workspaceId"]), 4, "{membership}");
        }
    }
}

async fn get(app: &TestApp, token: &str, id: &str) -> Workspace {
    let request = GetWorkspaceRequest { id: id.to_owned() };
    let mut client = app.client().await;
    client
        .get_workspace(authed(token, request))
        .await
        .unwrap()
        .into_inner()
}

async fn seed_002_ids_are_the_workspaces_numbers(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let token = &org.owner.token;
    let mut numbers = Vec::new();
    for name in ["First", "Second", "Third"] {
        let (status, created) =
            post_json(&app, "/api/v3/workspaces", token, json!({"name": name})).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let number = created["id"].as_i64().expect("an integer id");
        assert!(number > 0, "{created}");
        numbers.push(number);
    }
    assert!(numbers.windows(2).all(|n| n[0] != n[1]), "{numbers:?}");

    // Every read shows the number the create answered.
    let mut client = app.client().await;
    let listed = client
        .list_workspaces(authed(token, ListWorkspacesRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .workspaces;
    assert_eq!(listed.iter().map(|w| w.number).collect::<Vec<_>>(), numbers);
    for workspace in &listed {
        assert_eq!(
            get(&app, token, &workspace.id).await.number,
            workspace.number
        );
        // The grpc-gateway route shows it too (proto3 JSON: an int64 is a string).
        let address = app.http_addr.expect("HTTP is on");
        let shown: Value = reqwest::Client::new()
            .get(format!(
                "http://{address}/api/v1/workspaces/{}",
                workspace.id
            ))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            shown["number"],
            json!(workspace.number.to_string()),
            "{shown}"
        );
    }

    // A deleted workspace's number is not given again, not even the last.
    let last = listed.last().unwrap();
    let delete = DeleteWorkspaceRequest {
        id: last.id.clone(),
        ..Default::default()
    };
    client
        .delete_workspace(authed(token, delete))
        .await
        .unwrap();
    let (_, created) =
        post_json(&app, "/api/v3/workspaces", token, json!({"name": "Fourth"})).await;
    let fourth = created["id"].as_i64().expect("an integer id");
    assert!(
        fourth > *numbers.iter().max().unwrap(),
        "{fourth} after {numbers:?}"
    );
}

/// Migrations m20261203_000005 and _000006 undone and done again on a
/// database with workspaces: the numbers come back, distinct, and a create
/// after them gets a new one.
async fn the_id_migrations_go_down_and_up_again(backend: Backend) {
    use sea_orm_migration::MigratorTrait;
    use workspace_service::storage::migrations::Migrator;
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let first = app.create_named(&org, "First").await;
    let second = app.create_named(&org, "Second").await;
    let db = app.storage.connection();
    Migrator::down(db, Some(2)).await.unwrap();
    Migrator::up(db, None).await.unwrap();
    let (first, second) = (
        get(&app, &org.owner.token, &first.id).await.number,
        get(&app, &org.owner.token, &second.id).await.number,
    );
    assert!(
        first > 0 && second > 0 && first != second,
        "{first} {second}"
    );
    let third = app.create_named(&org, "Third").await.number;
    assert!(third > first.max(second), "{third} after {first}, {second}");
}
