//! An HTTP request's path, query and body as the request message of its
//! RPC, by the proto3 JSON mapping: both lowerCamel and proto field names
//! accepted; unknown fields refused (400, seed 002's "unsupported fields");
//! missing REQUIRED fields, malformed JSON and wrong types are schema errors
//! (422, as seeds 000 and 001 answer).

use std::collections::HashMap;

use prost_reflect::{DeserializeOptions, DynamicMessage, Kind, MessageDescriptor};
use serde_json::{Map, Value};

use super::rules::HttpRule;
use crate::domain::Reason;

mod check;
mod fields;
mod text;

pub use check::is_required;
use check::{check_fields, check_required};
use fields::{field_named, invalid, names_field};
pub use text::insert_text;
/// The request message of `rule`'s RPC from the body's fields (a JSON
/// object), the path variables and the query parameters, as grpc-gateway
/// builds it: path variables fill their fields (a body may repeat one only
/// with the same value); required fields are checked once the path is
/// merged; query parameters are read on routes without a body, and one
/// that names no field is ignored.
pub fn request_message(
    rule: &HttpRule,
    body: Option<Map<String, Value>>,
    path: &HashMap<String, String>,
    query: &[(String, String)],
) -> Result<DynamicMessage, tonic::Status> {
    let descriptor = rule.rpc.input();
    let mut fields = body.unwrap_or_default();
    check_fields(&descriptor, &fields, "")?;
    if rule.method == http::Method::PATCH {
        imply_update_mask(&descriptor, &mut fields, &rule.path_fields);
    }
    for (name, value) in path {
        bind_path(&descriptor, &mut fields, name, value)?;
    }
    if rule.body == "*" {
        check_required(&descriptor, &fields, "")?;
    }
    if rule.body.is_empty() {
        for (name, value) in query {
            if names_field(&descriptor, name) {
                insert_text(&descriptor, &mut fields, name, value)?;
            }
        }
    }
    DynamicMessage::deserialize_with_options(
        descriptor,
        Value::Object(fields),
        &DeserializeOptions::new().deny_unknown_fields(true),
    )
    .map_err(|e| {
        invalid(
            "",
            Reason::InvalidFieldValue,
            format!("The request does not match its schema: {e}."),
        )
    })
}

/// A PATCH body without `update_mask` updates the fields it gives, as a
/// JSON client means it: `{"description": ""}` clears the description
/// (proto3 alone cannot tell an empty string from a field left out, so the
/// mask is made from the body's keys, as grpc-gateway does for PATCH).
/// Keys bound by the path, `etag` and null values are not updates.
fn imply_update_mask(
    message: &MessageDescriptor,
    fields: &mut Map<String, Value>,
    path_fields: &[String],
) {
    let Some(mask) = message.get_field_by_name("update_mask") else {
        return;
    };
    if !matches!(mask.kind(), Kind::Message(m) if m.full_name() == "google.protobuf.FieldMask")
        || fields.contains_key(mask.name())
        || fields.contains_key(mask.json_name())
    {
        return;
    }
    let paths: Vec<String> = fields
        .iter()
        .filter(|(_, value)| !value.is_null())
        .filter_map(|(key, _)| field_named(message, key))
        .filter(|field| field.name() != "etag" && !path_fields.iter().any(|p| p == field.name()))
        .map(|field| field.json_name().to_owned())
        .collect();
    if !paths.is_empty() {
        fields.insert(mask.name().to_owned(), Value::String(paths.join(",")));
    }
}

/// Sets the field a path variable is bound to. The body may name it too
/// (as a client that sends the whole request message does), with the same
/// value; another value is refused rather than silently overwritten.
fn bind_path(
    message: &MessageDescriptor,
    fields: &mut Map<String, Value>,
    name: &str,
    value: &str,
) -> Result<(), tonic::Status> {
    let Some(field) = field_named(message, name) else {
        return insert_text(message, fields, name, value);
    };
    let given = fields
        .remove(field.name())
        .or_else(|| fields.remove(field.json_name()));
    match given {
        None | Some(Value::Null) => insert_text(message, fields, name, value),
        Some(Value::String(body)) if same_value(&body, value) => {
            fields.insert(field.name().to_owned(), Value::String(body));
            Ok(())
        }
        Some(_) => Err(invalid(
            field.name(),
            Reason::FieldRepeated,
            format!(
                "'{}' is given by the path and, with another value, by the body.",
                field.name()
            ),
        )),
    }
}

/// The same text, or the same UUID written in another case.
fn same_value(body: &str, path: &str) -> bool {
    body == path
        || matches!(
            (uuid::Uuid::try_parse(body), uuid::Uuid::try_parse(path)),
            (Ok(a), Ok(b)) if a == b
        )
}
