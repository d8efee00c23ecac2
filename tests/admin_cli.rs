//! The admin command line, run as a new user would: each `create` prints
//! the id (or token) as its last stdout line; `--bootstrap FILE` is
//! idempotent; what it creates works against the running service.

mod common;

use std::process::Command;
use workspace_service::domain::Reason;

use common::{assert_error, spawn_app_at};
use tonic::Code;
use workspace_service::proto::CreateWorkspaceRequest;

/// Runs `workspace-service admin …` on `database_url`; returns stdout's
/// last line.
fn admin(database_url: &str, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_workspace-service"))
        .arg("admin")
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "admin {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .last()
        .expect("admin printed something")
        .to_owned()
}

fn admin_fails(database_url: &str, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_workspace-service"))
        .arg("admin")
        .args(args)
        .env("DATABASE_URL", database_url)
        .output()
        .unwrap();
    assert!(!output.status.success(), "admin {args:?} should fail");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_commands_create_what_the_service_uses() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("admin.db").display());

    let plan = admin(
        &url,
        &["plan", "create", "--name", "team", "--workspace-limit", "1"],
    );
    uuid::Uuid::parse_str(&plan).expect("plan create prints the id");
    let org = admin(
        &url,
        &[
            "org", "create", "--name", "Acme", "--slug", "acme", "--plan", "team",
        ],
    );
    uuid::Uuid::parse_str(&org).unwrap();
    let user = admin(
        &url,
        &[
            "user",
            "create",
            "--email",
            "Ada@Acme.test",
            "--name",
            "Ada",
        ],
    );
    uuid::Uuid::parse_str(&user).unwrap();
    admin(
        &url,
        &[
            "member",
            "add",
            "--org",
            "acme",
            "--user",
            "ada@acme.test",
            "--role",
            "owner",
        ],
    );
    let creds = admin(
        &url,
        &[
            "credentials",
            "create",
            "--org",
            "acme",
            "--kind",
            "file-store",
            "--name",
            "s3",
        ],
    );
    let token = admin(&url, &["token", "create", "--user", &user]);
    assert!(token.starts_with("wst_"), "{token}");
    let session = admin(&url, &["session", "create", "--user", "ada@acme.test"]);
    assert!(session.starts_with("wss_"), "{session}");

    // Bad input is a clear error and changes nothing.
    let error = admin_fails(
        &url,
        &[
            "member", "add", "--org", "acme", "--user", &user, "--role", "boss",
        ],
    );
    assert!(error.contains("unknown OrganizationRole"), "{error}");
    let error = admin_fails(
        &url,
        &[
            "org", "create", "--name", "X", "--slug", "x", "--plan", "nope",
        ],
    );
    assert!(error.contains("no plan named"), "{error}");

    let app = spawn_app_at(url.clone()).await;
    let mut request = CreateWorkspaceRequest {
        name: "From the CLI".into(),
        file_store_credentials: Some(workspace_service::proto::FileStoreCredentials {
            file_store_credentials_id: creds,
        }),
        ..Default::default()
    };
    let created = app.create(&token, request.clone()).await.unwrap();
    assert_eq!(created.organization_id, org);
    // The plan's limit of 1 set on the command line holds.
    request.name = "Second".into();
    assert_error(
        app.create(&token, request).await,
        Code::ResourceExhausted,
        Reason::WorkspaceLimitReached,
    );
    // The session works as a cookie.
    let mut client = app.client().await;
    let cookie = common::with_header(
        workspace_service::proto::GetWorkspaceRequest {
            id: created.id.clone(),
        },
        "cookie",
        &format!("session={session}"),
    );
    client.get_workspace(cookie).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn bootstrap_file_is_applied_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bootstrap.db").display());
    let file = dir.path().join("bootstrap.json");
    std::fs::write(
        &file,
        r#"{
          "plans": [{"name": "free", "creation_allowed": false}, {"name": "pro", "workspace_limit": 10}],
          "organizations": [{"name": "Acme", "slug": "acme", "plan": "pro", "workspace_creation": "ALL_MEMBERS"}],
          "users": [{"email": "ada@acme.test", "name": "Ada"}, {"email": "bob@acme.test", "validated": false}],
          "memberships": [
            {"organization": "acme", "user": "ada@acme.test", "role": "OWNER"},
            {"organization": "acme", "user": "bob@acme.test", "role": "MEMBER"}
          ],
          "credentials": [{"organization": "acme", "kind": "DOCUMENT_STORE", "name": "opensearch"}],
          "api_tokens": [{"user": "ada@acme.test", "name": "ci", "token": "wst_fixed-token-for-ci-0123456789"}],
          "sessions": [{"user": "bob@acme.test", "token": "wss_fixed-session-0123456789"}]
        }"#,
    )
    .unwrap();
    let run = || {
        let output = Command::new(env!("CARGO_BIN_EXE_workspace-service"))
            .args(["admin", "--bootstrap"])
            .arg(&file)
            .env("DATABASE_URL", &url)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let first = run();
    let second = run();
    let ids = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| !l.starts_with("api_token") && !l.starts_with("session"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        ids(&first),
        ids(&second),
        "a second run creates nothing new"
    );
    assert!(second.contains("(exists)"));

    let app = spawn_app_at(url.clone()).await;
    let created = app
        .create(
            "wst_fixed-token-for-ci-0123456789",
            CreateWorkspaceRequest {
                name: "Bootstrapped".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(created.organization.unwrap().slug, "acme");

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"plans": [{"name": "x", "unknown_field": 1}]}"#).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_workspace-service"))
        .args(["admin", "--bootstrap"])
        .arg(&bad)
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a valid bootstrap file"));
}

/// An operator repairs a workspace: gives it an OWNER, deletes it (its
/// place under the limit comes back).
#[tokio::test(flavor = "multi_thread")]
async fn admin_workspace_commands_set_members_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("admin.db").display());
    let app = common::spawn_app_at(url.clone()).await;
    let org = app.organization(common::PlanSpec::with_limit(1)).await;
    let workspace = app.create_named(&org, "Repaired").await;
    let colleague = app
        .member(org.id, workspace_service::domain::OrganizationRole::Member)
        .await;
    let stranger = app.user().await;
    app.stop().await;

    let user = admin(
        &url,
        &[
            "workspace",
            "set-member",
            "--workspace",
            &workspace.id,
            "--user",
            &colleague.email,
            "--role",
            "OWNER",
        ],
    );
    assert_eq!(user, colleague.id.to_string());
    let refused = admin_fails(
        &url,
        &[
            "workspace",
            "set-member",
            "--workspace",
            &workspace.id,
            "--user",
            &stranger.id.to_string(),
            "--role",
            "MEMBER",
        ],
    );
    assert!(
        refused.contains("not a member of the workspace's organization"),
        "{refused}"
    );
    assert_eq!(
        admin(&url, &["workspace", "delete", "--id", &workspace.id]),
        workspace.id
    );
    assert!(
        admin_fails(&url, &["workspace", "delete", "--id", &workspace.id]).contains("no workspace")
    );

    // The place under the limit of 1 is free again.
    let app = common::spawn_app_at(url).await;
    app.create_named(&org, "Next one").await;
    app.stop().await;
}
