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

/// `ErrorInfo.reason`s of request-schema errors, answered 422 like the
/// REST APIs' schema validation (seeds 000 and 001); every other
/// INVALID_ARGUMENT is a 400.
const SCHEMA_REASONS: &[&str] = &[
    "MALFORMED_BODY",
    "INVALID_FIELD_VALUE",
    "FIELD_REQUIRED",
    "INVALID_EMAIL",
    "INVALID_UUID",
    "BILLING_ACCOUNT_EMAIL_REQUIRED",
];

/// The HTTP status for a gRPC status and its `ErrorInfo.reason`.
pub fn http_status(code: Code, reason: &str) -> StatusCode {
    match (code, reason) {
        (Code::Ok, _) => StatusCode::OK,
        (Code::InvalidArgument, reason) if SCHEMA_REASONS.contains(&reason) => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        (Code::InvalidArgument | Code::OutOfRange, _) => StatusCode::BAD_REQUEST,
        (Code::FailedPrecondition, "PLAN_NOT_SUPPORTED") => StatusCode::PAYMENT_REQUIRED,
        (Code::FailedPrecondition, _) => StatusCode::BAD_REQUEST,
        (Code::Unauthenticated, _) => StatusCode::UNAUTHORIZED,
        (Code::PermissionDenied, _) => StatusCode::FORBIDDEN,
        (Code::NotFound, _) => StatusCode::NOT_FOUND,
        (Code::ResourceExhausted, "WORKSPACE_LIMIT_REACHED") => StatusCode::NOT_ACCEPTABLE,
        (Code::ResourceExhausted, "BODY_TOO_LARGE") => StatusCode::PAYLOAD_TOO_LARGE,
        (Code::ResourceExhausted, _) => StatusCode::TOO_MANY_REQUESTS,
        (Code::AlreadyExists | Code::Aborted, _) => StatusCode::CONFLICT,
        (Code::Unimplemented, "UNSUPPORTED_MEDIA_TYPE") => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        (Code::Unimplemented, _) => StatusCode::NOT_IMPLEMENTED,
        (Code::Unavailable, _) => StatusCode::SERVICE_UNAVAILABLE,
        (Code::DeadlineExceeded, _) => StatusCode::GATEWAY_TIMEOUT,
        // grpc-gateway answers 499 (client closed request) for CANCELLED.
        (Code::Cancelled, _) => StatusCode::from_u16(499).expect("499 is a valid status"),
        (Code::Unknown | Code::Internal | Code::DataLoss, _) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `status` as grpc-gateway's JSON error answer. The details are decoded
/// with `pool`, which holds google/rpc/error_details.proto.
pub fn error_response(
    status: &tonic::Status,
    pool: &DescriptorPool,
    names: &SerializeOptions,
) -> Response {
    let details = any_details(status, pool, names);
    let reason = details
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo")
        .and_then(|info| info["reason"].as_str())
        .unwrap_or("");
    let http = http_status(status.code(), reason);
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
        let cases = [
            (Code::InvalidArgument, "NAME_TOO_SHORT", 400),
            (Code::InvalidArgument, "INVALID_EMAIL", 422),
            (Code::InvalidArgument, "MALFORMED_BODY", 422),
            (Code::InvalidArgument, "UNSUPPORTED_FIELD", 400),
            (Code::FailedPrecondition, "ACCOUNT_NOT_VALIDATED", 400),
            (Code::FailedPrecondition, "PLAN_NOT_SUPPORTED", 402),
            (Code::Unauthenticated, "UNAUTHENTICATED", 401),
            (Code::PermissionDenied, "INSUFFICIENT_ROLE", 403),
            (Code::NotFound, "CREDENTIALS_NOT_FOUND", 404),
            (Code::ResourceExhausted, "WORKSPACE_LIMIT_REACHED", 406),
            (Code::AlreadyExists, "WORKSPACE_ALREADY_EXISTS", 409),
            (Code::Internal, "INTERNAL", 500),
            (Code::Unavailable, "UNAVAILABLE", 503),
            (Code::DeadlineExceeded, "", 504),
            (Code::ResourceExhausted, "", 429),
        ];
        for (code, reason, http) in cases {
            assert_eq!(
                http_status(code, reason).as_u16(),
                http,
                "{code:?} {reason}"
            );
        }
    }
}
