//! The JSON/HTTP mapping, black-box with a real HTTP client: each seed's
//! route and request body exactly as its REST doc shows it, the 201 answer
//! with the fields that doc lists, and each error status it lists, with
//! grpc-gateway's error body.

mod common;

use common::http::{answer, post_json, url};
use common::{Backend, Org, PlanSpec, TestApp};
use reqwest::{StatusCode, multipart};
use serde_json::{Value, json};
use uuid::Uuid;
use workspace_service::domain::Reason;
use workspace_service::{
    domain::{CredentialsKind, OrganizationRole, WorkspaceCreationPolicy},
    http::JsonNames,
};

on_both_databases!(
    seed_000_create_with_credentials_and_its_error_statuses,
    seed_001_camel_case_body_and_answer_with_bearer_or_basic,
    seed_002_json_form_and_multipart_bodies_with_proto_names,
    seed_003_create_with_bearer_and_its_error_statuses,
    seed_004_create_with_a_session_cookie_in_an_organization,
    get_and_list_routes_with_path_and_query_parameters,
    transport_errors_413_415_404_and_idempotency_key,
);

/// The service with every route in grpc-gateway's dialect
/// (`HTTP_DIALECTS=grpc-gateway`): what this file tests. The seeds' own
/// dialects, the default on their routes, are tests/dialects.rs's.
async fn gateway_app(backend: Backend) -> Option<TestApp> {
    gateway_app_with(backend, |_| {}).await
}

async fn gateway_app_with(
    backend: Backend,
    tweak: impl FnOnce(&mut workspace_service::config::Settings),
) -> Option<TestApp> {
    common::spawn_app_with(backend, |settings| {
        settings.server.http_dialects = workspace_service::http::DialectChoice::GrpcGateway;
        tweak(settings);
    })
    .await
}

/// Asserts grpc-gateway's error body with `reason` in its ErrorInfo.
#[track_caller]
fn assert_error_body(answer: &(StatusCode, Value), status: u16, code: i64, reason: Reason) {
    let (http, body) = answer;
    assert_eq!(http.as_u16(), status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    let info = body["details"]
        .as_array()
        .and_then(|details| {
            details
                .iter()
                .find(|d| d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo")
        })
        .unwrap_or_else(|| panic!("no ErrorInfo in {body}"));
    assert_eq!(info["reason"], reason.as_str(), "{body}");
    assert_eq!(info["domain"], "workspace.v1", "{body}");
}

async fn seed_000_create_with_credentials_and_its_error_statuses(backend: Backend) {
    let Some(app) = gateway_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::with_limit(2)).await;
    let workspace_store = app
        .credentials(org.id, CredentialsKind::DocumentStore)
        .await;
    let pipeline_store = app
        .credentials(org.id, CredentialsKind::DocumentStore)
        .await;
    let file_store = app.credentials(org.id, CredentialsKind::FileStore).await;
    let token = &org.owner.token;
    let path = "/api/v1/workspaces";

    // 201, with the body as seed 000 documents it.
    let body = json!({
        "name": "Search pipelines",
        "document_store_credentials": {
            "workspace_document_store_credentials_id": workspace_store,
            "pipeline_document_store_credentials_id": pipeline_store,
        },
        "file_store_credentials": {"file_store_credentials_id": file_store},
    });
    let (status, created) = post_json(&app, path, token, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["name"], "Search pipelines");
    assert_eq!(
        created["documentStoreCredentials"]["workspaceDocumentStoreCredentialsId"],
        workspace_store.to_string()
    );

    // 400: a name of 3 characters or fewer, in the seed's words.
    let short = post_json(&app, path, token, json!({"name": "abc"})).await;
    assert_error_body(&short, 400, 3, Reason::NameTooShort);
    assert_eq!(
        short.1["message"],
        "The name of the workspace 'abc' must contain more than 3 characters. Give your workspace a longer name."
    );
    // 404: credentials not found.
    let missing = post_json(
        &app,
        path,
        token,
        json!({"name": "Lost", "file_store_credentials": {"file_store_credentials_id": Uuid::now_v7()}}),
    )
    .await;
    assert_error_body(&missing, 404, 5, Reason::CredentialsNotFound);
    // 409: the name exists.
    let duplicate = post_json(&app, path, token, json!({"name": "search pipelines"})).await;
    assert_error_body(&duplicate, 409, 6, Reason::WorkspaceAlreadyExists);
    // 406: the limit (2) is reached.
    assert_eq!(
        post_json(&app, path, token, json!({"name": "Second"}))
            .await
            .0,
        StatusCode::CREATED
    );
    let limit = post_json(&app, path, token, json!({"name": "Third"})).await;
    assert_error_body(&limit, 406, 8, Reason::WorkspaceLimitReached);
    // 402: the plan does not allow workspaces.
    app.storage
        .update_plan(org.plan_id, false, None)
        .await
        .unwrap();
    let plan = post_json(&app, path, token, json!({"name": "Fourth"})).await;
    assert_error_body(&plan, 402, 9, Reason::PlanNotSupported);
    // 422: schema errors (missing required fields, wrong types, malformed JSON).
    for bad in [
        json!({}),
        json!({"name": 42}),
        json!({"name": "Half", "document_store_credentials": {"workspace_document_store_credentials_id": workspace_store}}),
    ] {
        let (status, body) = post_json(&app, path, token, bad.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad} -> {body}");
        assert_eq!(body["code"], 3);
    }
    let malformed = reqwest::Client::new()
        .post(url(&app, path))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_error_body(&answer(malformed).await, 422, 3, Reason::MalformedBody);
}

async fn seed_001_camel_case_body_and_answer_with_bearer_or_basic(backend: Backend) {
    let Some(app) = gateway_app_with(backend, |s| {
        s.rules.require_billing_email = true;
        s.rules.name_min_chars = 1;
        s.rules.name_max_chars = 128;
    })
    .await
    else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let colleague = app.member(org.id, OrganizationRole::Member).await;
    let body = json!({"name": "QA", "billingAccountEmail": "billing@example.com", "firstMemberId": colleague.id});
    let (status, created) = post_json(&app, "/api/v1/workspaces", &org.owner.token, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    for field in ["id", "createdAt", "updatedAt", "name", "memberships"] {
        assert!(
            created.get(field).is_some(),
            "{field} missing from {created}"
        );
    }
    let memberships = created["memberships"].as_array().unwrap();
    assert_eq!(memberships.len(), 2);
    for membership in memberships {
        for field in [
            "id",
            "createdAt",
            "updatedAt",
            "userId",
            "workspaceId",
            "privileges",
            "accessTokens",
        ] {
            assert!(
                membership.get(field).is_some(),
                "{field} missing from {membership}"
            );
        }
    }
    assert!(
        memberships
            .iter()
            .any(|m| m["privileges"] == json!(["ROLE_WORKSPACE_OWNER"]))
    );

    // Basic auth carrying the API token.
    let response = reqwest::Client::new()
        .post(url(&app, "/api/v1/workspaces"))
        .basic_auth(&org.owner.email, Some(&org.owner.token))
        .json(&json!({"name": "Via Basic", "billingAccountEmail": "billing@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);

    // 422: a bad or missing email.
    for body in [
        json!({"name": "No email"}),
        json!({"name": "Bad email", "billingAccountEmail": "billing"}),
    ] {
        let (status, answer) = post_json(&app, "/api/v1/workspaces", &org.owner.token, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    }
    // 401 without credentials.
    let anonymous = reqwest::Client::new()
        .post(url(&app, "/api/v1/workspaces"))
        .json(&json!({"name": "Anonymous", "billingAccountEmail": "billing@example.com"}))
        .send()
        .await
        .unwrap();
    assert_error_body(&answer(anonymous).await, 401, 16, Reason::Unauthenticated);
}

async fn seed_002_json_form_and_multipart_bodies_with_proto_names(backend: Backend) {
    let Some(app) =
        gateway_app_with(backend, |s| s.server.http_json_names = JsonNames::Proto).await
    else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let path = "/api/v3/workspaces";
    let body = json!({"name": "Engineering Team Workspace", "description": "Workspace for the engineering team"});
    let (status, created) = post_json(&app, path, &org.owner.token, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    for field in [
        "id",
        "name",
        "workspace_type",
        "document_upload_method",
        "description",
        "created_at",
        "updated_at",
        "user_role",
        "used_storage",
        "files_count",
        "summaries",
    ] {
        assert!(
            created.get(field).is_some(),
            "{field} missing from {created}"
        );
    }
    assert_eq!(created["user_role"], "ROLE_WORKSPACE_OWNER");

    let form = reqwest::Client::new()
        .post(url(&app, path))
        .bearer_auth(&org.owner.token)
        .form(&[("name", "From a form"), ("description", "urlencoded")])
        .send()
        .await
        .unwrap();
    let (status, created) = answer(form).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["description"], "urlencoded");

    let parts = multipart::Form::new()
        .text("name", "From multipart")
        .text("description", "multipart");
    let multipart = reqwest::Client::new()
        .post(url(&app, path))
        .bearer_auth(&org.owner.token)
        .multipart(parts)
        .send()
        .await
        .unwrap();
    let (status, created) = answer(multipart).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["name"], "From multipart");

    // 400: empty name, name too long, unsupported fields.
    let empty = post_json(&app, path, &org.owner.token, json!({"name": ""})).await;
    assert_error_body(&empty, 400, 3, Reason::NameRequired);
    let long = post_json(
        &app,
        path,
        &org.owner.token,
        json!({"name": "x".repeat(101)}),
    )
    .await;
    assert_error_body(&long, 400, 3, Reason::NameTooLong);
    let unsupported = post_json(
        &app,
        path,
        &org.owner.token,
        json!({"name": "Extra", "color": "red"}),
    )
    .await;
    assert_error_body(&unsupported, 400, 3, Reason::UnsupportedField);
    let form_unsupported = reqwest::Client::new()
        .post(url(&app, path))
        .bearer_auth(&org.owner.token)
        .form(&[("name", "Extra"), ("color", "red")])
        .send()
        .await
        .unwrap();
    assert_error_body(
        &answer(form_unsupported).await,
        400,
        3,
        Reason::UnsupportedField,
    );
    // 401: missing or invalid API key.
    let invalid = post_json(&app, path, "wst_invalid", json!({"name": "Nope"})).await;
    assert_error_body(&invalid, 401, 16, Reason::Unauthenticated);
    // 403: standard users may not create workspaces in this company.
    app.storage
        .set_organization_policy(org.id, WorkspaceCreationPolicy::AdminsOnly)
        .await
        .unwrap();
    let standard = app.member(org.id, OrganizationRole::WorkspaceCreator).await;
    let refused = post_json(&app, path, &standard.token, json!({"name": "Standard"})).await;
    assert_error_body(&refused, 403, 7, Reason::WorkspaceCreationDisabled);
}

async fn seed_003_create_with_bearer_and_its_error_statuses(backend: Backend) {
    let Some(app) = gateway_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let (status, created) = post_json(
        &app,
        "/workspace",
        &org.owner.token,
        json!({"name": "Development Workspace"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["organizationId"], org.id.to_string());
    assert_eq!(created["name"], "Development Workspace");

    // 400: account not validated.
    let unvalidated = app.user_validated(false).await;
    app.storage
        .put_organization_member(org.id, unvalidated.id, OrganizationRole::Owner)
        .await
        .unwrap();
    let answer = post_json(
        &app,
        "/workspace",
        &unvalidated.token,
        json!({"name": "Pending"}),
    )
    .await;
    assert_error_body(&answer, 400, 9, Reason::AccountNotValidated);
    assert_eq!(
        answer.1["message"],
        "User not found or account is not validated."
    );
    // 403: insufficient permissions.
    let member = app.member(org.id, OrganizationRole::Member).await;
    let answer = post_json(
        &app,
        "/workspace",
        &member.token,
        json!({"name": "Members"}),
    )
    .await;
    assert_error_body(&answer, 403, 7, Reason::InsufficientRole);
    // Names are unique in the organization.
    let answer = post_json(
        &app,
        "/workspace",
        &org.owner.token,
        json!({"name": "development workspace"}),
    )
    .await;
    assert_error_body(&answer, 409, 6, Reason::WorkspaceAlreadyExists);
}

async fn seed_004_create_with_a_session_cookie_in_an_organization(backend: Backend) {
    let Some(app) =
        gateway_app_with(backend, |s| s.server.http_json_names = JsonNames::Proto).await
    else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let session = workspace_service::auth::issue::create_session(
        &app.storage,
        org.owner.id,
        None,
        chrono::Duration::hours(1),
    )
    .await
    .unwrap();
    let post = |cookie: String, body: Value| {
        let request = reqwest::Client::new()
            .post(url(&app, "/workspaces"))
            .header("cookie", cookie)
            .json(&body);
        async move { answer(request.send().await.unwrap()).await }
    };
    let body = json!({"name": "Development Team", "description": "Workspace for the development team", "organization_id": org.id});
    let (status, created) = post(format!("session={session}"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    for field in [
        "id",
        "name",
        "description",
        "organization",
        "members_count",
        "created_at",
        "updated_at",
    ] {
        assert!(
            created.get(field).is_some(),
            "{field} missing from {created}"
        );
    }
    assert_eq!(created["organization"]["slug"], org.slug);
    assert_eq!(created["members_count"], 1);

    // Not a member of that organization: 403.
    let other: Org = app.organization(PlanSpec::default()).await;
    let body = json!({"name": "Elsewhere", "organization_id": other.id});
    let answer = post(format!("session={session}"), body).await;
    assert_error_body(&answer, 403, 7, Reason::NotOrganizationMember);
    // A stale cookie: 401.
    let answer = post(
        "session=wss_stale".into(),
        json!({"name": "Stale", "organization_id": org.id}),
    )
    .await;
    assert_error_body(&answer, 401, 16, Reason::Unauthenticated);
}

async fn get_and_list_routes_with_path_and_query_parameters(backend: Backend) {
    let Some(app) = gateway_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(app.create_named(&org, &format!("Listed {i}")).await.id);
    }
    let client = reqwest::Client::new();
    let get = client
        .get(url(&app, &format!("/api/v1/workspaces/{}", ids[0])))
        .bearer_auth(&org.owner.token)
        .send()
        .await
        .unwrap();
    let (status, workspace) = answer(get).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(workspace["id"], ids[0]);

    let missing = client
        .get(url(&app, &format!("/api/v1/workspaces/{}", Uuid::now_v7())))
        .bearer_auth(&org.owner.token)
        .send()
        .await
        .unwrap();
    assert_error_body(&answer(missing).await, 404, 5, Reason::WorkspaceNotFound);

    let page = client
        .get(url(
            &app,
            &format!("/api/v1/workspaces?page_size=2&organizationId={}", org.id),
        ))
        .bearer_auth(&org.owner.token)
        .send()
        .await
        .unwrap();
    let (status, page) = answer(page).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["workspaces"].as_array().unwrap().len(), 2);
    let token = page["nextPageToken"].as_str().unwrap().to_owned();
    let rest = client
        .get(url(&app, "/api/v1/workspaces"))
        .query(&[
            ("page_size", "2"),
            ("page_token", &token),
            ("organization_id", &org.id.to_string()),
        ])
        .bearer_auth(&org.owner.token)
        .send()
        .await
        .unwrap();
    let (_, rest) = answer(rest).await;
    assert_eq!(rest["workspaces"][0]["id"], ids[2]);

    // A query parameter that names no field is ignored, as grpc-gateway
    // ignores it.
    let unknown_query = client
        .get(url(&app, "/api/v1/workspaces?color=red"))
        .bearer_auth(&org.owner.token)
        .send()
        .await
        .unwrap();
    let (status, page) = answer(unknown_query).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["workspaces"].as_array().unwrap().len(), 3, "{page}");
    let bad_size = client
        .get(url(&app, "/api/v1/workspaces?page_size=many"))
        .bearer_auth(&org.owner.token)
        .send()
        .await
        .unwrap();
    // A bad query parameter is not a body: grpc-gateway's 400.
    assert_error_body(&answer(bad_size).await, 400, 3, Reason::InvalidFieldValue);
}

async fn transport_errors_413_415_404_and_idempotency_key(backend: Backend) {
    let Some(app) = gateway_app_with(backend, |s| s.server.max_message_bytes = 4_096).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let client = reqwest::Client::new();
    let huge = client
        .post(url(&app, "/api/v1/workspaces"))
        .bearer_auth(&org.owner.token)
        .json(&json!({"name": "Huge", "description": "x".repeat(10_000)}))
        .send()
        .await
        .unwrap();
    assert_error_body(&answer(huge).await, 413, 8, Reason::BodyTooLarge);

    let xml = client
        .post(url(&app, "/api/v1/workspaces"))
        .bearer_auth(&org.owner.token)
        .header("content-type", "application/xml")
        .body("<name>x</name>")
        .send()
        .await
        .unwrap();
    assert_error_body(&answer(xml).await, 415, 12, Reason::UnsupportedMediaType);

    let nowhere = client
        .get(url(&app, "/api/v2/nothing"))
        .send()
        .await
        .unwrap();
    assert_error_body(&answer(nowhere).await, 404, 5, Reason::RouteNotFound);

    // Idempotency-Key becomes request_id: the retry returns the same workspace.
    let send = || {
        client
            .post(url(&app, "/api/v1/workspaces"))
            .bearer_auth(&org.owner.token)
            .header("idempotency-key", "key-1")
            .json(&json!({"name": "Once"}))
            .send()
    };
    let (first_status, first) = answer(send().await.unwrap()).await;
    let (second_status, second) = answer(send().await.unwrap()).await;
    assert_eq!(
        (first_status, second_status),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    assert_eq!(first["id"], second["id"]);

    // A grpc-timeout deadline that expires answers 504; a bad one 400.
    let with_deadline = |timeout: &str, name: &str| {
        client
            .post(url(&app, "/api/v1/workspaces"))
            .bearer_auth(&org.owner.token)
            .header("grpc-timeout", timeout)
            .json(&json!({"name": name}))
            .send()
    };
    let hurried = with_deadline("1n", "In a hurry").await.unwrap();
    assert_error_body(&answer(hurried).await, 504, 4, Reason::DeadlineExceeded);
    let nonsense = with_deadline("soon", "Whenever").await.unwrap();
    assert_error_body(&answer(nonsense).await, 400, 3, Reason::InvalidTimeout);
    let patient = with_deadline("10S", "Patient").await.unwrap();
    assert_eq!(patient.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn openapi_document_lists_every_annotated_route() {
    let Some(app) = gateway_app(Backend::Sqlite).await else {
        return;
    };
    let (status, document) = answer(reqwest::get(url(&app, "/openapi.json")).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(document["openapi"], "3.0.3");
    for (path, method, success) in [
        ("/api/v1/workspaces", "post", "201"),
        ("/api/v3/workspaces", "post", "201"),
        ("/workspace", "post", "201"),
        ("/workspaces", "post", "201"),
        ("/api/v1/workspaces/{id}", "get", "200"),
        ("/api/v1/workspaces", "get", "200"),
    ] {
        let operation = &document["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} missing");
        assert!(
            operation["responses"][success].is_object(),
            "{method} {path}: no {success}"
        );
        assert!(
            operation["responses"]["401"].is_object(),
            "{method} {path}: no 401"
        );
    }
    let create = &document["paths"]["/api/v3/workspaces"]["post"];
    for status in [
        "400", "402", "403", "404", "406", "409", "413", "415", "422", "500", "503",
    ] {
        assert!(
            create["responses"][status].is_object(),
            "create lacks {status}"
        );
    }
    for media in [
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ] {
        assert!(
            create["requestBody"]["content"][media].is_object(),
            "create lacks {media}"
        );
    }
    // Every $ref resolves.
    let text = document.to_string();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(
            document["components"]["schemas"][name].is_object(),
            "dangling $ref {name}"
        );
    }
    let request = &document["components"]["schemas"]["workspace.v1.CreateWorkspaceRequest"];
    assert_eq!(request["required"], json!(["name"]));
}

#[test]
fn descriptor_set_subcommand_carries_the_http_annotations() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_workspace-service"))
        .arg("descriptor-set")
        .output()
        .unwrap();
    assert!(output.status.success());
    let pool =
        prost_reflect::DescriptorPool::decode(output.stdout.as_slice()).expect("a descriptor set");
    let rules = workspace_service::http::http_rules(&pool).unwrap();
    let mut routes: Vec<String> = rules
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    routes.sort();
    assert_eq!(
        routes,
        [
            "DELETE /api/v1/workspaces/{id}",
            "DELETE /api/v1/workspaces/{workspace_id}/accessTokens/{token_id}",
            "DELETE /api/v1/workspaces/{workspace_id}/members/{user_id}",
            "GET /api/v1/workspaces",
            "GET /api/v1/workspaces/{id}",
            "GET /api/v1/workspaces/{workspace_id}/accessTokens",
            "GET /api/v1/workspaces/{workspace_id}/members",
            "PATCH /api/v1/workspaces/{id}",
            "PATCH /api/v1/workspaces/{workspace_id}/members/{user_id}",
            "POST /api/v1/organizations/{organization_id}/workspaces",
            "POST /api/v1/workspaces",
            "POST /api/v1/workspaces/{workspace_id}/accessTokens",
            "POST /api/v1/workspaces/{workspace_id}/members",
            "POST /api/v3/workspaces",
            "POST /workspace",
            "POST /workspaces",
        ]
    );
}
