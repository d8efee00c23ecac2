//! The JSON/HTTP mapping of the gRPC API, as grpc-gateway or Envoy's
//! grpc_json_transcoder would serve it: routes from the `google.api.http`
//! annotations, the proto3 JSON mapping, grpc-gateway's error body.
//!
//! Every call is handed to the same tonic service the gRPC port serves,
//! through tonic's client (`call.rs`): one path for the domain, two
//! transports.
//!
//! - `rules.rs`: the routes, from the annotations.
//! - `read.rs`: a request body as JSON fields, within the size limit.
//! - `body.rs`: path, query and body fields as the request message.
//! - `call.rs`: the in-process gRPC call.
//! - `errors.rs`, `status.rs`: the layer's own errors; statuses as answers.
//! - `openapi.rs`: the OpenAPI document of the routes.
//! - `dialect/`: the seeds' own JSON, on the routes their documents name.

mod body;
mod call;
mod dialect;
mod errors;
mod json;
mod openapi;
mod read;
mod rules;
mod slash;
mod status;

use std::{collections::HashMap, sync::Arc};

use axum::{
    Json, Router,
    extract::{Path, Request, rejection::PathRejection},
    response::{IntoResponse, Response},
    routing::{MethodFilter, MethodRouter, get},
};
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use serde_json::Value;

pub use body::request_message;
pub use call::GrpcService;
pub use dialect::{ApiV1Dialect, Dialect, DialectChoice};
pub use json::{JsonNames, json_options};
pub use read::{BodyFormat, body_fields};
pub use rules::{HttpRule, http_rules};

use crate::{
    auth::Authenticator,
    domain::{Caller, NameRules},
    grpc::CallDeadline,
    proto,
};
use call::CallContext;
use dialect::Failure;

/// How the mapping reads and answers: the settings it is built with.
#[derive(Debug, Clone, Copy)]
pub struct GatewayOptions {
    /// Field names of grpc-gateway answers.
    pub names: JsonNames,
    pub dialects: DialectChoice,
    pub api_v1: ApiV1Dialect,
    /// The configured name rules, for dialects whose seed states none.
    pub name_rules: NameRules,
    pub max_body_bytes: usize,
    /// The longest a call may take (`MAX_CALL_DURATION_MS`), its
    /// `grpc-timeout` shorter.
    pub max_call_duration: std::time::Duration,
}

/// The HTTP side: rules, descriptors, the gRPC service to hand calls to.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    authenticator: Authenticator,
    pool: DescriptorPool,
    rules: Vec<HttpRule>,
    /// The dialect of each rule.
    dialects: Vec<Dialect>,
    grpc: GrpcService,
    names: SerializeOptions,
    proto_names: bool,
    name_rules: NameRules,
    max_body_bytes: usize,
    max_call_duration: std::time::Duration,
    openapi: Value,
}

/// Why a request got no reply from its RPC: a status (the RPC's, or the
/// layer's own), or a body its dialect refused.
enum Refusal {
    Status(tonic::Status),
    Invalid(Failure),
}

impl From<tonic::Status> for Refusal {
    fn from(status: tonic::Status) -> Self {
        Self::Status(status)
    }
}

impl Gateway {
    /// Reads the rules from the encoded descriptor set.
    pub fn new(
        descriptor_set: &[u8],
        authenticator: Authenticator,
        grpc: GrpcService,
        options: GatewayOptions,
    ) -> anyhow::Result<Self> {
        let pool = DescriptorPool::decode(descriptor_set)?;
        let rules = http_rules(&pool)?;
        let dialects: Vec<Dialect> = rules
            .iter()
            .map(|rule| {
                Dialect::of_route(&rule.method, &rule.path, options.dialects, options.api_v1)
            })
            .collect();
        let mut openapi = openapi::document(&rules, &dialects, options.names);
        dialect::state_name_rules(&mut openapi, &rules, &dialects, options.name_rules);
        Ok(Self {
            inner: Arc::new(Inner {
                authenticator,
                pool,
                rules,
                dialects,
                grpc,
                names: json_options(options.names),
                proto_names: options.names == JsonNames::Proto,
                name_rules: options.name_rules,
                max_body_bytes: options.max_body_bytes,
                max_call_duration: options.max_call_duration,
                openapi,
            }),
        })
    }

    /// An axum router with one route per rule, plus `/openapi.json`.
    pub fn router(&self) -> Router {
        let mut by_path: Vec<(String, MethodRouter)> = Vec::new();
        for (index, rule) in self.inner.rules.iter().enumerate() {
            let gateway = self.clone();
            let handler = move |path: Result<Path<HashMap<String, String>>, PathRejection>,
                                request: Request| async move {
                gateway.handle(index, path, request).await
            };
            let filter =
                MethodFilter::try_from(rule.method.clone()).expect("rules use standard methods");
            match by_path.iter_mut().find(|(path, _)| *path == rule.path) {
                Some((_, methods)) => *methods = std::mem::take(methods).on(filter, handler),
                None => by_path.push((rule.path.clone(), MethodRouter::new().on(filter, handler))),
            }
        }
        let openapi = self.inner.openapi.clone();
        let mut router =
            Router::new().route("/openapi.json", get(move || async move { Json(openapi) }));
        for (path, methods) in by_path {
            router = router.route(&path, methods);
        }
        for path in slash::fastapi_paths(&self.inner.rules, &self.inner.dialects) {
            let target = path.clone();
            router = router.route(
                &format!("{path}/"),
                axum::routing::any(move |uri: http::Uri| async move {
                    slash::redirect(&target, uri.query())
                }),
            );
        }
        let gateway = self.clone();
        let router = router.method_not_allowed_fallback(move || async move {
            gateway.error(&errors::method_not_allowed(), false)
        });
        let gateway = self.clone();
        router.fallback(move || async move { gateway.error(&errors::route_not_found(), false) })
    }

    /// grpc-gateway's error answer; `with_body` when the route takes a
    /// body (whose schema errors are 422; elsewhere INVALID_ARGUMENT is 400).
    fn error(&self, status: &tonic::Status, with_body: bool) -> Response {
        status::error_response(status, &self.inner.pool, &self.inner.names, with_body)
    }

    /// The answer to `refusal` in the dialect of rule `index`.
    fn refused(&self, index: usize, refusal: Refusal) -> Response {
        let rule = &self.inner.rules[index];
        let dialect = self.inner.dialects[index];
        if !dialect.is_seed() {
            return match refusal {
                Refusal::Status(status) => {
                    let about_the_body =
                        !rule.body.is_empty() && !names_a_path_field(&status, rule);
                    self.error(&status, about_the_body)
                }
                Refusal::Invalid(_) => unreachable!("only seed dialects read bodies themselves"),
            };
        }
        let failure = match refusal {
            Refusal::Status(status) => {
                Failure::of_status(&status, dialect, dialect.name_rules(self.inner.name_rules))
            }
            Refusal::Invalid(failure) => failure,
        };
        dialect.error(&failure)
    }

    async fn handle(
        &self,
        index: usize,
        path: Result<Path<HashMap<String, String>>, PathRejection>,
        request: Request,
    ) -> Response {
        let http1 = request.version() < http::Version::HTTP_2;
        let mut response = self.answer(index, path, request).await;
        // A body over the limit may not have been read to its end: the
        // connection cannot carry another request, and HTTP/1.1 clients
        // are told so rather than find it closed.
        if http1 && response.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
            response.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
        response
    }

    async fn answer(
        &self,
        index: usize,
        path: Result<Path<HashMap<String, String>>, PathRejection>,
        request: Request,
    ) -> Response {
        let path = match path {
            Ok(Path(path)) => path,
            Err(PathRejection::MissingPathParams(_)) => HashMap::new(),
            Err(rejection) => {
                let status = errors::invalid_path(&rejection.body_text());
                return self.refused(index, status.into());
            }
        };
        match self.transcode(index, path, request).await {
            Ok(response) => response,
            Err(refusal) => self.refused(index, refusal),
        }
    }

    /// The request as its RPC's message, the call, the reply as JSON. A
    /// `grpc-timeout` header must parse (400 otherwise); it goes on with
    /// the call, whose deadline it sets as for gRPC callers (504 when it
    /// expires).
    async fn transcode(
        &self,
        index: usize,
        path: HashMap<String, String>,
        request: Request,
    ) -> Result<Response, Refusal> {
        let rule = &self.inner.rules[index];
        let dialect = self.inner.dialects[index];
        let query = read::form_pairs(request.uri().query().unwrap_or("").as_bytes())?;
        let metadata = call::metadata_of(request.headers());
        // The call's deadline, from its `grpc-timeout` (400 when that does
        // not parse), runs from here: authentication and the call share it.
        let deadline = CallDeadline::of(metadata.get("grpc-timeout"), self.inner.max_call_duration)
            .ok_or_else(errors::invalid_timeout)?;
        let idempotency_key = idempotency_key(request.headers())?;
        // Check 1 before the body: without valid credentials the answer is
        // 401 and not a byte of the body is read. As on the gRPC port: within
        // the call's deadline, and UNAVAILABLE at once in an outage.
        let creating = rule.grpc_path() == crate::grpc::CREATE_WORKSPACE_PATH;
        let (caller, organizations) = crate::grpc::authenticate_within(
            &self.inner.authenticator,
            &metadata,
            creating,
            deadline.0,
        )
        .await?;
        let body = read_body(rule, dialect, request, self.inner.max_body_bytes).await?;
        let mut message = body::request_message(rule, body, &path, &query)?;
        if let Some(key) = idempotency_key {
            set_if_empty(&mut message, "request_id", &key);
        }

        let rules = dialect
            .is_seed()
            .then(|| dialect.name_rules(self.inner.name_rules));
        // A preview (AIP-163) created nothing: 200, not 201.
        let status = match message.get_field_by_name("validate_only").as_deref() {
            Some(prost_reflect::Value::Bool(true)) => http::StatusCode::OK,
            _ => rule.success_status(),
        };
        let (reply, reply_headers) = call::call(
            &self.inner.grpc,
            rule,
            metadata,
            CallContext {
                caller,
                organizations,
                rules,
                deadline,
            },
            message,
        )
        .await?;
        let mut response = if dialect.is_seed() {
            seed_answer(dialect, reply, &caller)?
        } else {
            let reply = reply.dynamic(rule.rpc.output())?;
            let json = json::reply(&reply, &self.inner.names, self.inner.proto_names)
                .map_err(|e| tonic::Status::internal(format!("unencodable reply: {e}")))?;
            (status, Json(json)).into_response()
        };
        response.headers_mut().extend(reply_headers);
        Ok(response)
    }
}

/// The request's body as JSON fields, as its dialect reads it (a seed's
/// names turned into the RPC's); none for a route without a body.
async fn read_body(
    rule: &HttpRule,
    dialect: Dialect,
    request: Request,
    max_body_bytes: usize,
) -> Result<Option<serde_json::Map<String, Value>>, Refusal> {
    if rule.body.is_empty() {
        return Ok(None);
    }
    let format = if dialect.is_seed() {
        BodyFormat::Seed {
            forms: dialect.reads_forms(),
        }
    } else {
        BodyFormat::Gateway
    };
    let fields = read::read_fields(rule, request, max_body_bytes, format).await?;
    if dialect.is_seed() {
        Ok(Some(dialect.request(fields).map_err(Refusal::Invalid)?))
    } else {
        Ok(Some(fields))
    }
}

/// The `Idempotency-Key` header: one that is not visible ASCII is refused,
/// not dropped (a retry would create again).
fn idempotency_key(headers: &http::HeaderMap) -> Result<Option<String>, tonic::Status> {
    headers
        .get("idempotency-key")
        .map(|value| {
            value
                .to_str()
                .map(str::to_owned)
                .map_err(|_| errors::invalid_idempotency_key())
        })
        .transpose()
}

/// A seed route's answer to its RPC's reply (a Workspace).
fn seed_answer(
    dialect: Dialect,
    reply: call::Reply,
    caller: &Caller,
) -> Result<Response, tonic::Status> {
    let workspace: proto::Workspace = reply.decode()?;
    Ok(dialect.created(&workspace, caller))
}

/// Whether `status` is about a path variable (a bad id in the URL): 400
/// as grpc-gateway answers it, not the 422 of a body's schema.
fn names_a_path_field(status: &tonic::Status, rule: &HttpRule) -> bool {
    use tonic_types::StatusExt;
    status.get_error_details().bad_request().is_some_and(|bad| {
        bad.field_violations
            .iter()
            .any(|v| rule.path_fields.contains(&v.field))
    })
}

fn set_if_empty(message: &mut DynamicMessage, field: &str, value: &str) {
    let empty = matches!(
        message.get_field_by_name(field).as_deref(),
        Some(prost_reflect::Value::String(s)) if s.is_empty()
    );
    if empty {
        message.set_field_by_name(field, prost_reflect::Value::String(value.to_owned()));
    }
}
