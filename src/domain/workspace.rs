//! Workspaces: the CreateWorkspace request and its field rules (check 2),
//! and the workspace as callers see it.

use sha2::{Digest, Sha256};
use uuid::Uuid;

pub(super) use super::name_rules::check_name;
use super::{DomainError, FieldViolation, NameRules, Reason, excerpt, normalize_name};

/// Workspaces created through this API are custom ones (seed 002).
pub const WORKSPACE_TYPE_CUSTOM: &str = "CUSTOM";
/// New workspaces get their documents uploaded by hand (seed 002).
pub const UPLOAD_METHOD_MANUAL: &str = "MANUAL";
/// Seeds 002 and 004 accept descriptions; this bounds them.
pub const DESCRIPTION_MAX_CHARS: usize = 1_000;
/// Longest accepted `request_id`.
pub const REQUEST_ID_MAX_CHARS: usize = 128;

/// CreateWorkspace as a transport hands it over: unchecked text.
#[derive(Debug, Clone, Default)]
pub struct CreateWorkspaceInput {
    pub organization_id: String,
    pub name: String,
    pub description: String,
    pub billing_account_email: String,
    pub first_member_id: String,
    /// (workspace, pipeline) document store credentials ids, when given.
    pub document_store_credentials: Option<(String, String)>,
    /// The file store credentials id, when given.
    pub file_store_credentials: Option<String>,
    pub request_id: String,
    pub validate_only: bool,
}

/// Document store credentials of a workspace (seed 000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocumentStoreIds {
    pub workspace: Uuid,
    pub pipeline: Uuid,
}

/// A CreateWorkspace request that passed check 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateWorkspace {
    pub organization_id: Option<Uuid>,
    /// Trimmed, or as sent where the route's rules say so.
    pub name: String,
    pub normalized_name: String,
    pub description: String,
    pub billing_account_email: String,
    pub first_member_id: Option<Uuid>,
    pub document_store: Option<DocumentStoreIds>,
    pub file_store: Option<Uuid>,
    pub request_id: Option<String>,
    pub validate_only: bool,
}

impl CreateWorkspace {
    /// A hash of what the request asks for (not of how: `request_id` and
    /// `validate_only` are left out), to tell a retry from a reused id;
    /// the organization as the request gives it.
    pub fn fingerprint(&self) -> String {
        self.fingerprint_in(self.organization_id)
    }

    /// The fingerprint with `organization_id` as the organization: a
    /// create records it with the organization it resolved, so that a
    /// retry naming the organization the first call inferred, or leaving
    /// out the one it named, is the same request.
    pub fn fingerprint_in(&self, organization_id: Option<Uuid>) -> String {
        let fields = [
            organization_id.map(|id| id.to_string()).unwrap_or_default(),
            self.name.clone(),
            self.description.clone(),
            self.billing_account_email.clone(),
            self.first_member_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            self.document_store
                .map(|d| format!("{}/{}", d.workspace, d.pipeline))
                .unwrap_or_default(),
            self.file_store.map(|id| id.to_string()).unwrap_or_default(),
        ];
        let mut hasher = Sha256::new();
        for field in fields {
            // Length-prefixed, so no two different requests hash alike.
            hasher.update((field.len() as u64).to_be_bytes());
            hasher.update(field.as_bytes());
        }
        hex::encode(hasher.finalize())
    }
}

/// Check 2 of CreateWorkspace: every field rule. Reports every invalid
/// field at once, the first one giving the error's reason.
pub fn validate_create(
    input: &CreateWorkspaceInput,
    rules: &NameRules,
) -> Result<CreateWorkspace, DomainError> {
    let mut violations = Vec::new();

    let name = check_name(&input.name, rules, &mut violations);
    check_description(&input.description, &mut violations);

    let email = check_email(&input.billing_account_email, rules, &mut violations);

    let organization_id = optional_uuid("organization_id", &input.organization_id, &mut violations);
    let first_member_id = optional_uuid("first_member_id", &input.first_member_id, &mut violations);
    let document_store =
        input
            .document_store_credentials
            .as_ref()
            .and_then(|(workspace, pipeline)| {
                let workspace = required_uuid(
                    "document_store_credentials.workspace_document_store_credentials_id",
                    workspace,
                    &mut violations,
                );
                let pipeline = required_uuid(
                    "document_store_credentials.pipeline_document_store_credentials_id",
                    pipeline,
                    &mut violations,
                );
                Some(DocumentStoreIds {
                    workspace: workspace?,
                    pipeline: pipeline?,
                })
            });
    let file_store = input.file_store_credentials.as_ref().and_then(|id| {
        required_uuid(
            "file_store_credentials.file_store_credentials_id",
            id,
            &mut violations,
        )
    });

    let request_id = input.request_id.trim();
    if request_id.chars().count() > REQUEST_ID_MAX_CHARS || request_id.chars().any(char::is_control)
    {
        violations.push(FieldViolation::new(
            "request_id",
            Reason::InvalidRequestId,
            format!("request_id must be at most {REQUEST_ID_MAX_CHARS} printable characters; a UUID is recommended."),
        ));
    }

    if !violations.is_empty() {
        return Err(DomainError::InvalidArgument(violations));
    }
    Ok(CreateWorkspace {
        organization_id,
        name: name.to_owned(),
        normalized_name: normalize_name(name),
        description: input.description.clone(),
        billing_account_email: email.to_owned(),
        first_member_id,
        document_store,
        file_store,
        request_id: (!request_id.is_empty()).then(|| request_id.to_owned()),
        validate_only: input.validate_only,
    })
}

/// The billing email, trimmed: well formed when given, required when
/// `rules` say so.
fn check_email<'a>(
    email: &'a str,
    rules: &NameRules,
    violations: &mut Vec<FieldViolation>,
) -> &'a str {
    let email = email.trim();
    if email.is_empty() {
        if rules.require_billing_email {
            violations.push(FieldViolation::new(
                "billing_account_email",
                Reason::BillingAccountEmailRequired,
                "A billing account email is required.",
            ));
        }
    } else if !is_email(email) {
        violations.push(FieldViolation::new(
            "billing_account_email",
            Reason::InvalidEmail,
            format!("'{}' is not a valid email address.", excerpt(email)),
        ));
    }
    email
}

/// The description rules: no control characters but tabs and line breaks,
/// at most DESCRIPTION_MAX_CHARS.
pub(super) fn check_description(description: &str, violations: &mut Vec<FieldViolation>) {
    if description
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        violations.push(FieldViolation::new(
            "description",
            Reason::DescriptionInvalidCharacters,
            "The description must not contain control characters other than tabs and line breaks.",
        ));
    } else if description.chars().count() > DESCRIPTION_MAX_CHARS {
        violations.push(FieldViolation::new(
            "description",
            Reason::DescriptionTooLong,
            format!("The description must contain at most {DESCRIPTION_MAX_CHARS} characters."),
        ));
    }
}

fn optional_uuid(field: &str, value: &str, violations: &mut Vec<FieldViolation>) -> Option<Uuid> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    parse_uuid(field, value, violations)
}

fn required_uuid(field: &str, value: &str, violations: &mut Vec<FieldViolation>) -> Option<Uuid> {
    let value = value.trim();
    if value.is_empty() {
        violations.push(FieldViolation::new(
            field,
            Reason::FieldRequired,
            format!("{field} is required."),
        ));
        return None;
    }
    parse_uuid(field, value, violations)
}

fn parse_uuid(field: &str, value: &str, violations: &mut Vec<FieldViolation>) -> Option<Uuid> {
    parse_id(field, value)
        .map_err(|violation| violations.push(violation))
        .ok()
}

/// `value` (trimmed) as a UUID, or the INVALID_UUID violation naming
/// `field`: how every id in a request is read.
pub fn parse_id(field: &str, value: &str) -> Result<Uuid, FieldViolation> {
    let value = value.trim();
    Uuid::try_parse(value).map_err(|_| {
        FieldViolation::new(
            field,
            Reason::InvalidUuid,
            format!("{field} must be a UUID, not '{}'.", excerpt(value)),
        )
    })
}

/// A pragmatic email check: one `@`, a non-empty local part, a dotted
/// domain, no spaces, at most 254 characters (RFC 5321's path limit).
fn is_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && domain.split('.').count() >= 2
        && domain
            .split('.')
            .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str) -> CreateWorkspaceInput {
        CreateWorkspaceInput {
            name: name.to_owned(),
            ..Default::default()
        }
    }

    fn reasons(result: Result<CreateWorkspace, DomainError>) -> Vec<Reason> {
        match result {
            Err(DomainError::InvalidArgument(violations)) => {
                violations.iter().map(|v| v.reason).collect()
            }
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn name_is_trimmed_and_normalized() {
        let valid = validate_create(&input("  Data Team  "), &NameRules::default()).unwrap();
        assert_eq!(valid.name, "Data Team");
        assert_eq!(valid.normalized_name, normalize_name("data team"));
    }

    #[test]
    fn every_invalid_field_is_reported() {
        let bad = CreateWorkspaceInput {
            name: "ab".into(),
            billing_account_email: "not-an-email".into(),
            organization_id: "42".into(),
            document_store_credentials: Some((String::new(), "x".into())),
            ..Default::default()
        };
        assert_eq!(
            reasons(validate_create(&bad, &NameRules::default())),
            [
                Reason::NameTooShort,
                Reason::InvalidEmail,
                Reason::InvalidUuid,
                Reason::FieldRequired,
                Reason::InvalidUuid
            ]
        );
    }

    #[test]
    fn billing_email_is_required_only_when_configured() {
        let rules = NameRules {
            require_billing_email: true,
            ..NameRules::default()
        };
        assert_eq!(
            reasons(validate_create(&input("Data Team"), &rules)),
            [Reason::BillingAccountEmailRequired]
        );
        assert!(validate_create(&input("Data Team"), &NameRules::default()).is_ok());
    }

    #[test]
    fn emails() {
        for good in ["a@example.com", "first.last+tag@sub.example.co"] {
            assert!(is_email(good), "{good}");
        }
        for bad in [
            "a",
            "@example.com",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "a@-b.com",
            "a@b..com",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn fingerprint_ignores_request_id_and_validate_only_only() {
        let a = validate_create(&input("Data Team"), &NameRules::default()).unwrap();
        let mut b = a.clone();
        b.request_id = Some("r".into());
        b.validate_only = true;
        assert_eq!(a.fingerprint(), b.fingerprint());
        b.description = "other".into();
        assert_ne!(a.fingerprint(), b.fingerprint());
    }
}
