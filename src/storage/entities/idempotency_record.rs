//! A remembered successful CreateWorkspace, keyed by caller and request id
//! (AIP-155), so a retry returns the same workspace.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_records")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub request_id: String,
    /// SHA-256 of the request's content, to tell a retry from a reuse.
    pub request_fingerprint: String,
    pub workspace_id: Uuid,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
