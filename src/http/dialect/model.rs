//! What every dialect shares: which dialect a route speaks, and a refusal
//! in the terms every dialect renders.

use http::{Method, StatusCode};
use serde_json::Value;
use tonic::Code;

use crate::http::status::http_status;
use crate::{domain::Reason, proto};

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

    /// FastAPI ignores fields its model does not name and reads `null` as
    /// a missing optional field; Django REST framework's seed 002 refuses
    /// both.
    pub(super) fn refuses_unknown_fields(self) -> bool {
        self == Self::Seed002
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
    /// A body refused by the dialect's own schema, before any call: its
    /// first violations (an answer lists a few, as a status carries a
    /// few, not one per key of a hostile body).
    pub(super) fn invalid(mut violations: Vec<Violation>) -> Self {
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

/// RFC 3339 in UTC, as the seeds' examples print times.
pub(super) fn time(timestamp: Option<&prost_types::Timestamp>) -> Value {
    timestamp
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map_or(Value::Null, |t| {
            Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        })
}

/// A workspace role as seed 001 spells it (`ROLE_WORKSPACE_OWNER`).
pub(super) fn role_001(role: i32) -> &'static str {
    proto::Role::try_from(role).map_or("ROLE_UNSPECIFIED", |role| role.as_str_name())
}

/// A field's path in a dialect's names, outermost first.
pub type Loc = Vec<String>;
