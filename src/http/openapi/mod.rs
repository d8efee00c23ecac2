//! The OpenAPI 3 document of the JSON/HTTP mapping, generated at start from
//! the descriptors and their `google.api.http` rules: paths, parameters,
//! bodies, answers and error statuses. Served at `/openapi.json`.

use std::collections::BTreeMap;

use prost_reflect::{Kind, MessageDescriptor};
use serde_json::{Map, Value, json};

mod schemas;

use super::{Dialect, json::JsonNames, rules::HttpRule, status::http_status_of};
use crate::domain::Reason;
use schemas::{body_schema, collect_schemas, error_schema, field_schema, reason_schema, reference};

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

        let parameters = parameters(rule, &input);
        let responses = responses(rule, dialect, &input, &output);
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
            operation["requestBody"] = request_body(rule, dialect, names, &mut schemas);
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

/// The route's parameters: its path variables (UUIDs), its query fields
/// (routes without a body), the Idempotency-Key header where it sets
/// request_id.
fn parameters(rule: &HttpRule, input: &MessageDescriptor) -> Vec<Value> {
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
    parameters
}

/// The route's answers: its success (and a preview's 200), and each error
/// status it can answer, in its dialect.
fn responses(
    rule: &HttpRule,
    dialect: Dialect,
    input: &MessageDescriptor,
    output: &MessageDescriptor,
) -> Map<String, Value> {
    let mut responses = Map::new();
    let created = if dialect.is_seed() {
        dialect.created_schema()
    } else {
        reference(output)
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
                "content": {"application/json": {"schema": reference(output)}},
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
    responses
}

/// The route's request body: its schema and a valid example, as JSON
/// and, where the dialect reads them, as forms.
fn request_body(
    rule: &HttpRule,
    dialect: Dialect,
    names: JsonNames,
    schemas: &mut BTreeMap<String, Value>,
) -> Value {
    let schema = if dialect.is_seed() {
        dialect.request_schema()
    } else {
        body_schema(rule, names, schemas)
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
    json!({"required": true, "content": content})
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
        (
            429,
            "Too many calls: the service, or the organization, has as many in flight as it takes; retry after Retry-After.",
        ),
        (500, "Server error."),
        (503, "The service is unavailable; try again."),
        (
            504,
            "The call's deadline (grpc-timeout, or the server's longest call) passed.",
        ),
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
