//! The harness every black-box test uses: `spawn_app` starts the real
//! service on 127.0.0.1:0 over a fresh database of its own (a SQLite file in
//! a temporary directory, or a new PostgreSQL database when
//! `TEST_DATABASE_URL` is set), plus fixtures made through the admin code.

#![allow(dead_code)] // Each test file uses a different part.

pub mod http;
pub mod nats;
mod own_postgres;
pub mod pgbouncer;
mod ports;
pub mod process;

#[allow(unused_imports)]
pub use own_postgres::OwnPostgres;
#[allow(unused_imports)]
pub use ports::free_port;

use std::{future::Future, net::SocketAddr, time::Duration};

use tokio::sync::oneshot;
use tonic::{Code, Request, Status, metadata::MetadataValue, transport::Channel};
use tonic_types::StatusExt;
use uuid::Uuid;
use workspace_service::{
    config::Settings,
    domain::{CredentialsKind, OrganizationRole, Reason, WorkspaceCreationPolicy, WorkspaceRole},
    proto::{CreateWorkspaceRequest, Workspace, workspace_service_client::WorkspaceServiceClient},
    startup::Application,
    storage::{
        Storage,
        entities::{organization, workspace, workspace_membership},
    },
};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn(Backend)` once on SQLite and once on
/// PostgreSQL, as `<name>::sqlite` and `<name>::postgres`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                use super::common::Backend;

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    super::$name(Backend::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    super::$name(Backend::Postgres).await
                }
            }
        )+
    };
}

/// A running service and what a test needs to talk to it.
pub struct TestApp {
    pub addr: SocketAddr,
    /// The JSON/HTTP mapping's address.
    pub http_addr: Option<SocketAddr>,
    pub storage: Storage,
    pub backend: Backend,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _sqlite_dir: Option<tempfile::TempDir>,
    postgres: Option<FreshPostgres>,
}

/// `spawn_app_with` with default settings.
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

/// Starts the service on a fresh database, with `tweak` applied to the
/// default settings. `None` (the test is skipped) only for PostgreSQL when
/// `TEST_DATABASE_URL` is not set and `REQUIRE_TEST_DATABASE` is not either.
pub async fn spawn_app_with(
    backend: Backend,
    tweak: impl FnOnce(&mut Settings),
) -> Option<TestApp> {
    let mut settings = Settings::default();
    settings.server.listen_addr = "127.0.0.1:0".parse().unwrap();
    settings.server.http_listen_addr = "127.0.0.1:0".into();
    settings.server.seed_demo = Some(false);
    settings.database.health_check_interval_ms = 200;
    let (sqlite_dir, postgres) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            settings.database.url =
                format!("sqlite://{}", dir.path().join("test.db").display()).into();
            (Some(dir), None)
        }
        Backend::Postgres => {
            let postgres = FreshPostgres::create().await?;
            settings.database.url = postgres.url.clone().into();
            (None, Some(postgres))
        }
    };
    tweak(&mut settings);
    let app = Application::build(settings)
        .await
        .expect("the application starts");
    let addr = app.local_addr();
    let http_addr = app.http_addr();
    let storage = app.storage().clone();
    let (shutdown, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stop.await;
    }));
    Some(TestApp {
        addr,
        http_addr,
        storage,
        backend,
        shutdown: Some(shutdown),
        server: Some(server),
        _sqlite_dir: sqlite_dir,
        postgres,
    })
}

/// A plaintext channel to the server at `addr`.
pub async fn connect(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("the test server accepts connections")
}

/// Starts the service on a database the test made itself.
pub async fn spawn_app_at(database_url: String) -> TestApp {
    spawn_app_with(Backend::Sqlite, |s| s.database.url = database_url.into())
        .await
        .expect("a SQLite app always starts")
}

impl TestApp {
    /// A client connected to the service.
    pub async fn client(&self) -> WorkspaceServiceClient<Channel> {
        WorkspaceServiceClient::new(self.channel().await)
    }

    pub async fn channel(&self) -> Channel {
        connect(self.addr).await
    }

    /// Holds the organization's row (PostgreSQL) or the write lock
    /// (SQLite) until the transaction ends, so creates in it wait inside
    /// the database: slow calls on demand.
    pub async fn hold_organization(&self, organization_id: Uuid) -> sea_orm::DatabaseTransaction {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait, sea_query::Expr};
        use workspace_service::storage::entities::organization;
        let blocker = self.storage.connection().begin().await.unwrap();
        organization::Entity::update_many()
            .col_expr(
                organization::Column::WorkspaceCount,
                Expr::col(organization::Column::WorkspaceCount),
            )
            .filter(organization::Column::Id.eq(organization_id))
            .exec(&blocker)
            .await
            .unwrap();
        blocker
    }

    /// Sends the shutdown signal (like SIGTERM) without waiting.
    pub fn signal_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }

    /// A plan, an organization on it and its validated OWNER with an API
    /// token.
    pub async fn organization(&self, plan: PlanSpec) -> Org {
        let suffix = Uuid::new_v4().simple().to_string();
        let plan_id = self
            .storage
            .create_plan(
                &format!("plan-{suffix}"),
                plan.creation_allowed,
                plan.workspace_limit,
            )
            .await
            .unwrap();
        let slug = format!("org-{suffix}");
        let id = self
            .storage
            .create_organization(&format!("Org {suffix}"), &slug, plan_id, plan.policy)
            .await
            .unwrap();
        let owner = self.member(id, OrganizationRole::Owner).await;
        Org {
            id,
            slug,
            plan_id,
            owner,
        }
    }

    /// A new validated user with an API token, not in any organization.
    pub async fn user(&self) -> User {
        self.user_validated(true).await
    }

    pub async fn user_validated(&self, validated: bool) -> User {
        let email = format!("{}@example.test", Uuid::new_v4().simple());
        let id = self
            .storage
            .create_user(&email, "Test User", validated)
            .await
            .unwrap();
        let token =
            workspace_service::auth::issue::create_api_token(&self.storage, id, "test", None, None)
                .await
                .unwrap()
                .token;
        User { id, email, token }
    }

    /// A new validated user, member of `organization_id` with `role`.
    pub async fn member(&self, organization_id: Uuid, role: OrganizationRole) -> User {
        let user = self.user().await;
        self.storage
            .put_organization_member(organization_id, user.id, role)
            .await
            .unwrap();
        user
    }

    pub async fn credentials(&self, organization_id: Uuid, kind: CredentialsKind) -> Uuid {
        self.storage
            .create_credentials(
                organization_id,
                kind,
                &format!("creds-{}", Uuid::new_v4().simple()),
            )
            .await
            .unwrap()
    }

    /// CreateWorkspace as `token`'s user.
    pub async fn create(
        &self,
        token: &str,
        request: CreateWorkspaceRequest,
    ) -> Result<Workspace, Status> {
        self.client()
            .await
            .create_workspace(authed(token, request))
            .await
            .map(|r| r.into_inner())
    }

    /// CreateWorkspace of `name` in `org` as its owner; must succeed.
    pub async fn create_named(&self, org: &Org, name: &str) -> Workspace {
        self.create(&org.owner.token, named(org, name))
            .await
            .unwrap_or_else(|status| panic!("creating {name:?} failed: {status:?}"))
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// What the organization's plan and policy allow.
#[derive(Debug, Clone, Copy)]
pub struct PlanSpec {
    pub creation_allowed: bool,
    pub workspace_limit: Option<i32>,
    pub policy: WorkspaceCreationPolicy,
}

impl Default for PlanSpec {
    fn default() -> Self {
        Self {
            creation_allowed: true,
            workspace_limit: None,
            policy: WorkspaceCreationPolicy::RoleBased,
        }
    }
}

impl PlanSpec {
    /// Creation allowed, role-based policy, at most `limit` workspaces.
    pub fn with_limit(limit: i32) -> Self {
        Self {
            workspace_limit: Some(limit),
            ..Self::default()
        }
    }
}

#[derive(Clone)]
pub struct Org {
    pub id: Uuid,
    pub slug: String,
    pub plan_id: Uuid,
    pub owner: User,
}

#[derive(Clone)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub token: String,
}

/// A request with `authorization: Bearer <token>`.
pub fn authed<T>(token: &str, message: T) -> Request<T> {
    with_header(message, "authorization", &format!("Bearer {token}"))
}

pub fn with_header<T>(message: T, name: &'static str, value: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert(name, MetadataValue::try_from(value).unwrap());
    request
}

/// A CreateWorkspaceRequest for `name` in `org`.
pub fn named(org: &Org, name: &str) -> CreateWorkspaceRequest {
    CreateWorkspaceRequest {
        organization_id: org.id.to_string(),
        name: name.to_owned(),
        ..Default::default()
    }
}

/// Asserts the status's code and `ErrorInfo.reason` (domain `workspace.v1`).
#[track_caller]
pub fn assert_error<T: std::fmt::Debug>(
    result: Result<T, Status>,
    code: Code,
    reason: Reason,
) -> Status {
    let status = match result {
        Ok(value) => panic!("expected {code:?}/{reason}, got success: {value:?}"),
        Err(status) => status,
    };
    assert_eq!(status.code(), code, "unexpected status: {status:?}");
    let details = status.get_error_details();
    let info = details
        .error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.reason, reason, "unexpected reason: {status:?}");
    assert_eq!(info.domain, "workspace.v1");
    status
}

/// The `ErrorInfo.reason` of `status`; "" when it has none.
pub fn reason_of(status: &Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

/// `TEST_DATABASE_URL`: `None` (the test is skipped) when it is not set,
/// unless `REQUIRE_TEST_DATABASE` is.
pub fn test_database_url() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var_os("REQUIRE_TEST_DATABASE").is_some() => {
            panic!("REQUIRE_TEST_DATABASE is set but TEST_DATABASE_URL is not")
        }
        Err(_) => {
            eprintln!("skipped: TEST_DATABASE_URL is not set");
            None
        }
    }
}

/// Whether the tests run as root: PostgreSQL and pgbouncer refuse to, and
/// are started as another user.
pub fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// The workspaces of `org`, after asserting that none is half written:
/// each has exactly one OWNER membership, its creator's (the owner's),
/// and the organization's counter matches their number.
pub async fn assert_whole(storage: &Storage, org: &Org) -> Vec<workspace::Model> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let db = storage.connection();
    let workspaces = workspace::Entity::find()
        .filter(workspace::Column::OrganizationId.eq(org.id))
        .all(db)
        .await
        .unwrap();
    for stored in &workspaces {
        let owners = workspace_membership::Entity::find()
            .filter(workspace_membership::Column::WorkspaceId.eq(stored.id))
            .filter(workspace_membership::Column::Role.eq(WorkspaceRole::Owner.as_str()))
            .all(db)
            .await
            .unwrap();
        assert_eq!(owners.len(), 1, "{:?} has no OWNER membership", stored.name);
        assert_eq!(owners[0].user_id, org.owner.id);
    }
    let counter = organization::Entity::find_by_id(org.id)
        .one(db)
        .await
        .unwrap()
        .unwrap()
        .workspace_count;
    assert_eq!(counter as usize, workspaces.len(), "the counter drifted");
    workspaces
}

/// Runs `count` copies of `make(i)` at once and collects the results.
pub async fn concurrently<F, Fut, T>(count: usize, make: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = (0..count).map(|i| tokio::spawn(make(i))).collect();
    let mut results = Vec::with_capacity(count);
    for handle in handles {
        results.push(handle.await.unwrap());
    }
    results
}

/// A database of its own on the PostgreSQL server of `TEST_DATABASE_URL`,
/// dropped (with its connections) when the test ends.
pub struct FreshPostgres {
    admin_url: String,
    name: String,
    pub url: String,
}

impl FreshPostgres {
    /// An empty database; `None` (skip) as for `spawn_app`.
    pub async fn create() -> Option<Self> {
        let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
            if std::env::var_os("REQUIRE_TEST_DATABASE").is_some() {
                panic!("REQUIRE_TEST_DATABASE is set but TEST_DATABASE_URL is not");
            }
            eprintln!("skipped: TEST_DATABASE_URL is not set");
            return None;
        };
        let name = format!("wstest_{}", Uuid::new_v4().simple());
        execute(&admin_url, &format!("CREATE DATABASE \"{name}\"")).await;
        let url = with_database(&admin_url, &name);
        Some(Self {
            admin_url,
            name,
            url,
        })
    }
}

impl Drop for FreshPostgres {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        // Drop runs inside the test's runtime; a thread of its own may block.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(execute(&admin_url, &sql));
        })
        .join();
    }
}

async fn execute(url: &str, sql: &str) {
    use sea_orm::sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};
    let mut conn = PgConnection::connect(url)
        .await
        .expect("TEST_DATABASE_URL accepts connections");
    // Test-made statements (a generated database name), not user input.
    conn.execute(AssertSqlSafe(sql.to_owned()))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = conn.close().await;
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let base = match base[after_scheme..].find('/') {
        Some(slash) => &base[..after_scheme + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}
