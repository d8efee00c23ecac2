//! CPU time in nanoseconds from /proc/…/schedstat (its first field: time
//! on a CPU), finer than /proc/…/stat's 10 ms ticks, which at a few
//! hundred microseconds a call would need thousands of calls.
//!
//! - The server: the sum over its threads (`/proc/PID/task/*`); a thread
//!   that exits takes its time with it (tokio's workers do not).
//! - This database's PostgreSQL: every `postgres` process whose title
//!   names the database (its backends, an autovacuum worker on it): the
//!   shared server's other databases and its background processes
//!   (checkpointer, WAL writer), which others' work keeps busy too, left
//!   out. A backend that exits takes its time with it (the server's pool
//!   keeps its connections).
//! - All of PostgreSQL: every `postgres` process, the background ones
//!   included, and so whatever else the shared server runs at the time
//!   (less what exits during the interval).

use std::{collections::HashMap, path::Path, time::Duration};

/// CPU used over an interval.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu {
    pub server: Duration,
    pub database: Duration,
    pub all_postgres: Duration,
}

/// The counters at one moment.
pub struct Sample {
    server: Duration,
    /// Each `postgres` process: its time, and whether it is the database's.
    postgres: HashMap<u32, (Duration, bool)>,
}

impl Sample {
    /// The server `pid`, and PostgreSQL's processes, `database`'s marked
    /// (none on SQLite).
    pub fn now(pid: u32, database: Option<&str>) -> Sample {
        let mut sample = Sample {
            server: threads(pid),
            postgres: HashMap::new(),
        };
        let Some(database) = database else {
            return sample;
        };
        let marker = format!(" {database} ");
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(process) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            let path = entry.path();
            let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            if comm.trim_end() != "postgres" {
                continue;
            }
            let title = std::fs::read(path.join("cmdline")).unwrap_or_default();
            let ours = String::from_utf8_lossy(&title).contains(&marker);
            sample.postgres.insert(process, (schedstat(&path), ours));
        }
        sample
    }

    /// What was used between this sample and a `later` one: a process
    /// that started since counts whole, one that exited not at all.
    pub fn until(&self, later: &Sample) -> Cpu {
        let mut cpu = Cpu {
            server: later.server.saturating_sub(self.server),
            ..Cpu::default()
        };
        for (process, &(time, ours)) in &later.postgres {
            let before = self.postgres.get(process).map_or(Duration::ZERO, |p| p.0);
            let used = time.saturating_sub(before);
            cpu.all_postgres += used;
            if ours {
                cpu.database += used;
            }
        }
        cpu
    }
}
fn threads(pid: u32) -> Duration {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|task| schedstat(&task.path()))
        .sum()
}

fn schedstat(process: &Path) -> Duration {
    let text = std::fs::read_to_string(process.join("schedstat")).unwrap_or_default();
    let nanos = text
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(nanos)
}
