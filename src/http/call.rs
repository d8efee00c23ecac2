//! The in-process gRPC call: a JSON request, already a `DynamicMessage`,
//! goes to the same tower service the gRPC port serves through tonic's own
//! client, with a codec that encodes messages by descriptor and keeps the
//! reply as sent, for the route to decode as it answers (a seed's route
//! straight into its typed message). Framing, trailers and status parsing
//! are tonic's.

use std::convert::Infallible;

use bytes::{Buf, Bytes};
use http::{HeaderMap, uri::PathAndQuery};
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use tonic::{
    Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    metadata::MetadataMap,
};

use super::rules::HttpRule;
use crate::{
    domain::{Caller, NameRules},
    grpc::{AuthenticatedCaller, CallDeadline, KnownOrganizations, SeedNameRules},
    storage::CallerOrganizations,
    telemetry,
};

/// The boxed tonic service that answers the calls: the same one the gRPC
/// port serves.
pub type GrpcService = tower::util::BoxCloneSyncService<
    http::Request<tonic::body::Body>,
    http::Response<tonic::body::Body>,
    Infallible,
>;

/// Request headers handed on to the gRPC service as metadata: credentials,
/// the deadline (`grpc-timeout`, as in gRPC: `5S`, `500m`) and a request
/// id. The W3C trace context is the HTTP request's span's (`traceparent`,
/// `tracestate`), or the caller's when nothing is traced.
const FORWARDED_HEADERS: &[&str] = &["authorization", "cookie", "grpc-timeout", "x-request-id"];
const TRACE_HEADERS: &[&str] = &["traceparent", "tracestate"];

/// grpc-gateway's prefix for metadata in HTTP headers: `Grpc-Metadata-Foo`
/// in a request is the call's `foo`; the reply's header metadata `foo`
/// comes back as `Grpc-Metadata-Foo`.
const METADATA_PREFIX: &str = "grpc-metadata-";

/// What the gateway learnt of a call before its body: who calls (and,
/// for a create, the caller's organizations), the seed's name rules on a
/// route that speaks a seed's dialect, and when the call must have
/// answered. It rides in the call's extensions, never from the network.
pub struct CallContext {
    pub caller: Caller,
    pub organizations: Option<CallerOrganizations>,
    pub rules: Option<NameRules>,
    pub deadline: CallDeadline,
}

/// Calls `rule`'s RPC on `service` as `caller` with `message` and
/// `metadata` (`metadata_of` the request's headers; and a seed's name
/// rules, for a route that speaks its dialect); the reply and its
/// metadata as `Grpc-Metadata-*` headers, or the status the service
/// answered.
pub async fn call(
    service: &GrpcService,
    rule: &HttpRule,
    metadata: HeaderMap,
    context: CallContext,
    message: DynamicMessage,
) -> Result<(Reply, HeaderMap), Status> {
    let CallContext {
        caller,
        organizations,
        rules,
        deadline,
    } = context;
    let path = PathAndQuery::try_from(rule.grpc_path())
        .map_err(|e| Status::internal(format!("the RPC's path: {e}")))?;
    let mut request = tonic::Request::new(message);
    *request.metadata_mut() = MetadataMap::from_headers(metadata);
    // Authenticated already, before the body was read: not again.
    request.extensions_mut().insert(AuthenticatedCaller(caller));
    request.extensions_mut().insert(deadline);
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
    let reply = grpc.unary(request, path, DynamicCodec).await?;
    let (metadata, message, _) = reply.into_parts();
    Ok((message, headers_of_metadata(&metadata.into_headers())))
}

/// The metadata a call carries, from an HTTP request's `headers`: the
/// forwarded headers, each `Grpc-Metadata-<name>` as `<name>` (names of
/// the gRPC protocol itself, `grpc-*`, `te` and `content-type`, are not
/// the client's to set), and the current trace context.
pub fn metadata_of(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    let traced = telemetry::inject_current_context(&mut out);
    let trace_headers: &[&str] = if traced { &[] } else { TRACE_HEADERS };
    for name in FORWARDED_HEADERS.iter().chain(trace_headers) {
        for value in headers.get_all(*name) {
            out.append(*name, value.clone());
        }
    }
    for (name, value) in headers {
        let Some(key) = name.as_str().strip_prefix(METADATA_PREFIX) else {
            continue;
        };
        if is_reserved(key) {
            continue;
        }
        if let Ok(key) = http::HeaderName::from_bytes(key.as_bytes()) {
            out.append(key, value.clone());
        }
    }
    out
}

/// The reply's metadata as grpc-gateway answers it: `Grpc-Metadata-<name>`.
fn headers_of_metadata(metadata: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in metadata {
        if is_reserved(name.as_str()) {
            continue;
        }
        if let Ok(header) =
            http::HeaderName::from_bytes(format!("{METADATA_PREFIX}{name}").as_bytes())
        {
            out.append(header, value.clone());
        }
    }
    out
}

fn is_reserved(name: &str) -> bool {
    name.is_empty()
        || name.starts_with("grpc-")
        || name.starts_with(':')
        || matches!(name, "te" | "content-type" | "date" | "content-length")
}

/// A reply as the service encoded it.
pub struct Reply(Bytes);

impl Reply {
    /// The reply as the message `descriptor` describes.
    pub fn dynamic(self, descriptor: MessageDescriptor) -> Result<DynamicMessage, Status> {
        DynamicMessage::decode(descriptor, self.0)
            .map_err(|e| Status::internal(format!("decoding the reply: {e}")))
    }

    /// The reply as the generated message `M`.
    pub fn decode<M: Message + Default>(self) -> Result<M, Status> {
        M::decode(self.0).map_err(|e| Status::internal(format!("decoding the reply: {e}")))
    }
}

/// Encodes any message; keeps the reply's bytes.
struct DynamicCodec;

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = Reply;
    type Encoder = DynamicEncoder;
    type Decoder = ReplyDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        ReplyDecoder
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

struct ReplyDecoder;

impl Decoder for ReplyDecoder {
    type Item = Reply;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Reply>, Status> {
        Ok(Some(Reply(src.copy_to_bytes(src.remaining()))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    http::HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn grpc_metadata_headers_become_metadata_and_back() {
        let sent = metadata_of(&headers(&[
            ("grpc-metadata-x-tenant", "a"),
            ("grpc-metadata-authorization", "Bearer t"),
            ("grpc-metadata-grpc-timeout", "1n"),
            ("grpc-metadata-content-type", "text/plain"),
            ("x-other", "dropped"),
        ]));
        assert_eq!(sent.get("x-tenant").unwrap(), "a");
        assert_eq!(sent.get("authorization").unwrap(), "Bearer t");
        assert!(sent.get("grpc-timeout").is_none());
        assert!(sent.get("content-type").is_none());
        assert!(sent.get("x-other").is_none());

        let answered = headers_of_metadata(&headers(&[
            ("x-served-by", "b"),
            ("grpc-status", "0"),
            ("content-type", "application/grpc"),
        ]));
        assert_eq!(answered.len(), 1);
        assert_eq!(answered.get("grpc-metadata-x-served-by").unwrap(), "b");
    }
}
