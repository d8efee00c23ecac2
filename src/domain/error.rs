//! Every way a call can fail, in the domain's words. The transports map
//! these to status codes in one place each (`grpc::status`).

use uuid::Uuid;

use super::Reason;

/// How much of a refused value an error message quotes.
const EXCERPT_CHARS: usize = 64;

/// `value` as an error message may quote it: whole up to 64 characters,
/// else its start and an ellipsis. Messages and details travel in HTTP/2
/// trailers, so a megabyte of input must not come back in them.
pub fn excerpt(value: &str) -> String {
    match value.char_indices().nth(EXCERPT_CHARS) {
        None => value.to_owned(),
        Some((end, _)) => format!("{}…", &value[..end]),
    }
}

/// The start of `text` that fits in `max_bytes` (cut on a character, an
/// ellipsis added when cut): what an answer may carry of something the
/// caller sent.
pub fn bounded(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    let mut end = max_bytes.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// One invalid field of a request (`google.rpc.BadRequest.FieldViolation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field's path in the request, such as `name` or
    /// `document_store_credentials.workspace_document_store_credentials_id`.
    pub field: String,
    /// A stable, machine-readable reason such as `NAME_TOO_SHORT`.
    pub reason: Reason,
    /// What is wrong, for people.
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, reason: Reason, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason,
            description: description.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// Check 1. Deliberately says nothing about which part failed.
    #[error("Missing or invalid credentials.")]
    Unauthenticated,

    /// Check 2: one or more fields are invalid. Never empty.
    #[error("{}", .0.first().map(|v| v.description.as_str()).unwrap_or("Invalid request."))]
    InvalidArgument(Vec<FieldViolation>),

    /// Check 3, also when the organization does not exist (no leak).
    #[error("You are not a member of this organization.")]
    NotOrganizationMember,

    /// Check 4 (seed 003's words).
    #[error("User not found or account is not validated.")]
    AccountNotValidated,

    /// Check 5: the caller's organization role may not create workspaces.
    #[error("Insufficient permissions to create workspaces.")]
    InsufficientRole { role: String },

    /// Check 5: the organization lets only its OWNERs and ADMINs create
    /// workspaces (seed 002's `allow_user_workspace_creation` off).
    #[error("Standard users of this company are not allowed to create workspaces.")]
    WorkspaceCreationDisabled,

    /// Check 6 (seed 000's words).
    #[error("Creating workspaces is not supported with your current plan. Please contact support.")]
    PlanNotSupported { plan: String },

    /// Check 7 (seed 000's words).
    #[error(
        "We couldn't find the specified credentials. List the document store and file store credentials of your organization to pick existing ones."
    )]
    CredentialsNotFound { field: &'static str, id: Uuid },

    /// Check 8.
    #[error("The first member {user_id} is not a member of this organization.")]
    FirstMemberNotFound { user_id: Uuid },

    /// Check 9 (seed 000's words).
    #[error("You reached the workspace limit. Delete an existing workspace to create a new one.")]
    WorkspaceLimitReached { limit: i32 },

    /// Check 10 (seed 000's words).
    #[error(
        "This workspace {name} already exists. Try giving your new workspace a different name."
    )]
    WorkspaceAlreadyExists { name: String },

    /// Get: no such workspace, or not one the caller may see.
    #[error("Workspace {id} not found.")]
    WorkspaceNotFound { id: String },

    /// The workspace changed since the caller read its etag (AIP-154).
    #[error("The workspace {id} changed since it was read; read it again and retry.")]
    EtagMismatch { id: Uuid },

    /// The change would leave the workspace without an OWNER.
    #[error("A workspace keeps at least one OWNER: make another member OWNER first.")]
    LastOwner,

    #[error("User {user_id} is already a member of this workspace.")]
    AlreadyMember { user_id: Uuid },

    #[error("User {user_id} is not a member of this workspace.")]
    MemberNotFound { user_id: Uuid },

    #[error("User {user_id} is not a member of the workspace's organization.")]
    UserNotInOrganization { user_id: Uuid },

    #[error("Access token {id} not found in this workspace.")]
    AccessTokenNotFound { id: String },

    /// A workspace access token tried what only its user's own credentials
    /// may do.
    #[error("A workspace access token cannot {action}.")]
    AccessTokenNotAllowed { action: &'static str },

    /// The organization has as many calls in flight as one may; retry.
    #[error("Too many calls for this organization are in flight; retry shortly.")]
    OrganizationOverloaded { limit: usize },

    /// The call's deadline passed before the database could go on (a
    /// statement that waited on a lock past it); nothing was written.
    #[error("The call's deadline passed before it finished.")]
    DeadlineExceeded,

    /// The database did not answer; worth retrying.
    #[error("The service is unavailable; try again.")]
    Unavailable(#[source] anyhow::Error),

    /// Anything else; the cause goes to the logs, not to the caller, and
    /// the caller's message names the operation (`grpc::status::failed`).
    #[error("The call failed inside the service.")]
    Internal(#[source] anyhow::Error),
}

impl From<FieldViolation> for DomainError {
    fn from(violation: FieldViolation) -> Self {
        Self::InvalidArgument(vec![violation])
    }
}

impl DomainError {
    /// The single-violation form of [`DomainError::InvalidArgument`].
    pub fn invalid(
        field: impl Into<String>,
        reason: Reason,
        description: impl Into<String>,
    ) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, reason, description)])
    }

    /// `google.rpc.ErrorInfo.reason`: stable, machine-readable.
    pub fn reason(&self) -> Reason {
        match self {
            Self::Unauthenticated => Reason::Unauthenticated,
            Self::InvalidArgument(violations) => violations
                .first()
                .map_or(Reason::InvalidArgument, |v| v.reason),
            Self::NotOrganizationMember => Reason::NotOrganizationMember,
            Self::AccountNotValidated => Reason::AccountNotValidated,
            Self::InsufficientRole { .. } => Reason::InsufficientRole,
            Self::WorkspaceCreationDisabled => Reason::WorkspaceCreationDisabled,
            Self::PlanNotSupported { .. } => Reason::PlanNotSupported,
            Self::CredentialsNotFound { .. } => Reason::CredentialsNotFound,
            Self::FirstMemberNotFound { .. } => Reason::FirstMemberNotFound,
            Self::WorkspaceLimitReached { .. } => Reason::WorkspaceLimitReached,
            Self::WorkspaceAlreadyExists { .. } => Reason::WorkspaceAlreadyExists,
            Self::WorkspaceNotFound { .. } => Reason::WorkspaceNotFound,
            Self::OrganizationOverloaded { .. } => Reason::OrganizationOverloaded,
            Self::EtagMismatch { .. } => Reason::EtagMismatch,
            Self::LastOwner => Reason::LastOwner,
            Self::AlreadyMember { .. } => Reason::AlreadyMember,
            Self::MemberNotFound { .. } => Reason::MemberNotFound,
            Self::UserNotInOrganization { .. } => Reason::UserNotInOrganization,
            Self::AccessTokenNotFound { .. } => Reason::AccessTokenNotFound,
            Self::AccessTokenNotAllowed { .. } => Reason::AccessTokenNotAllowed,
            Self::DeadlineExceeded => Reason::DeadlineExceeded,
            Self::Unavailable(_) => Reason::Unavailable,
            Self::Internal(_) => Reason::Internal,
        }
    }

    /// `google.rpc.ErrorInfo.metadata`: the values a client may act on.
    pub fn metadata(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::InsufficientRole { role } => vec![("role", role.clone())],
            Self::PlanNotSupported { plan } => vec![("plan", plan.clone())],
            Self::CredentialsNotFound { field, id } => {
                vec![("field", (*field).to_owned()), ("id", id.to_string())]
            }
            Self::FirstMemberNotFound { user_id } => vec![("first_member_id", user_id.to_string())],
            Self::WorkspaceLimitReached { limit } => vec![("limit", limit.to_string())],
            Self::OrganizationOverloaded { limit } => vec![("limit", limit.to_string())],
            Self::WorkspaceAlreadyExists { name } => vec![("name", name.clone())],
            Self::WorkspaceNotFound { id } => vec![("id", id.clone())],
            Self::EtagMismatch { id } => vec![("id", id.to_string())],
            Self::AlreadyMember { user_id }
            | Self::MemberNotFound { user_id }
            | Self::UserNotInOrganization { user_id } => vec![("user_id", user_id.to_string())],
            Self::AccessTokenNotFound { id } => vec![("id", id.clone())],
            Self::InvalidArgument(violations) => violations
                .first()
                .map(|v| vec![("field", v.field.clone())])
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_text_fits_its_bytes_and_cuts_on_a_character() {
        assert_eq!(bounded("short", 16), "short");
        let long = "\u{FDFA}".repeat(1_000);
        let cut = bounded(&long, 100);
        assert!(cut.len() <= 100, "{}", cut.len());
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn excerpts_keep_short_values_and_cut_long_ones_on_a_character() {
        assert_eq!(excerpt("short"), "short");
        let exact = "é".repeat(EXCERPT_CHARS);
        assert_eq!(excerpt(&exact), exact);
        let long = "é".repeat(10_000);
        assert_eq!(excerpt(&long), format!("{}…", "é".repeat(EXCERPT_CHARS)));
    }
}
