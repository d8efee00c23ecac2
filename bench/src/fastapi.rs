//! The comparison stack of issue 30 (`--fastapi PYTHON`): the same create
//! written with FastAPI, SQLAlchemy's async ORM and asyncpg
//! (`bench/fastapi/app.py`), under two uvicorn workers on the fixtures'
//! PostgreSQL database, measured with the same HTTP load as the service's
//! `POST /api/v1/workspaces` in every round.

use std::{path::Path, process::Stdio, time::Duration};

use anyhow::{Context, bail};

use crate::serving::free_addr;

/// The uvicorn processes serving the app, and where.
pub(crate) struct FastApi {
    /// uvicorn's supervisor: its workers are its children, whose CPU
    /// `Cpu::sample` counts with it.
    pub(crate) process: tokio::process::Child,
    pub(crate) pid: u32,
    pub(crate) url: String,
}

/// Starts `python -m uvicorn app:app --workers 2` on `database_url` (a
/// `postgres://` URL, given to SQLAlchemy as `postgresql+asyncpg://`), and
/// waits until it answers (60 s at most).
pub(crate) async fn start(python: &Path, database_url: &str) -> anyhow::Result<FastApi> {
    let Some(rest) = database_url.strip_prefix("postgres://") else {
        bail!("--fastapi needs a postgres:// database (its stack is asyncpg's)")
    };
    let addr = free_addr()?;
    let app_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fastapi");
    let mut process = tokio::process::Command::new(python)
        .args([
            "-m",
            "uvicorn",
            "app:app",
            "--workers",
            "2",
            "--no-access-log",
        ])
        .args(["--log-level", "warning", "--app-dir"])
        .arg(&app_dir)
        .args(["--host", "127.0.0.1", "--port"])
        .arg(addr.port().to_string())
        .env("DATABASE_URL", format!("postgresql+asyncpg://{rest}"))
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting uvicorn with {}", python.display()))?;
    let pid = process.id().context("uvicorn has a pid")?;
    let health = format!("http://{addr}/healthz");
    let client = reqwest::Client::new();
    for _ in 0..600 {
        if let Some(status) = process.try_wait()? {
            bail!(
                "uvicorn exited ({status}) before it answered: is bench/fastapi/requirements.txt installed?"
            )
        }
        if client
            .get(&health)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(FastApi {
                process,
                pid,
                url: format!("http://{addr}/api/v1/workspaces"),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the FastAPI app did not answer {health} in 60 s")
}

impl Drop for FastApi {
    /// SIGTERM, on which uvicorn stops its workers (a SIGKILL, which
    /// `kill_on_drop` sends, would leave them running), then up to 5 s for
    /// it to exit.
    fn drop(&mut self) {
        let pid = self.pid.to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        for _ in 0..50 {
            if matches!(self.process.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
