//! Whether the database can be reached, as last seen. The health monitor
//! and failing calls report it; calls consult it to fail at once with
//! UNAVAILABLE instead of waiting on a pool that keeps retrying a server
//! that is gone (sqlx retries a refused connection until its acquire
//! timeout).

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use tokio::sync::watch;

/// Shared by every clone of a `Storage`.
#[derive(Clone, Debug)]
pub struct Availability {
    up: Arc<watch::Sender<bool>>,
    probing: Arc<AtomicBool>,
    /// When the database was last found away or suspected to be: pooled
    /// connections opened before then may be dead.
    distrusted_since: Arc<Mutex<Option<Instant>>>,
}

impl Default for Availability {
    fn default() -> Self {
        Self {
            up: Arc::new(watch::Sender::new(true)),
            probing: Arc::new(AtomicBool::new(false)),
            distrusted_since: Arc::default(),
        }
    }
}

impl Availability {
    /// As last seen: `true` until a probe fails.
    pub fn is_up(&self) -> bool {
        *self.up.borrow()
    }

    pub(super) fn set(&self, up: bool) {
        if !up {
            self.distrust_connections();
        }
        self.up
            .send_if_modified(|current| std::mem::replace(current, up) != up);
    }

    /// Resolves once the database is seen to be away.
    pub async fn lost(&self) {
        self.changed_from(true).await;
    }

    /// Resolves once the state differs from `from`.
    pub async fn changed_from(&self, from: bool) {
        let mut seen = self.up.subscribe();
        let _ = seen.wait_for(|up| *up != from).await;
    }

    /// Marks every connection opened until now as possibly dead.
    pub(super) fn distrust_connections(&self) {
        *self.distrusted_since.lock().expect("not poisoned") = Some(Instant::now());
    }

    /// Whether a connection opened at `opened` is trusted: opened after
    /// the database was last found or suspected away.
    pub(super) fn trusts_connection_opened(&self, opened: Instant) -> bool {
        self.distrusted_since
            .lock()
            .expect("not poisoned")
            .is_none_or(|since| opened > since)
    }

    /// Claims the one probe that may run on behalf of failing calls;
    /// `false` when one already runs.
    pub(super) fn start_probe(&self) -> bool {
        !self.probing.swap(true, Ordering::AcqRel)
    }

    pub(super) fn end_probe(&self) {
        self.probing.store(false, Ordering::Release);
    }
}
