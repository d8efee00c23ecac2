//! The JSON schemas of the document: messages, fields, the error body.

use std::collections::BTreeMap;

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value, json};

use crate::domain::Reason;
use crate::http::{body::is_required, json::JsonNames, rules::HttpRule};

/// Every `ErrorInfo.reason` of the service, from the catalogue.
pub(super) fn reason_schema() -> Value {
    json!({
        "type": "string",
        "description": "google.rpc.ErrorInfo.reason (domain workspace.v1) of an error's details.",
        "enum": Reason::ALL.iter().map(|reason| reason.as_str()).collect::<Vec<_>>(),
    })
}

/// A message's schema: a reference to its component, or, for the
/// well-known types (which have none), its JSON mapping's shape.
pub(super) fn reference(message: &MessageDescriptor) -> Value {
    match message.full_name() {
        "google.protobuf.Empty" => json!({"type": "object"}),
        "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
        "google.protobuf.FieldMask" => json!({"type": "string"}),
        name if name.starts_with("google.protobuf.") => json!({}),
        name => json!({"$ref": format!("#/components/schemas/{name}")}),
    }
}

/// The body of a `body: "*"` route: the request message without the
/// fields its path binds (grpc-gateway takes those from the path, so the
/// body neither needs nor lists them); a component of its own,
/// `<message>.Body`, when the path binds any.
pub(super) fn body_schema(
    rule: &HttpRule,
    names: JsonNames,
    schemas: &mut BTreeMap<String, Value>,
) -> Value {
    let input = rule.rpc.input();
    if rule.path_fields.is_empty() {
        return reference(&input);
    }
    let bound: Vec<String> = rule
        .path_fields
        .iter()
        .filter_map(|name| input.get_field_by_name(name))
        .map(|field| match names {
            JsonNames::Camel => field.json_name().to_owned(),
            JsonNames::Proto => field.name().to_owned(),
        })
        .collect();
    let mut schema = schemas
        .get(input.full_name())
        .cloned()
        .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    if let Some(Value::Object(properties)) = schema.get_mut("properties") {
        properties.retain(|name, _| !bound.contains(name));
    }
    if let Some(Value::Array(required)) = schema.get_mut("required") {
        required.retain(|name| !bound.iter().any(|b| name == b.as_str()));
        if required.is_empty() {
            schema.as_object_mut().map(|o| o.remove("required"));
        }
    }
    if let Some(mask) = input.get_field_by_name("update_mask") {
        require_an_update(&mut schema, &mask, names);
    }
    let name = format!("{}.Body", input.full_name());
    schemas.insert(name.clone(), schema);
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// An update body names something to update: one of the fields
/// UpdateWorkspace changes, or an `update_mask` of them.
pub(super) fn require_an_update(schema: &mut Value, mask: &FieldDescriptor, names: JsonNames) {
    let name_of = |field: &FieldDescriptor| match names {
        JsonNames::Camel => field.json_name().to_owned(),
        JsonNames::Proto => field.name().to_owned(),
    };
    let message = mask.parent_message();
    let updatable: Vec<String> = crate::domain::UPDATABLE
        .iter()
        .filter_map(|name| message.get_field_by_name(name))
        .map(|field| name_of(&field))
        .collect();
    let paths = updatable.join("|");
    schema["properties"][name_of(mask)] = json!({
        "type": "string",
        "pattern": format!("^({paths})(,({paths}))*$"),
        "description": "The fields to change, comma-separated; without it, the fields the body gives.",
    });
    let any_of: Vec<Value> = updatable
        .iter()
        .chain(std::iter::once(&name_of(mask)))
        .map(|name| json!({"required": [name]}))
        .collect();
    schema["anyOf"] = Value::Array(any_of);
}

/// `schema`, or null.
pub(super) fn nullable(mut schema: Value) -> Value {
    match schema.get("$ref") {
        Some(_) => json!({"nullable": true, "allOf": [schema]}),
        None => {
            if let Value::Object(fields) = &mut schema
                && fields.contains_key("type")
            {
                fields.insert("nullable".into(), Value::Bool(true));
            }
            schema
        }
    }
}

pub(super) fn is_well_known(message: &MessageDescriptor) -> bool {
    message.full_name().starts_with("google.protobuf.")
}

pub(super) fn collect_schemas(
    message: &MessageDescriptor,
    names: JsonNames,
    schemas: &mut BTreeMap<String, Value>,
) {
    if is_well_known(message) || schemas.contains_key(message.full_name()) {
        return;
    }
    // Reserve the name first: messages may refer to themselves.
    schemas.insert(message.full_name().to_owned(), Value::Null);
    let mut properties = Map::new();
    let mut required = Vec::new();
    for field in message.fields() {
        let name = match names {
            JsonNames::Camel => field.json_name().to_owned(),
            JsonNames::Proto => field.name().to_owned(),
        };
        let mut schema = field_schema(&field);
        if is_required(&field) {
            required.push(Value::String(name.clone()));
            // A required enum takes a value: not its unspecified zero.
            if let Some(Value::Array(values)) = schema.get_mut("enum") {
                values.retain(|v| !v.as_str().is_some_and(|v| v.ends_with("_UNSPECIFIED")));
            }
        }
        properties.insert(name, schema);
        if let Kind::Message(inner) = field.kind() {
            collect_schemas(&inner, names, schemas);
        }
    }
    let mut schema = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        schema["required"] = Value::Array(required);
    }
    schemas.insert(message.full_name().to_owned(), schema);
}

pub(super) fn field_schema(field: &FieldDescriptor) -> Value {
    let item = match field.kind() {
        Kind::Bool => json!({"type": "boolean"}),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            json!({"type": "integer", "format": "int32"})
        }
        Kind::Uint32 | Kind::Fixed32 => json!({"type": "integer", "format": "int64", "minimum": 0}),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64 => {
            json!({"type": "string", "format": "int64"})
        }
        Kind::Float | Kind::Double => json!({"type": "number", "format": "double"}),
        Kind::String => json!({"type": "string"}),
        Kind::Bytes => json!({"type": "string", "format": "byte"}),
        Kind::Enum(enumeration) => json!({
            "type": "string",
            "enum": enumeration.values().map(|v| v.name().to_owned()).collect::<Vec<_>>(),
        }),
        Kind::Message(message) => reference(&message),
    };
    if field.is_list() {
        json!({"type": "array", "items": item})
    } else if let Kind::Message(_) = field.kind() {
        // A message field that is not set is written as null (grpc-gateway's
        // EmitUnpopulated).
        nullable(item)
    } else {
        item
    }
}

/// grpc-gateway's error body.
pub(super) fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["code", "message", "details"],
        "properties": {
            "code": {"type": "integer", "format": "int32", "description": "The google.rpc.Code."},
            "message": {"type": "string"},
            "details": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["@type"],
                    "properties": {"@type": {"type": "string"}},
                    "additionalProperties": true,
                },
            },
        },
    })
}
