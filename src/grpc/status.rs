//! The one place where domain errors become gRPC statuses, with
//! `google.rpc.ErrorInfo` on every one and `google.rpc.BadRequest` on
//! validation errors.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use crate::domain::{DomainError, Reason, bounded};

/// `google.rpc.ErrorInfo.domain` of every error this service returns.
pub const ERROR_DOMAIN: &str = "workspace.v1";

/// The gRPC status table: the code of every reason in the catalogue. The
/// match is exhaustive, so a new reason cannot go without a code.
pub fn code_for(reason: Reason) -> Code {
    use Reason::*;
    match reason {
        Unauthenticated => Code::Unauthenticated,
        InvalidArgument
        | NameRequired
        | NameInvalidCharacters
        | NameTooShort
        | NameTooLong
        | DescriptionTooLong
        | DescriptionInvalidCharacters
        | BillingAccountEmailRequired
        | InvalidEmail
        | InvalidUuid
        | FieldRequired
        | InvalidFieldValue
        | UnsupportedField
        | FieldRepeated
        | InvalidRequestId
        | RequestIdReused
        | OrganizationRequired
        | InvalidPageSize
        | InvalidPageToken
        | InvalidTimeout
        | MalformedBody
        | InvalidUpdateMask
        | InvalidEtag
        | InvalidRole
        | AccessTokenNameInvalid
        | ExpireTimeInPast
        | ExpireTimeOutOfRange => Code::InvalidArgument,
        NotOrganizationMember
        | InsufficientRole
        | WorkspaceCreationDisabled
        | AccessTokenNotAllowed => Code::PermissionDenied,
        AccountNotValidated | PlanNotSupported | LastOwner | UserNotInOrganization => {
            Code::FailedPrecondition
        }
        CredentialsNotFound | FirstMemberNotFound | WorkspaceNotFound | RouteNotFound
        | MemberNotFound | AccessTokenNotFound => Code::NotFound,
        EtagMismatch => Code::Aborted,
        AlreadyMember => Code::AlreadyExists,
        WorkspaceLimitReached
        | Overloaded
        | OrganizationOverloaded
        | MemoryBudgetExhausted
        | BodyTooLarge => Code::ResourceExhausted,
        WorkspaceAlreadyExists => Code::AlreadyExists,
        Unavailable | OutcomeUnknown => Code::Unavailable,
        Internal => Code::Internal,
        DeadlineExceeded | BodyTimeout => Code::DeadlineExceeded,
        UnsupportedMediaType | MethodNotAllowed => Code::Unimplemented,
    }
}

/// A status with an `ErrorInfo` (domain `workspace.v1`) for errors that
/// are not the domain's: the transports' own, with the table's code.
pub fn status_of_reason(reason: Reason, message: &str) -> Status {
    status_with_reason(code_for(reason), reason, message)
}

/// A status with an `ErrorInfo` (domain `workspace.v1`) for errors that
/// are not the domain's: overload, and the HTTP transport's own.
fn status_with_reason(code: Code, reason: Reason, message: &str) -> Status {
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason.as_str(), ERROR_DOMAIN, HashMap::new()),
    )
}

/// Too many calls in flight: shed, with a hint to retry shortly.
pub fn overloaded() -> Status {
    let mut details =
        ErrorDetails::with_error_info(Reason::Overloaded.as_str(), ERROR_DOMAIN, HashMap::new());
    details.set_retry_info(Some(std::time::Duration::from_secs(1)));
    Status::with_error_details(
        code_for(Reason::Overloaded),
        "The service is overloaded; retry shortly.",
        details,
    )
}

/// RESOURCE_EXHAUSTED for `reason`, with a hint to retry shortly.
pub fn overloaded_with(reason: Reason, message: &str) -> Status {
    let mut details = ErrorDetails::with_error_info(reason.as_str(), ERROR_DOMAIN, HashMap::new());
    details.set_retry_info(Some(std::time::Duration::from_secs(1)));
    Status::with_error_details(code_for(reason), message, details)
}

/// The call's deadline (the caller's `grpc-timeout`, or the server's cap)
/// passed before it finished.
pub fn deadline_exceeded() -> Status {
    status_of_reason(
        Reason::DeadlineExceeded,
        "The deadline expired before the call finished.",
    )
}

/// The call's deadline passed while its write was being committed: it may
/// have been written, or not. UNAVAILABLE (the call can be tried again)
/// with reason OUTCOME_UNKNOWN, never DEADLINE_EXCEEDED, which promises
/// that nothing was written.
pub fn outcome_unknown() -> Status {
    status_of_reason(
        Reason::OutcomeUnknown,
        "The deadline expired while the change was being committed: it may have been written. \
         Retry a create with the same request_id; read a workspace back before repeating a change to it.",
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
        log(&error);
        status_of(error)
    }
}

/// The status of `operation` ("get the workspace") failing with `error`:
/// an internal failure says which operation failed, never why.
pub fn failed(operation: &str, error: DomainError) -> Status {
    log(&error);
    let message = match &error {
        DomainError::Internal(_) => format!("Failed to {operation}."),
        _ => error.to_string(),
    };
    status_with_message(error, message)
}

/// The cause of an internal or unavailable error is for the logs, never
/// for the caller.
fn log(error: &DomainError) {
    match error {
        DomainError::Internal(cause) => {
            tracing::error!(error = format!("{cause:#}"), "internal error")
        }
        DomainError::Unavailable(cause) => {
            tracing::warn!(error = format!("{cause:#}"), "database unavailable")
        }
        _ => {}
    }
}

/// The status for `error`, with its ErrorInfo (and BadRequest).
fn status_of(error: DomainError) -> Status {
    let message = error.to_string();
    status_with_message(error, message)
}

/// How much of an error a status carries: the message, each metadata
/// value, each violation's field and description, and how many
/// violations, so that its trailers (`grpc-message` and
/// `grpc-status-details-bin`, base64) stay under 4 KiB whatever the
/// request held: clients refuse larger metadata (grpc-python: 16 KiB in
/// all) and would see RESOURCE_EXHAUSTED instead of the error.
const MESSAGE_BYTES: usize = 160;
const METADATA_VALUE_BYTES: usize = 128;
/// The longest path of a request field is 67 bytes.
const FIELD_BYTES: usize = 80;
const DESCRIPTION_BYTES: usize = 112;
/// A CreateWorkspaceRequest can break 7 rules at once.
const VIOLATIONS: usize = 8;

fn status_with_message(error: DomainError, message: String) -> Status {
    let message = bounded(&message, MESSAGE_BYTES);
    let metadata: HashMap<String, String> = error
        .metadata()
        .into_iter()
        .map(|(key, value)| (key.to_owned(), bounded(&value, METADATA_VALUE_BYTES)))
        .collect();
    let mut details =
        ErrorDetails::with_error_info(error.reason().as_str(), ERROR_DOMAIN, metadata);
    if let DomainError::OrganizationOverloaded { .. } = &error {
        details.set_retry_info(Some(std::time::Duration::from_secs(1)));
    }
    if let DomainError::InvalidArgument(violations) = &error {
        details.set_bad_request(
            violations
                .iter()
                .take(VIOLATIONS)
                .map(|v| FieldViolation {
                    field: bounded(&v.field, FIELD_BYTES),
                    description: bounded(&v.description, DESCRIPTION_BYTES),
                    reason: v.reason.as_str().to_owned(),
                    localized_message: None,
                })
                .collect::<Vec<_>>(),
        );
    }
    Status::with_error_details(code_for(error.reason()), message, details)
}
