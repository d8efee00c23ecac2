//! An HTTP request's path, query and body as the request message of its
//! RPC, by the proto3 JSON mapping: both lowerCamel and proto field names
//! accepted; unknown fields refused (400, seed 002's "unsupported fields");
//! missing REQUIRED fields, malformed JSON and wrong types are schema errors
//! (422, as seeds 000 and 001 answer).

use std::collections::HashMap;

use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor,
    Value as ProtoValue,
};
use serde_json::{Map, Number, Value};

use super::rules::HttpRule;
use crate::domain::{DomainError, Reason};

/// A field-level error of the request as the domain says it, so HTTP and
/// gRPC errors share one shape.
fn invalid(field: &str, reason: Reason, description: String) -> tonic::Status {
    DomainError::invalid(field, reason, description).into()
}

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

/// Whether the dotted `key` names a field of `message` (a query parameter
/// that does not is ignored, as grpc-gateway ignores it).
fn names_field(message: &MessageDescriptor, key: &str) -> bool {
    let (head, rest) = match key.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (key, None),
    };
    match (field_named(message, head), rest) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(field), Some(rest)) => match field.kind() {
            Kind::Message(inner) => names_field(&inner, rest),
            _ => false,
        },
    }
}

/// The field of `message` called `key`, by proto or JSON name.
fn field_named(message: &MessageDescriptor, key: &str) -> Option<FieldDescriptor> {
    message
        .get_field_by_name(key)
        .or_else(|| message.get_field_by_json_name(key))
}

fn path_of(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Every key names a field, at every depth, and holds a value of the
/// field's JSON type: an error names the field at fault.
fn check_fields(
    message: &MessageDescriptor,
    fields: &Map<String, Value>,
    prefix: &str,
) -> Result<(), tonic::Status> {
    let mut seen = Vec::with_capacity(fields.len());
    for (key, value) in fields {
        let Some(field) = field_named(message, key) else {
            return Err(invalid(
                &path_of(prefix, key),
                Reason::UnsupportedField,
                format!("Unsupported field '{}'.", path_of(prefix, key)),
            ));
        };
        // One field under both its names (`validateOnly` and
        // `validate_only`) is given twice, as protojson says.
        if seen.contains(&field.number()) {
            let path = path_of(prefix, field.name());
            return Err(invalid(
                &path,
                Reason::FieldRepeated,
                format!("'{path}' is given more than once."),
            ));
        }
        seen.push(field.number());
        if let Some(expected) = type_mismatch(&field, value) {
            let path = path_of(prefix, field.name());
            return Err(invalid(
                &path,
                Reason::InvalidFieldValue,
                format!("'{path}' must be {expected}."),
            ));
        }
        if let (Kind::Message(inner), Value::Object(nested)) = (field.kind(), value)
            && !field.is_map()
            && !inner.full_name().starts_with("google.protobuf.")
        {
            check_fields(&inner, nested, &path_of(prefix, field.name()))?;
        }
    }
    Ok(())
}

/// What `value` should have been, when it is not of the JSON type the
/// proto3 JSON mapping gives `field` (`null` is every field's default).
fn type_mismatch(field: &FieldDescriptor, value: &Value) -> Option<&'static str> {
    if value.is_null() {
        return None;
    }
    if field.is_list() {
        return match value {
            Value::Array(items) => items
                .iter()
                .find_map(|item| element_mismatch(&field.kind(), item))
                .map(|_| "a list of values of its type"),
            _ => Some("a list"),
        };
    }
    if field.is_map() {
        return (!value.is_object()).then_some("an object");
    }
    element_mismatch(&field.kind(), value)
}

fn element_mismatch(kind: &Kind, value: &Value) -> Option<&'static str> {
    let fits = match kind {
        Kind::String | Kind::Bytes => value.is_string(),
        Kind::Bool => value.is_boolean(),
        // Numbers may be written as strings in the JSON mapping.
        Kind::Int32
        | Kind::Sint32
        | Kind::Sfixed32
        | Kind::Uint32
        | Kind::Fixed32
        | Kind::Int64
        | Kind::Sint64
        | Kind::Sfixed64
        | Kind::Uint64
        | Kind::Fixed64
        | Kind::Float
        | Kind::Double => value.is_number() || value.is_string(),
        Kind::Enum(_) => value.is_string() || value.is_number(),
        Kind::Message(message) => match message.full_name() {
            "google.protobuf.Timestamp"
            | "google.protobuf.Duration"
            | "google.protobuf.FieldMask" => value.is_string(),
            name if name.starts_with("google.protobuf.") => true,
            _ => value.is_object(),
        },
    };
    if fits {
        return None;
    }
    Some(match kind {
        Kind::String | Kind::Bytes => "a string",
        Kind::Bool => "true or false",
        Kind::Enum(_) => "one of its enum's names",
        Kind::Message(message) if message.full_name().starts_with("google.protobuf.") => "a string",
        Kind::Message(_) => "an object",
        _ => "a number",
    })
}

/// Fields marked `(google.api.field_behavior) = REQUIRED` are present, in
/// the message and in any nested message that is given.
fn check_required(
    message: &MessageDescriptor,
    fields: &Map<String, Value>,
    prefix: &str,
) -> Result<(), tonic::Status> {
    for field in message.fields() {
        let given = fields
            .get(field.name())
            .or_else(|| fields.get(field.json_name()));
        match given {
            None | Some(Value::Null) if is_required(&field) => {
                let path = path_of(prefix, field.name());
                return Err(invalid(
                    &path,
                    Reason::FieldRequired,
                    format!("Field required: {path}."),
                ));
            }
            Some(Value::Object(nested)) => {
                if let Kind::Message(inner) = field.kind() {
                    check_required(&inner, nested, &path_of(prefix, field.name()))?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether `field` carries `(google.api.field_behavior) = REQUIRED`.
pub fn is_required(field: &FieldDescriptor) -> bool {
    const REQUIRED: i32 = 2;
    let pool = field.parent_pool();
    let Some(extension) = pool.get_extension_by_name("google.api.field_behavior") else {
        return false;
    };
    let options = field.options();
    if !options.has_extension(&extension) {
        return false;
    }
    match options.get_extension(&extension).as_ref() {
        ProtoValue::List(values) => values
            .iter()
            .any(|v| matches!(v, ProtoValue::EnumNumber(n) if *n == REQUIRED)),
        _ => false,
    }
}

/// Sets the field at the dotted path `key` (a query parameter, a form or
/// multipart field, a path variable) from text, typed by the field's kind.
pub fn insert_text(
    message: &MessageDescriptor,
    fields: &mut Map<String, Value>,
    key: &str,
    text: &str,
) -> Result<(), tonic::Status> {
    let (head, rest) = match key.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (key, None),
    };
    let Some(field) = field_named(message, head) else {
        return Err(invalid(
            key,
            Reason::UnsupportedField,
            format!("Unsupported field '{key}'."),
        ));
    };
    match (field.kind(), rest) {
        (Kind::Message(inner), Some(rest)) => {
            let nested = fields
                .entry(field.name().to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(nested) = nested else {
                return Err(invalid(
                    key,
                    Reason::InvalidFieldValue,
                    format!("'{key}' is given twice."),
                ));
            };
            insert_text(&inner, nested, rest, text)
        }
        (_, Some(_)) => Err(invalid(
            key,
            Reason::UnsupportedField,
            format!("Unsupported field '{key}'."),
        )),
        (kind, None) => {
            let value = typed(&kind, text).ok_or_else(|| {
                invalid(
                    key,
                    Reason::InvalidFieldValue,
                    format!("'{text}' is not a valid value for '{key}'."),
                )
            })?;
            if field.is_list() {
                let list = fields
                    .entry(field.name().to_owned())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(list) = list {
                    list.push(value);
                }
            } else {
                // One value for a field that takes one: a form repeating
                // it is refused, not read as its last value.
                if fields.contains_key(field.name()) || fields.contains_key(field.json_name()) {
                    return Err(invalid(
                        key,
                        Reason::FieldRepeated,
                        format!("'{key}' is given more than once."),
                    ));
                }
                fields.insert(field.name().to_owned(), value);
            }
            Ok(())
        }
    }
}

/// Text as the JSON value the field's kind expects.
fn typed(kind: &Kind, text: &str) -> Option<Value> {
    Some(match kind {
        Kind::Bool => Value::Bool(match text {
            "true" | "1" | "on" => true,
            "false" | "0" | "off" | "" => false,
            _ => return None,
        }),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::Number(text.parse::<i32>().ok()?.into())
        }
        Kind::Uint32 | Kind::Fixed32 => Value::Number(text.parse::<u32>().ok()?.into()),
        // The JSON mapping writes 64-bit integers as strings.
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::String(text.parse::<i64>().ok()?.to_string())
        }
        Kind::Uint64 | Kind::Fixed64 => Value::String(text.parse::<u64>().ok()?.to_string()),
        Kind::Float | Kind::Double => Value::Number(Number::from_f64(text.parse::<f64>().ok()?)?),
        Kind::String | Kind::Bytes | Kind::Enum(_) => Value::String(text.to_owned()),
        // The well-known types the JSON mapping writes as strings.
        Kind::Message(message)
            if matches!(
                message.full_name(),
                "google.protobuf.Timestamp"
                    | "google.protobuf.Duration"
                    | "google.protobuf.FieldMask"
            ) =>
        {
            Value::String(text.to_owned())
        }
        Kind::Message(_) => return None,
    })
}
