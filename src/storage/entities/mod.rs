//! sea-orm entities, one per table. The tables themselves are created by
//! `storage::migrations`; these structs only describe them to sea-orm.

pub mod api_token;
pub mod event;
pub mod idempotency_record;
pub mod organization;
pub mod organization_membership;
pub mod plan;
pub mod session;
pub mod storage_credential;
pub mod user;
pub mod workspace;
pub mod workspace_access_token;
pub mod workspace_membership;
