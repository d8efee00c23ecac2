//! Every JSON/HTTP route called as curl or a grpc-gateway client calls it,
//! with a valid request that must succeed: the workspace's whole life
//! (create, read, list, update, members, access tokens, delete) over JSON
//! only, in both dialect modes (the seed defaults and
//! `HTTP_DIALECTS=grpc-gateway`), on both databases. And grpc-gateway's
//! behaviour where a client of it would notice a difference.

mod common;

use common::http::answer;
use common::{Backend, Org, PlanSpec, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use workspace_service::{domain::OrganizationRole, http::DialectChoice};

on_both_databases!(
    every_route_succeeds_with_seed_dialects,
    every_route_succeeds_with_grpc_gateway_everywhere,
    the_create_route_of_grpc_gateway_reaches_every_field,
    requests_as_curl_and_grpc_gateway_clients_send_them,
    a_path_variable_repeated_in_the_body,
);

/// PostgreSQL only: a lock that blocks reading credentials. (SQLite's
/// readers are not blocked by a writer.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_gateway_authenticates_within_the_calls_deadline() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let Some(app) = app(Backend::Postgres, DialectChoice::Seeds).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let workspace = app.create_named(&org, "Locked out").await;
    let lock = app.storage.connection().begin().await.unwrap();
    lock.execute_unprepared("LOCK TABLE api_tokens IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let http = app.http_addr.expect("the HTTP listener is on");
    let started = std::time::Instant::now();
    let response = reqwest::Client::new()
        .get(format!("http://{http}/api/v1/workspaces/{}", workspace.id))
        .bearer_auth(&org.owner.token)
        .header("grpc-timeout", "1S")
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    let (status, body) = answer(response).await;
    lock.rollback().await.unwrap();
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert_eq!(body["details"][0]["reason"], "DEADLINE_EXCEEDED", "{body}");
    assert!(
        took < std::time::Duration::from_secs(3),
        "answered after {took:?}"
    );
}

async fn app(backend: Backend, dialects: DialectChoice) -> Option<TestApp> {
    common::spawn_app_with(backend, |settings| {
        settings.server.http_dialects = dialects;
    })
    .await
}

struct Json<'a> {
    app: &'a TestApp,
    token: String,
}

impl Json<'_> {
    fn url(&self, path: &str) -> String {
        format!(
            "http://{}{path}",
            self.app.http_addr.expect("the HTTP listener is on")
        )
    }

    /// `method path` with `body` as JSON (when given), as the token's user.
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = reqwest::Client::new()
            .request(method, self.url(path))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request.send().await.unwrap()).await
    }

    /// Asserts `expected` and returns the body.
    async fn ok(&self, method: Method, path: &str, body: Option<Value>, expected: u16) -> Value {
        let (status, answer) = self.send(method.clone(), path, body).await;
        assert_eq!(status.as_u16(), expected, "{method} {path}: {answer}");
        answer
    }
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"))
        .to_owned()
}

/// A grpc-gateway Workspace: every field present, whole numbers as such.
#[track_caller]
fn assert_workspace(body: &Value, name: &str) {
    assert_eq!(body["name"], name, "{body}");
    for field in [
        "id",
        "organizationId",
        "description",
        "createdAt",
        "updatedAt",
        "etag",
        "memberships",
        "documentStoreCredentials",
        "fileStoreCredentials",
        "usedStorage",
        "filesCount",
        "summaries",
    ] {
        assert!(body.get(field).is_some(), "{field} missing: {body}");
    }
    assert_eq!(body["usedStorage"].to_string(), "0", "{body}");
}

/// The lifecycle routes, which speak grpc-gateway's dialect in every mode,
/// each with a valid request and its success answer.
async fn lifecycle_over_json(app: &TestApp, org: &Org, workspace_id: &str, name: &str) {
    let owner = Json {
        app,
        token: org.owner.token.clone(),
    };
    let member = app.member(org.id, OrganizationRole::Member).await;
    let ws = format!("/api/v1/workspaces/{workspace_id}");

    let got = owner.ok(Method::GET, &ws, None, 200).await;
    assert_workspace(&got, name);

    let listed = owner
        .ok(
            Method::GET,
            &format!("/api/v1/workspaces?organization_id={}&page_size=1", org.id),
            None,
            200,
        )
        .await;
    assert_eq!(
        listed["workspaces"].as_array().unwrap().len(),
        1,
        "{listed}"
    );
    let token = text(&listed["nextPageToken"]);
    let next = owner
        .ok(
            Method::GET,
            &format!(
                "/api/v1/workspaces?organizationId={}&pageSize=1&pageToken={token}",
                org.id
            ),
            None,
            200,
        )
        .await;
    assert!(next["workspaces"].is_array(), "{next}");

    // UpdateWorkspace: the id from the path, the fields from the body.
    let updated = owner
        .ok(Method::PATCH, &ws, Some(json!({"description": "new"})), 200)
        .await;
    assert_eq!(updated["description"], "new", "{updated}");
    let renamed = owner
        .ok(
            Method::PATCH,
            &ws,
            Some(json!({"name": format!("{name} renamed"), "updateMask": "name", "etag": updated["etag"]})),
            200,
        )
        .await;
    assert_eq!(renamed["name"], format!("{name} renamed"), "{renamed}");
    assert_eq!(renamed["description"], "new", "{renamed}");

    // Members: add, list, change the role, remove.
    let members = format!("{ws}/members");
    let added = owner
        .ok(
            Method::POST,
            &members,
            Some(json!({"userId": member.id.to_string()})),
            200,
        )
        .await;
    assert_eq!(added["userId"], member.id.to_string(), "{added}");
    assert_eq!(
        added["privileges"],
        json!(["ROLE_WORKSPACE_MEMBER"]),
        "{added}"
    );
    let listed = owner.ok(Method::GET, &members, None, 200).await;
    assert_eq!(
        listed["memberships"].as_array().unwrap().len(),
        2,
        "{listed}"
    );
    let promoted = owner
        .ok(
            Method::PATCH,
            &format!("{members}/{}", member.id),
            Some(json!({"role": "ROLE_WORKSPACE_ADMIN"})),
            200,
        )
        .await;
    assert_eq!(
        promoted["privileges"],
        json!(["ROLE_WORKSPACE_ADMIN"]),
        "{promoted}"
    );

    // Access tokens: create (201, the secret once), list, use, revoke.
    let tokens = format!("{ws}/accessTokens");
    let created = owner
        .ok(Method::POST, &tokens, Some(json!({"name": "ci"})), 201)
        .await;
    let secret = text(&created["secret"]);
    let token_id = text(&created["accessToken"]["id"]);
    let listed = owner.ok(Method::GET, &tokens, None, 200).await;
    assert_eq!(listed["accessTokens"][0]["id"], token_id, "{listed}");
    let with_token = Json { app, token: secret };
    with_token.ok(Method::GET, &ws, None, 200).await;
    let revoked = owner
        .ok(Method::DELETE, &format!("{tokens}/{token_id}"), None, 200)
        .await;
    assert_eq!(revoked, json!({}));
    let (status, _) = with_token.send(Method::GET, &ws, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let removed = owner
        .ok(
            Method::DELETE,
            &format!("{members}/{}", member.id),
            None,
            200,
        )
        .await;
    assert_eq!(removed, json!({}));

    // DeleteWorkspace with its etag in the query.
    let current = owner.ok(Method::GET, &ws, None, 200).await;
    let etag = text(&current["etag"]);
    let deleted = owner
        .ok(
            Method::DELETE,
            &format!("{ws}?etag={}", urlencode(&etag)),
            None,
            200,
        )
        .await;
    assert_eq!(deleted, json!({}));
    owner.ok(Method::GET, &ws, None, 404).await;
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Default settings: each seed's route in its own dialect creates (201),
/// grpc-gateway's create route too, and every lifecycle route works.
async fn every_route_succeeds_with_seed_dialects(backend: Backend) {
    let Some(app) = app(backend, DialectChoice::Seeds).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let owner = Json {
        app: &app,
        token: org.owner.token.clone(),
    };
    // Each document's own request body.
    let seed_bodies = [
        ("/api/v1/workspaces", json!({"name": "Seed zero"})),
        (
            "/api/v3/workspaces",
            json!({"name": "Seed two", "description": "d"}),
        ),
        ("/workspace", json!({"name": "Seed three"})),
        (
            "/workspaces",
            json!({"name": "Seed four", "organization_id": org.id.to_string()}),
        ),
    ];
    for (path, body) in seed_bodies {
        owner.ok(Method::POST, path, Some(body), 201).await;
    }
    let created = owner
        .ok(
            Method::POST,
            &format!("/api/v1/organizations/{}/workspaces", org.id),
            Some(json!({"name": "Gateway one", "description": "by grpc-gateway"})),
            201,
        )
        .await;
    assert_workspace(&created, "Gateway one");
    lifecycle_over_json(&app, &org, &text(&created["id"]), "Gateway one").await;
}

/// `HTTP_DIALECTS=grpc-gateway`: every create route takes the proto3 JSON
/// request and answers the Workspace; the lifecycle routes as above.
async fn every_route_succeeds_with_grpc_gateway_everywhere(backend: Backend) {
    let Some(app) = app(backend, DialectChoice::GrpcGateway).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let owner = Json {
        app: &app,
        token: org.owner.token.clone(),
    };
    let mut last = Value::Null;
    for (index, path) in [
        "/api/v1/workspaces".to_owned(),
        "/api/v3/workspaces".to_owned(),
        "/workspace".to_owned(),
        "/workspaces".to_owned(),
        format!("/api/v1/organizations/{}/workspaces", org.id),
    ]
    .iter()
    .enumerate()
    {
        let name = format!("Gateway {index}");
        last = owner
            .ok(
                Method::POST,
                path,
                Some(json!({"name": name, "organizationId": org.id.to_string()})),
                201,
            )
            .await;
        assert_workspace(&last, &name);
    }
    lifecycle_over_json(&app, &org, &text(&last["id"]), "Gateway 4").await;
}

/// `POST /api/v1/organizations/{organization_id}/workspaces`: validateOnly
/// previews (200, nothing written), requestId makes a retry safe,
/// firstMemberId and billingAccountEmail are read.
async fn the_create_route_of_grpc_gateway_reaches_every_field(backend: Backend) {
    let Some(app) = app(backend, DialectChoice::Seeds).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let member = app.member(org.id, OrganizationRole::Member).await;
    let owner = Json {
        app: &app,
        token: org.owner.token.clone(),
    };
    let create = format!("/api/v1/organizations/{}/workspaces", org.id);

    let preview = owner
        .ok(
            Method::POST,
            &create,
            Some(json!({"name": "x", "validateOnly": true})),
            400,
        )
        .await;
    assert_eq!(
        preview["details"][0]["reason"], "NAME_TOO_SHORT",
        "{preview}"
    );
    let preview = owner
        .ok(
            Method::POST,
            &create,
            Some(json!({"name": "Only a preview", "validateOnly": true})),
            200,
        )
        .await;
    assert_eq!(preview["name"], "Only a preview", "{preview}");
    let listed = owner.ok(Method::GET, "/api/v1/workspaces", None, 200).await;
    assert_eq!(listed["workspaces"], json!([]), "the preview wrote nothing");

    let request_id = uuid::Uuid::new_v4().to_string();
    let body = json!({
        "name": "Every field",
        "requestId": request_id,
        "firstMemberId": member.id.to_string(),
        "billingAccountEmail": "billing@example.test",
        "description": "all of them",
    });
    let first = owner
        .ok(Method::POST, &create, Some(body.clone()), 201)
        .await;
    assert_eq!(
        first["billingAccountEmail"], "billing@example.test",
        "{first}"
    );
    assert_eq!(first["memberships"].as_array().unwrap().len(), 2, "{first}");
    let retry = owner.ok(Method::POST, &create, Some(body), 201).await;
    assert_eq!(
        retry["id"], first["id"],
        "the retry returns the first result"
    );

    // The organization comes from the path: another one's is refused.
    let other = app.organization(PlanSpec::default()).await;
    owner
        .ok(
            Method::POST,
            &format!("/api/v1/organizations/{}/workspaces", other.id),
            Some(json!({"name": "Not mine"})),
            403,
        )
        .await;
}

/// How curl and grpc-gateway clients send requests: JSON labelled as a
/// form (`curl -d`), unknown query parameters, `Grpc-Metadata-*` headers;
/// and what grpc-gateway refuses: a key given twice, a method the route
/// does not take (a JSON error body).
async fn requests_as_curl_and_grpc_gateway_clients_send_them(backend: Backend) {
    let Some(app) = app(backend, DialectChoice::Seeds).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let owner = Json {
        app: &app,
        token: org.owner.token.clone(),
    };
    let client = reqwest::Client::new();
    let create = owner.url(&format!("/api/v1/organizations/{}/workspaces", org.id));

    // curl -d '{"name": …}': application/x-www-form-urlencoded.
    let created = answer(
        client
            .post(&create)
            .bearer_auth(&org.owner.token)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(r#"{"name": "Sent by curl -d"}"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(created.0, StatusCode::CREATED, "{}", created.1);
    let id = text(&created.1["id"]);

    // An unknown query parameter is ignored, as grpc-gateway ignores it.
    let listed = owner
        .ok(
            Method::GET,
            "/api/v1/workspaces?foo=bar&page_size=5",
            None,
            200,
        )
        .await;
    assert_eq!(listed["workspaces"][0]["id"], id, "{listed}");

    // Grpc-Metadata-Authorization is the call's authorization.
    let got = answer(
        client
            .get(owner.url(&format!("/api/v1/workspaces/{id}")))
            .header(
                "grpc-metadata-authorization",
                format!("Bearer {}", org.owner.token),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);

    // A field given twice, by one key or by both its names: 400
    // FIELD_REPEATED, as protojson refuses it (and a preview that also
    // says validate_only: false is no create).
    for body in [
        r#"{"name": "One", "name": "Two"}"#,
        r#"{"name": "Both names", "validateOnly": true, "validate_only": false}"#,
    ] {
        let twice = answer(
            client
                .post(&create)
                .bearer_auth(&org.owner.token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(twice.0.as_u16(), 400, "{}", twice.1);
        assert_eq!(twice.1["code"], 3, "{}", twice.1);
        assert_eq!(
            twice.1["details"][0]["reason"], "FIELD_REPEATED",
            "{}",
            twice.1
        );
    }
    let listed = owner.ok(Method::GET, "/api/v1/workspaces", None, 200).await;
    assert_eq!(
        listed["workspaces"].as_array().unwrap().len(),
        1,
        "{listed}"
    );

    // A bad id in the path is 400 on a route with a body too (422 is for
    // a body's schema).
    let bad_path = owner
        .ok(
            Method::PATCH,
            "/api/v1/workspaces/not-a-uuid",
            Some(json!({"description": "x"})),
            400,
        )
        .await;
    assert_eq!(
        bad_path["details"][0]["reason"], "INVALID_UUID",
        "{bad_path}"
    );

    // Form fields of the well-known types the JSON mapping writes as
    // strings: a FieldMask and a Timestamp.
    let form = client
        .patch(owner.url(&format!("/api/v1/workspaces/{id}")))
        .bearer_auth(&org.owner.token)
        .form(&[("name", "Renamed by a form"), ("updateMask", "name")])
        .send()
        .await
        .unwrap();
    let (status, body) = answer(form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "Renamed by a form", "{body}");
    let form = client
        .post(owner.url(&format!("/api/v1/workspaces/{id}/accessTokens")))
        .bearer_auth(&org.owner.token)
        .form(&[
            ("name", "Form token"),
            ("expireTime", "2099-01-01T00:00:00Z"),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = answer(form).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["accessToken"]["expiresAt"], "2099-01-01T00:00:00Z",
        "{body}"
    );

    // A form whose percent-encoding is not UTF-8 is refused, not read as
    // U+FFFD (seed 002 reads forms); so is an Idempotency-Key that is not
    // ASCII, rather than dropped.
    let latin1 = client
        .post(owner.url("/api/v3/workspaces"))
        .bearer_auth(&org.owner.token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=Caf%E9+Team")
        .send()
        .await
        .unwrap();
    assert_eq!(latin1.status(), StatusCode::BAD_REQUEST);
    let key = client
        .post(&create)
        .bearer_auth(&org.owner.token)
        .header(
            "idempotency-key",
            reqwest::header::HeaderValue::from_bytes("ключ".as_bytes()).unwrap(),
        )
        .json(&json!({"name": "Keyed"}))
        .send()
        .await
        .unwrap();
    let (status, body) = answer(key).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["details"][0]["reason"], "INVALID_REQUEST_ID", "{body}");

    // PUT on a route that takes GET, PATCH and DELETE: 405 with a JSON
    // body and the methods it takes.
    let put = client
        .put(owner.url(&format!("/api/v1/workspaces/{id}")))
        .bearer_auth(&org.owner.token)
        .send()
        .await
        .unwrap();
    let allow = put.headers()["allow"].to_str().unwrap().to_owned();
    let (status, body) = answer(put).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert_eq!(body["code"], 12, "{body}");
    assert_eq!(body["details"][0]["reason"], "METHOD_NOT_ALLOWED", "{body}");
    for method in ["GET", "PATCH", "DELETE"] {
        assert!(allow.contains(method), "{allow}");
    }
}

/// A client that sends the whole request message puts the path's id in
/// the body too: the same value is accepted, another one refused. And a
/// PATCH updates the fields its body gives, empty ones included.
async fn a_path_variable_repeated_in_the_body(backend: Backend) {
    let Some(app) = app(backend, DialectChoice::Seeds).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let workspace = app.create_named(&org, "Repeated").await;
    let owner = Json {
        app: &app,
        token: org.owner.token.clone(),
    };
    let path = format!("/api/v1/workspaces/{}", workspace.id);
    let same = owner
        .ok(
            Method::PATCH,
            &path,
            Some(json!({"id": workspace.id.to_uppercase(), "description": "same id"})),
            200,
        )
        .await;
    assert_eq!(same["description"], "same id", "{same}");
    let other = owner
        .ok(
            Method::PATCH,
            &path,
            Some(json!({"id": uuid::Uuid::new_v4().to_string(), "description": "x"})),
            400,
        )
        .await;
    assert_eq!(other["details"][0]["reason"], "FIELD_REPEATED", "{other}");
    let unchanged = owner.ok(Method::GET, &path, None, 200).await;
    assert_eq!(unchanged["description"], "same id", "{unchanged}");

    // Without updateMask, the keys the body gives are the update: an
    // empty description clears it, the name stays.
    let cleared = owner
        .ok(Method::PATCH, &path, Some(json!({"description": ""})), 200)
        .await;
    assert_eq!(cleared["description"], "", "{cleared}");
    assert_eq!(cleared["name"], "Repeated", "{cleared}");
    // Nothing to update is still refused.
    let nothing = owner
        .ok(
            Method::PATCH,
            &path,
            Some(json!({"etag": cleared["etag"]})),
            400,
        )
        .await;
    assert_eq!(
        nothing["details"][0]["reason"], "INVALID_UPDATE_MASK",
        "{nothing}"
    );
}
