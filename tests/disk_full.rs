//! SQLite on a disk that fills up and then gets space back: no create is
//! acknowledged unless it was committed, and once there is space again
//! creates succeed and health says so. The database lives on a small tmpfs
//! the test mounts itself (it needs root, as CI and this machine have).

mod common;

use std::{path::Path, process::Command};

use common::{PlanSpec, authed, named, spawn_app_at};
use tonic::Code;
use workspace_service::proto::GetWorkspaceRequest;

/// A tmpfs of `size` at `dir`, unmounted when dropped.
struct SmallDisk<'a> {
    dir: &'a Path,
}

impl<'a> SmallDisk<'a> {
    fn mount(dir: &'a Path, size: &str) -> Option<Self> {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .ok()?;
        status.success().then_some(Self { dir })
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.dir)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for SmallDisk<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_loses_no_acknowledged_create() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(dir.path(), "3m") else {
        assert!(
            std::env::var_os("REQUIRE_TEST_DATABASE").is_none(),
            "cannot mount a tmpfs for the disk-full test"
        );
        eprintln!("skipped: cannot mount a tmpfs (needs root)");
        return;
    };
    let url = format!("sqlite://{}", dir.path().join("full.db").display());
    let app = spawn_app_at(url.clone()).await;
    let org = app.organization(PlanSpec::default()).await;
    let mut client = app.client().await;
    let description = "d".repeat(1_000);

    let mut acknowledged = Vec::new();
    let mut failures = 0;
    let mut i = 0;
    // Fill the disk, then keep going a while.
    while failures < 12 && i < 20_000 {
        let mut request = named(&org, &format!("Filling {i:05}"));
        request.description = description.clone();
        match client
            .create_workspace(authed(&org.owner.token, request))
            .await
        {
            Ok(created) => acknowledged.push(created.into_inner().id),
            Err(status) => {
                assert_ne!(status.code(), Code::Ok);
                eprintln!("create {i}: {:?} {}", status.code(), status.message());
                failures += 1;
            }
        }
        i += 1;
    }
    assert!(failures > 0, "the disk never filled");

    // Space comes back: creates succeed again, on every pooled connection.
    disk.resize("64m");
    for j in 0..40 {
        let created = client
            .create_workspace(authed(
                &org.owner.token,
                named(&org, &format!("After {j:03}")),
            ))
            .await
            .unwrap_or_else(|status| panic!("create {j} after space came back: {status:?}"));
        acknowledged.push(created.into_inner().id);
    }
    app.stop().await;

    // Every acknowledged workspace is there after a restart.
    let app = spawn_app_at(url).await;
    let mut client = app.client().await;
    let mut missing = Vec::new();
    for id in &acknowledged {
        let found = client
            .get_workspace(authed(
                &org.owner.token,
                GetWorkspaceRequest { id: id.clone() },
            ))
            .await;
        if found.is_err() {
            missing.push(id.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged workspaces are missing",
        missing.len(),
        acknowledged.len()
    );
    app.stop().await;
    drop(disk);
}
