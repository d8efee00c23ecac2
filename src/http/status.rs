//! The one place where a gRPC status becomes an HTTP answer: grpc-gateway's
//! error body `{"code", "message", "details": [{"@type": …}]}` with the
//! HTTP status of the product contract's table, grpc-gateway's standard
//! mapping for everything else.

use axum::{
    Json,
    response::{IntoResponse, Response},
};
use http::StatusCode;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use serde_json::{Map, Value, json};
use tonic::Code;

use crate::{domain::Reason, grpc::code_for};

/// The HTTP status for a gRPC status and its `ErrorInfo.reason`: request
/// schema errors are 422 like the REST APIs' schema validation (seeds 000
/// and 001); every other INVALID_ARGUMENT is a 400.
pub fn http_status(code: Code, reason: Option<Reason>) -> StatusCode {
    match (code, reason) {
        (Code::Ok, _) => StatusCode::OK,
        (Code::InvalidArgument, Some(reason)) if reason.is_schema_error() => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        (Code::InvalidArgument | Code::OutOfRange, _) => StatusCode::BAD_REQUEST,
        (Code::FailedPrecondition, Some(Reason::PlanNotSupported)) => StatusCode::PAYMENT_REQUIRED,
        (Code::FailedPrecondition, _) => StatusCode::BAD_REQUEST,
        (Code::Unauthenticated, _) => StatusCode::UNAUTHORIZED,
        (Code::PermissionDenied, _) => StatusCode::FORBIDDEN,
        (Code::NotFound, _) => StatusCode::NOT_FOUND,
        (Code::ResourceExhausted, Some(Reason::WorkspaceLimitReached)) => {
            StatusCode::NOT_ACCEPTABLE
        }
        (Code::ResourceExhausted, Some(Reason::BodyTooLarge)) => StatusCode::PAYLOAD_TOO_LARGE,
        (Code::ResourceExhausted, _) => StatusCode::TOO_MANY_REQUESTS,
        (Code::AlreadyExists | Code::Aborted, _) => StatusCode::CONFLICT,
        (Code::Unimplemented, Some(Reason::UnsupportedMediaType)) => {
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        }
        (Code::Unimplemented, Some(Reason::MethodNotAllowed)) => StatusCode::METHOD_NOT_ALLOWED,
        (Code::Unimplemented, _) => StatusCode::NOT_IMPLEMENTED,
        (Code::Unavailable, _) => StatusCode::SERVICE_UNAVAILABLE,
        (Code::DeadlineExceeded, Some(Reason::BodyTimeout)) => StatusCode::REQUEST_TIMEOUT,
        (Code::DeadlineExceeded, _) => StatusCode::GATEWAY_TIMEOUT,
        // grpc-gateway answers 499 (client closed request) for CANCELLED.
        (Code::Cancelled, _) => StatusCode::from_u16(499).expect("499 is a valid status"),
        (Code::Unknown | Code::Internal | Code::DataLoss, _) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The HTTP status of a reason in the catalogue, through the gRPC table,
/// on a route with a body or without.
pub fn http_status_of(reason: Reason, with_body: bool) -> StatusCode {
    http_status_on(code_for(reason), Some(reason), with_body)
}

/// `http_status` on a route that takes a body (`with_body`) or not: 422 is
/// about a request's body (the REST APIs' schema validation); on a route
/// without one, a bad path variable or query parameter is grpc-gateway's
/// 400.
pub fn http_status_on(code: Code, reason: Option<Reason>, with_body: bool) -> StatusCode {
    match http_status(code, reason) {
        StatusCode::UNPROCESSABLE_ENTITY if !with_body => StatusCode::BAD_REQUEST,
        status => status,
    }
}

/// `status` as grpc-gateway's JSON error answer. The details are decoded
/// with `pool`, which holds google/rpc/error_details.proto.
pub fn error_response(
    status: &tonic::Status,
    pool: &DescriptorPool,
    names: &SerializeOptions,
    with_body: bool,
) -> Response {
    let details = any_details(status, pool, names);
    let reason = details
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo")
        .and_then(|info| info["reason"].as_str())
        .and_then(|reason| reason.parse().ok());
    let http = http_status_on(status.code(), reason, with_body);
    let body = json!({
        "code": status.code() as i32,
        "message": status.message(),
        "details": details,
    });
    (http, Json(body)).into_response()
}

/// The `google.protobuf.Any` details of `status` in the JSON mapping, each
/// with its `@type`.
fn any_details(
    status: &tonic::Status,
    pool: &DescriptorPool,
    names: &SerializeOptions,
) -> Vec<Value> {
    let Ok(rpc_status) = tonic_types::pb::Status::decode(status.details()) else {
        return Vec::new();
    };
    rpc_status
        .details
        .iter()
        .filter_map(|any| {
            let type_name = any.type_url.rsplit('/').next()?;
            let message =
                DynamicMessage::decode(pool.get_message_by_name(type_name)?, any.value.as_slice())
                    .ok()?;
            let mut fields =
                match message.serialize_with_options(serde_json::value::Serializer, names) {
                    Ok(Value::Object(fields)) => fields,
                    _ => Map::new(),
                };
            let mut detail = Map::new();
            detail.insert("@type".into(), Value::String(any.type_url.clone()));
            detail.append(&mut fields);
            Some(Value::Object(detail))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contracts_table() {
        use Reason::*;
        let cases = [
            (NameTooShort, 400),
            (InvalidEmail, 422),
            (MalformedBody, 422),
            (UnsupportedField, 400),
            (AccountNotValidated, 400),
            (PlanNotSupported, 402),
            (Unauthenticated, 401),
            (InsufficientRole, 403),
            (CredentialsNotFound, 404),
            (WorkspaceLimitReached, 406),
            (WorkspaceAlreadyExists, 409),
            (Internal, 500),
            (Unavailable, 503),
            (DeadlineExceeded, 504),
            (Overloaded, 429),
            (BodyTooLarge, 413),
            (UnsupportedMediaType, 415),
            (RouteNotFound, 404),
            (MethodNotAllowed, 405),
            (MemoryBudgetExhausted, 429),
            (BodyTimeout, 408),
        ];
        for (reason, http) in cases {
            assert_eq!(http_status_of(reason, true).as_u16(), http, "{reason}");
        }
        assert_eq!(http_status(Code::ResourceExhausted, None).as_u16(), 429);
        assert_eq!(http_status(Code::DeadlineExceeded, None).as_u16(), 504);
    }
}
