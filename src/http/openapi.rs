//! The OpenAPI 3 document of the JSON/HTTP mapping, generated at start from
//! the descriptors and their `google.api.http` rules: paths, parameters,
//! bodies, answers and error statuses. Served at `/openapi.json`.

use std::collections::BTreeMap;

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value, json};

use super::{Dialect, body::is_required, json::JsonNames, rules::HttpRule, status::http_status_of};
use crate::domain::Reason;

/// The document for `rules`, each described in its dialect (`dialects`, in
/// the same order); grpc-gateway's answers with field names as `names`.
pub fn document(rules: &[HttpRule], dialects: &[Dialect], names: JsonNames) -> Value {
    let mut schemas = BTreeMap::new();
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut operation_ids: BTreeMap<String, usize> = BTreeMap::new();

    for (rule, dialect) in rules.iter().zip(dialects.iter().copied()) {
        let input = rule.rpc.input();
        let output = rule.rpc.output();
        collect_schemas(&input, names, &mut schemas);
        collect_schemas(&output, names, &mut schemas);

        let count = operation_ids.entry(rule.rpc.name().to_owned()).or_default();
        *count += 1;
        let operation_id = match *count {
            1 => rule.rpc.name().to_owned(),
            n => format!("{}{n}", rule.rpc.name()),
        };

        let mut parameters: Vec<Value> = rule
            .path_fields
            .iter()
            .map(|field| {
                // Path variables are resource ids: UUIDs.
                json!({"name": field, "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}})
            })
            .collect();
        if rule.body.is_empty() {
            for field in input.fields() {
                if rule.path_fields.iter().any(|p| p == field.name())
                    || matches!(field.kind(), Kind::Message(_))
                {
                    continue;
                }
                let mut parameter = json!({
                    "name": field.name(),
                    "in": "query",
                    "required": false,
                    "schema": field_schema(&field),
                });
                if field.name() == "page_size" {
                    parameter["example"] = json!(10);
                }
                parameters.push(parameter);
            }
        } else if input.get_field_by_name("request_id").is_some() {
            parameters.push(json!({
                "name": "Idempotency-Key",
                "in": "header",
                "required": false,
                "description": "Becomes request_id: a retry with the same key returns the first result.",
                "schema": {"type": "string", "maxLength": 128},
            }));
        }

        let mut responses = Map::new();
        let created = if dialect.is_seed() {
            dialect.created_schema()
        } else {
            reference(&output)
        };
        responses.insert(
            rule.success_status().as_u16().to_string(),
            json!({
                "description": format!("The {}.", output.name()),
                "content": {"application/json": {"schema": created}},
            }),
        );
        if !dialect.is_seed() && input.get_field_by_name("validate_only").is_some() {
            responses.insert(
                "200".into(),
                json!({
                    "description": format!("The {} a validate_only request would create; nothing was written.", output.name()),
                    "content": {"application/json": {"schema": reference(&output)}},
                }),
            );
        }
        for (status, description) in error_statuses(rule, dialect) {
            let schema = if dialect.is_seed() {
                dialect.error_schema(status)
            } else {
                json!({"$ref": "#/components/schemas/Error"})
            };
            responses.insert(
                status.to_string(),
                json!({
                    "description": with_reasons(status, description, !rule.body.is_empty()),
                    "content": {"application/json": {"schema": schema}},
                }),
            );
        }

        let summary = match dialect.seed() {
            Some(seed) => format!(
                "{} ({}), in seed {seed}'s dialect",
                rule.rpc.name(),
                rule.rpc.full_name()
            ),
            None => format!("{} ({})", rule.rpc.name(), rule.rpc.full_name()),
        };
        let mut operation = json!({
            "operationId": operation_id,
            "summary": summary,
            "parameters": parameters,
            "responses": responses,
            "security": [{"bearerAuth": []}, {"basicAuth": []}, {"sessionCookie": []}],
        });
        if !rule.body.is_empty() {
            let schema = if dialect.is_seed() {
                dialect.request_schema()
            } else {
                body_schema(rule, names, &mut schemas)
            };
            let mut content = Map::new();
            let example = example_body(rule, dialect, names);
            content.insert(
                "application/json".into(),
                json!({"schema": schema, "example": example}),
            );
            if dialect.reads_forms() {
                for form in ["application/x-www-form-urlencoded", "multipart/form-data"] {
                    content.insert(form.into(), json!({"schema": schema, "example": example}));
                }
            }
            operation["requestBody"] = json!({"required": true, "content": content});
        }
        paths
            .entry(rule.path.clone())
            .or_default()
            .insert(rule.method.as_str().to_ascii_lowercase(), operation);
    }

    schemas.insert("Error".into(), error_schema());
    schemas.insert("ErrorReason".into(), reason_schema());
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Workspace service",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The JSON/HTTP mapping of workspace.v1.WorkspaceService, generated from its protos. \
                Request bodies accept lowerCamel and proto field names alike.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "A JWT or an API token."},
                "basicAuth": {"type": "http", "scheme": "basic", "description": "An API token as the password."},
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "session"},
            },
        },
    })
}

/// A valid body for the route, in its dialect's names: what a client
/// reading this document would send first (scripts/fuzz-http.sh sends
/// each and requires it to be accepted).
fn example_body(rule: &HttpRule, dialect: Dialect, names: JsonNames) -> Value {
    const NAME: &str = "Engineering Team Workspace";
    let name = |camel: &'static str, proto: &'static str| match names {
        JsonNames::Camel => camel,
        JsonNames::Proto => proto,
    };
    match dialect {
        Dialect::Seed000 | Dialect::Seed003 => json!({"name": NAME}),
        Dialect::Seed001 => json!({"name": NAME, "billingAccountEmail": "billing@example.com"}),
        Dialect::Seed002 | Dialect::Seed004 => {
            json!({"name": NAME, "description": "For the engineers"})
        }
        Dialect::GrpcGateway => match rule.rpc.name() {
            "CreateWorkspace" => json!({"name": NAME, "description": "For the engineers"}),
            "UpdateWorkspace" => json!({"description": "Updated by the example"}),
            "AddWorkspaceMember" => json!({
                name("userId", "user_id"): "00000000-0000-4000-8000-000000000000",
                "role": "ROLE_WORKSPACE_MEMBER",
            }),
            "UpdateWorkspaceMember" => json!({"role": "ROLE_WORKSPACE_OWNER"}),
            "CreateWorkspaceAccessToken" => json!({"name": "ci"}),
            _ => json!({}),
        },
    }
}

/// `description` and the `ErrorInfo.reason`s the catalogue answers with
/// `status`.
fn with_reasons(status: u16, description: &str, with_body: bool) -> String {
    let reasons: Vec<&str> = Reason::ALL
        .iter()
        .filter(|reason| http_status_of(**reason, with_body).as_u16() == status)
        .map(|reason| reason.as_str())
        .collect();
    if reasons.is_empty() {
        description.to_owned()
    } else {
        format!("{description} ErrorInfo.reason: {}.", reasons.join(", "))
    }
}

/// Every `ErrorInfo.reason` of the service, from the catalogue.
fn reason_schema() -> Value {
    json!({
        "type": "string",
        "description": "google.rpc.ErrorInfo.reason (domain workspace.v1) of an error's details.",
        "enum": Reason::ALL.iter().map(|reason| reason.as_str()).collect::<Vec<_>>(),
    })
}

/// The error statuses an operation can answer, in the contract's words.
fn error_statuses(rule: &HttpRule, dialect: Dialect) -> Vec<(u16, &'static str)> {
    let mut statuses = vec![
        (
            400,
            "Bad request: a field breaks a rule (such as the name's length) or is not supported.",
        ),
        (401, "Missing or invalid credentials."),
        (
            403,
            "Not allowed: not a member of the organization, or not allowed to create workspaces.",
        ),
        (500, "Server error."),
        (503, "The service is unavailable; try again."),
    ];
    // Schema errors of a body; Django REST framework (002) and seed 003
    // answer bad input 400 whatever it is.
    if !rule.body.is_empty() && !matches!(dialect, Dialect::Seed002 | Dialect::Seed003) {
        statuses.push((
            422,
            "The request does not match its schema (malformed JSON, wrong types, missing required fields).",
        ));
    }
    if !rule.body.is_empty() {
        statuses.push((413, "The request body is too large."));
        statuses.push((415, "The content type is not supported."));
    }
    if rule.rpc.name().starts_with("Create") {
        statuses.extend([
            (402, "Creating workspaces is not supported with your current plan."),
            (404, "We couldn't find the specified credentials, or the first member."),
            (406, "You reached the workspace limit. Delete an existing workspace to create a new one."),
            (409, "This workspace already exists. Try giving your new workspace a different name."),
        ]);
    } else if rule.rpc.name() != "ListWorkspaces" {
        statuses.push((404, "Not found, or not visible to the caller."));
        if !rule.rpc.name().starts_with("Get") && !rule.rpc.name().starts_with("List") {
            statuses.push((
                409,
                "Conflict: the name exists, the etag is stale, or the user is a member already.",
            ));
        }
    }
    statuses.sort_unstable();
    statuses
}

/// A message's schema: a reference to its component, or, for the
/// well-known types (which have none), its JSON mapping's shape.
fn reference(message: &MessageDescriptor) -> Value {
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
fn body_schema(rule: &HttpRule, names: JsonNames, schemas: &mut BTreeMap<String, Value>) -> Value {
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
fn require_an_update(schema: &mut Value, mask: &FieldDescriptor, names: JsonNames) {
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
fn nullable(mut schema: Value) -> Value {
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

fn is_well_known(message: &MessageDescriptor) -> bool {
    message.full_name().starts_with("google.protobuf.")
}

fn collect_schemas(
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

fn field_schema(field: &FieldDescriptor) -> Value {
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
fn error_schema() -> Value {
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
