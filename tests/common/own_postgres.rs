//! A PostgreSQL server of the test's own: initdb into a temporary
//! directory, pg_ctl on a free port. For tests that stop, break or
//! configure a server; never the machine's shared one.

use super::{free_port, is_root};
use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// A throwaway PostgreSQL server, stopped when dropped.
pub struct OwnPostgres {
    options: Vec<String>,
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort();
    found.pop()
}

/// Runs a PostgreSQL tool, as the `postgres` user when we are root
/// (initdb and postgres refuse to run as root).
fn run(bin: &Path, tool: &str, args: &[&str]) {
    let program = bin.join(tool);
    let output = if is_root() {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(&program)
            .args(args)
            .output()
    } else {
        Command::new(&program).args(args).output()
    }
    .unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert!(
        output.status.success(),
        "{tool} {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl OwnPostgres {
    pub fn start_new() -> Option<Self> {
        Self::start_with(&[])
    }

    /// A new server with extra `postgres` options, such as
    /// `["-c", "shared_preload_libraries=pg_stat_statements"]`.
    pub fn start_with(options: &[&str]) -> Option<Self> {
        let Some(bin) = postgres_bin() else {
            assert!(
                std::env::var_os("REQUIRE_TEST_DATABASE").is_none(),
                "PostgreSQL binaries are missing under /usr/lib/postgresql"
            );
            eprintln!("skipped: no PostgreSQL binaries under /usr/lib/postgresql");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let data = dir.path().join("data");
        run(
            &bin,
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        let port = free_port();
        let server = Self {
            options: options.iter().map(|o| (*o).to_owned()).collect(),
            bin,
            data,
            port,
            _dir: dir,
        };
        server.start();
        Some(server)
    }

    pub fn start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off {}",
            self.port,
            self.data.parent().unwrap().display(),
            self.options.join(" ")
        );
        let log = self.data.parent().unwrap().join("postgres.log");
        run(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
    }

    pub fn stop(&self) {
        run(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    /// Freezes the server (SIGSTOP to the postmaster and every backend):
    /// connections stay open and nothing answers, as a hung host does.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws what `pause` froze.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid_file = std::fs::read_to_string(self.data.join("postmaster.pid")).unwrap();
        let postmaster = pid_file.lines().next().unwrap().trim().to_owned();
        let children = Command::new("pgrep")
            .args(["-P", &postmaster])
            .output()
            .unwrap();
        let mut pids = vec![postmaster];
        pids.extend(
            String::from_utf8_lossy(&children.stdout)
                .lines()
                .map(|pid| pid.trim().to_owned()),
        );
        let status = Command::new("kill")
            .arg(signal)
            .args(&pids)
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} {pids:?}");
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let data = self.data.to_str().unwrap().to_owned();
        let args = ["-D", data.as_str(), "-m", "immediate", "stop"];
        let _ = if is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&pg_ctl)
                .args(args)
                .output()
        } else {
            Command::new(&pg_ctl).args(args).output()
        };
    }
}
