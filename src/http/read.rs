//! Reading a request body, in one place: JSON, urlencoded and multipart
//! forms become one JSON object of fields, within the size limit.

use axum::extract::{FromRequest, Multipart, Request};
use http::{HeaderMap, header};
use serde_json::{Map, Value};
use tonic::Status;

use super::{body, errors, json, rules::HttpRule};

/// Most parts a multipart form may have: the request messages have a
/// dozen fields; thousands of empty parts are an attack, not a request.
const MAX_FORM_PARTS: usize = 256;

/// How a route reads its bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// grpc-gateway's: JSON, also when sent as a form (`curl -d` labels
    /// JSON a form), a key given twice refused as protojson refuses it;
    /// forms are read when the body is one.
    Gateway,
    /// JSON only, or JSON and forms (a seed's framework): by content type,
    /// a repeated JSON key read as its last value, as Python's json does.
    Seed { forms: bool },
}

/// The body's fields as a JSON object: a JSON body, or form fields
/// (urlencoded or multipart, when the format reads them) typed by the
/// request message's fields.
pub async fn read_fields(
    rule: &HttpRule,
    request: Request,
    max_bytes: usize,
    format: BodyFormat,
) -> Result<Map<String, Value>, Status> {
    let content_type = content_type(request.headers());
    let descriptor = rule.rpc.input();
    let forms = format != BodyFormat::Seed { forms: false };
    if !forms && is_form(&content_type) {
        return Err(errors::unsupported_media_type(&content_type));
    }
    if content_type == "multipart/form-data" {
        let mut multipart = Multipart::from_request(request, &())
            .await
            .map_err(|e| errors::malformed(&e.body_text()))?;
        // The same limit as any other body, over all parts together,
        // counted as they arrive; and a bound on the number of parts.
        let mut fields = Map::new();
        let mut used = 0usize;
        let mut parts = 0usize;
        let mut parts_read = Vec::new();
        while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
            parts += 1;
            if parts > MAX_FORM_PARTS {
                return Err(errors::too_large());
            }
            let name = field.name().unwrap_or_default().to_owned();
            used += name.len();
            let mut value = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                used += chunk.len();
                if used > max_bytes {
                    return Err(errors::too_large());
                }
                value.extend_from_slice(&chunk);
            }
            let text = String::from_utf8(value).map_err(|_| {
                errors::malformed(&format!("Form field '{name}' is not UTF-8 text."))
            })?;
            parts_read.push((name, text));
        }
        // The whole form first, within its limits; then what it says.
        for (name, text) in parts_read {
            body::insert_text(&descriptor, &mut fields, &name, &text)?;
        }
        return Ok(fields);
    }
    let bytes = read_limited(request.into_body(), max_bytes).await?;
    body_fields(&descriptor, &content_type, &bytes, format)
}

/// How much of a body over the limit is read and thrown away, so that a
/// client still sending it can read the 413 rather than lose the
/// connection under it; past this the connection is closed (announced with
/// `Connection: close`, see `mod.rs`).
const DRAIN_BYTES: usize = 8 * 1024 * 1024;

/// How long that may take.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// The whole body, when it is at most `max_bytes`; else 413, after the
/// rest of the body (up to `DRAIN_BYTES`) was read and dropped.
async fn read_limited(body: axum::body::Body, max_bytes: usize) -> Result<bytes::Bytes, Status> {
    use http_body_util::BodyExt;
    let mut body = body;
    // The chunks as they came: a buffer grown by doubling would hold up
    // to twice what the memory budget counted while a body trickles in.
    let mut chunks: Vec<bytes::Bytes> = Vec::new();
    let mut size = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| status_of_body_error(&e).unwrap_or_else(errors::too_large))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if size + data.len() > max_bytes {
            drop(chunks);
            let _ = tokio::time::timeout(DRAIN_TIME, drain(body, DRAIN_BYTES)).await;
            return Err(errors::too_large());
        }
        size += data.len();
        chunks.push(data);
    }
    Ok(match chunks.len() {
        0 => bytes::Bytes::new(),
        1 => chunks.pop().expect("one chunk"),
        _ => {
            let mut whole = bytes::BytesMut::with_capacity(size);
            for chunk in chunks {
                whole.extend_from_slice(&chunk);
            }
            whole.freeze()
        }
    })
}

/// Reads and drops up to `limit` bytes of what is left of `body`.
async fn drain(mut body: axum::body::Body, limit: usize) {
    use http_body_util::BodyExt;
    let mut seen = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen > limit {
                return;
            }
        }
    }
}

/// The fields of a JSON or urlencoded form body (`content_type` lowercase,
/// without parameters) as a JSON object, typed by `descriptor`'s fields.
pub fn body_fields(
    descriptor: &prost_reflect::MessageDescriptor,
    content_type: &str,
    bytes: &[u8],
    format: BodyFormat,
) -> Result<Map<String, Value>, Status> {
    let gateway = format == BodyFormat::Gateway;
    // A form's first key is a field's name: one starting with `{` or `[`
    // is JSON sent without its content type (curl -d), which grpc-gateway
    // reads.
    let json_as_form = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| matches!(b, b'{' | b'['));
    let content_type = match content_type {
        "application/x-www-form-urlencoded" if gateway && json_as_form => "application/json",
        other => other,
    };
    match content_type {
        "application/x-www-form-urlencoded" => {
            let mut fields = Map::new();
            for (name, text) in form_pairs(bytes)? {
                body::insert_text(descriptor, &mut fields, &name, &text)?;
            }
            Ok(fields)
        }
        json if json.is_empty() || json == "application/json" || json.ends_with("+json") => {
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(Map::new());
            }
            let parsed = if gateway {
                serde_json::from_slice::<json::Strict>(bytes).map(|strict| strict.0)
            } else {
                serde_json::from_slice::<Value>(bytes)
            };
            match parsed {
                Err(e) if gateway && e.to_string().starts_with(json::DUPLICATE_KEY) => {
                    Err(errors::repeated(&e.to_string()))
                }
                Ok(Value::Object(fields)) => Ok(fields),
                Ok(_) => Err(errors::malformed("The body must be a JSON object.")),
                Err(e) => Err(errors::malformed(&format!(
                    "The body is not valid JSON: {e}."
                ))),
            }
        }
        other => Err(errors::unsupported_media_type(other)),
    }
}

/// The pairs of an urlencoded form (or query), decoded strictly: a
/// percent-encoded byte sequence that is not UTF-8 (`%FF`) is refused, not
/// read as U+FFFD.
pub fn form_pairs(bytes: &[u8]) -> Result<Vec<(String, String)>, Status> {
    let decode = |part: &[u8]| -> Result<String, Status> {
        let spaced: Vec<u8> = part
            .iter()
            .map(|b| if *b == b'+' { b' ' } else { *b })
            .collect();
        percent_encoding::percent_decode(&spaced)
            .decode_utf8()
            .map(|text| text.into_owned())
            .map_err(|_| errors::malformed("A form field is not UTF-8 text once percent-decoded."))
    };
    bytes
        .split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut halves = pair.splitn(2, |b| *b == b'=');
            let name = decode(halves.next().unwrap_or_default())?;
            let value = decode(halves.next().unwrap_or_default())?;
            Ok((name, value))
        })
        .collect()
}

fn is_form(content_type: &str) -> bool {
    matches!(
        content_type,
        "multipart/form-data" | "application/x-www-form-urlencoded"
    )
}

/// The media type of `headers`' content type, lowercase, without
/// parameters; empty when there is none.
fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// The status a guarded body failed with (the memory budget used up, the
/// body too slow), if that is why reading it failed.
fn status_of_body_error(error: &(dyn std::error::Error + 'static)) -> Option<Status> {
    let mut source = Some(error);
    while let Some(error) = source {
        if let Some(status) = error.downcast_ref::<Status>() {
            return Some(status.clone());
        }
        source = error.source();
    }
    None
}

fn multipart_error(error: axum::extract::multipart::MultipartError) -> Status {
    if let Some(status) = status_of_body_error(&error) {
        return status;
    }
    if error.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
        errors::too_large()
    } else {
        errors::malformed(&error.body_text())
    }
}
