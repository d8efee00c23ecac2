//! Dialects: how one route reads its JSON and writes its answers. Each
//! seed's document describes a REST API with its own field names,
//! envelopes and error bodies; a route speaking that seed's dialect reads
//! and writes exactly that, around the same CreateWorkspace RPC. The RPC
//! and its checks stay one: a dialect maps names and shapes, and hands the
//! RPC its seed's name rules (`SeedNameRules`).
//!
//! - `fastapi.rs`: seeds 000 (snake_case) and 001 (camelCase), FastAPI
//!   services: `{"detail": [{type, loc, msg, input}]}` validation errors.
//! - `drf.rs`: seed 002, a Django REST framework service.
//! - `envelope.rs`: seeds 003 (`{success, …}`) and 004 (`{status,
//!   message, data, session, errors}`).
//!
//! The grpc-gateway dialect is the mapping's own (`status.rs`,
//! `body.rs`): every route can speak it (`HTTP_DIALECTS=grpc-gateway`),
//! and routes no seed documents always do.

mod bound;
mod drf;
mod envelope;
mod fastapi;
mod model;
mod names;
mod schema;

use axum::{
    Json,
    response::{IntoResponse, Response},
};
use http::StatusCode;
use serde_json::{Map, Value};
use tonic::Code;
use tonic_types::StatusExt;

use super::status::http_status;
use crate::{
    domain::{Caller, NameRules, Reason},
    proto,
};

pub use model::{ApiV1Dialect, Dialect, DialectChoice, Failure, Violation, ViolationKind};
pub use names::state_name_rules;

impl Failure {
    /// `status`, an answer of the RPC (or of the layer before it), with its
    /// field violations renamed as `dialect` names fields.
    pub fn of_status(status: &tonic::Status, dialect: Dialect, rules: NameRules) -> Self {
        let details = status.get_error_details();
        let reason = details
            .error_info()
            .and_then(|info| info.reason.parse::<Reason>().ok());
        let retry_after = details
            .retry_info()
            .and_then(|retry| retry.retry_delay)
            .map(|delay| delay.as_secs() + u64::from(delay.subsec_nanos() > 0));
        let violations = details
            .bad_request()
            .map(|bad| {
                bad.field_violations
                    .iter()
                    .map(|v| {
                        let reason = v.reason.parse::<Reason>().ok();
                        Violation {
                            loc: schema::dialect_loc(schema::fields(dialect), &v.field),
                            kind: kind_of(reason, rules),
                            description: v.description.clone(),
                            input: None,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut failure = Self {
            code: status.code(),
            http: http_status(status.code(), reason),
            reason,
            message: status.message().to_owned(),
            violations,
            retry_after,
        };
        bound::reword(dialect, &mut failure);
        failure
    }
}

impl Dialect {
    /// The body's fields, in the seed's names, as the request message's
    /// JSON (proto names); or the answer refusing them.
    pub fn request(self, body: Map<String, Value>) -> Result<Map<String, Value>, Failure> {
        schema::read(schema::fields(self), body, self.refuses_unknown_fields())
    }

    /// The answer to a created workspace.
    pub fn created(self, workspace: &proto::Workspace, caller: &Caller) -> Response {
        let body = match self {
            Self::GrpcGateway => unreachable!("grpc-gateway answers are the JSON mapping's"),
            Self::Seed000 => fastapi::created_000(workspace),
            Self::Seed001 => fastapi::created_001(workspace),
            Self::Seed002 => drf::created(workspace),
            Self::Seed003 => envelope::created_003(workspace),
            Self::Seed004 => envelope::created_004(workspace, caller),
        };
        (StatusCode::CREATED, Json(body)).into_response()
    }

    /// The answer to a failed call, or to a request refused before it.
    pub fn error(self, failure: &Failure) -> Response {
        let (status, body) = match self {
            Self::GrpcGateway => unreachable!("grpc-gateway errors are status.rs's"),
            Self::Seed000 | Self::Seed001 => fastapi::error(self, failure),
            Self::Seed002 => drf::error(failure),
            Self::Seed003 => envelope::error_003(failure),
            Self::Seed004 => envelope::error_004(failure),
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = failure.retry_after {
            response.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from(seconds.max(1)),
            );
        }
        response
    }

    /// The request body's JSON schema, in the seed's names.
    pub fn request_schema(self) -> Value {
        schema::json_schema(schema::fields(self))
    }

    /// The 201 answer's JSON schema.
    pub fn created_schema(self) -> Value {
        match self {
            Self::GrpcGateway => Value::Null,
            Self::Seed000 => fastapi::created_000_schema(),
            Self::Seed001 => fastapi::created_001_schema(),
            Self::Seed002 => drf::created_schema(),
            Self::Seed003 => envelope::created_003_schema(),
            Self::Seed004 => envelope::created_004_schema(),
        }
    }

    /// The JSON schema of an error answered with `status`.
    pub fn error_schema(self, status: u16) -> Value {
        match self {
            Self::GrpcGateway => Value::Null,
            Self::Seed000 | Self::Seed001 => fastapi::error_schema(status),
            Self::Seed002 => drf::error_schema(status),
            Self::Seed003 => envelope::error_003_schema(),
            Self::Seed004 => envelope::error_004_schema(),
        }
    }

    /// The HTTP status of a failure, in this dialect.
    fn status_of(self, failure: &Failure) -> StatusCode {
        if failure.code != Code::InvalidArgument {
            return failure.http;
        }
        match self {
            // FastAPI answers 422 for what its model refuses (types,
            // missing fields, lengths, the email) and the service's own
            // 400 for the name rule of seed 000.
            Self::Seed000 if failure.violations.iter().all(Violation::is_name_rule) => {
                StatusCode::BAD_REQUEST
            }
            Self::Seed000 | Self::Seed001 => StatusCode::UNPROCESSABLE_ENTITY,
            // Django REST framework and seed 003 answer 400 for any bad input.
            Self::Seed002 | Self::Seed003 => StatusCode::BAD_REQUEST,
            Self::GrpcGateway | Self::Seed004 => failure.http,
        }
    }
}

fn kind_of(reason: Option<Reason>, rules: NameRules) -> ViolationKind {
    match reason {
        Some(Reason::FieldRequired | Reason::BillingAccountEmailRequired) => ViolationKind::Missing,
        Some(Reason::UnsupportedField) => ViolationKind::Unsupported,
        Some(Reason::NameRequired) => ViolationKind::Blank,
        Some(Reason::NameTooShort) => ViolationKind::TooShort(rules.min_chars),
        Some(Reason::NameTooLong) => ViolationKind::TooLong(rules.max_chars),
        Some(Reason::InvalidUuid) => ViolationKind::NotUuid,
        Some(Reason::InvalidEmail) => ViolationKind::InvalidEmail,
        Some(Reason::MalformedBody) => ViolationKind::Malformed,
        Some(other) => ViolationKind::Other(other),
        None => ViolationKind::Other(Reason::InvalidFieldValue),
    }
}
