//! Seeds 000 and 001: FastAPI services. Validation errors are pydantic's
//! `{"detail": [{"type", "loc", "msg", "input", "ctx"?}]}` with `loc`
//! starting at `"body"`; every other error is `{"detail": "<message>"}`
//! (FastAPI's HTTPException).

use http::StatusCode;
use serde_json::{Value, json};

use super::model::{Dialect, Failure, Violation, ViolationKind, role_001, time};
use crate::proto;

/// Seed 000's 201: the workspace with the proto (snake_case) names; its
/// document gives the answer no schema.
pub fn created_000(workspace: &proto::Workspace) -> Value {
    json!({
        "id": workspace.id,
        "name": workspace.name,
        "description": workspace.description,
        "organization_id": workspace.organization_id,
        "document_store_credentials": workspace.document_store_credentials.as_ref().map(|c| json!({
            "workspace_document_store_credentials_id": c.workspace_document_store_credentials_id,
            "pipeline_document_store_credentials_id": c.pipeline_document_store_credentials_id,
        })),
        "file_store_credentials": workspace.file_store_credentials.as_ref().map(|c| json!({
            "file_store_credentials_id": c.file_store_credentials_id,
        })),
        "created_at": time(workspace.created_at.as_ref()),
        "updated_at": time(workspace.updated_at.as_ref()),
    })
}

pub fn created_000_schema() -> Value {
    let string = json!({"type": "string"});
    let nullable =
        |properties: Value| json!({"type": "object", "nullable": true, "properties": properties});
    json!({
        "type": "object",
        "required": ["id", "name", "description", "organization_id", "created_at", "updated_at"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "name": string,
            "description": string,
            "organization_id": {"type": "string", "format": "uuid"},
            "document_store_credentials": nullable(json!({
                "workspace_document_store_credentials_id": string,
                "pipeline_document_store_credentials_id": string,
            })),
            "file_store_credentials": nullable(json!({"file_store_credentials_id": string})),
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    })
}

/// Seed 001's CreateWorkspaceResponseDto.
pub fn created_001(workspace: &proto::Workspace) -> Value {
    let memberships: Vec<Value> = workspace
        .memberships
        .iter()
        .map(|m| {
            json!({
                "id": m.id,
                "createdAt": time(m.created_at.as_ref()),
                "updatedAt": time(m.updated_at.as_ref()),
                "userId": m.user_id,
                "workspaceId": m.workspace_id,
                "privileges": m.privileges.iter().map(|p| role_001(*p)).collect::<Vec<_>>(),
                "accessTokens": m.access_tokens.iter().map(|t| json!({
                    "id": t.id,
                    "created_at": time(t.created_at.as_ref()),
                    "name": t.name,
                    "hash": t.hash,
                    "expires_at": time(t.expires_at.as_ref()),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "id": workspace.id,
        "createdAt": time(workspace.created_at.as_ref()),
        "updatedAt": time(workspace.updated_at.as_ref()),
        "name": workspace.name,
        "memberships": memberships,
    })
}

pub fn created_001_schema() -> Value {
    let time = json!({"type": "string", "format": "date-time"});
    let uuid = json!({"type": "string", "format": "uuid"});
    json!({
        "type": "object",
        "required": ["name", "memberships"],
        "properties": {
            "id": uuid,
            "createdAt": time,
            "updatedAt": time,
            "name": {"type": "string"},
            "memberships": {"type": "array", "items": {
                "type": "object",
                "required": ["userId", "workspaceId", "privileges"],
                "properties": {
                    "id": uuid,
                    "createdAt": time,
                    "updatedAt": time,
                    "userId": {"type": "string"},
                    "workspaceId": uuid,
                    "privileges": {"type": "array", "items": {
                        "type": "string",
                        "enum": ["ROLE_WORKSPACE_OWNER", "ROLE_WORKSPACE_ADMIN", "ROLE_WORKSPACE_MEMBER"],
                    }},
                    "accessTokens": {"type": "array", "items": {
                        "type": "object",
                        "required": ["name", "hash", "expires_at"],
                        "properties": {
                            "id": uuid,
                            "created_at": time,
                            "name": {"type": "string"},
                            "hash": {"type": "string"},
                            "expires_at": {"type": "string", "format": "date-time", "nullable": true},
                        },
                    }},
                },
            }},
        },
    })
}

/// FastAPI's answer to `failure`.
pub fn error(dialect: Dialect, failure: &Failure) -> (StatusCode, Value) {
    let status = dialect.status_of(failure);
    if status != StatusCode::UNPROCESSABLE_ENTITY {
        return (status, json!({"detail": failure.message}));
    }
    let detail: Vec<Value> = if failure.violations.is_empty() {
        // The body is not JSON, or not an object.
        vec![json!({
            "type": "json_invalid",
            "loc": ["body", 0],
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": failure.message},
        })]
    } else {
        // Seed 000 checks the name's rules after its model accepted the
        // body: what the model refused is all a 422 lists.
        failure
            .violations
            .iter()
            .filter(|v| dialect == Dialect::Seed001 || !v.is_name_rule())
            .map(item)
            .collect()
    };
    (status, json!({"detail": detail}))
}

/// One pydantic error: its type, message and context as pydantic 2 words
/// them.
fn item(violation: &Violation) -> Value {
    let (kind, msg, ctx) = match &violation.kind {
        ViolationKind::Malformed => {
            return json!({
                "type": "json_invalid",
                "loc": ["body", 0],
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": violation.description},
            });
        }
        ViolationKind::Missing => ("missing", "Field required".to_owned(), None),
        ViolationKind::WrongType("object") => (
            "model_attributes_type",
            "Input should be a valid dictionary or object to extract fields from".to_owned(),
            None,
        ),
        ViolationKind::WrongType(_) | ViolationKind::Null => (
            "string_type",
            "Input should be a valid string".to_owned(),
            None,
        ),
        ViolationKind::Unsupported => (
            "extra_forbidden",
            "Extra inputs are not permitted".to_owned(),
            None,
        ),
        ViolationKind::TooShort(min) => {
            let plural = if *min == 1 { "" } else { "s" };
            (
                "string_too_short",
                format!("String should have at least {min} character{plural}"),
                Some(json!({"min_length": min})),
            )
        }
        ViolationKind::TooLong(max) => (
            "string_too_long",
            format!("String should have at most {max} characters"),
            Some(json!({"max_length": max})),
        ),
        ViolationKind::NotUuid => (
            "uuid_parsing",
            "Input should be a valid UUID".to_owned(),
            None,
        ),
        ViolationKind::InvalidEmail => (
            "value_error",
            format!(
                "value is not a valid email address: {}",
                violation.description
            ),
            Some(json!({"reason": violation.description})),
        ),
        // A name of whitespace or invisible characters only: the
        // service's own validator, as pydantic reports one.
        ViolationKind::Blank | ViolationKind::Other(_) => (
            "value_error",
            format!("Value error, {}", violation.description),
            Some(json!({"error": violation.description})),
        ),
    };
    let mut loc = vec![Value::String("body".into())];
    loc.extend(violation.loc.iter().cloned().map(Value::String));
    let mut item = json!({
        "type": kind,
        "loc": loc,
        "msg": msg,
        "input": violation.input.clone().unwrap_or(Value::Null),
    });
    if let Some(ctx) = ctx {
        item["ctx"] = ctx;
    }
    item
}

/// HTTPValidationError for 422; `{"detail": "…"}` otherwise.
pub fn error_schema(status: u16) -> Value {
    if status != 422 {
        return json!({
            "type": "object",
            "required": ["detail"],
            "properties": {"detail": {"type": "string"}},
        });
    }
    json!({
        "type": "object",
        "title": "HTTPValidationError",
        "required": ["detail"],
        "properties": {"detail": {"type": "array", "items": {
            "type": "object",
            "title": "ValidationError",
            "required": ["loc", "msg", "type"],
            "properties": {
                "loc": {"type": "array", "items": {"oneOf": [{"type": "string"}, {"type": "integer"}]}},
                "msg": {"type": "string"},
                "type": {"type": "string"},
                "input": {},
                "ctx": {"type": "object"},
            },
        }}},
    })
}
