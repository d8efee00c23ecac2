//! Seed 002: a Django REST framework service. Bad input is 400 with the
//! serializer's errors, `{"<field>": ["<message>", …]}`; every other error
//! is `{"detail": "<message>"}`.

use http::StatusCode;
use serde_json::{Map, Value, json};

use super::model::{Dialect, Failure, ViolationKind, time};
use crate::proto;

/// StandardWorkspaceV3DetailsResponse. `id` is the workspace's UUID (the
/// document's integer is one of the service's two deliberate departures);
/// `user_role` is the caller's role in the workspace as the document words
/// it ("the creator is automatically added as OWNER").
pub fn created(workspace: &proto::Workspace) -> Value {
    let role = match proto::Role::try_from(workspace.user_role) {
        Ok(proto::Role::WorkspaceOwner) => "OWNER",
        Ok(proto::Role::WorkspaceAdmin) => "ADMIN",
        Ok(proto::Role::WorkspaceMember) => "MEMBER",
        _ => "",
    };
    json!({
        // Its integer id: the workspace's number (seeds' ids are UUIDs).
        "id": workspace.number,
        "name": workspace.name,
        "workspace_type": workspace.workspace_type,
        "document_upload_method": workspace.document_upload_method,
        "description": workspace.description,
        "created_at": time(workspace.created_at.as_ref()),
        "updated_at": time(workspace.updated_at.as_ref()),
        "user_role": role,
        "used_storage": workspace.used_storage,
        "files_count": workspace.files_count,
        "summaries": workspace.summaries.iter().map(|s| json!({
            "language": s.language,
            "summary": s.summary,
        })).collect::<Vec<_>>(),
    })
}

pub fn created_schema() -> Value {
    let string = json!({"type": "string"});
    let time = json!({"type": "string", "format": "date-time"});
    json!({
        "type": "object",
        "required": [
            "created_at", "description", "document_upload_method", "files_count", "id", "name",
            "summaries", "updated_at", "used_storage", "user_role", "workspace_type",
        ],
        "properties": {
            "id": {"type": "integer", "minimum": 1},
            "name": string,
            "workspace_type": string,
            "document_upload_method": string,
            "description": string,
            "created_at": time,
            "updated_at": time,
            "user_role": {"type": "string", "readOnly": true},
            "used_storage": {"type": "number", "format": "double"},
            "files_count": {"type": "integer"},
            "summaries": {"type": "array", "readOnly": true, "items": {
                "type": "object",
                "required": ["language", "summary"],
                "properties": {"language": string, "summary": string},
            }},
        },
    })
}

/// Django REST framework's answer to `failure`.
pub fn error(failure: &Failure) -> (StatusCode, Value) {
    let status = Dialect::Seed002.status_of(failure);
    if failure.violations.is_empty() || status != StatusCode::BAD_REQUEST {
        return (status, json!({"detail": failure.message}));
    }
    if let Some(malformed) = failure
        .violations
        .iter()
        .find(|v| v.kind == ViolationKind::Malformed)
    {
        return (
            status,
            json!({"detail": format!("JSON parse error - {}", malformed.description)}),
        );
    }
    let mut errors: Map<String, Value> = Map::new();
    for violation in &failure.violations {
        let field = if violation.loc.is_empty() {
            "non_field_errors".to_owned()
        } else {
            violation.loc.join(".")
        };
        let message = match &violation.kind {
            ViolationKind::Missing => "This field is required.".to_owned(),
            ViolationKind::Null => "This field may not be null.".to_owned(),
            ViolationKind::WrongType(_) => "Not a valid string.".to_owned(),
            ViolationKind::Blank | ViolationKind::TooShort(_) => {
                "This field may not be blank.".to_owned()
            }
            ViolationKind::TooLong(max) => {
                format!("Ensure this field has no more than {max} characters.")
            }
            ViolationKind::Unsupported => "This field is not supported.".to_owned(),
            _ => violation.description.clone(),
        };
        if let Value::Array(messages) = errors
            .entry(field)
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            messages.push(Value::String(message));
        }
    }
    (status, Value::Object(errors))
}

/// The serializer's errors for 400; `{"detail": "…"}` otherwise.
pub fn error_schema(status: u16) -> Value {
    let detail = json!({
        "type": "object",
        "required": ["detail"],
        "properties": {"detail": {"type": "string"}},
    });
    if status != 400 {
        return detail;
    }
    json!({"oneOf": [
        detail,
        {
            "type": "object",
            "description": "The fields at fault, each with its messages.",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    ]})
}
