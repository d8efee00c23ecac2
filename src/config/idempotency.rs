//! How long CreateWorkspace's request_ids are honoured, and how their
//! records are purged after that.

use std::time::Duration;

use anyhow::bail;
use clap::Args;

use super::units::HumanDuration;

/// The retry window of `request_id` (AIP-155 lets an API choose any
/// reasonable one) and the purge of the records past it.
#[derive(Clone, Debug, Args)]
pub struct IdempotencySettings {
    /// How long a CreateWorkspace's `request_id` is remembered: a retry
    /// within it answers the first call's workspace. Its record is deleted
    /// after that (within `IDEMPOTENCY_PURGE_INTERVAL`), and a retry is
    /// then a new create. `7d`, `36h`, `90m`.
    #[arg(
        long,
        env = "IDEMPOTENCY_RETENTION",
        default_value = "7d",
        global = true
    )]
    pub retention: HumanDuration,

    /// How often records past `IDEMPOTENCY_RETENTION` are looked for and
    /// deleted.
    #[arg(
        long,
        env = "IDEMPOTENCY_PURGE_INTERVAL",
        default_value = "1m",
        global = true
    )]
    pub purge_interval: HumanDuration,

    /// Most records one purge statement deletes; a purge repeats its
    /// statement while they come back full, other writers going between
    /// (on SQLite each holds the write lock for the batch only).
    #[arg(
        long,
        env = "IDEMPOTENCY_PURGE_BATCH",
        default_value_t = 50,
        global = true
    )]
    pub purge_batch: u64,
}

impl IdempotencySettings {
    /// The window as chrono reads it (at most a century).
    pub fn retention(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.retention.0).unwrap_or(chrono::Duration::days(36_500))
    }

    /// The pause between two purges (at least 10 ms).
    pub fn purge_interval(&self) -> Duration {
        self.purge_interval.0.max(Duration::from_millis(10))
    }

    /// A window of 0 (every retry a new create) or an empty batch (a purge
    /// that never ends) is refused at start.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.retention.0.is_zero() {
            bail!("IDEMPOTENCY_RETENTION must be more than 0: no retry would find its request_id");
        }
        if self.purge_batch == 0 {
            bail!("IDEMPOTENCY_PURGE_BATCH must be at least 1");
        }
        Ok(())
    }
}
