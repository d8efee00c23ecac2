//! The service as a separate process, started as an operator would: the
//! built binary on a SQLite file of its own with the demo seeded, JSON logs
//! on stderr, ports picked by the kernel and read back from those logs.

use std::{
    net::SocketAddr,
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    sync::watch,
};
use tonic::transport::Channel;

/// A running `workspace-service` process.
pub struct ServiceProcess {
    child: Child,
    pub addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// The demo owner's API token (printed on stdout at start); empty
    /// when `SEED_DEMO=false`.
    pub token: String,
    pub database_url: String,
    logs: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

/// What the process has said so far that the harness waits for.
#[derive(Clone, Default)]
struct Started {
    addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    token: Option<String>,
}

impl ServiceProcess {
    /// Starts the binary with `env` on top of the harness' settings, and
    /// waits until it serves.
    pub async fn start(env: &[(&str, &str)]) -> Self {
        let seeded = !env.contains(&("SEED_DEMO", "false"));
        let dir = tempfile::tempdir().unwrap();
        let database_url = format!("sqlite://{}", dir.path().join("service.db").display());
        let mut child = Command::new(env!("CARGO_BIN_EXE_workspace-service"))
            .env("DATABASE_URL", &database_url)
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env("HTTP_LISTEN_ADDR", "127.0.0.1:0")
            .env("LOG_FORMAT", "json")
            .env("SEED_DEMO", "true")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the service binary starts");

        let (report, mut started) = watch::channel(Started::default());
        let report = Arc::new(report);
        let logs = Arc::new(Mutex::new(Vec::new()));
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let (stderr_report, stderr_logs) = (report.clone(), logs.clone());
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                if let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) {
                    let addr = entry["addr"].as_str().and_then(|a| a.parse().ok());
                    match entry["message"].as_str() {
                        Some("serving gRPC") => stderr_report.send_modify(|s| s.addr = addr),
                        Some("serving JSON/HTTP") => {
                            stderr_report.send_modify(|s| s.http_addr = addr)
                        }
                        _ => {}
                    }
                }
                stderr_logs.lock().unwrap().push(line);
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stdout.next_line().await {
                if let Some(token) = line
                    .split("Bearer ")
                    .nth(1)
                    .and_then(|rest| rest.split('\'').next())
                {
                    let token = token.to_owned();
                    report.send_modify(|s| s.token = Some(token));
                }
            }
        });

        let ready = tokio::time::timeout(
            Duration::from_secs(60),
            started.wait_for(|s| {
                s.addr.is_some() && s.http_addr.is_some() && (s.token.is_some() || !seeded)
            }),
        )
        .await;
        let Ok(Ok(state)) = ready else {
            panic!(
                "the service did not start; its logs:\n{}",
                logs.lock().unwrap().join("\n")
            );
        };
        let state = state.clone();
        Self {
            child,
            addr: state.addr.unwrap(),
            http_addr: state.http_addr.unwrap(),
            token: state.token.unwrap_or_default(),
            database_url,
            logs,
            _dir: dir,
        }
    }

    pub async fn channel(&self) -> Channel {
        super::connect(self.addr).await
    }

    /// The JSON log lines written so far.
    /// The process' resident memory, from /proc, in bytes.
    pub fn rss_bytes(&self) -> u64 {
        let pid = self.child.id().expect("the process runs");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status");
        kib * 1024
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Kills the process at once (SIGKILL): no shutdown, no flush.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("the process is killed");
    }

    /// Sends SIGTERM, as Kubernetes does to stop a pod.
    pub fn terminate(&self) {
        let pid = self.child.id().expect("the process runs").to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM {pid}");
    }

    /// Waits for the process to exit, at most `limit`.
    pub async fn exit_status(&mut self, limit: Duration) -> ExitStatus {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => panic!(
                "the service did not exit within {limit:?}; its logs:\n{}",
                self.logs().join("\n")
            ),
        }
    }
}
