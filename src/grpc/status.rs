//! The one place where domain errors become gRPC statuses, with
//! `google.rpc.ErrorInfo` on every one and `google.rpc.BadRequest` on
//! validation errors.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use crate::domain::DomainError;

/// `google.rpc.ErrorInfo.domain` of every error this service returns.
pub const ERROR_DOMAIN: &str = "workspace.v1";

fn code(error: &DomainError) -> Code {
    match error {
        DomainError::Unauthenticated => Code::Unauthenticated,
        DomainError::InvalidArgument(_) => Code::InvalidArgument,
        DomainError::NotOrganizationMember
        | DomainError::InsufficientRole { .. }
        | DomainError::WorkspaceCreationDisabled => Code::PermissionDenied,
        DomainError::AccountNotValidated | DomainError::PlanNotSupported { .. } => {
            Code::FailedPrecondition
        }
        DomainError::CredentialsNotFound { .. }
        | DomainError::FirstMemberNotFound { .. }
        | DomainError::WorkspaceNotFound { .. } => Code::NotFound,
        DomainError::WorkspaceLimitReached { .. } => Code::ResourceExhausted,
        DomainError::WorkspaceAlreadyExists { .. } => Code::AlreadyExists,
        DomainError::Unavailable(_) => Code::Unavailable,
        DomainError::Internal(_) => Code::Internal,
    }
}

/// A status with an `ErrorInfo` (domain `workspace.v1`) for errors that
/// are not the domain's: overload, and the HTTP transport's own.
pub fn status_with_reason(code: Code, reason: &str, message: &str) -> Status {
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, HashMap::new()),
    )
}

/// Too many calls in flight: shed, with a hint to retry shortly.
pub fn overloaded() -> Status {
    let mut details = ErrorDetails::with_error_info("OVERLOADED", ERROR_DOMAIN, HashMap::new());
    details.set_retry_info(Some(std::time::Duration::from_secs(1)));
    Status::with_error_details(
        Code::ResourceExhausted,
        "The service is overloaded; retry shortly.",
        details,
    )
}

/// The call's deadline (the caller's `grpc-timeout`, or the server's cap)
/// passed before it finished.
pub fn deadline_exceeded() -> Status {
    status_with_reason(
        Code::DeadlineExceeded,
        "DEADLINE_EXCEEDED",
        "The deadline expired before the call finished.",
    )
}

/// UNAVAILABLE without trying the database: it is known to be away. Not
/// logged per call (the health monitor logs the outage once).
pub fn database_unavailable() -> Status {
    status_of(DomainError::Unavailable(anyhow::anyhow!(
        "the database did not answer the last probe"
    )))
}

impl From<DomainError> for Status {
    fn from(error: DomainError) -> Self {
        match &error {
            // The cause is for the logs, never for the caller.
            DomainError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "internal error")
            }
            DomainError::Unavailable(cause) => {
                tracing::warn!(error = format!("{cause:#}"), "database unavailable")
            }
            _ => {}
        }
        status_of(error)
    }
}

/// The status for `error`, with its ErrorInfo (and BadRequest).
fn status_of(error: DomainError) -> Status {
    let metadata: HashMap<String, String> = error
        .metadata()
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
    let mut details = ErrorDetails::with_error_info(error.reason(), ERROR_DOMAIN, metadata);
    if let DomainError::InvalidArgument(violations) = &error {
        details.set_bad_request(
            violations
                .iter()
                .map(|v| FieldViolation {
                    field: v.field.clone(),
                    description: v.description.clone(),
                    reason: v.reason.to_owned(),
                    localized_message: None,
                })
                .collect::<Vec<_>>(),
        );
    }
    Status::with_error_details(code(&error), error.to_string(), details)
}
