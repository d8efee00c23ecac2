//! What telemetry reads of the database: span attributes, pool use.

use sea_orm::{ConnectionTrait, DbBackend};

use super::connection::Db;

/// The PostgreSQL server and database (`server.address`, `server.port`,
/// `db.namespace`); empty for SQLite.
#[derive(Debug, Default)]
pub(super) struct Server {
    pub(super) address: Option<String>,
    pub(super) port: Option<u16>,
    pub(super) database: Option<String>,
}

/// Connections of the pool: open and idle, open and in use, the most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub idle: u32,
    pub used: u32,
    pub max: u32,
}

/// How the connection pool of `db` is used right now.
pub(super) fn pool_stats(db: &Db) -> PoolStats {
    let (size, idle, max) = match db.get_database_backend() {
        DbBackend::Postgres => {
            let pool = db.pool().get_postgres_connection_pool();
            (
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            )
        }
        _ => {
            let pool = db.pool().get_sqlite_connection_pool();
            (
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            )
        }
    };
    let idle = u32::try_from(idle).unwrap_or(u32::MAX).min(size);
    PoolStats {
        idle,
        used: size - idle,
        max,
    }
}
