//! SQLite's turn to write, and the connection creates write on.

use sea_orm::{
    DatabaseConnection, DbErr,
    sqlx::{ConnectOptions, Connection, SqliteConnection},
};

use super::connection::from_sqlx;

/// SQLite's turn to write (`Storage::write_turn`): every writer of the
/// process waits for it, in the order they came. It keeps the connection
/// creates write on (`create::sqlite`), opened at the first create with
/// the pool's options, outside the pool (counted in
/// `DATABASE_MAX_CONNECTIONS`).
#[derive(Debug, Default)]
pub(crate) struct Writer {
    /// Taken out for a create, put back when it is outside any
    /// transaction.
    pub(super) conn: Option<SqliteConnection>,
}

impl Writer {
    /// A connection for creates, with `pool`'s options.
    pub(super) async fn open(pool: &DatabaseConnection) -> Result<SqliteConnection, DbErr> {
        pool.get_sqlite_connection_pool()
            .connect_options()
            .connect()
            .await
            .map_err(from_sqlx)
    }

    /// Closes the creates' connection, if one is open.
    pub(super) async fn close(&mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = conn.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::storage::Storage;

    /// README: on SQLite, DATABASE_MAX_CONNECTIONS is a pool of one less
    /// and the creates' writer.
    #[tokio::test]
    async fn the_writer_counts_toward_the_maximum() {
        let (storage, _dir) = Storage::temporary(10).await;
        assert_eq!(storage.pool_stats().max, 9);
        storage.close().await.unwrap();
    }
}
