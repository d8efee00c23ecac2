//! Naming a field of a message: by proto or JSON name, with its path.

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};

use crate::domain::{DomainError, Reason};

/// A field-level error of the request as the domain says it, so HTTP and
/// gRPC errors share one shape.
pub(super) fn invalid(field: &str, reason: Reason, description: String) -> tonic::Status {
    DomainError::invalid(field, reason, description).into()
}

/// Whether the dotted `key` names a field of `message` (a query parameter
/// that does not is ignored, as grpc-gateway ignores it).
pub(super) fn names_field(message: &MessageDescriptor, key: &str) -> bool {
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
pub(super) fn field_named(message: &MessageDescriptor, key: &str) -> Option<FieldDescriptor> {
    message
        .get_field_by_name(key)
        .or_else(|| message.get_field_by_json_name(key))
}

pub(super) fn path_of(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}
