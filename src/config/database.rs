//! Which database, through which pooler, with how many connections.

use std::{fmt, time::Duration};

use clap::Args;
use secrecy::{ExposeSecret, SecretString};

use crate::storage::{Pooler, mask_url};

/// The embedded default: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://workspace-service.db";

/// A database URL. Printed with its password masked.
#[derive(Clone)]
pub struct DatabaseUrl(SecretString);

impl DatabaseUrl {
    /// The URL itself, password included: for connecting only.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn is_sqlite(&self) -> bool {
        self.expose().starts_with("sqlite:")
    }

    /// The URL with its password masked, for logs and errors.
    pub fn masked(&self) -> String {
        mask_url(self.expose())
    }
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        Self(url.into())
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        Ok(Self(url.into()))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[derive(Clone, Debug, Args)]
pub struct DatabaseSettings {
    /// `sqlite://FILE` (created when missing) or `postgres://…`.
    #[arg(long = "database-url", env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    pub url: DatabaseUrl,

    /// Largest number of database connections per replica.
    #[arg(
        long = "database-max-connections",
        env = "DATABASE_MAX_CONNECTIONS",
        default_value_t = 10,
        global = true
    )]
    pub max_connections: u32,

    /// What sits between the service and PostgreSQL: `none`, a pooler in
    /// `session` mode, or one in `transaction` mode (pgbouncer's
    /// `pool_mode`). See "Behind a connection pooler" in the README.
    #[arg(
        long = "database-pooler",
        env = "DATABASE_POOLER",
        value_enum,
        default_value_t = Pooler::None,
        global = true
    )]
    pub pooler: Pooler,

    /// How often the database is pinged for the health service, in
    /// milliseconds.
    #[arg(
        long,
        env = "HEALTH_CHECK_INTERVAL_MS",
        default_value_t = 2_000,
        global = true
    )]
    pub health_check_interval_ms: u64,
}

impl DatabaseSettings {
    pub fn health_check_interval(&self) -> Duration {
        Duration::from_millis(self.health_check_interval_ms.max(100))
    }
}
