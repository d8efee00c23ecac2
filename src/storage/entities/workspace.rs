//! A workspace.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "workspaces")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    /// `domain::normalize_name` of the name; unique per organization (index
    /// `ux_workspaces_organization_id_normalized_name`).
    pub normalized_name: String,
    pub description: String,
    pub workspace_type: String,
    pub document_upload_method: String,
    pub billing_account_email: String,
    pub workspace_document_store_credentials_id: Option<Uuid>,
    pub pipeline_document_store_credentials_id: Option<Uuid>,
    pub file_store_credentials_id: Option<Uuid>,
    pub used_storage: f64,
    pub files_count: i32,
    pub created_by: Uuid,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Counts the workspace's changes: its etag.
    pub revision: i64,
    /// Seed 002's integer `id`: given by the database at insert (PostgreSQL
    /// an identity, SQLite the `workspace_numbers` counter), unique.
    pub number: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
