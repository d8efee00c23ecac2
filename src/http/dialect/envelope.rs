//! Seeds 003 and 004, whose answers come in envelopes: 003's
//! `{success, workspace: {id, name, orgId}}` and `{success: false,
//! message}`; 004's `{status, message, data, session, errors}`.

use http::StatusCode;
use serde_json::{Value, json};
use tonic::Code;

use super::model::{Dialect, Failure, ViolationKind, time};
use crate::{
    domain::{Caller, Reason},
    proto,
};

pub fn created_003(workspace: &proto::Workspace) -> Value {
    json!({
        "success": true,
        "workspace": {
            "id": workspace.id,
            "name": workspace.name,
            "orgId": workspace.organization_id,
        },
    })
}

pub fn created_003_schema() -> Value {
    let string = json!({"type": "string"});
    json!({
        "type": "object",
        "required": ["success", "workspace"],
        "properties": {
            "success": {"type": "boolean"},
            "workspace": {
                "type": "object",
                "required": ["id", "name", "orgId"],
                "properties": {"id": string, "name": string, "orgId": string},
            },
        },
    })
}

/// `{success: false, message}`, in seed 003's words where its document
/// gives them.
pub fn error_003(failure: &Failure) -> (StatusCode, Value) {
    let status = Dialect::Seed003.status_of(failure);
    let message = match (failure.code, failure.reason) {
        (_, Some(Reason::AccountNotValidated)) => "User not found or account is not validated",
        (
            _,
            Some(
                Reason::InsufficientRole
                | Reason::NotOrganizationMember
                | Reason::WorkspaceCreationDisabled,
            ),
        ) => "Insufficient permissions to create workspaces",
        (Code::Internal | Code::Unknown | Code::DataLoss, _) => "Failed to create workspace",
        _ => failure
            .violations
            .first()
            .map_or(failure.message.as_str(), |v| v.description.as_str()),
    };
    (status, json!({"success": false, "message": message}))
}

pub fn error_003_schema() -> Value {
    json!({
        "type": "object",
        "required": ["success", "message"],
        "properties": {"success": {"type": "boolean"}, "message": {"type": "string"}},
    })
}

/// Seed 004's envelope around the workspace, with the session that
/// authenticated the call (`session` cookie); a call made with a token has
/// no sign-in to show.
pub fn created_004(workspace: &proto::Workspace, caller: &Caller) -> Value {
    let organization = workspace.organization.clone().unwrap_or_default();
    let signin = caller.signin.map(|signin| {
        json!({
            "id": signin.id.to_string(),
            "user_id": caller.user_id.to_string(),
            // Microseconds, as every other time the service shows: SQLite
            // keeps a session's in nanoseconds, which Python before 3.11
            // cannot parse.
            "created_at": chrono::SubsecRound::trunc_subsecs(signin.created_at, 6)
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        })
    });
    json!({
        "status": 201,
        "message": "",
        "data": {
            "workspace": {
                "id": workspace.id,
                "name": workspace.name,
                "description": workspace.description,
                "organization": {
                    "id": organization.id,
                    "name": organization.name,
                    "slug": organization.slug,
                },
                "members_count": workspace.members_count,
                "created_at": time(workspace.created_at.as_ref()),
                "updated_at": time(workspace.updated_at.as_ref()),
            },
        },
        "session": {
            "signin_attempts": [],
            "signins": signin.iter().collect::<Vec<_>>(),
            "signup_attempts": [],
            "active_signin": signin,
        },
        "errors": [],
    })
}

fn signin_schema(nullable: bool) -> Value {
    let mut schema = json!({
        "type": "object",
        "required": ["id", "user_id", "created_at"],
        "properties": {
            "id": {"type": "string"},
            "user_id": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
        },
    });
    if nullable {
        schema["nullable"] = json!(true);
    }
    schema
}

pub fn created_004_schema() -> Value {
    let string = json!({"type": "string"});
    let time = json!({"type": "string", "format": "date-time"});
    json!({
        "type": "object",
        "required": ["status", "message", "data", "session", "errors"],
        "properties": {
            "status": {"type": "integer"},
            "message": string,
            "data": {
                "type": "object",
                "required": ["workspace"],
                "properties": {"workspace": {
                    "type": "object",
                    "required": ["id", "name", "description", "organization", "members_count", "created_at", "updated_at"],
                    "properties": {
                        "id": string,
                        "name": string,
                        "description": string,
                        "organization": {
                            "type": "object",
                            "required": ["id", "name", "slug"],
                            "properties": {"id": string, "name": string, "slug": string},
                        },
                        "members_count": {"type": "integer"},
                        "created_at": time,
                        "updated_at": time,
                    },
                }},
            },
            "session": {
                "type": "object",
                "required": ["signin_attempts", "signins", "signup_attempts", "active_signin"],
                "properties": {
                    "signin_attempts": {"type": "array", "items": {}},
                    "signins": {"type": "array", "items": signin_schema(false)},
                    "signup_attempts": {"type": "array", "items": {}},
                    "active_signin": signin_schema(true),
                },
            },
            "errors": {"type": "array", "items": error_item_schema()},
        },
    })
}

/// The same envelope for an error: no data, no session, and one entry per
/// field at fault (or one for the whole request).
pub fn error_004(failure: &Failure) -> (StatusCode, Value) {
    let status = Dialect::Seed004.status_of(failure);
    let code = failure.reason.map_or_else(
        || "error".to_owned(),
        |reason| reason.as_str().to_ascii_lowercase(),
    );
    let errors: Vec<Value> = if failure.violations.is_empty() {
        vec![json!({
            "code": code,
            "message": failure.message,
            "long_message": failure.message,
            "meta": {},
        })]
    } else {
        failure
            .violations
            .iter()
            .map(|v| {
                let code = match v.kind {
                    ViolationKind::Missing => "form_param_missing".to_owned(),
                    ViolationKind::Unsupported => "form_param_unknown".to_owned(),
                    _ => code.clone(),
                };
                json!({
                    "code": code,
                    "message": v.description,
                    "long_message": v.description,
                    "meta": {"param_name": v.loc.join(".")},
                })
            })
            .collect()
    };
    (
        status,
        json!({
            "status": status.as_u16(),
            "message": failure.message,
            "data": null,
            "session": null,
            "errors": errors,
        }),
    )
}

fn error_item_schema() -> Value {
    json!({
        "type": "object",
        "required": ["code", "message", "long_message", "meta"],
        "properties": {
            "code": {"type": "string"},
            "message": {"type": "string"},
            "long_message": {"type": "string"},
            "meta": {"type": "object", "properties": {"param_name": {"type": "string"}}},
        },
    })
}

pub fn error_004_schema() -> Value {
    json!({
        "type": "object",
        "required": ["status", "message", "data", "session", "errors"],
        "properties": {
            "status": {"type": "integer"},
            "message": {"type": "string"},
            "data": {"type": "object", "nullable": true},
            "session": {"type": "object", "nullable": true},
            "errors": {"type": "array", "items": error_item_schema()},
        },
    })
}
