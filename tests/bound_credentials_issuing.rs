//! Binding a credential to an organization (issue 27): the admin CLI's
//! `--organization`, the bootstrap file's `organization` key (both only to
//! an organization of the user) and a JWT's `org_id` claim. What a bound
//! credential may do: `bound_credentials.rs`.

mod bound;
mod common;

use std::process::Command;

use bound::{Route, app_speaking, body, create_grpc, jwt, post, two_orgs};
use common::{Backend, FreshPostgres, assert_error, spawn_app_at};
use reqwest::StatusCode;
use serde_json::json;
use tonic::Code;
use workspace_service::{domain::Reason, http::ApiV1Dialect};

on_both_databases!(
    a_jwt_binds_by_its_org_id_claim,
    the_admin_cli_binds_to_an_organization_of_the_user_only,
);

async fn a_jwt_binds_by_its_org_id_claim(backend: Backend) {
    let Some(app) = app_speaking(backend, ApiV1Dialect::Seed000).await else {
        return;
    };
    let orgs = two_orgs(&app).await;
    let a = orgs.a.to_string();
    // Bound by `org_id`: creates in A without naming it, lists A only.
    let bound = jwt(orgs.user, Some(&a));
    let created = create_grpc(&app, &bound, None).await.unwrap();
    assert_eq!(created.organization.unwrap().id, a);
    let other = create_grpc(&app, &bound, Some(orgs.b)).await;
    assert_error(other, Code::PermissionDenied, Reason::NotOrganizationMember);
    let (status, answer) = post(
        &app,
        Route::Seed000,
        &bound,
        body(Route::Seed000, "Jwt bound"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["organization_id"], a);
    // Without the claim the JWT is unbound; a claim that is not a UUID
    // makes the token invalid.
    let unbound = create_grpc(&app, &jwt(orgs.user, None), None).await;
    assert_error(unbound, Code::InvalidArgument, Reason::OrganizationRequired);
    let garbled = create_grpc(&app, &jwt(orgs.user, Some("acme")), None).await;
    assert_eq!(garbled.unwrap_err().code(), Code::Unauthenticated);
}

/// Runs `workspace-service admin …` on `url`: stdout's last line, or
/// stderr when it fails.
fn admin(url: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(env!("CARGO_BIN_EXE_workspace-service"))
        .arg("admin")
        .args(args)
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    match output.status.success() {
        true => Ok(stdout.lines().last().unwrap_or_default().to_owned()),
        false => Err(String::from_utf8_lossy(&output.stderr).into_owned()),
    }
}

async fn the_admin_cli_binds_to_an_organization_of_the_user_only(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (url, _postgres) = match backend {
        Backend::Sqlite => (
            format!("sqlite://{}", dir.path().join("admin.db").display()),
            None,
        ),
        Backend::Postgres => {
            let Some(postgres) = FreshPostgres::create().await else {
                return;
            };
            (postgres.url.clone(), Some(postgres))
        }
    };
    let app = spawn_app_at(url.clone()).await;
    let run = |args: &[&str]| admin(&url, args).unwrap();
    run(&["plan", "create", "--name", "team"]);
    let a = run(&[
        "org", "create", "--name", "A", "--slug", "a", "--plan", "team",
    ]);
    run(&[
        "org", "create", "--name", "B", "--slug", "b", "--plan", "team",
    ]);
    run(&[
        "org", "create", "--name", "C", "--slug", "c", "--plan", "team",
    ]);
    run(&["user", "create", "--email", "ada@a.test"]);
    for org in ["a", "b"] {
        run(&[
            "member",
            "add",
            "--org",
            org,
            "--user",
            "ada@a.test",
            "--role",
            "ADMIN",
        ]);
    }
    let token = run(&[
        "token",
        "create",
        "--user",
        "ada@a.test",
        "--organization",
        "a",
    ]);
    let session = run(&[
        "session",
        "create",
        "--user",
        "ada@a.test",
        "--organization",
        &a,
    ]);

    let created = create_grpc(&app, &token, None).await.unwrap();
    assert_eq!(created.organization.unwrap().id, a);
    let (status, answer) = post(
        &app,
        Route::Seed003,
        &token,
        body(Route::Seed003, "Cli bound"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let (status, answer) = post(
        &app,
        Route::Seed004,
        &session,
        body(Route::Seed004, "Cli session"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(
        answer["data"]["workspace"]["organization"]["id"], a,
        "{answer}"
    );

    // C is not the user's: the CLI and the bootstrap file refuse to bind.
    for refused in [
        admin(
            &url,
            &[
                "token",
                "create",
                "--user",
                "ada@a.test",
                "--organization",
                "c",
            ],
        ),
        admin(
            &url,
            &[
                "session",
                "create",
                "--user",
                "ada@a.test",
                "--organization",
                "c",
            ],
        ),
    ] {
        let stderr = refused.unwrap_err();
        assert!(stderr.contains("not a member of organization"), "{stderr}");
    }
    let file = dir.path().join("bootstrap.json");
    let bootstrap = |kind: &str, token: &str, org: &str| {
        let entry = json!({"user": "ada@a.test", "token": token, "organization": org});
        let mut entry = entry.as_object().unwrap().clone();
        if kind == "api_tokens" {
            entry.insert("name".into(), json!(token));
        }
        std::fs::write(&file, json!({ kind: [entry] }).to_string()).unwrap();
        admin(&url, &["--bootstrap", file.to_str().unwrap()])
    };
    for kind in ["api_tokens", "sessions"] {
        let refused = bootstrap(kind, "wst_bootstrap-bound-to-c-000", "c").unwrap_err();
        assert!(
            refused.contains("not a member of organization"),
            "{refused}"
        );
    }
    bootstrap("api_tokens", "wst_bootstrap-bound-to-a-000", "a").unwrap();
    let created = create_grpc(&app, "wst_bootstrap-bound-to-a-000", None)
        .await
        .unwrap();
    assert_eq!(created.organization.unwrap().id, a);
    bootstrap("sessions", "wss_bootstrap-bound-to-a-000", "a").unwrap();
    let answer = post(
        &app,
        Route::Seed004,
        "wss_bootstrap-bound-to-a-000",
        body(Route::Seed004, "Bootstrap session"),
    )
    .await;
    assert_eq!(answer.0, StatusCode::CREATED, "{}", answer.1);
    assert_eq!(answer.1["data"]["workspace"]["organization"]["id"], a);
    app.stop().await;
}
