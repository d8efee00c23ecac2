//! The end of an idempotency record: CreateWorkspace remembers a caller's
//! request_id for a retry window (`IDEMPOTENCY_RETENTION`); past it the
//! record is deleted, in bounded batches (the purge's task is
//! `startup::purge`), so the table holds a window's creates and not every
//! create ever made.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait};

use super::{Storage, entities::idempotency_record};

impl Storage {
    /// Deletes at most `batch` idempotency records made before `before`,
    /// oldest first (from one end of `ix_idempotency_records_created_at`),
    /// in one statement; how many it deleted. On SQLite the statement
    /// takes its turn with the other writers (`write_turn`) and gives it
    /// back at once: a batch holds the write lock only while it deletes.
    pub async fn purge_idempotency_batch(
        &self,
        before: DateTime<Utc>,
        batch: u64,
    ) -> Result<u64, DbErr> {
        let oldest = idempotency_record::Entity::find()
            .select_only()
            .column(idempotency_record::Column::Id)
            .filter(idempotency_record::Column::CreatedAt.lt(before))
            .order_by_asc(idempotency_record::Column::CreatedAt)
            .limit(batch)
            .into_query();
        let _turn = self.write_turn().await;
        Ok(idempotency_record::Entity::delete_many()
            .filter(idempotency_record::Column::Id.in_subquery(oldest))
            .exec(&self.db)
            .await?
            .rows_affected)
    }
}
