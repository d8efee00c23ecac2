//! The domain: workspaces, organizations, roles, the rules of
//! CreateWorkspace and the error enum. No transport, no database.

mod error;
mod event;
mod lifecycle;
mod name;
mod name_rules;
mod new_workspace;
mod organization;
mod reason;
mod views;
pub mod workspace;

pub use error::{DomainError, FieldViolation, bounded, excerpt};
pub use event::{EVENT_MEMBERSHIPS, EVENT_PAYLOAD_LIMIT, EventKind};
pub use lifecycle::{
    UPDATABLE, UpdateWorkspaceInput, WorkspaceUpdate, etag_of, latest_time, parse_etag,
    validate_access_token, validate_update,
};
pub use name::normalize_name;
pub use name_rules::{NAME_TECHNICAL_MAX_CHARS, NameRules};
pub use organization::{
    Caller, CredentialsKind, OrganizationRole, Plan, SignIn, WorkspaceCreationPolicy, WorkspaceRole,
};
pub use reason::{Reason, UnknownReason};
pub use views::{
    AccessTokenView, Cursor, OrganizationSummary, WorkspaceMember, WorkspaceView, hide_token_hashes,
};
pub use workspace::{
    CreateWorkspace, CreateWorkspaceInput, DocumentStoreIds, parse_id, validate_create,
};
