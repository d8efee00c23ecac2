//! What a platform team's tools see: the health protocol as grpc-health
//! clients expect it, and failures that say what failed without leaking
//! a secret.

mod common;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use common::{Backend, authed, process::ServiceProcess, spawn_app};
use sea_orm::ConnectionTrait;
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use workspace_service::proto::{
    CreateWorkspaceRequest, GetWorkspaceRequest, ListWorkspacesRequest,
    workspace_service_client::WorkspaceServiceClient,
};

#[tokio::test]
async fn watch_of_an_unknown_service_says_service_unknown_and_stays_open() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let mut health = HealthClient::new(app.channel().await);
    let mut unknown = health
        .watch(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .expect("Watch of an unknown service is not an error")
        .into_inner();
    let first = unknown.message().await.unwrap().unwrap();
    assert_eq!(first.status(), ServingStatus::ServiceUnknown);
    // Open, with nothing more to say.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), unknown.message())
            .await
            .is_err(),
        "the stream ended or sent again"
    );

    // A known service's watch sends its status; Check of an unknown one
    // is NOT_FOUND, as the protocol says.
    let mut known = health
        .watch(HealthCheckRequest {
            service: "liveness".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        known.message().await.unwrap().unwrap().status(),
        ServingStatus::Serving
    );
    let checked = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(checked.code(), Code::NotFound);
}

/// Runs `workspace-service migrate` against `database_url`; its stderr.
fn migrate_fails(database_url: &str) -> (String, Duration) {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_workspace-service"))
        .arg("migrate")
        .env("DATABASE_URL", database_url)
        .env("LOG_FORMAT", "text")
        .output()
        .expect("the binary runs");
    assert!(
        !output.status.success(),
        "migrate of {database_url} succeeded"
    );
    (
        String::from_utf8_lossy(&output.stderr).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn an_unsupported_database_url_is_named_with_its_password_masked() {
    let (stderr, _) = migrate_fails("mysql://u:S3cretPW@127.0.0.1:3306/x");
    assert!(
        !stderr.contains("S3cretPW"),
        "the password leaked: {stderr}"
    );
    assert!(
        stderr.contains("unsupported database URL mysql://u:***@127.0.0.1:3306/x"),
        "{stderr}"
    );
}

#[test]
fn a_refused_database_connection_says_why_at_once() {
    let port = common::free_port();
    let (stderr, took) = migrate_fails(&format!(
        "postgres://u:S3cretPW@127.0.0.1:{port}/x?password=S3cretPW"
    ));
    assert!(
        !stderr.contains("S3cretPW"),
        "the password leaked: {stderr}"
    );
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(!stderr.contains("pool timed out"), "{stderr}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
}

#[tokio::test]
async fn get_and_list_failures_name_their_own_operation() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let org = app.organization(Default::default()).await;
    let created = app.create_named(&org, "Soon unreadable").await;
    // The table the reads need is gone: an internal failure.
    app.storage
        .connection()
        .execute_unprepared("ALTER TABLE workspaces RENAME TO workspaces_gone")
        .await
        .unwrap();
    let mut client = WorkspaceServiceClient::new(app.channel().await);
    let got = client
        .get_workspace(authed(
            &org.owner.token,
            GetWorkspaceRequest { id: created.id },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (got.code(), got.message()),
        (Code::Internal, "Failed to get the workspace.")
    );
    let listed = client
        .list_workspaces(authed(
            &org.owner.token,
            ListWorkspacesRequest {
                organization_id: org.id.to_string(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (listed.code(), listed.message()),
        (Code::Internal, "Failed to list workspaces.")
    );
}

/// `WORKER_THREADS` sizes the runtime that serves the calls: on one
/// thread the service serves creates and lists, and its start says how
/// many threads run; no thread at all is refused before anything starts.
#[tokio::test]
async fn worker_threads_size_the_runtime() {
    let service = ServiceProcess::start(&[("WORKER_THREADS", "1")]).await;
    let mut grpc = WorkspaceServiceClient::new(service.channel().await);
    for i in 0..3 {
        grpc.create_workspace(authed(
            &service.token,
            CreateWorkspaceRequest {
                name: format!("On one thread {i}"),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    }
    let page = grpc
        .list_workspaces(authed(&service.token, ListWorkspacesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(page.workspaces.len() >= 3, "{page:?}");
    let starting: Vec<serde_json::Value> = service
        .logs()
        .iter()
        .filter_map(|line| serde_json::from_str(line).ok())
        .filter(|entry: &serde_json::Value| entry["message"] == "starting")
        .collect();
    assert_eq!(starting.len(), 1, "{:?}", service.logs());
    assert_eq!(starting[0]["worker_threads"], 1, "{:?}", starting[0]);

    let refused = Command::new(env!("CARGO_BIN_EXE_workspace-service"))
        .env("WORKER_THREADS", "0")
        .env("DATABASE_URL", "sqlite::memory:")
        .output()
        .expect("the binary runs");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("WORKER_THREADS"), "{stderr}");
}

/// Unset, `WORKER_THREADS` follows the CPUs the process may use: under a
/// CPU quota of one CPU (a container's limit, as in `deploy/kubernetes`),
/// one thread. The process is started in a cgroup of its own with that
/// quota; where no cgroup can be made (not root, no cgroup v1 `cpu`
/// hierarchy), the test says so and passes.
#[test]
fn unset_worker_threads_follow_a_cpu_limit() {
    use std::io::{BufRead, BufReader};
    let group = std::path::Path::new("/sys/fs/cgroup/cpu")
        .join(format!("workspace-service-test-{}", std::process::id()));
    if std::fs::create_dir(&group).is_err() {
        eprintln!("skipped: no cgroup can be made under /sys/fs/cgroup/cpu");
        return;
    }
    std::fs::write(group.join("cpu.cfs_period_us"), "100000").unwrap();
    std::fs::write(group.join("cpu.cfs_quota_us"), "100000").unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The shell moves itself into the group, then becomes the service.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"echo $$ > "$1/tasks" && exec "$2""#)
        .arg("sh")
        .arg(&group)
        .arg(env!("CARGO_BIN_EXE_workspace-service"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("limited.db").display()),
        )
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("HTTP_LISTEN_ADDR", "off")
        .env("LOG_FORMAT", "json")
        .env("SEED_DEMO", "false")
        .env_remove("WORKER_THREADS")
        .env_remove("TOKIO_WORKER_THREADS")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let starting = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(&line).ok())
        .find(|entry| entry["message"] == "starting");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir(&group);
    let starting = starting.expect("the service logs its start");
    assert_eq!(starting["worker_threads"], 1, "{starting}");
}
