//! Each seed's own REST contract on one server with default settings: the
//! document's example requests on the document's route, and the full
//! answers (status, field names, shapes, envelopes, error bodies) compared
//! with the document (../shared/seeds/). Also the defects seen on the
//! JSON/HTTP surface along the way.

mod common;

use common::http::url;
use common::{Backend, Org, PlanSpec, TestApp, spawn_app, spawn_app_with};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;
use workspace_service::{
    domain::{CredentialsKind, OrganizationRole, Reason},
    http::ApiV1Dialect,
    storage::entities::session,
};

on_both_databases!(
    seed_000_speaks_fastapi_with_snake_case_and_its_own_statuses,
    seed_001_speaks_fastapi_with_camel_case_when_chosen,
    seed_002_speaks_django_rest_framework_in_json_and_forms,
    seed_003_answers_in_its_success_envelope,
    seed_004_answers_in_its_status_envelope_with_the_session,
    a_trailing_slash_on_a_fastapi_route_redirects_as_fastapi_does,
);

async fn answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "every answer is JSON"
    );
    (status, response.json().await.expect("a JSON body"))
}

async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(url(app, path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    answer(response).await
}

/// The object's keys, sorted.
fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

fn is_uuid(value: &Value) -> bool {
    value.as_str().is_some_and(|s| Uuid::parse_str(s).is_ok())
}

fn is_time(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok())
}

async fn seed_000_speaks_fastapi_with_snake_case_and_its_own_statuses(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::with_limit(2)).await;
    let store = app
        .credentials(org.id, CredentialsKind::DocumentStore)
        .await;
    let files = app.credentials(org.id, CredentialsKind::FileStore).await;
    let token = &org.owner.token;
    let path = "/api/v1/workspaces";

    // The document's body: name and both credentials; snake_case answer.
    let (status, created) = post(
        &app,
        path,
        token,
        json!({
            "name": "Search pipelines",
            "document_store_credentials": {
                "workspace_document_store_credentials_id": store,
                "pipeline_document_store_credentials_id": store,
            },
            "file_store_credentials": {"file_store_credentials_id": files},
            "unknown": "FastAPI ignores fields its model does not name",
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        keys(&created),
        [
            "created_at",
            "description",
            "document_store_credentials",
            "file_store_credentials",
            "id",
            "name",
            "organization_id",
            "updated_at"
        ]
    );
    assert!(is_uuid(&created["id"]) && is_time(&created["created_at"]));
    assert_eq!(created["organization_id"], org.id.to_string());
    assert_eq!(
        created["file_store_credentials"],
        json!({"file_store_credentials_id": files.to_string()})
    );

    // 400 in the document's words, as FastAPI's {"detail": "..."}.
    let short = post(&app, path, token, json!({"name": "abc"})).await;
    assert_eq!(
        short,
        (
            StatusCode::BAD_REQUEST,
            json!({"detail": "The name of the workspace 'abc' must contain more than 3 characters. Give your workspace a longer name."})
        )
    );
    // Invisible characters do not count toward the length.
    let invisible = post(&app, path, token, json!({"name": "ab\u{200b}\u{200b}"})).await;
    assert_eq!(invisible.0, StatusCode::BAD_REQUEST, "{}", invisible.1);
    // 404, 409, 406, 402 with the document's messages.
    let lost = post(
        &app,
        path,
        token,
        json!({"name": "Lost", "file_store_credentials": {"file_store_credentials_id": Uuid::now_v7()}}),
    )
    .await;
    assert_eq!(lost.0, StatusCode::NOT_FOUND);
    assert!(
        lost.1["detail"]
            .as_str()
            .unwrap()
            .starts_with("We couldn't find the specified credentials"),
        "{}",
        lost.1
    );
    let duplicate = post(&app, path, token, json!({"name": "search pipelines"})).await;
    assert_eq!(
        duplicate,
        (
            StatusCode::CONFLICT,
            json!({"detail": "This workspace search pipelines already exists. Try giving your new workspace a different name."})
        )
    );
    assert_eq!(
        post(&app, path, token, json!({"name": "Second"})).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        post(&app, path, token, json!({"name": "Third"})).await,
        (
            StatusCode::NOT_ACCEPTABLE,
            json!({"detail": "You reached the workspace limit. Delete an existing workspace to create a new one."})
        )
    );
    app.storage
        .update_plan(org.plan_id, false, None)
        .await
        .unwrap();
    let plan = post(&app, path, token, json!({"name": "Fourth"})).await;
    assert_eq!(plan.0, StatusCode::PAYMENT_REQUIRED);
    assert!(
        plan.1["detail"]
            .as_str()
            .unwrap()
            .starts_with("Creating workspaces is not supported with your current plan")
    );

    // 422: pydantic's errors, each naming its field in `loc`.
    let (status, wrong) = post(&app, path, token, json!({"name": 1234})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        wrong,
        json!({"detail": [{"type": "string_type", "loc": ["body", "name"], "msg": "Input should be a valid string", "input": 1234}]})
    );
    let (_, missing) = post(
        &app,
        path,
        token,
        json!({"name": "Half", "document_store_credentials": {"workspace_document_store_credentials_id": store}}),
    )
    .await;
    assert_eq!(missing["detail"][0]["type"], "missing");
    assert_eq!(
        missing["detail"][0]["loc"],
        json!([
            "body",
            "document_store_credentials",
            "pipeline_document_store_credentials_id"
        ])
    );
    let (status, bad_uuid) = post(
        &app,
        path,
        token,
        json!({"name": "Id", "file_store_credentials": {"file_store_credentials_id": "not-a-uuid"}}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // Only what the model refuses: the short name is checked after it.
    assert_eq!(
        bad_uuid["detail"].as_array().unwrap().len(),
        1,
        "{bad_uuid}"
    );
    assert_eq!(bad_uuid["detail"][0]["type"], "uuid_parsing");
    assert_eq!(
        bad_uuid["detail"][0]["loc"],
        json!([
            "body",
            "file_store_credentials",
            "file_store_credentials_id"
        ])
    );
    // 401 as FastAPI's HTTPException.
    let (status, body) = post(&app, path, "wst_wrong", json!({"name": "Nobody"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(keys(&body), ["detail"]);
}

async fn seed_001_speaks_fastapi_with_camel_case_when_chosen(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| {
        s.server.http_api_v1_dialect = ApiV1Dialect::Seed001;
    })
    .await
    else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let colleague = app.member(org.id, OrganizationRole::Member).await;
    let path = "/api/v1/workspaces";

    // Bearer, with the document's three fields; seed 001's own name
    // rule (1 to 128): two characters are a name.
    let (status, created) = post(
        &app,
        path,
        &org.owner.token,
        json!({"name": "QA", "billingAccountEmail": "billing@example.com", "firstMemberId": colleague.id}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        keys(&created),
        ["createdAt", "id", "memberships", "name", "updatedAt"]
    );
    let memberships = created["memberships"].as_array().unwrap();
    assert_eq!(memberships.len(), 2);
    for membership in memberships {
        assert_eq!(
            keys(membership),
            [
                "accessTokens",
                "createdAt",
                "id",
                "privileges",
                "updatedAt",
                "userId",
                "workspaceId"
            ]
        );
        assert_eq!(membership["workspaceId"], created["id"]);
        assert_eq!(membership["accessTokens"], json!([]));
    }
    let owner = memberships
        .iter()
        .find(|m| m["userId"] == org.owner.id.to_string())
        .unwrap();
    assert_eq!(owner["privileges"], json!(["ROLE_WORKSPACE_OWNER"]));

    // Basic auth with the token as the password.
    let basic = reqwest::Client::new()
        .post(url(&app, path))
        .basic_auth("any", Some(&org.owner.token))
        .json(&json!({"name": "Basic", "billingAccountEmail": "billing@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::CREATED);

    // 422 for everything the model refuses, each naming its field.
    let cases = [
        (
            json!({"name": "No email"}),
            "missing",
            json!(["body", "billingAccountEmail"]),
        ),
        (
            json!({"name": "Typed", "billingAccountEmail": "b@example.com", "firstMemberId": 123}),
            "string_type",
            json!(["body", "firstMemberId"]),
        ),
        (
            json!({"name": "", "billingAccountEmail": "b@example.com"}),
            "string_too_short",
            json!(["body", "name"]),
        ),
        (
            json!({"name": "x".repeat(129), "billingAccountEmail": "b@example.com"}),
            "string_too_long",
            json!(["body", "name"]),
        ),
        (
            json!({"name": "Mail", "billingAccountEmail": "not-an-email"}),
            "value_error",
            json!(["body", "billingAccountEmail"]),
        ),
    ];
    for (body, kind, loc) in cases {
        let (status, refused) = post(&app, path, &org.owner.token, body.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body} -> {refused}"
        );
        let first = &refused["detail"][0];
        assert_eq!(
            (&first["type"], &first["loc"]),
            (&json!(kind), &loc),
            "{body} -> {refused}"
        );
        assert!(keys(first).contains(&"msg"), "{refused}");
    }
}

async fn seed_002_speaks_django_rest_framework_in_json_and_forms(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let token = &org.owner.token;
    let path = "/api/v3/workspaces";

    // The document's example.
    let (status, created) = post(
        &app,
        path,
        token,
        json!({"name": "Engineering Team Workspace", "description": "Workspace for the engineering team"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        keys(&created),
        [
            "created_at",
            "description",
            "document_upload_method",
            "files_count",
            "id",
            "name",
            "summaries",
            "updated_at",
            "used_storage",
            "user_role",
            "workspace_type"
        ]
    );
    assert_eq!(created["user_role"], "OWNER");
    assert_eq!(created["workspace_type"], "CUSTOM");
    assert_eq!(created["summaries"], json!([]));
    assert!(created["used_storage"].is_f64() && created["files_count"].is_i64());

    // Forms, as the document lists; a one-character name is a name here.
    let client = reqwest::Client::new();
    let form = client
        .post(url(&app, path))
        .bearer_auth(token)
        .form(&[("name", "Q"), ("description", "urlencoded")])
        .send()
        .await
        .unwrap();
    let (status, form) = answer(form).await;
    assert_eq!(
        (status, &form["description"]),
        (StatusCode::CREATED, &json!("urlencoded"))
    );
    let multipart = client
        .post(url(&app, path))
        .bearer_auth(token)
        .multipart(reqwest::multipart::Form::new().text("name", "Multipart"))
        .send()
        .await
        .unwrap();
    assert_eq!(multipart.status(), StatusCode::CREATED);
    // A form repeating a field is refused, not read as its last value.
    let repeated = client
        .post(url(&app, path))
        .bearer_auth(token)
        .form(&[("name", "First"), ("name", "Second")])
        .send()
        .await
        .unwrap();
    let (status, body) = answer(repeated).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(keys(&body), ["name"]);

    // 400 with the serializer's errors.
    for (body, wanted) in [
        (
            json!({"name": "Extra", "color": "red"}),
            json!({"color": ["This field is not supported."]}),
        ),
        (
            json!({"name": "  "}),
            json!({"name": ["This field may not be blank."]}),
        ),
        (
            json!({"name": "x".repeat(101)}),
            json!({"name": ["Ensure this field has no more than 100 characters."]}),
        ),
        (json!({}), json!({"name": ["This field is required."]})),
        (json!({"name": 7}), json!({"name": ["Not a valid string."]})),
    ] {
        assert_eq!(
            post(&app, path, token, body.clone()).await,
            (StatusCode::BAD_REQUEST, wanted),
            "{body}"
        );
    }
    // 401 and 403 as {"detail": "..."}.
    let (status, body) = post(&app, path, "wst_wrong", json!({"name": "Nobody"})).await;
    assert_eq!(
        (status, keys(&body)),
        (StatusCode::UNAUTHORIZED, vec!["detail"])
    );
    let member = app.member(org.id, OrganizationRole::Member).await;
    let (status, body) = post(&app, path, &member.token, json!({"name": "Not allowed"})).await;
    assert_eq!(
        (status, keys(&body)),
        (StatusCode::FORBIDDEN, vec!["detail"])
    );
}

async fn seed_003_answers_in_its_success_envelope(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let path = "/workspace";
    let (status, created) = post(
        &app,
        path,
        &org.owner.token,
        json!({"name": "Development Workspace"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(keys(&created), ["success", "workspace"]);
    assert_eq!(created["success"], true);
    assert_eq!(keys(&created["workspace"]), ["id", "name", "orgId"]);
    assert_eq!(created["workspace"]["orgId"], org.id.to_string());
    assert_eq!(created["workspace"]["name"], "Development Workspace");

    // The document's 400 and 403, in its words.
    let unvalidated = app.user_validated(false).await;
    app.storage
        .put_organization_member(org.id, unvalidated.id, OrganizationRole::Owner)
        .await
        .unwrap();
    assert_eq!(
        post(
            &app,
            path,
            &unvalidated.token,
            json!({"name": "Unvalidated"})
        )
        .await,
        (
            StatusCode::BAD_REQUEST,
            json!({"success": false, "message": "User not found or account is not validated"})
        )
    );
    let member = app.member(org.id, OrganizationRole::Member).await;
    assert_eq!(
        post(&app, path, &member.token, json!({"name": "Member"})).await,
        (
            StatusCode::FORBIDDEN,
            json!({"success": false, "message": "Insufficient permissions to create workspaces"})
        )
    );
    // Names are unique in the organization; bad input is a 400 too.
    let (status, body) = post(
        &app,
        path,
        &org.owner.token,
        json!({"name": "development workspace"}),
    )
    .await;
    assert_eq!(
        (status, keys(&body)),
        (StatusCode::CONFLICT, vec!["message", "success"])
    );
    let (status, body) = post(&app, path, &org.owner.token, json!({"name": 5})).await;
    assert_eq!(
        (status, &body["success"]),
        (StatusCode::BAD_REQUEST, &json!(false))
    );
}

async fn seed_004_answers_in_its_status_envelope_with_the_session(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let cookie = workspace_service::auth::issue::create_session(
        &app.storage,
        org.owner.id,
        None,
        chrono::Duration::hours(1),
    )
    .await
    .unwrap();
    let signin = session::Entity::find()
        .filter(session::Column::UserId.eq(org.owner.id))
        .one(app.storage.connection())
        .await
        .unwrap()
        .unwrap();
    let post_with_cookie = |body: Value| {
        let request = reqwest::Client::new()
            .post(url(&app, "/workspaces"))
            .header("cookie", format!("session={cookie}"))
            .json(&body);
        async move { answer(request.send().await.unwrap()).await }
    };

    // The document's example, with the session cookie it authenticates by.
    let (status, created) = post_with_cookie(json!({
        "name": "Development Team",
        "description": "Workspace for the development team",
        "organization_id": org.id,
    }))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        keys(&created),
        ["data", "errors", "message", "session", "status"]
    );
    assert_eq!(
        (&created["status"], &created["message"], &created["errors"]),
        (&json!(201), &json!(""), &json!([]))
    );
    let workspace = &created["data"]["workspace"];
    assert_eq!(
        keys(workspace),
        [
            "created_at",
            "description",
            "id",
            "members_count",
            "name",
            "organization",
            "updated_at"
        ]
    );
    assert_eq!(keys(&workspace["organization"]), ["id", "name", "slug"]);
    assert_eq!(workspace["organization"]["slug"], org.slug);
    assert_eq!(workspace["members_count"], 1);
    let session = &created["session"];
    assert_eq!(
        keys(session),
        [
            "active_signin",
            "signin_attempts",
            "signins",
            "signup_attempts"
        ]
    );
    let wanted_signin = json!({
        "id": signin.id.to_string(),
        "user_id": org.owner.id.to_string(),
        "created_at": chrono::SubsecRound::trunc_subsecs(signin.created_at, 6)
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    });
    assert_eq!(session["signins"], json!([wanted_signin.clone()]));
    assert_eq!(session["active_signin"], wanted_signin);
    // Every time in microseconds at most: Python before 3.11 parses no more.
    for time in [
        &session["active_signin"]["created_at"],
        &workspace["created_at"],
        &workspace["updated_at"],
    ] {
        let time = time.as_str().unwrap();
        let fraction = time
            .split_once('.')
            .map_or(0, |(_, rest)| rest.trim_end_matches('Z').len());
        assert!(fraction <= 6, "{time} has {fraction} fractional digits");
    }

    // Errors in the same envelope.
    let other = app.organization(PlanSpec::default()).await;
    let (status, refused) =
        post_with_cookie(json!({"name": "Elsewhere", "organization_id": other.id})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(
        keys(&refused),
        ["data", "errors", "message", "session", "status"]
    );
    assert_eq!(
        (&refused["status"], &refused["data"]),
        (&json!(403), &Value::Null)
    );
    assert_eq!(
        refused["errors"][0]["code"],
        Reason::NotOrganizationMember.as_str().to_ascii_lowercase()
    );
    let (status, missing) = post_with_cookie(json!({"description": "no name"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{missing}");
    assert_eq!(missing["errors"][0]["code"], "form_param_missing");
    assert_eq!(missing["errors"][0]["meta"]["param_name"], "name");
}

/// The defaults, and the setting that makes every route grpc-gateway's.
#[tokio::test]
async fn the_openapi_document_describes_each_route_in_its_dialect() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let document: Value = reqwest::get(url(&app, "/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let created = |path: &str| {
        document["paths"][path]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
            .clone()
    };
    assert!(created("/workspace")["properties"]["success"].is_object());
    assert!(created("/workspaces")["properties"]["session"].is_object());
    assert!(created("/api/v3/workspaces")["properties"]["user_role"].is_object());
    assert!(created("/api/v1/workspaces")["properties"]["organization_id"].is_object());
    let v1 = &document["paths"]["/api/v1/workspaces"]["post"];
    assert!(v1["responses"]["422"]["content"]["application/json"]["schema"]["properties"]["detail"]["items"].is_object());
    assert!(
        v1["requestBody"]["content"]["multipart/form-data"].is_null(),
        "FastAPI reads JSON"
    );
    assert!(document["paths"]["/api/v3/workspaces"]["post"]["requestBody"]["content"]["multipart/form-data"].is_object());
    // Every limit the service enforces, stated.
    let body = |path: &str| {
        document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
            ["properties"]
            .clone()
    };
    assert_eq!(body("/workspaces")["organization_id"]["format"], "uuid");
    assert_eq!(body("/workspaces")["description"]["maxLength"], 1000);
    assert_eq!(body("/api/v3/workspaces")["description"]["maxLength"], 1000);
    for (path, operations) in document["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            for status in ["429", "503", "504"] {
                assert!(
                    operation["responses"][status].is_object(),
                    "{method} {path} does not document {status}"
                );
            }
        }
    }
    // Routes no seed documents stay grpc-gateway's.
    assert_eq!(
        document["paths"]["/api/v1/workspaces/{id}"]["get"]["responses"]["404"]["content"]["application/json"]
            ["schema"],
        json!({"$ref": "#/components/schemas/Error"})
    );

    let gateway = spawn_app_with(Backend::Sqlite, |s| {
        s.server.http_dialects = workspace_service::http::DialectChoice::GrpcGateway;
    })
    .await
    .unwrap();
    let org = gateway.organization(PlanSpec::default()).await;
    let (status, body) = post(
        &gateway,
        "/workspace",
        &org.owner.token,
        json!({"name": "Gateway answer"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["organizationId"], org.id.to_string(), "{body}");

    let v1_001 = spawn_app_with(Backend::Sqlite, |s| {
        s.server.http_api_v1_dialect = workspace_service::http::ApiV1Dialect::Seed001;
    })
    .await
    .unwrap();
    let document: Value = reqwest::get(url(&v1_001, "/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fields = &document["paths"]["/api/v1/workspaces"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"]["properties"];
    assert_eq!(fields["firstMemberId"]["format"], "uuid", "{fields}");
}

/// Defects of the JSON/HTTP surface, on grpc-gateway's dialect (Get, and
/// any route under HTTP_DIALECTS=grpc-gateway).
#[tokio::test]
async fn wrong_types_are_named_a_bad_path_id_is_400_and_an_oversized_body_is_announced() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.server.http_dialects = workspace_service::http::DialectChoice::GrpcGateway;
        s.server.max_message_bytes = 4_096;
    })
    .await
    .unwrap();
    let org: Org = app.organization(PlanSpec::default()).await;
    let token = &org.owner.token;
    for (body, field) in [
        (json!({"name": 1234}), "name"),
        (
            json!({"name": "Typed", "firstMemberId": 123}),
            "first_member_id",
        ),
        (
            json!({"name": "Typed", "fileStoreCredentials": "x"}),
            "file_store_credentials",
        ),
    ] {
        let (status, refused) = post(&app, "/api/v1/workspaces", token, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let violation = refused["details"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["@type"] == "type.googleapis.com/google.rpc.BadRequest")
            .unwrap_or_else(|| panic!("no BadRequest for {body}: {refused}"));
        assert_eq!(violation["fieldViolations"][0]["field"], field, "{body}");
    }

    let get = reqwest::Client::new()
        .get(url(&app, "/api/v1/workspaces/not-a-uuid"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::BAD_REQUEST);

    // Over the limit: 413, read by the client, with the close announced.
    let huge = reqwest::Client::new()
        .post(url(&app, "/api/v1/workspaces"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(format!("{{\"name\": \"{}\"}}", "x".repeat(2_000_000)))
        .send()
        .await
        .expect("the 413 arrives before the connection closes");
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(huge.headers()["connection"], "close");
}

/// FastAPI answers `POST /api/v1/workspaces/` with 307 to the path without
/// the slash; a client that follows it (httpx, requests, reqwest) sends the
/// body again and creates.
async fn a_trailing_slash_on_a_fastapi_route_redirects_as_fastapi_does(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = no_redirects
        .post(url(&app, "/api/v1/workspaces/?x=1"))
        .bearer_auth(&org.owner.token)
        .json(&json!({"name": "Slashed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(response.headers()["location"], "/api/v1/workspaces?x=1");

    let (status, created) = post(
        &app,
        "/api/v1/workspaces/",
        &org.owner.token,
        json!({"name": "Slashed"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["name"], "Slashed");
    // Not on routes of other frameworks: grpc-gateway's 404 there.
    let (status, _) = post(
        &app,
        "/api/v3/workspaces/",
        &org.owner.token,
        json!({"name": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
