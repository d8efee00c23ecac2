//! CreateWorkspace's writes and the reads that decide its idempotency:
//! the rows (`rows`), PostgreSQL's one statement (`postgres`), SQLite's
//! transaction (`sqlite`).

mod postgres;
mod rows;
mod sqlite;

pub use rows::{IdempotencyKey, NewWorkspace, Recheck};

use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter};
use tracing::Instrument;
use uuid::Uuid;

use crate::domain::WorkspaceView;
use crate::storage::{Storage, entities::*, violates_unique};
use postgres::write_in_one_statement;
use rows::{Counted, CreateRows};
use sqlite::write_in_transaction;

/// What an earlier successful create under a request id left: the
/// workspace it made and the fingerprint of what it asked for.
#[derive(Debug, Clone)]
pub struct EarlierCreate {
    pub workspace_id: Uuid,
    pub request_fingerprint: String,
}

/// How an insert ended. The refusals are the database's own verdicts.
#[derive(Debug, Clone)]
pub enum CreateOutcome {
    /// The workspace as its creator sees it, from the rows just written.
    Created(Box<WorkspaceView>),
    /// The conditional counter update found the organization at its limit.
    LimitReached,
    /// The unique index on (organization, normalized name) refused it.
    NameTaken,
    /// Another call with the same caller and request id committed first.
    RequestIdTaken,
    /// A kept caller's decision no longer holds (`Recheck`): decide again
    /// on a fresh read.
    CallerChanged,
}

impl Storage {
    /// Inserts the workspace, the creator's OWNER membership, the first
    /// member's membership, the idempotency record and the event, all or
    /// nothing: on PostgreSQL in one statement (one round trip), on SQLite
    /// in one transaction.
    ///
    /// Checks 9 and 10 of CreateWorkspace are decided here, by the database,
    /// so they hold across concurrent calls and replicas: the workspace
    /// limit by one conditional UPDATE of the organization's counter, the
    /// name by the unique index. Nothing is checked first and inserted after.
    pub async fn insert_workspace(
        &self,
        new: NewWorkspace<'_>,
        idempotency: Option<&IdempotencyKey>,
    ) -> Result<CreateOutcome, DbErr> {
        // Built in the call's span: the event keeps the call's trace
        // context, not the database span's.
        let rows = CreateRows::new(new, idempotency);
        let (rows, written) = async {
            if self.db.get_database_backend() == DbBackend::Postgres {
                write_in_one_statement(&self.db, rows).await
            } else {
                let written = write_in_transaction(self, &rows).await;
                (rows, written)
            }
        }
        .instrument(self.db_span("INSERT", "workspaces"))
        .await;
        match written {
            Ok(Counted::Written(number)) => Ok(CreateOutcome::Created(Box::new(WorkspaceView {
                number,
                ..rows.view
            }))),
            Ok(Counted::LimitReached) => Ok(CreateOutcome::LimitReached),
            Ok(Counted::CallerChanged) => Ok(CreateOutcome::CallerChanged),
            // Nothing was written: the statement or transaction is undone.
            Err(err) if violates_unique(&err, "normalized_name") => Ok(CreateOutcome::NameTaken),
            Err(err) if violates_unique(&err, "request_id") => Ok(CreateOutcome::RequestIdTaken),
            Err(err) => Err(err),
        }
    }

    /// The workspace a caller's earlier call with `request_id` created, with
    /// that call's request fingerprint.
    #[tracing::instrument(level = "debug", name = "db.idempotency_record", skip_all, fields(otel.kind = "client", otel.name = "SELECT idempotency_records", db.system.name = self.system(), db.operation.name = "SELECT", db.collection.name = "idempotency_records", db.namespace = self.namespace(), server.address = self.server_address(), server.port = self.server_port()))]
    pub async fn idempotency_record(
        &self,
        user_id: Uuid,
        request_id: &str,
    ) -> Result<Option<EarlierCreate>, DbErr> {
        let record = idempotency_record::Entity::find()
            .filter(idempotency_record::Column::UserId.eq(user_id))
            .filter(idempotency_record::Column::RequestId.eq(request_id))
            .one(&self.db)
            .await?;
        Ok(record.map(|record| EarlierCreate {
            workspace_id: record.workspace_id,
            request_fingerprint: record.request_fingerprint,
        }))
    }

    /// Whether the organization has a workspace of this normalized name.
    /// Only for `validate_only`, which writes nothing; real creates rely on
    /// the unique index.
    #[tracing::instrument(level = "debug", name = "db.name_taken", skip_all, fields(otel.kind = "client", otel.name = "SELECT workspaces", db.system.name = self.system(), db.operation.name = "SELECT", db.collection.name = "workspaces", db.namespace = self.namespace(), server.address = self.server_address(), server.port = self.server_port()))]
    pub async fn name_taken(
        &self,
        organization_id: Uuid,
        normalized_name: &str,
    ) -> Result<bool, DbErr> {
        Ok(workspace::Entity::find()
            .filter(workspace::Column::OrganizationId.eq(organization_id))
            .filter(workspace::Column::NormalizedName.eq(normalized_name))
            .one(&self.db)
            .await?
            .is_some())
    }
}
