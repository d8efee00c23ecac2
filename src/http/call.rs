//! The in-process gRPC call: a JSON request, already a `DynamicMessage`,
//! goes to the same tower service the gRPC port serves through tonic's own
//! client, with a codec that encodes and decodes messages by descriptor.
//! Framing, trailers and status parsing are tonic's.

use http::{HeaderMap, uri::PathAndQuery};
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use tonic::{
    Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    metadata::MetadataMap,
};

use super::{GrpcService, rules::HttpRule};
use crate::{
    domain::{Caller, NameRules},
    grpc::{AuthenticatedCaller, KnownOrganizations, SeedNameRules},
    storage::CallerOrganizations,
    telemetry,
};

/// Request headers handed on to the gRPC service as metadata: credentials,
/// the deadline (`grpc-timeout`, as in gRPC: `5S`, `500m`) and a request
/// id. The W3C trace context is the HTTP request's span's (`traceparent`,
/// `tracestate`), or the caller's when nothing is traced.
const FORWARDED_HEADERS: &[&str] = &["authorization", "cookie", "grpc-timeout", "x-request-id"];
const TRACE_HEADERS: &[&str] = &["traceparent", "tracestate"];

/// Calls `rule`'s RPC on `service` as `caller` with `message` and the
/// forwarded part of `headers` (and a seed's name rules, for a route that
/// speaks its dialect); the reply, or the status the service answered.
pub async fn call(
    service: &GrpcService,
    rule: &HttpRule,
    headers: &HeaderMap,
    caller: Caller,
    organizations: Option<CallerOrganizations>,
    rules: Option<NameRules>,
    message: DynamicMessage,
) -> Result<DynamicMessage, Status> {
    let path = PathAndQuery::try_from(rule.grpc_path())
        .map_err(|e| Status::internal(format!("the RPC's path: {e}")))?;
    let mut request = tonic::Request::new(message);
    *request.metadata_mut() = MetadataMap::from_headers(forwarded(headers));
    // Authenticated already, before the body was read: not again.
    request.extensions_mut().insert(AuthenticatedCaller(caller));
    if let Some(organizations) = organizations {
        request
            .extensions_mut()
            .insert(KnownOrganizations(organizations));
    }
    if let Some(rules) = rules {
        request.extensions_mut().insert(SeedNameRules(rules));
    }
    // The reply comes from this process, already held to its limit.
    let mut grpc = tonic::client::Grpc::new(service.clone()).max_decoding_message_size(usize::MAX);
    grpc.ready()
        .await
        .map_err(|e| Status::internal(format!("the service is not ready: {e}")))?;
    let reply = grpc
        .unary(request, path, DynamicCodec(rule.rpc.output()))
        .await?;
    Ok(reply.into_inner())
}

/// The headers the gRPC call carries, with the current trace context.
fn forwarded(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    let traced = telemetry::inject_current_context(&mut out);
    let trace_headers: &[&str] = if traced { &[] } else { TRACE_HEADERS };
    for name in FORWARDED_HEADERS.iter().chain(trace_headers) {
        for value in headers.get_all(*name) {
            out.append(*name, value.clone());
        }
    }
    out
}

/// Encodes any message; decodes replies as the descriptor says.
struct DynamicCodec(MessageDescriptor);

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        DynamicDecoder(self.0.clone())
    }
}

struct DynamicEncoder;

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: DynamicMessage, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("encoding the request: {e}")))
    }
}

struct DynamicDecoder(MessageDescriptor);

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, Status> {
        DynamicMessage::decode(self.0.clone(), src)
            .map(Some)
            .map_err(|e| Status::internal(format!("decoding the reply: {e}")))
    }
}
