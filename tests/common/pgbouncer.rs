//! A private pgbouncer (Debian's package) in front of the PostgreSQL server
//! of `TEST_DATABASE_URL`, on a free port, stopped when dropped.

use super::{free_port, is_root};
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// pgbouncer's `pool_mode`.
#[derive(Debug, Clone, Copy)]
pub enum PoolMode {
    Session,
    Transaction,
}

pub struct Pgbouncer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Pgbouncer {
    /// pgbouncer forwarding every database of `server_url`'s server with
    /// `pool_size` server connections per database. `None` (skip) when
    /// pgbouncer is not installed, unless `REQUIRE_TEST_DATABASE` is set.
    pub fn start(server_url: &str, mode: PoolMode, pool_size: u32) -> Option<Self> {
        let Some(binary) = binary() else {
            if std::env::var_os("REQUIRE_TEST_DATABASE").is_some() {
                panic!("pgbouncer is not installed (Debian package pgbouncer)");
            }
            eprintln!("skipped: pgbouncer is not installed");
            return None;
        };
        let (host, port, user) = server_of(server_url);
        let listen_port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let mode = match mode {
            PoolMode::Session => "session",
            PoolMode::Transaction => "transaction",
        };
        // No `ignore_startup_parameters`: the service must not need it.
        let config = format!(
            "[databases]\n\
             * = host={host} port={port} user={user}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {listen_port}\n\
             unix_socket_dir =\n\
             auth_type = any\n\
             pool_mode = {mode}\n\
             default_pool_size = {pool_size}\n\
             max_client_conn = 500\n\
             logfile = {log}\n",
            log = dir.path().join("pgbouncer.log").display(),
        );
        let ini = dir.path().join("pgbouncer.ini");
        std::fs::write(&ini, config).unwrap();
        let mut command = Command::new(binary);
        // pgbouncer refuses to run as root; it switches to another user.
        if is_root() {
            open_to_all(dir.path());
            command.args(["-u", "nobody"]);
        }
        let child = command
            .arg(&ini)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pgbouncer starts");
        let bouncer = Self {
            child,
            port: listen_port,
            dir,
        };
        bouncer.wait_until_listening();
        Some(bouncer)
    }

    /// `url` (on the server this pooler fronts) with host and port this
    /// pooler's.
    pub fn url_for(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("a URL");
        let (userinfo, rest) = rest.rsplit_once('@').map_or(("", rest), |(u, r)| (u, r));
        let path = rest.find(['/', '?']).map_or("", |i| &rest[i..]);
        let at = if userinfo.is_empty() { "" } else { "@" };
        format!("{scheme}://{userinfo}{at}127.0.0.1:{}{path}", self.port)
    }

    /// What pgbouncer logged, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pgbouncer.log")).unwrap_or_default()
    }

    fn wait_until_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "pgbouncer did not listen: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Pgbouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary() -> Option<PathBuf> {
    ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
}

/// Host, port and user of a `postgres://` URL.
fn server_of(url: &str) -> (String, u16, String) {
    let rest = url.split_once("://").expect("a URL").1;
    let (userinfo, rest) = rest.rsplit_once('@').unwrap_or(("postgres", rest));
    let user = userinfo.split(':').next().unwrap().to_owned();
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let (host, port) = authority
        .rsplit_once(':')
        .map_or((authority, 5432), |(h, p)| (h, p.parse().unwrap()));
    (host.to_owned(), port, user)
}

/// Lets the user pgbouncer switches to read its configuration and write
/// its log.
fn open_to_all(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
}
