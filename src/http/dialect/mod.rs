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
mod names;
mod schema;

use axum::{
    Json,
    response::{IntoResponse, Response},
};
use http::{Method, StatusCode};
use serde_json::{Map, Value};
use tonic::Code;
use tonic_types::StatusExt;

use super::status::http_status;
use crate::{
    domain::{Caller, NameRules, Reason},
    proto,
};

pub use names::state_name_rules;
pub use schema::Loc;

/// How a route reads and writes JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Dialect {
    /// grpc-gateway's: the proto3 JSON mapping, `{code, message, details}`.
    #[value(name = "grpc-gateway")]
    GrpcGateway,
    /// Seed 000: FastAPI, snake_case, names of more than 3 characters.
    #[value(name = "000")]
    Seed000,
    /// Seed 001: FastAPI, camelCase, names of 1 to 128 characters, a
    /// billing email required.
    #[value(name = "001")]
    Seed001,
    /// Seed 002: Django REST framework, snake_case, JSON and form bodies,
    /// names of at most 100 characters.
    #[value(name = "002")]
    Seed002,
    /// Seed 003: `{success, workspace: {id, name, orgId}}`.
    #[value(name = "003")]
    Seed003,
    /// Seed 004: `{status, message, data, session, errors}`.
    #[value(name = "004")]
    Seed004,
}

/// Which dialects the routes speak (`HTTP_DIALECTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DialectChoice {
    /// Each seed's route speaks its seed's dialect; the others grpc-gateway's.
    Seeds,
    /// Every route speaks grpc-gateway's.
    #[value(name = "grpc-gateway")]
    GrpcGateway,
}

/// The seed whose dialect `POST /api/v1/workspaces` speaks: 000 and 001
/// document the same route (`HTTP_API_V1_DIALECT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ApiV1Dialect {
    #[value(name = "000")]
    Seed000,
    #[value(name = "001")]
    Seed001,
}

impl Dialect {
    /// The dialect of `method path` under `choice`.
    pub fn of_route(method: &Method, path: &str, choice: DialectChoice, v1: ApiV1Dialect) -> Self {
        if choice == DialectChoice::GrpcGateway || method != Method::POST {
            return Self::GrpcGateway;
        }
        match path {
            "/api/v1/workspaces" => match v1 {
                ApiV1Dialect::Seed000 => Self::Seed000,
                ApiV1Dialect::Seed001 => Self::Seed001,
            },
            "/api/v3/workspaces" => Self::Seed002,
            "/workspace" => Self::Seed003,
            "/workspaces" => Self::Seed004,
            _ => Self::GrpcGateway,
        }
    }

    pub fn is_seed(self) -> bool {
        self != Self::GrpcGateway
    }

    /// The seed's document, for the OpenAPI description.
    pub fn seed(self) -> Option<&'static str> {
        match self {
            Self::GrpcGateway => None,
            Self::Seed000 => Some("000"),
            Self::Seed001 => Some("001"),
            Self::Seed002 => Some("002"),
            Self::Seed003 => Some("003"),
            Self::Seed004 => Some("004"),
        }
    }

    /// Whether the route reads form bodies as well as JSON (seed 002's
    /// document lists all three).
    pub fn reads_forms(self) -> bool {
        matches!(self, Self::GrpcGateway | Self::Seed002)
    }

    /// The body's fields, in the seed's names, as the request message's
    /// JSON (proto names); or the answer refusing them.
    pub fn request(self, body: Map<String, Value>) -> Result<Map<String, Value>, Failure> {
        schema::read(schema::fields(self), body, self.refuses_unknown_fields())
    }

    /// FastAPI ignores fields its model does not name and reads `null` as
    /// a missing optional field; Django REST framework's seed 002 refuses
    /// both.
    fn refuses_unknown_fields(self) -> bool {
        self == Self::Seed002
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

/// What went wrong, from a gRPC status or from reading the body, in the
/// terms every dialect renders: a code, a reason, a message, and the
/// fields at fault with the dialect's names.
#[derive(Debug, Clone)]
pub struct Failure {
    pub code: Code,
    /// The status grpc-gateway's table gives.
    pub http: StatusCode,
    pub reason: Option<Reason>,
    pub message: String,
    pub violations: Vec<Violation>,
    pub retry_after: Option<u64>,
}

/// One field at fault.
#[derive(Debug, Clone)]
pub struct Violation {
    /// The field's path in the dialect's names (`["billingAccountEmail"]`).
    pub loc: Loc,
    pub kind: ViolationKind,
    /// The service's words for it.
    pub description: String,
    /// What was sent, when known.
    pub input: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViolationKind {
    Missing,
    /// `null` where the field takes none (Django REST framework).
    Null,
    /// Not of the JSON type the field takes: `string` or `object`.
    WrongType(&'static str),
    /// Given, but the seed's API has no such field.
    Unsupported,
    /// Empty (after trimming).
    Blank,
    TooShort(usize),
    TooLong(usize),
    NotUuid,
    InvalidEmail,
    /// The body is not JSON (or not a JSON object).
    Malformed,
    /// Any other rule, by its reason.
    Other(Reason),
}

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

    /// A body refused by the dialect's own schema, before any call: its
    /// first violations (an answer lists a few, as a status carries a
    /// few, not one per key of a hostile body).
    fn invalid(mut violations: Vec<Violation>) -> Self {
        violations.truncate(8);
        let first = violations.first();
        let reason = first.map(|v| match &v.kind {
            ViolationKind::Missing => Reason::FieldRequired,
            ViolationKind::Unsupported => Reason::UnsupportedField,
            _ => Reason::InvalidFieldValue,
        });
        let message = first.map_or_else(
            || "The request does not match its schema.".to_owned(),
            |v| v.description.clone(),
        );
        Self {
            code: Code::InvalidArgument,
            http: http_status(Code::InvalidArgument, reason),
            reason,
            message,
            violations,
            retry_after: None,
        }
    }
}

impl Violation {
    /// A name that breaks the service's length or character rules: seed
    /// 000's 400, checked after its model accepted the body.
    pub fn is_name_rule(&self) -> bool {
        self.loc.len() == 1
            && self.loc[0] == "name"
            && matches!(
                self.kind,
                ViolationKind::Blank
                    | ViolationKind::TooShort(_)
                    | ViolationKind::TooLong(_)
                    | ViolationKind::Other(Reason::NameInvalidCharacters)
            )
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

/// RFC 3339 in UTC, as the seeds' examples print times.
fn time(timestamp: Option<&prost_types::Timestamp>) -> Value {
    timestamp
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map_or(Value::Null, |t| {
            Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        })
}

/// A workspace role as seed 001 spells it (`ROLE_WORKSPACE_OWNER`).
fn role_001(role: i32) -> &'static str {
    proto::Role::try_from(role).map_or("ROLE_UNSPECIFIED", |role| role.as_str_name())
}
