//! The health check's own PostgreSQL connection.

use std::time::Duration;

use sea_orm::sqlx::{
    self,
    postgres::{PgConnectOptions, PgConnection},
};

use super::connection::redact;

/// How long a probe may take before the database counts as away.
pub(super) const PROBE_LIMIT: Duration = Duration::from_secs(1);

/// The health check's own PostgreSQL connection, opened on the first probe
/// and again after one fails. It is one of DATABASE_MAX_CONNECTIONS (the
/// pool holds one fewer), so that behind a pooler sized to that number it
/// never waits in the pooler's queue behind the pool's connections, and a
/// busy pool is never taken for an outage.
#[derive(Debug)]
pub(super) struct Probe {
    /// For redacting errors.
    pub(super) url: String,
    pub(super) options: PgConnectOptions,
    pub(super) connection: tokio::sync::Mutex<Option<PgConnection>>,
    /// Why the last attempt failed, for the logs.
    pub(super) last_failure: std::sync::Mutex<Option<String>>,
}

impl Probe {
    /// Pings the kept connection, or a new one when there is none or it
    /// stopped answering.
    pub(super) async fn ping(&self) -> Result<(), sqlx::Error> {
        use sqlx::Connection;
        let mut kept = self.connection.lock().await;
        if let Some(mut conn) = kept.take()
            && conn.ping().await.is_ok()
        {
            *kept = Some(conn);
            return Ok(());
        }
        let mut conn = PgConnection::connect_with(&self.options).await?;
        conn.ping().await?;
        *kept = Some(conn);
        Ok(())
    }

    pub(super) fn record(&self, failure: Option<String>) {
        *self.last_failure.lock().expect("not poisoned") = failure;
    }

    pub(super) fn last_failure(&self) -> Option<String> {
        self.last_failure.lock().expect("not poisoned").clone()
    }
}

impl Probe {
    /// Whether PostgreSQL answers over the probe's own connection within
    /// `PROBE_LIMIT`; why not is kept for the logs.
    pub(super) async fn answers(&self) -> bool {
        match tokio::time::timeout(PROBE_LIMIT, self.ping()).await {
            Ok(Ok(())) => {
                self.record(None);
                true
            }
            Ok(Err(err)) => {
                self.record(Some(redact(&err.to_string(), &self.url)));
                false
            }
            Err(_) => {
                self.record(Some(format!("no answer within {PROBE_LIMIT:?}")));
                false
            }
        }
    }

    /// Closes the probe's connection, if one is open.
    pub(super) async fn close(&self) {
        if let Some(conn) = self.connection.lock().await.take() {
            use sqlx::Connection;
            let _ = conn.close().await;
        }
    }
}
