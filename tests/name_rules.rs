//! Issue 27, each document's name rule on its route, judged as its
//! framework would, sent as a real client sends it (JSON over HTTP):
//! lengths at the bounds counted in characters (two- and four-byte ones
//! too), with and without surrounding whitespace, and each document's own
//! message where it gives one. On both databases.

mod common;

use common::{Backend, PlanSpec, TestApp, assert_error, named, spawn_app, spawn_app_with};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tonic::Code;
use workspace_service::{domain::Reason, http::ApiV1Dialect};

on_both_databases!(
    seed_000_more_than_3_characters_as_sent_up_to_the_technical_cap,
    seed_001_1_to_128_characters_as_sent,
    seed_002_1_to_100_characters_after_trimming_and_no_nulls,
    seed_003_anything_not_empty_up_to_the_technical_cap,
    seed_004_and_grpc_keep_the_configured_rule,
);

const ROCKET: &str = "\u{1F680}";

/// `n` different four-byte characters (CJK extension B), in an order that
/// does not compress: the largest key the technical cap allows.
fn varied(n: usize) -> String {
    (0..n)
        .map(|i| char::from_u32(0x20000 + (i as u32 * 7_919) % 40_000).unwrap())
        .collect()
}

fn times(text: &str, n: usize) -> String {
    text.repeat(n)
}

/// POSTs `body` to `path` as the owner of a new organization (so that no
/// two cases meet as the same name): the status and the JSON answer.
async fn post(app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
    let org = app.organization(PlanSpec::default()).await;
    let response = reqwest::Client::new()
        .post(format!("http://{}{path}", app.http_addr.unwrap()))
        .bearer_auth(&org.owner.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.expect("a JSON answer"))
}

/// Each name is created, and shown back as `shown`.
async fn accepted(app: &TestApp, path: &str, cases: &[(String, String)], body: fn(&str) -> Value) {
    for (name, shown) in cases {
        let (status, answer) = post(app, path, body(name)).await;
        assert_eq!(status, StatusCode::CREATED, "{path} {name:?}: {answer}");
        let name_of = |a: &Value| {
            a.pointer("/name")
                .or_else(|| a.pointer("/workspace/name"))
                .or_else(|| a.pointer("/data/workspace/name"))
                .cloned()
        };
        assert_eq!(name_of(&answer), Some(json!(shown)), "{path} {name:?}");
    }
}

fn keep(names: &[String]) -> Vec<(String, String)> {
    names.iter().map(|n| (n.clone(), n.clone())).collect()
}

async fn seed_000_more_than_3_characters_as_sent_up_to_the_technical_cap(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let path = "/api/v1/workspaces";
    let body = |name: &str| json!({"name": name});
    let names = [
        times("\u{e9}", 4),
        "abc ".into(),
        " ab ".into(),
        times("x", 101),
        times("x", 128),
        times("x", 255),
        times(ROCKET, 1_000),
    ];
    accepted(&app, path, &keep(&names), body).await;
    // The document's one 400, for short, empty and blank names alike.
    for name in [
        "\u{e9}\u{e9}\u{e9}",
        "",
        "    ",
        " ab",
        "ab\u{200b}\u{200b}",
    ] {
        assert_eq!(
            post(&app, path, body(name)).await,
            (
                StatusCode::BAD_REQUEST,
                json!({"detail": format!("The name of the workspace '{name}' must contain more than 3 characters. Give your workspace a longer name.")})
            ),
            "{name:?}"
        );
    }
    assert_eq!(
        post(&app, path, body(&times(ROCKET, 1_001))).await,
        (
            StatusCode::BAD_REQUEST,
            json!({"detail": "The name of the workspace must contain at most 1000 characters. Give your workspace a shorter name."})
        )
    );
    let (status, _) = post(&app, path, body("bad\u{7}name")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    app.stop().await;
}

async fn seed_001_1_to_128_characters_as_sent(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| {
        s.server.http_api_v1_dialect = ApiV1Dialect::Seed001;
    })
    .await
    else {
        return;
    };
    let path = "/api/v1/workspaces";
    let body = |name: &str| json!({"name": name, "billingAccountEmail": "b@example.com"});
    let names = [
        "\u{e9}".into(),
        "X".into(),
        times("\u{e9}", 128),
        times(ROCKET, 128),
        format!(" {}", times("\u{e9}", 127)),
        format!("{} ", times(ROCKET, 127)),
    ];
    accepted(&app, path, &keep(&names), body).await;
    let refused = |kind: &str, ctx: Option<Value>, name: &str| {
        let mut item = json!({"type": kind, "loc": ["body", "name"]});
        if let Some(ctx) = ctx {
            item["ctx"] = ctx;
        }
        (name.to_owned(), item)
    };
    let cases = [
        refused("string_too_short", Some(json!({"min_length": 1})), ""),
        refused(
            "string_too_long",
            Some(json!({"max_length": 128})),
            &times("\u{e9}", 129),
        ),
        refused(
            "string_too_long",
            Some(json!({"max_length": 128})),
            &times(ROCKET, 129),
        ),
        refused(
            "string_too_long",
            Some(json!({"max_length": 128})),
            &format!(" {} ", times("\u{e9}", 127)),
        ),
        refused("value_error", None, "   "),
        refused("value_error", None, "\u{200b}"),
    ];
    for (name, wanted) in cases {
        let (status, answer) = post(&app, path, body(&name)).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name:?}: {answer}"
        );
        let item = &answer["detail"][0];
        assert_eq!(item["type"], wanted["type"], "{name:?}: {answer}");
        assert_eq!(item["loc"], wanted["loc"], "{name:?}: {answer}");
        if let Some(ctx) = wanted.get("ctx") {
            assert_eq!(&item["ctx"], ctx, "{name:?}: {answer}");
        }
    }
    let (_, answer) = post(&app, path, body("")).await;
    assert_eq!(
        answer["detail"][0]["msg"],
        "String should have at least 1 character"
    );
    let (_, answer) = post(&app, path, body(&times("x", 129))).await;
    assert_eq!(
        answer["detail"][0]["msg"],
        "String should have at most 128 characters"
    );
    app.stop().await;
}

async fn seed_002_1_to_100_characters_after_trimming_and_no_nulls(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let path = "/api/v3/workspaces";
    let body = |name: &str| json!({"name": name});
    let cases = [
        ("\u{e9}".into(), "\u{e9}".into()),
        (times("\u{e9}", 100), times("\u{e9}", 100)),
        (times(ROCKET, 100), times(ROCKET, 100)),
        (
            format!("  {}  ", times("\u{e9}", 100)),
            times("\u{e9}", 100),
        ),
        (" QA ".into(), "QA".into()),
    ];
    accepted(&app, path, &cases, body).await;
    let blank = json!({"name": ["This field may not be blank."]});
    let long = json!({"name": ["Ensure this field has no more than 100 characters."]});
    let null = |field: &str| json!({field: ["This field may not be null."]});
    let cases = [
        (body(""), blank.clone()),
        (body("   "), blank.clone()),
        (body("\u{200b}"), blank),
        (body(&times("\u{e9}", 101)), long.clone()),
        (body(&format!(" {} ", times(ROCKET, 101))), long),
        (json!({"name": null}), null("name")),
        (
            json!({"name": "Nulls", "description": null}),
            null("description"),
        ),
    ];
    for (sent, wanted) in cases {
        assert_eq!(
            post(&app, path, sent.clone()).await,
            (StatusCode::BAD_REQUEST, wanted),
            "{sent}"
        );
    }
    app.stop().await;
}

async fn seed_003_anything_not_empty_up_to_the_technical_cap(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let path = "/workspace";
    let body = |name: &str| json!({"name": name});
    let cases = [
        ("X".into(), "X".into()),
        ("QA".into(), "QA".into()),
        ("Dev".into(), "Dev".into()),
        (" \u{e9} ".into(), "\u{e9}".into()),
        (times("x", 101), times("x", 101)),
        (times(ROCKET, 1_000), times(ROCKET, 1_000)),
        (format!(" {} ", varied(1_000)), varied(1_000)),
    ];
    accepted(&app, path, &cases, body).await;
    // Its one documented 400 means something else: the service's own
    // words in the document's envelope.
    let empty =
        "The name of the workspace must not be empty, nor only whitespace or invisible characters.";
    let long = "The name of the workspace must contain at most 1000 characters. Give your workspace a shorter name.";
    for (name, message) in [
        (String::new(), empty),
        ("   ".into(), empty),
        (times(ROCKET, 1_001), long),
    ] {
        assert_eq!(
            post(&app, path, body(&name)).await,
            (
                StatusCode::BAD_REQUEST,
                json!({"success": false, "message": message})
            ),
            "{name:?}"
        );
    }
    app.stop().await;
}

async fn seed_004_and_grpc_keep_the_configured_rule(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let path = "/workspaces";
    let body = |name: &str| json!({"name": name});
    let cases = [
        (times("\u{e9}", 4), times("\u{e9}", 4)),
        (times(ROCKET, 100), times(ROCKET, 100)),
        (format!("  {}  ", times("\u{e9}", 4)), times("\u{e9}", 4)),
    ];
    accepted(&app, path, &cases, body).await;
    for (name, code) in [
        (" abc ".to_owned(), "name_too_short"),
        ("   ".into(), "name_required"),
        (times(ROCKET, 101), "name_too_long"),
    ] {
        let (status, answer) = post(&app, path, body(&name)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name:?}: {answer}");
        assert_eq!(answer["errors"][0]["code"], code, "{name:?}: {answer}");
    }
    let org = app.organization(PlanSpec::default()).await;
    let grpc = [
        (" abc ".to_owned(), Reason::NameTooShort),
        (times("\u{e9}", 101), Reason::NameTooLong),
        ("    ".into(), Reason::NameRequired),
    ];
    for (name, reason) in grpc {
        let result = app.create(&org.owner.token, named(&org, &name)).await;
        assert_error(result, Code::InvalidArgument, reason);
    }
    let created = app
        .create_named(&org, &format!(" {} ", times(ROCKET, 100)))
        .await;
    assert_eq!(created.name, times(ROCKET, 100));
    app.stop().await;
}

/// `/openapi.json` states each create route's name bounds, and how they
/// count.
#[tokio::test]
async fn the_openapi_document_states_each_routes_name_rule() {
    let bounds = |document: &Value, path: &str| {
        let name = &document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
            ["properties"]["name"];
        (
            name["minLength"].clone(),
            name["maxLength"].clone(),
            name["description"].clone(),
        )
    };
    for (v1, minimum, maximum, counted) in [
        (ApiV1Dialect::Seed000, 4, 1_000, "as sent"),
        (ApiV1Dialect::Seed001, 1, 128, "as sent"),
    ] {
        let app = spawn_app_with(Backend::Sqlite, |s| s.server.http_api_v1_dialect = v1)
            .await
            .unwrap();
        let document: Value =
            reqwest::get(format!("http://{}/openapi.json", app.http_addr.unwrap()))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        let (min, max, description) = bounds(&document, "/api/v1/workspaces");
        assert_eq!((min, max), (json!(minimum), json!(maximum)), "{v1:?}");
        assert!(
            description.as_str().unwrap().contains(counted),
            "{description}"
        );
        let trimmed = "after trimming";
        for (path, min, max) in [
            ("/api/v3/workspaces", 1, 100),
            ("/workspace", 1, 1_000),
            ("/workspaces", 4, 100),
        ] {
            let (found_min, found_max, description) = bounds(&document, path);
            assert_eq!((found_min, found_max), (json!(min), json!(max)), "{path}");
            assert!(
                description.as_str().unwrap().contains(trimmed),
                "{path}: {description}"
            );
        }
        app.stop().await;
    }
    // Under HTTP_DIALECTS=grpc-gateway every create route takes the
    // request message: the configured rule, on its component.
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.server.http_dialects = workspace_service::http::DialectChoice::GrpcGateway;
    })
    .await
    .unwrap();
    let document: Value = reqwest::get(format!("http://{}/openapi.json", app.http_addr.unwrap()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let name = &document["components"]["schemas"]["workspace.v1.CreateWorkspaceRequest"]["properties"]
        ["name"];
    assert_eq!(
        (&name["minLength"], &name["maxLength"]),
        (&json!(4), &json!(100))
    );
    assert!(
        name["description"]
            .as_str()
            .unwrap()
            .contains("after trimming"),
        "{name}"
    );
    app.stop().await;
}
