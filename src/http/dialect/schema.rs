//! Each seed's request body: its fields, in its names, with their JSON
//! types, and the request message's field each one is. Reading a body
//! checks presence and JSON types only; every rule of the values (lengths,
//! UUIDs, the email) is the RPC's, applied once for every transport.

use serde_json::{Map, Value, json};

use super::model::{Dialect, Failure, Loc, Violation, ViolationKind};
use crate::domain::workspace::DESCRIPTION_MAX_CHARS;

/// One field of a seed's request body.
pub struct Field {
    /// As the seed names it.
    pub name: &'static str,
    /// The request message's field (proto name).
    pub proto: &'static str,
    pub required: bool,
    pub kind: Kind,
    /// For the OpenAPI document.
    pub description: &'static str,
}

pub enum Kind {
    String {
        min_length: Option<usize>,
        max_length: Option<usize>,
        format: Option<&'static str>,
    },
    /// A string or `null` (FastAPI's `Optional[str]`), of this format
    /// when one is given.
    NullableString(Option<&'static str>),
    /// An object of these fields, or `null`.
    NullableObject(&'static [Field]),
}

const fn string() -> Kind {
    Kind::String {
        min_length: None,
        max_length: None,
        format: None,
    }
}

const DOCUMENT_STORE: &[Field] = &[
    Field {
        name: "workspace_document_store_credentials_id",
        proto: "workspace_document_store_credentials_id",
        required: true,
        kind: Kind::String {
            min_length: None,
            max_length: None,
            format: Some("uuid"),
        },
        description: "The OpenSearch credentials for the files in this workspace.",
    },
    Field {
        name: "pipeline_document_store_credentials_id",
        proto: "pipeline_document_store_credentials_id",
        required: true,
        kind: Kind::String {
            min_length: None,
            max_length: None,
            format: Some("uuid"),
        },
        description: "The OpenSearch credentials for the deployed pipelines.",
    },
];

const FILE_STORE: &[Field] = &[Field {
    name: "file_store_credentials_id",
    proto: "file_store_credentials_id",
    required: true,
    kind: Kind::String {
        min_length: None,
        max_length: None,
        format: Some("uuid"),
    },
    description: "The S3 credentials for the deployed pipelines.",
}];

const SEED_000: &[Field] = &[
    Field {
        name: "name",
        proto: "name",
        required: true,
        kind: string(),
        description: "The name of the workspace. It must be longer than 3 characters.",
    },
    Field {
        name: "document_store_credentials",
        proto: "document_store_credentials",
        required: false,
        kind: Kind::NullableObject(DOCUMENT_STORE),
        description: "WorkspaceDocumentStoreCredentials",
    },
    Field {
        name: "file_store_credentials",
        proto: "file_store_credentials",
        required: false,
        kind: Kind::NullableObject(FILE_STORE),
        description: "WorkspaceFileStoreCredentials",
    },
];

const SEED_001: &[Field] = &[
    Field {
        name: "name",
        proto: "name",
        required: true,
        kind: string(),
        description: "Name",
    },
    Field {
        name: "firstMemberId",
        proto: "first_member_id",
        required: false,
        kind: Kind::NullableString(Some("uuid")),
        description: "Firstmemberid: a member of the organization, added as ROLE_WORKSPACE_MEMBER.",
    },
    Field {
        name: "billingAccountEmail",
        proto: "billing_account_email",
        required: true,
        kind: Kind::String {
            min_length: None,
            max_length: None,
            format: Some("email"),
        },
        description: "Billingaccountemail",
    },
];

const SEED_002: &[Field] = &[
    Field {
        name: "name",
        proto: "name",
        required: true,
        kind: string(),
        description: "The workspace's name.",
    },
    Field {
        name: "description",
        proto: "description",
        required: false,
        kind: Kind::String {
            min_length: None,
            max_length: Some(DESCRIPTION_MAX_CHARS),
            format: None,
        },
        description: "Default: empty.",
    },
];

const SEED_003: &[Field] = &[Field {
    name: "name",
    proto: "name",
    required: true,
    kind: string(),
    description: "The name of the workspace to create",
}];

const SEED_004: &[Field] = &[
    Field {
        name: "name",
        proto: "name",
        required: true,
        kind: string(),
        description: "The workspace's name.",
    },
    Field {
        name: "description",
        proto: "description",
        required: false,
        kind: Kind::String {
            min_length: None,
            max_length: Some(DESCRIPTION_MAX_CHARS),
            format: None,
        },
        description: "The workspace's description.",
    },
    Field {
        name: "organization_id",
        proto: "organization_id",
        required: false,
        kind: Kind::String {
            min_length: None,
            max_length: None,
            format: Some("uuid"),
        },
        description: "The organization; the caller's only one when left out.",
    },
];

/// The fields of `dialect`'s request body.
pub fn fields(dialect: Dialect) -> &'static [Field] {
    match dialect {
        Dialect::GrpcGateway => &[],
        Dialect::Seed000 => SEED_000,
        Dialect::Seed001 => SEED_001,
        Dialect::Seed002 => SEED_002,
        Dialect::Seed003 => SEED_003,
        Dialect::Seed004 => SEED_004,
    }
}

/// `body` as the request message's JSON: each field of `fields` under its
/// proto name when present and of its JSON type; every field at fault
/// otherwise. Unknown fields are dropped and `null` strings read as left
/// out, or, when `strict` (a Django REST framework serializer), both are
/// refused.
pub fn read(
    fields: &'static [Field],
    body: Map<String, Value>,
    strict: bool,
) -> Result<Map<String, Value>, Failure> {
    let mut violations = Vec::new();
    let out = read_object(fields, body, strict, &[], &mut violations);
    if violations.is_empty() {
        Ok(out)
    } else {
        Err(Failure::invalid(violations))
    }
}

fn read_object(
    fields: &'static [Field],
    mut body: Map<String, Value>,
    strict: bool,
    at: &[String],
    violations: &mut Vec<Violation>,
) -> Map<String, Value> {
    let loc = |name: &str| -> Loc {
        let mut loc = at.to_vec();
        loc.push(name.to_owned());
        loc
    };
    let mut out = Map::new();
    for field in fields {
        let value = body.remove(field.name);
        match (value, &field.kind) {
            (Some(Value::Null), Kind::String { .. }) if strict => {
                violations.push(Violation {
                    loc: loc(field.name),
                    kind: ViolationKind::Null,
                    description: format!("'{}' must not be null.", field.name),
                    input: Some(Value::Null),
                });
            }
            (None, _) | (Some(Value::Null), Kind::String { .. }) if field.required => {
                violations.push(Violation {
                    loc: loc(field.name),
                    kind: ViolationKind::Missing,
                    description: "Field required".into(),
                    input: None,
                });
            }
            (None | Some(Value::Null), _) => {}
            (Some(Value::String(text)), Kind::String { .. } | Kind::NullableString(_)) => {
                out.insert(field.proto.to_owned(), Value::String(text));
            }
            (Some(other), Kind::String { .. } | Kind::NullableString(_)) => {
                violations.push(Violation {
                    loc: loc(field.name),
                    kind: ViolationKind::WrongType("string"),
                    description: format!("'{}' must be a string.", field.name),
                    input: Some(echo(other)),
                });
            }
            (Some(Value::Object(nested)), Kind::NullableObject(inner)) => {
                let nested = read_object(inner, nested, strict, &loc(field.name), violations);
                out.insert(field.proto.to_owned(), Value::Object(nested));
            }
            (Some(other), Kind::NullableObject(_)) => {
                violations.push(Violation {
                    loc: loc(field.name),
                    kind: ViolationKind::WrongType("object"),
                    description: format!("'{}' must be an object.", field.name),
                    input: Some(echo(other)),
                });
            }
        }
    }
    if strict {
        for (name, value) in body {
            // The name is the caller's: an answer quotes its start only.
            let name = crate::domain::excerpt(&name);
            violations.push(Violation {
                loc: loc(&name),
                kind: ViolationKind::Unsupported,
                description: format!("Unsupported field '{name}'."),
                input: Some(echo(value)),
            });
        }
    }
    out
}

/// The path, in the dialect's names, of the request message's field
/// `proto_path` (`document_store_credentials.pipeline_…`); the proto path
/// split at its dots when the dialect has no such field.
pub fn dialect_loc(fields: &'static [Field], proto_path: &str) -> Loc {
    let mut loc = Vec::new();
    let mut fields = fields;
    for part in proto_path.split('.').filter(|p| !p.is_empty()) {
        match fields.iter().find(|f| f.proto == part) {
            Some(field) => {
                loc.push(field.name.to_owned());
                fields = match field.kind {
                    Kind::NullableObject(inner) => inner,
                    _ => &[],
                };
            }
            None => {
                loc.push(part.to_owned());
                fields = &[];
            }
        }
    }
    loc
}

/// The JSON schema of a body of `fields`.
pub fn json_schema(fields: &'static [Field]) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for field in fields {
        if field.required {
            required.push(Value::String(field.name.to_owned()));
        }
        let mut schema = match &field.kind {
            Kind::String {
                min_length,
                max_length,
                format,
            } => {
                let mut schema = json!({"type": "string"});
                if let Some(min) = min_length {
                    schema["minLength"] = json!(min);
                }
                if let Some(max) = max_length {
                    schema["maxLength"] = json!(max);
                }
                if let Some(format) = format {
                    schema["format"] = json!(format);
                }
                schema
            }
            Kind::NullableString(format) => {
                let mut schema = json!({"type": "string", "nullable": true});
                if let Some(format) = format {
                    schema["format"] = json!(format);
                }
                schema
            }
            Kind::NullableObject(inner) => {
                let mut schema = json_schema(inner);
                schema["nullable"] = json!(true);
                schema
            }
        };
        schema["description"] = json!(field.description);
        properties.insert(field.name.to_owned(), schema);
    }
    let mut schema = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        schema["required"] = Value::Array(required);
    }
    schema
}

/// A refused value as an error may echo it (pydantic's `input`): a
/// string up to 64 characters, anything else while its JSON is short; a
/// longer value is cut to a string of its start.
fn echo(value: Value) -> Value {
    const MAX_BYTES: usize = 256;
    match value {
        Value::String(text) => Value::String(crate::domain::excerpt(&text)),
        other => {
            let text = other.to_string();
            if text.len() <= MAX_BYTES {
                other
            } else {
                Value::String(crate::domain::bounded(&text, MAX_BYTES))
            }
        }
    }
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
