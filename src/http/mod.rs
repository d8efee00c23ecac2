//! The JSON/HTTP mapping of the gRPC API, as grpc-gateway or Envoy's
//! grpc_json_transcoder would serve it: routes from the `google.api.http`
//! annotations, the proto3 JSON mapping, grpc-gateway's error body.
//!
//! Every call is handed to the same tonic service the gRPC port serves, as
//! a gRPC request: one path for the domain, two transports.

mod body;
mod openapi;
mod rules;
mod status;

use std::{collections::HashMap, convert::Infallible, sync::Arc};

use axum::{
    Json, Router,
    extract::{FromRequest, Multipart, Request},
    response::{IntoResponse, Response},
    routing::{MethodFilter, MethodRouter, get},
};
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, header};
use http_body_util::{BodyExt, Full};
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};
use serde_json::{Map, Value};
use tonic::Code;
use tower::{Service, ServiceExt};

pub use body::request_message;
pub use rules::{HttpRule, http_rules};

use crate::{
    domain::DomainError,
    grpc::{parse_grpc_timeout, status_with_reason},
    telemetry,
};

/// Request headers handed on to the gRPC service as metadata: credentials,
/// the deadline (`grpc-timeout`, as in gRPC: `5S`, `500m`) and a request
/// id. The W3C trace context is the HTTP request's span's (`traceparent`,
/// `tracestate`), or the caller's when nothing is traced.
const FORWARDED_HEADERS: &[&str] = &["authorization", "cookie", "grpc-timeout", "x-request-id"];
const TRACE_HEADERS: &[&str] = &["traceparent", "tracestate"];

/// Which field names JSON answers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum JsonNames {
    /// `createdAt` (proto3 JSON default; seed 001).
    Camel,
    /// `created_at` (seeds 000, 002, 004).
    Proto,
}

/// The boxed tonic service that answers the calls: the same one the gRPC
/// port serves.
pub type GrpcService = tower::util::BoxCloneSyncService<
    http::Request<Full<Bytes>>,
    http::Response<tonic::body::Body>,
    Infallible,
>;

/// The fields of a JSON or urlencoded form body (`content_type` lowercase,
/// without parameters) as a JSON object, typed by `descriptor`'s fields.
/// Multipart bodies are streamed instead (`Gateway::read_body`).
pub fn body_fields(
    descriptor: &MessageDescriptor,
    content_type: &str,
    bytes: &[u8],
) -> Result<Map<String, Value>, tonic::Status> {
    match content_type {
        "application/x-www-form-urlencoded" => {
            let mut fields = Map::new();
            for (name, text) in form_urlencoded::parse(bytes) {
                body::insert_text(descriptor, &mut fields, &name, &text)?;
            }
            Ok(fields)
        }
        json if json.is_empty() || json == "application/json" || json.ends_with("+json") => {
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(Map::new());
            }
            match serde_json::from_slice::<Value>(bytes) {
                Ok(Value::Object(fields)) => Ok(fields),
                Ok(_) => Err(malformed("The body must be a JSON object.")),
                Err(e) => Err(malformed(&format!("The body is not valid JSON: {e}."))),
            }
        }
        other => Err(unsupported_media_type(other)),
    }
}

/// How replies are written in the JSON mapping: every field, named as
/// `names` says.
pub fn json_options(names: JsonNames) -> SerializeOptions {
    SerializeOptions::new()
        .use_proto_field_name(names == JsonNames::Proto)
        .skip_default_fields(false)
}

/// The HTTP side: rules, descriptors, the gRPC service to hand calls to.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    pool: DescriptorPool,
    rules: Vec<HttpRule>,
    grpc: GrpcService,
    names: SerializeOptions,
    max_body_bytes: usize,
    openapi: Value,
}

impl Gateway {
    /// Reads the rules from the encoded descriptor set.
    pub fn new(
        descriptor_set: &[u8],
        grpc: GrpcService,
        names: JsonNames,
        max_body_bytes: usize,
    ) -> anyhow::Result<Self> {
        let pool = DescriptorPool::decode(descriptor_set)?;
        let rules = http_rules(&pool)?;
        let openapi = openapi::document(&rules, names);
        let names = json_options(names);
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                rules,
                grpc,
                names,
                max_body_bytes,
                openapi,
            }),
        })
    }

    /// An axum router with one route per rule, plus `/openapi.json`.
    pub fn router(&self) -> Router {
        let mut by_path: Vec<(String, MethodRouter)> = Vec::new();
        for (index, rule) in self.inner.rules.iter().enumerate() {
            let gateway = self.clone();
            let handler =
                move |request: Request| async move { gateway.handle(index, request).await };
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
        let gateway = self.clone();
        router.fallback(move || async move {
            gateway.error(&status_with_reason(
                Code::NotFound,
                "ROUTE_NOT_FOUND",
                "No route for this path and method.",
            ))
        })
    }

    fn error(&self, status: &tonic::Status) -> Response {
        status::error_response(status, &self.inner.pool, &self.inner.names)
    }

    async fn handle(&self, index: usize, request: Request) -> Response {
        let rule = &self.inner.rules[index];
        match self.transcode(rule, request).await {
            Ok(response) => response,
            Err(status) => self.error(&status),
        }
    }

    async fn transcode(
        &self,
        rule: &HttpRule,
        request: Request,
    ) -> Result<Response, tonic::Status> {
        let path = path_variables(&rule.path, request.uri().path());
        let query: Vec<(String, String)> =
            form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let headers = request.headers().clone();
        let body = if rule.body.is_empty() {
            None
        } else {
            Some(self.read_body(rule, request).await?)
        };
        let mut message = body::request_message(rule, body, &path, &query)?;
        if let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
            set_if_empty(&mut message, "request_id", key);
        }

        let reply = self.call(rule, &headers, message).await?;
        let reply = DynamicMessage::decode(rule.rpc.output(), reply)
            .map_err(|e| tonic::Status::internal(format!("undecodable reply: {e}")))?;
        let json = reply
            .serialize_with_options(serde_json::value::Serializer, &self.inner.names)
            .map_err(|e| tonic::Status::internal(format!("unencodable reply: {e}")))?;
        Ok((rule.success_status(), Json(json)).into_response())
    }

    /// The body's fields as a JSON object: a JSON body, or form fields
    /// (urlencoded or multipart) typed by the request message's fields.
    async fn read_body(
        &self,
        rule: &HttpRule,
        request: Request,
    ) -> Result<Map<String, Value>, tonic::Status> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        let descriptor = rule.rpc.input();
        match content_type.as_str() {
            "multipart/form-data" => {
                let mut multipart = Multipart::from_request(request, &())
                    .await
                    .map_err(|e| malformed(&e.body_text()))?;
                let mut fields = Map::new();
                loop {
                    let field = match multipart.next_field().await {
                        Ok(Some(field)) => field,
                        Ok(None) => break,
                        Err(e) if e.status() == http::StatusCode::PAYLOAD_TOO_LARGE => {
                            return Err(too_large());
                        }
                        Err(e) => return Err(malformed(&e.body_text())),
                    };
                    let name = field.name().unwrap_or_default().to_owned();
                    let text = field.text().await.map_err(|e| {
                        if e.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
                            too_large()
                        } else {
                            malformed(&e.body_text())
                        }
                    })?;
                    body::insert_text(&descriptor, &mut fields, &name, &text)?;
                }
                Ok(fields)
            }
            _ => {
                let bytes = axum::body::to_bytes(request.into_body(), self.inner.max_body_bytes)
                    .await
                    .map_err(|_| too_large())?;
                body_fields(&descriptor, &content_type, &bytes)
            }
        }
    }

    /// Hands `message` to the gRPC service. A `grpc-timeout` header must
    /// parse (400 otherwise); it goes on with the call, whose handler keeps
    /// the deadline, capped by the longest call, as for gRPC callers (504
    /// when it expires).
    async fn call(
        &self,
        rule: &HttpRule,
        headers: &HeaderMap,
        message: DynamicMessage,
    ) -> Result<Bytes, tonic::Status> {
        if let Some(value) = headers.get("grpc-timeout")
            && value.to_str().ok().and_then(parse_grpc_timeout).is_none()
        {
            return Err(DomainError::invalid(
                "grpc-timeout",
                "INVALID_TIMEOUT",
                "grpc-timeout must be 1 to 8 digits and a unit: H, M, S, m, u or n (such as 5S).",
            )
            .into());
        }
        self.call_service(rule, headers, message).await
    }

    /// Hands `message` to the gRPC service and returns the reply's bytes.
    async fn call_service(
        &self,
        rule: &HttpRule,
        headers: &HeaderMap,
        message: DynamicMessage,
    ) -> Result<Bytes, tonic::Status> {
        let encoded = prost::Message::encode_to_vec(&message);
        let mut frame = BytesMut::with_capacity(encoded.len() + 5);
        frame.put_u8(0);
        frame.put_u32(encoded.len() as u32);
        frame.put_slice(&encoded);

        let mut request = http::Request::builder()
            .method(Method::POST)
            .uri(rule.grpc_path())
            .header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            )
            .header(header::TE, HeaderValue::from_static("trailers"))
            .body(Full::new(frame.freeze()))
            .map_err(|e| tonic::Status::internal(e.to_string()))?;
        let traced = telemetry::inject_current_context(request.headers_mut());
        let trace_headers: &[&str] = if traced { &[] } else { TRACE_HEADERS };
        for name in FORWARDED_HEADERS.iter().chain(trace_headers) {
            for value in headers.get_all(*name) {
                request.headers_mut().append(*name, value.clone());
            }
        }

        let mut grpc = self.inner.grpc.clone();
        let response = match grpc.ready().await {
            Ok(service) => service.call(request).await,
            Err(never) => match never {},
        };
        let Ok(response) = response;
        let (parts, body) = response.into_parts();
        if let Some(status) = tonic::Status::from_header_map(&parts.headers)
            && status.code() != Code::Ok
        {
            return Err(status);
        }
        let collected = body
            .collect()
            .await
            .map_err(|e| tonic::Status::internal(format!("reading the reply: {e}")))?;
        if let Some(status) = collected
            .trailers()
            .and_then(tonic::Status::from_header_map)
            && status.code() != Code::Ok
        {
            return Err(status);
        }
        let data = collected.to_bytes();
        if data.len() < 5 || data[0] != 0 {
            return Err(tonic::Status::internal(
                "the reply is not one uncompressed gRPC message",
            ));
        }
        let length = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
        data.get(5..5 + length)
            .map(|m| data.slice_ref(m))
            .ok_or_else(|| tonic::Status::internal("the reply's message is truncated"))
    }
}

fn malformed(description: &str) -> tonic::Status {
    DomainError::invalid("", "MALFORMED_BODY", description).into()
}

fn too_large() -> tonic::Status {
    status_with_reason(
        Code::ResourceExhausted,
        "BODY_TOO_LARGE",
        "The request body is too large.",
    )
}

fn unsupported_media_type(content_type: &str) -> tonic::Status {
    status_with_reason(
        Code::Unimplemented,
        "UNSUPPORTED_MEDIA_TYPE",
        &format!(
            "Content type '{content_type}' is not supported; send application/json, application/x-www-form-urlencoded or multipart/form-data."
        ),
    )
}

/// The values of the `{name}` segments of `template` in `path`.
fn path_variables(template: &str, path: &str) -> HashMap<String, String> {
    template
        .split('/')
        .zip(path.split('/'))
        .filter_map(|(pattern, value)| {
            let name = pattern.strip_prefix('{')?.strip_suffix('}')?;
            let value = percent_decode(value);
            Some((name.to_owned(), value))
        })
        .collect()
}

fn percent_decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
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
