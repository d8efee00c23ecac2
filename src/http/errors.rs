//! The HTTP layer's own errors, built one way: a reason from the catalogue,
//! its code from the gRPC status table, and a `BadRequest` violation when
//! the request's content is at fault. `status.rs` turns them, like every
//! other status, into an answer.

use tonic::{Code, Status};

use crate::{
    domain::{DomainError, Reason},
    grpc::{code_for, status_of_reason},
};

fn refused(reason: Reason, field: &str, message: &str) -> Status {
    if code_for(reason) == Code::InvalidArgument {
        DomainError::invalid(field, reason, message).into()
    } else {
        status_of_reason(reason, message)
    }
}

pub fn malformed(description: &str) -> Status {
    refused(Reason::MalformedBody, "", description)
}

/// A JSON key given twice (`detail`: the parser's words, which name it).
pub fn repeated(detail: &str) -> Status {
    refused(
        Reason::FieldRepeated,
        "",
        &format!("The body gives a field more than once: {detail}."),
    )
}

pub fn too_large() -> Status {
    refused(Reason::BodyTooLarge, "", "The request body is too large.")
}

pub fn unsupported_media_type(content_type: &str) -> Status {
    refused(
        Reason::UnsupportedMediaType,
        "",
        &format!(
            "Content type '{content_type}' is not supported; send application/json, application/x-www-form-urlencoded or multipart/form-data."
        ),
    )
}

pub fn route_not_found() -> Status {
    refused(
        Reason::RouteNotFound,
        "",
        "No route for this path and method.",
    )
}

pub fn method_not_allowed() -> Status {
    refused(
        Reason::MethodNotAllowed,
        "",
        "This route does not take this method; the Allow header lists those it takes.",
    )
}

pub fn invalid_idempotency_key() -> Status {
    refused(
        Reason::InvalidRequestId,
        "Idempotency-Key",
        "Idempotency-Key must be printable ASCII; a UUID is recommended.",
    )
}

pub fn invalid_timeout() -> Status {
    refused(
        Reason::InvalidTimeout,
        "grpc-timeout",
        "grpc-timeout must be 1 to 8 digits and a unit: H, M, S, m, u or n (such as 5S).",
    )
}

pub fn invalid_path(description: &str) -> Status {
    refused(Reason::InvalidFieldValue, "", description)
}
