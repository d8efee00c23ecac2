//! Path and query text as the JSON values of the fields they name.

use prost_reflect::{Kind, MessageDescriptor};
use serde_json::{Map, Number, Value};

use crate::domain::Reason;

use super::fields::{field_named, invalid};

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
pub(super) fn typed(kind: &Kind, text: &str) -> Option<Value> {
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
