//! Errors never echo unbounded input: whatever a request holds, the
//! status's metadata (`grpc-message` and `grpc-status-details-bin`) stays
//! under 4 KiB, and so does every JSON error body, in every dialect.

mod common;

use base64::{Engine, engine::general_purpose::STANDARD};
use common::{Backend, PlanSpec, authed, spawn_app};
use prost::Message;
use serde_json::json;
use tonic::Code;
use tonic_types::StatusExt;
use workspace_service::proto::CreateWorkspaceRequest;

on_both_databases!(error_metadata_stays_under_4_kib_whatever_the_input);

/// What a status puts in its trailers, as the client receives them.
fn trailer_bytes(status: &tonic::Status) -> usize {
    let details = tonic_types::pb::Status {
        code: status.code() as i32,
        message: status.message().to_owned(),
        details: tonic_types::pb::Status::decode(status.details())
            .map(|s| s.details)
            .unwrap_or_default(),
    };
    // grpc-message is percent-encoded outside printable ASCII.
    let message: usize = status
        .message()
        .bytes()
        .map(|b| {
            if b.is_ascii_graphic() || b == b' ' {
                1
            } else {
                3
            }
        })
        .sum();
    message + STANDARD.encode(details.encode_to_vec()).len()
}

async fn error_metadata_stays_under_4_kib_whatever_the_input(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let hidden_short = format!("{}ab", "\u{200B}".repeat(1_000));
    let huge = "\u{FDFA}".repeat(200_000);
    let cases = [
        (
            "too short",
            hidden_short.clone(),
            String::new(),
            "NAME_TOO_SHORT",
        ),
        ("too long", huge.clone(), String::new(), "NAME_TOO_LONG"),
        (
            "bad email",
            "A fine name".to_owned(),
            format!("{}@", "x".repeat(300_000)),
            "INVALID_EMAIL",
        ),
    ];
    for (case, name, email, reason) in cases {
        let status = app
            .client()
            .await
            .create_workspace(authed(
                &org.owner.token,
                CreateWorkspaceRequest {
                    organization_id: org.id.to_string(),
                    name,
                    billing_account_email: email,
                    ..Default::default()
                },
            ))
            .await
            .expect_err(case);
        assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
        assert_eq!(
            status.get_error_details().error_info().unwrap().reason,
            reason,
            "{case}"
        );
        let size = trailer_bytes(&status);
        assert!(size < 4_096, "{case}: {size} bytes of error metadata");
    }

    // Every dialect's JSON error body, for a name too short by 3 KB of
    // invisible characters and a field name of 100 KB.
    let client = reqwest::Client::new();
    let http = app.http_addr.expect("the HTTP listener is on");
    let long_key = "k".repeat(100_000);
    for path in [
        "/api/v1/workspaces",
        "/api/v3/workspaces",
        "/workspace",
        "/workspaces",
    ] {
        for body in [
            json!({"name": hidden_short, "organization_id": org.id.to_string()}),
            json!({"name": "Fine name", long_key.clone(): 1, "organization_id": org.id.to_string()}),
            json!({"name": ["x".repeat(100_000)]}),
        ] {
            let response = client
                .post(format!("http://{http}{path}"))
                .bearer_auth(&org.owner.token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let text = response.text().await.unwrap();
            assert!(
                text.len() < 4_096,
                "{path}: {status} with {} bytes: {}",
                text.len(),
                &text[..200.min(text.len())]
            );
        }
    }
}
