//! Names from the whole of Unicode, over gRPC and the JSON mapping: any
//! name the validator accepts is stored and answered unchanged (trimmed),
//! any it refuses is INVALID_ARGUMENT (HTTP 400), never INTERNAL. And
//! inputs at and past the size limits: a clear refusal, nothing written.

mod common;

use std::{
    cell::{Cell, RefCell},
    collections::HashSet,
};
use workspace_service::domain::Reason;

use common::{Backend, Org, PlanSpec, TestApp, assert_error, authed, named, spawn_app};
use proptest::{
    prelude::*,
    test_runner::{Config, TestCaseError, TestRunner},
};
use reqwest::StatusCode;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use tonic::Code;
use workspace_service::{
    domain::{CreateWorkspaceInput, NameRules, normalize_name, validate_create},
    proto::{CreateWorkspaceRequest, GetWorkspaceRequest},
    storage::entities::workspace,
};

on_both_databases!(
    inputs_past_the_message_limit_are_refused_whole,
    long_invalid_values_are_refused_without_echoing_them,
);

/// Pieces that trip up text handling: emoji with joiners and flags, RTL
/// scripts and overrides, combining marks, zero-width and odd spaces,
/// case mappings that change length, NUL and other controls, quotes.
const PIECES: &[&str] = &[
    "a",
    "Z",
    "7",
    " ",
    "é",
    "e\u{301}",
    "\u{301}",
    "\u{20DD}",
    "😀",
    "👩\u{200D}👩\u{200D}👧",
    "🇫🇷",
    "שלום",
    "مرحبا",
    "\u{202E}",
    "\u{2066}",
    "\u{200B}",
    "\u{200D}",
    "\u{FEFF}",
    "\u{00A0}",
    "\u{3000}",
    "\u{2028}",
    "İ",
    "ß",
    "Σ",
    "ﬃ",
    "ǅ",
    "\u{0}",
    "\t",
    "\n",
    "\u{1F}",
    "\u{7F}",
    "\u{85}",
    "'",
    "\"",
    "%",
    "_",
    "\\",
    "漢字",
    "\u{10FFFF}",
    "\u{E000}",
];

fn names() -> impl Strategy<Value = String> {
    prop_oneof![
        // Anything Unicode allows.
        prop::collection::vec(any::<char>(), 0..120).prop_map(String::from_iter),
        // The awkward pieces, mixed.
        prop::collection::vec(prop::sample::select(PIECES), 0..40).prop_map(|p| p.concat()),
        // Printable ASCII around the length bounds.
        prop::collection::vec(prop::char::range(' ', '~'), 0..110).prop_map(String::from_iter),
    ]
}

/// Which transport a case goes through.
#[derive(Debug, Clone, Copy)]
enum Via {
    Grpc,
    Http,
}

/// What the service answered, in transport-neutral terms.
enum Outcome {
    Created { id: String, name: String },
    Refused { code: Code },
}

async fn create(app: &TestApp, org: &Org, name: &str, via: Via) -> Outcome {
    match via {
        Via::Grpc => match app.create(&org.owner.token, named(org, name)).await {
            Ok(w) => Outcome::Created {
                id: w.id,
                name: w.name,
            },
            Err(status) => Outcome::Refused {
                code: status.code(),
            },
        },
        Via::Http => {
            let response = reqwest::Client::new()
                .post(format!(
                    "http://{}/api/v1/workspaces",
                    app.http_addr.unwrap()
                ))
                .bearer_auth(&org.owner.token)
                .json(&json!({"name": name, "organizationId": org.id}))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            if status == StatusCode::CREATED {
                Outcome::Created {
                    id: body["id"].as_str().unwrap().to_owned(),
                    name: body["name"].as_str().unwrap().to_owned(),
                }
            } else {
                let code = Code::from_i32(body["code"].as_i64().unwrap() as i32);
                // The HTTP status follows the code (400 for the name rules,
                // 409 for a duplicate): never a 5xx.
                assert!(status.is_client_error(), "{status}: {body}");
                Outcome::Refused { code }
            }
        }
    }
}

/// Runs the name property on one database.
fn names_round_trip_or_are_invalid_argument(backend: Backend) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // The RPC's rules on both transports: grpc-gateway's dialect on HTTP.
    let Some(app) = runtime.block_on(common::spawn_app_with(backend, |s| {
        s.server.http_dialects = workspace_service::http::DialectChoice::GrpcGateway;
    })) else {
        return;
    };
    let org = runtime.block_on(app.organization(PlanSpec::default()));
    let rules = NameRules::default();
    // The runner takes an Fn: the case log lives in cells.
    let taken = RefCell::new(HashSet::new());
    let accepted = Cell::new(0);
    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (names(), prop_oneof![Just(Via::Grpc), Just(Via::Http)]);
    runner
        .run(&strategy, |(name, via)| {
            let input = CreateWorkspaceInput {
                name: name.clone(),
                ..Default::default()
            };
            let expected = validate_create(&input, &rules);
            let outcome = runtime.block_on(create(&app, &org, &name, via));
            match (expected, outcome) {
                (Ok(valid), Outcome::Created { id, name: answered }) => {
                    // Accepted means: trimmed, 4..=100 characters, no control
                    // characters, not taken, and stored as sent.
                    let trimmed = name.trim();
                    prop_assert_eq!(&valid.name, trimmed);
                    prop_assert!((4..=100).contains(&trimmed.chars().count()));
                    prop_assert!(!trimmed.chars().any(char::is_control));
                    prop_assert!(
                        taken.borrow_mut().insert(normalize_name(&name)),
                        "a duplicate was created"
                    );
                    prop_assert_eq!(&answered, trimmed);
                    let stored = runtime.block_on(async {
                        app.client()
                            .await
                            .get_workspace(authed(&org.owner.token, GetWorkspaceRequest { id }))
                            .await
                            .map(|r| r.into_inner().name)
                    });
                    let stored = stored.map_err(|s| s.code());
                    prop_assert_eq!(stored.as_deref(), Ok(trimmed));
                    accepted.set(accepted.get() + 1);
                }
                (Ok(valid), Outcome::Refused { code }) => {
                    prop_assert_eq!(code, Code::AlreadyExists, "{:?} via {:?}", name, via);
                    prop_assert!(taken.borrow().contains(&valid.normalized_name));
                }
                (Err(_), Outcome::Refused { code }) => {
                    prop_assert_eq!(code, Code::InvalidArgument, "{:?} via {:?}", name, via);
                }
                (Err(err), Outcome::Created { .. }) => {
                    return Err(TestCaseError::fail(format!(
                        "{name:?} via {via:?} was created, but the validator says {err:?}"
                    )));
                }
            }
            Ok(())
        })
        .unwrap();
    // The strategy reaches both sides of the validator.
    let accepted = accepted.get();
    assert!(accepted > 30, "only {accepted} names were accepted");
    drop(app);
}

#[test]
fn names_round_trip_or_are_invalid_argument_on_sqlite() {
    names_round_trip_or_are_invalid_argument(Backend::Sqlite);
}

#[test]
fn names_round_trip_or_are_invalid_argument_on_postgres() {
    names_round_trip_or_are_invalid_argument(Backend::Postgres);
}

async fn workspaces(app: &TestApp) -> u64 {
    workspace::Entity::find()
        .count(app.storage.connection())
        .await
        .unwrap()
}

async fn inputs_past_the_message_limit_are_refused_whole(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let ten_megabytes = "é".repeat(5 << 20);

    // gRPC: the message is over MAX_MESSAGE_BYTES (1 MiB); refused before
    // it is decoded.
    let status = app
        .create(&org.owner.token, named(&org, &ten_megabytes))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    // HTTP: 413. The server answers as soon as the body passes the limit
    // and does not read the rest, so a client still writing may see the
    // connection reset before it reads the answer: both are a refusal.
    let sent = reqwest::Client::new()
        .post(format!(
            "http://{}/api/v1/workspaces",
            app.http_addr.unwrap()
        ))
        .bearer_auth(&org.owner.token)
        .json(&json!({"name": ten_megabytes}))
        .send()
        .await;
    match sent {
        Ok(response) => assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE),
        Err(error) => assert!(error.is_request() || error.is_body(), "{error:?}"),
    }
    assert_eq!(workspaces(&app).await, 0);
    // The connection and the service are fine afterwards.
    app.create_named(&org, "After the flood").await;
}

async fn long_invalid_values_are_refused_without_echoing_them(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    // Just under the message limit: decoded, then refused by the rules.
    let long = "x".repeat(900 << 10);
    let requests = [
        (named(&org, &long), Reason::NameTooLong),
        (
            CreateWorkspaceRequest {
                description: long.clone(),
                ..named(&org, "Long description")
            },
            Reason::DescriptionTooLong,
        ),
        (
            CreateWorkspaceRequest {
                billing_account_email: format!("{long}@example.test"),
                ..named(&org, "Long email")
            },
            Reason::InvalidEmail,
        ),
        (
            CreateWorkspaceRequest {
                first_member_id: long.clone(),
                ..named(&org, "Long id")
            },
            Reason::InvalidUuid,
        ),
        (
            CreateWorkspaceRequest {
                request_id: long.clone(),
                ..named(&org, "Long request id")
            },
            Reason::InvalidRequestId,
        ),
    ];
    for (request, reason) in requests {
        let status = app.create(&org.owner.token, request).await;
        let status = match status {
            Err(status) if status.code() == Code::InvalidArgument => status,
            other => panic!("{reason}: {other:?}"),
        };
        // The answer fits in a header: the value is not sent back whole.
        assert!(status.message().len() < 1024, "{reason}: message too long");
        assert!(status.details().len() < 4096, "{reason}: details too long");
        assert_error(Err::<(), _>(status), Code::InvalidArgument, reason);
    }
    assert_eq!(workspaces(&app).await, 0);
}
