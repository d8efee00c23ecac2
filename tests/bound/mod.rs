//! What the bound-credential tests share: the five routes as their
//! clients call them, a user in two organizations with bound and unbound
//! credentials, and JWTs with an `org_id` claim.

#![allow(dead_code)] // Each test file uses a different part.

use chrono::{Duration, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tonic::Status;
use uuid::Uuid;
use workspace_service::{
    auth::issue::{create_bound_api_token, create_bound_session, create_session},
    domain::OrganizationRole,
    http::ApiV1Dialect,
    proto::{CreateWorkspaceRequest, ListWorkspacesRequest, Workspace},
};

use crate::common::{Backend, TestApp, authed, spawn_app_with};

pub const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";

/// The five routes a workspace is created through.
#[derive(Clone, Copy, Debug)]
pub enum Route {
    Seed000,
    Seed001,
    Seed002,
    Seed003,
    Seed004,
}

/// Two organizations A and B and a user (ADMIN of both) with an unbound
/// token, tokens and sessions bound to A, and an unbound session.
pub struct TwoOrgs {
    pub user: Uuid,
    pub a: Uuid,
    pub b: Uuid,
    pub unbound: String,
    pub bound: String,
    pub unbound_session: String,
    pub bound_session: String,
}

pub async fn two_orgs(app: &TestApp) -> TwoOrgs {
    let a = app.organization(Default::default()).await.id;
    let b = app.organization(Default::default()).await.id;
    let user = app.member(a, OrganizationRole::Admin).await;
    app.storage
        .put_organization_member(b, user.id, OrganizationRole::Admin)
        .await
        .unwrap();
    let storage = &app.storage;
    let bound = create_bound_api_token(storage, user.id, "bound", None, None, Some(a))
        .await
        .unwrap()
        .token;
    let day = Duration::hours(24);
    TwoOrgs {
        user: user.id,
        a,
        b,
        unbound: user.token,
        bound,
        unbound_session: create_session(storage, user.id, None, day).await.unwrap(),
        bound_session: create_bound_session(storage, user.id, None, day, Some(a))
            .await
            .unwrap(),
    }
}

/// POSTs `name` on `route` as that seed's client would: its path and its
/// auth scheme (Bearer, Basic for 001, the session cookie for 004).
pub async fn post(app: &TestApp, route: Route, secret: &str, body: Value) -> (StatusCode, Value) {
    let path = match route {
        Route::Seed000 | Route::Seed001 => "/api/v1/workspaces",
        Route::Seed002 => "/api/v3/workspaces",
        Route::Seed003 => "/workspace",
        Route::Seed004 => "/workspaces",
    };
    let url = format!("http://{}{path}", app.http_addr.unwrap());
    let request = reqwest::Client::new().post(url).json(&body);
    let request = match route {
        Route::Seed001 => request.basic_auth("any", Some(secret)),
        Route::Seed004 => request.header("cookie", format!("session={secret}")),
        _ => request.bearer_auth(secret),
    };
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

pub fn body(route: Route, name: &str) -> Value {
    match route {
        Route::Seed001 => json!({"name": name, "billingAccountEmail": "billing@example.com"}),
        _ => json!({"name": name}),
    }
}

pub async fn create_grpc(
    app: &TestApp,
    token: &str,
    org: Option<Uuid>,
) -> Result<Workspace, Status> {
    let request = CreateWorkspaceRequest {
        name: format!("Grpc {}", Uuid::new_v4().simple()),
        organization_id: org.map(|id| id.to_string()).unwrap_or_default(),
        ..Default::default()
    };
    let mut client = app.client().await;
    Ok(client
        .create_workspace(authed(token, request))
        .await?
        .into_inner())
}

pub async fn list(app: &TestApp, token: &str, org: Option<Uuid>) -> Result<Vec<Workspace>, Status> {
    let request = ListWorkspacesRequest {
        organization_id: org.map(|id| id.to_string()).unwrap_or_default(),
        page_size: 100,
        ..Default::default()
    };
    let mut client = app.client().await;
    let listed = client.list_workspaces(authed(token, request)).await?;
    Ok(listed.into_inner().workspaces)
}

/// The organization of the listed workspace named `name`.
pub fn organization_of(workspaces: &[Workspace], name: &str) -> String {
    let found = workspaces.iter().find(|w| w.name == name);
    let found = found.unwrap_or_else(|| panic!("{name} is not listed"));
    found.organization.as_ref().unwrap().id.clone()
}

pub async fn app_speaking(backend: Backend, v1: ApiV1Dialect) -> Option<TestApp> {
    spawn_app_with(backend, |s| {
        s.server.http_api_v1_dialect = v1;
        s.jwt.hs256_secret = Some(SECRET.into());
        s.jwt.issuer = Some("https://issuer.test".into());
        s.jwt.audience = Some("workspace-service".into());
    })
    .await
}

#[derive(serde::Serialize)]
struct Claims {
    sub: String,
    iss: &'static str,
    aud: &'static str,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    org_id: Option<String>,
}

pub fn jwt(sub: Uuid, org_id: Option<&str>) -> String {
    let claims = Claims {
        sub: sub.to_string(),
        iss: "https://issuer.test",
        aud: "workspace-service",
        exp: (Utc::now() + Duration::minutes(5)).timestamp(),
        org_id: org_id.map(str::to_owned),
    };
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
}
