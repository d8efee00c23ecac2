//! A body's JSON checked against the message before it is decoded: the
//! types of its fields, and the fields the RPC requires.

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock, PoisonError, RwLock},
};

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor, Value as ProtoValue};
use serde_json::{Map, Value};

use crate::domain::Reason;

use super::fields::{field_named, invalid, path_of};

/// Every key names a field, at every depth, and holds a value of the
/// field's JSON type: an error names the field at fault.
pub(super) fn check_fields(
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
pub(super) fn type_mismatch(field: &FieldDescriptor, value: &Value) -> Option<&'static str> {
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

pub(super) fn element_mismatch(kind: &Kind, value: &Value) -> Option<&'static str> {
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
pub(super) fn check_required(
    message: &MessageDescriptor,
    fields: &Map<String, Value>,
    prefix: &str,
) -> Result<(), tonic::Status> {
    let required = required_fields(message);
    for field in message.fields() {
        let given = fields
            .get(field.name())
            .or_else(|| fields.get(field.json_name()));
        match given {
            None | Some(Value::Null) if required.contains(&field.number()) => {
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

/// The numbers of `message`'s REQUIRED fields, read from their options
/// once per message (each field's options are decoded to be read: on
/// every request that was 1 % of an HTTP create's CPU).
fn required_fields(message: &MessageDescriptor) -> Arc<[u32]> {
    static REQUIRED: LazyLock<RwLock<HashMap<String, Arc<[u32]>>>> =
        LazyLock::new(Default::default);
    if let Some(known) = REQUIRED
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(message.full_name())
    {
        return known.clone();
    }
    let numbers: Arc<[u32]> = message
        .fields()
        .filter(is_required)
        .map(|field| field.number())
        .collect();
    REQUIRED
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(message.full_name().to_owned(), numbers.clone());
    numbers
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
