//! CPU time and memory, read from /proc.

use std::time::Duration;

/// CPU time used, from /proc: by the server process, and by PostgreSQL's
/// processes (every live `postgres` process, plus what the postmaster's
/// exited backends used, as pgbench's backends exit before it is read).
/// Other work on the machine's PostgreSQL counts too: it is shared.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Cpu {
    pub(crate) server: Duration,
    pub(crate) database: Duration,
    /// This process: the load, or the bare-driver loop on SQLite.
    pub(crate) client: Duration,
}

impl Cpu {
    /// The counters now. The server's include its live children's (the
    /// FastAPI stack's uvicorn workers; the service has none).
    ///
    /// A backend that exits while /proc is read (pgbench's, as pgbench
    /// ends) is in neither sum when its postmaster, read before it, reaps
    /// it before the read reaches it: right after pgbench exited, up to a
    /// third of its run's PostgreSQL CPU went missing that way. So /proc is
    /// read again until no postmaster's reaped children's time moved while
    /// it was read.
    pub(crate) fn sample(server: u32) -> Cpu {
        let mut read = Self::read(server);
        for _ in 0..50 {
            if read.postmasters_still_at() {
                break;
            }
            read = Self::read(server);
        }
        read.cpu
    }

    /// One pass over /proc.
    fn read(server: u32) -> Read {
        let mut database = 0;
        let mut children = 0;
        let mut postmasters = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(stat) = proc_stat(&entry.path().join("stat")) else {
                continue;
            };
            if stat.parent == server {
                children += stat.own;
            }
            if stat.comm == "postgres" {
                database += stat.own;
                if stat.parent_is_not_postgres() {
                    database += stat.children;
                    postmasters.push((entry.path().join("stat"), stat.children));
                }
            }
        }
        let server = proc_stat(std::path::Path::new(&format!("/proc/{server}/stat")))
            .map_or(0, |stat| stat.own)
            + children;
        let client = proc_stat(std::path::Path::new("/proc/self/stat")).map_or(0, |stat| stat.own);
        Read {
            cpu: Cpu {
                server: ticks(server),
                database: ticks(database),
                client: ticks(client),
            },
            postmasters,
        }
    }

    /// What was used between `before` and now.
    pub(crate) fn since(before: Cpu, server: u32) -> Cpu {
        let now = Cpu::sample(server);
        Cpu {
            server: now.server.saturating_sub(before.server),
            database: now.database.saturating_sub(before.database),
            client: now.client.saturating_sub(before.client),
        }
    }
}

/// One pass over /proc, with each postmaster's reaped children's time as
/// it was read.
struct Read {
    cpu: Cpu,
    postmasters: Vec<(std::path::PathBuf, u64)>,
}

impl Read {
    /// No postmaster reaped a backend since this pass read it.
    fn postmasters_still_at(&self) -> bool {
        self.postmasters
            .iter()
            .all(|(path, children)| proc_stat(path).is_none_or(|stat| stat.children == *children))
    }
}

/// Linux reports CPU time in USER_HZ ticks, 100 per second.
pub(crate) fn ticks(count: u64) -> Duration {
    Duration::from_millis(count * 10)
}

pub(crate) struct ProcStat {
    pub(crate) comm: String,
    pub(crate) parent: u32,
    /// utime + stime.
    pub(crate) own: u64,
    /// cutime + cstime: reaped children.
    pub(crate) children: u64,
}

impl ProcStat {
    pub(crate) fn parent_is_not_postgres(&self) -> bool {
        proc_stat(std::path::Path::new(&format!("/proc/{}/stat", self.parent)))
            .is_none_or(|parent| parent.comm != "postgres")
    }
}

pub(crate) fn proc_stat(path: &std::path::Path) -> Option<ProcStat> {
    let text = std::fs::read_to_string(path).ok()?;
    let (open, close) = (text.find('(')?, text.rfind(')')?);
    let comm = text[open + 1..close].to_owned();
    // Fields after the command: state (3), ppid (4), … utime (14),
    // stime (15), cutime (16), cstime (17).
    let fields: Vec<u64> = text[close + 2..]
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let field = |n: usize| fields.get(n - 4).copied().unwrap_or(0);
    Some(ProcStat {
        comm,
        parent: field(4) as u32,
        own: field(14) + field(15),
        children: field(16) + field(17),
    })
}

/// VmHWM of a process, in KiB (Linux).
pub(crate) fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
