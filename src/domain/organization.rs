//! Organizations, their members' roles, plans and policy: who may create a
//! workspace.

use std::{fmt, str::FromStr};

use uuid::Uuid;

use super::DomainError;

/// The authenticated user a call is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub user_id: Uuid,
    /// Whether the account is validated (check 4), read with the
    /// credentials so the create path does not ask again.
    pub validated: bool,
    /// The session that authenticated the call, when a session cookie did
    /// (seed 004's answers show it).
    pub signin: Option<SignIn>,
    /// The workspace a workspace access token authenticated the call for:
    /// it may act on that workspace only.
    pub workspace_scope: Option<Uuid>,
    /// The organization a bound API token, session or JWT authenticated
    /// the call for: a call naming no organization uses it, and the
    /// caller sees and acts on that organization's workspaces only.
    pub organization_scope: Option<Uuid>,
}

impl Caller {
    /// The organization a call that names `given` (or none) acts in: the
    /// one given, else the one its credential is bound to. A bound
    /// credential naming another organization answers as a non-member.
    pub fn organization(&self, given: Option<Uuid>) -> Result<Option<Uuid>, DomainError> {
        match (self.organization_scope, given) {
            (Some(bound), Some(given)) if given != bound => Err(DomainError::NotOrganizationMember),
            (bound, given) => Ok(given.or(bound)),
        }
    }
}

/// A session: its id and when it began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignIn {
    pub id: Uuid,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Generates `as_str`, `Display` and `FromStr` for an enum stored as text.
macro_rules! text_enum {
    ($name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;

            /// Case-insensitive; `-` and `_` are the same.
            fn from_str(s: &str) -> Result<Self, String> {
                let wanted = s.trim().to_ascii_uppercase().replace('-', "_");
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == wanted)
                    .ok_or_else(|| {
                        let names: Vec<_> = Self::ALL.iter().map(|v| v.as_str()).collect();
                        format!("unknown {}: {s:?} (one of {})", stringify!($name), names.join(", "))
                    })
            }
        }
    };
}

/// A member's role in an organization (seed 003: OWNER, ADMINISTRATORS,
/// WORKSPACES; seed 002: standard users).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrganizationRole {
    Owner,
    Admin,
    WorkspaceCreator,
    Member,
}

text_enum!(OrganizationRole {
    Owner => "OWNER",
    Admin => "ADMIN",
    WorkspaceCreator => "WORKSPACE_CREATOR",
    Member => "MEMBER",
});

impl OrganizationRole {
    /// OWNERs and ADMINs see every workspace of their organization.
    pub fn sees_all_workspaces(self) -> bool {
        matches!(self, Self::Owner | Self::Admin)
    }
}

/// Who in an organization may create workspaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WorkspaceCreationPolicy {
    /// OWNER, ADMIN and WORKSPACE_CREATOR (seed 003). The default.
    #[default]
    RoleBased,
    /// Every member (seed 002's `allow_user_workspace_creation` on).
    AllMembers,
    /// OWNER and ADMIN only (seed 002's `allow_user_workspace_creation` off).
    AdminsOnly,
}

text_enum!(WorkspaceCreationPolicy {
    RoleBased => "ROLE_BASED",
    AllMembers => "ALL_MEMBERS",
    AdminsOnly => "ADMINS_ONLY",
});

impl WorkspaceCreationPolicy {
    /// Check 5 of CreateWorkspace.
    pub fn allows(self, role: OrganizationRole) -> Result<(), DomainError> {
        use OrganizationRole::*;
        match (self, role) {
            (_, Owner | Admin) | (Self::AllMembers, _) | (Self::RoleBased, WorkspaceCreator) => {
                Ok(())
            }
            (Self::AdminsOnly, _) => Err(DomainError::WorkspaceCreationDisabled),
            (Self::RoleBased, Member) => Err(DomainError::InsufficientRole {
                role: role.as_str().to_owned(),
            }),
        }
    }
}

/// A user's role in a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkspaceRole {
    Owner,
    Admin,
    Member,
}

text_enum!(WorkspaceRole {
    Owner => "OWNER",
    Admin => "ADMIN",
    Member => "MEMBER",
});

/// What a storage credential is for (seed 000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialsKind {
    /// An OpenSearch cluster.
    DocumentStore,
    /// An S3 bucket.
    FileStore,
}

text_enum!(CredentialsKind {
    DocumentStore => "DOCUMENT_STORE",
    FileStore => "FILE_STORE",
});

/// An organization's plan, as far as workspaces are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub name: String,
    pub creation_allowed: bool,
    /// `None`: no limit.
    pub workspace_limit: Option<i32>,
}

impl Plan {
    /// Check 6 of CreateWorkspace.
    pub fn allows_creation(&self) -> Result<(), DomainError> {
        if self.creation_allowed {
            Ok(())
        } else {
            Err(DomainError::PlanNotSupported {
                plan: self.name.clone(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_based_policy_refuses_plain_members_only() {
        let policy = WorkspaceCreationPolicy::RoleBased;
        for role in [
            OrganizationRole::Owner,
            OrganizationRole::Admin,
            OrganizationRole::WorkspaceCreator,
        ] {
            assert!(policy.allows(role).is_ok(), "{role}");
        }
        let refused = policy.allows(OrganizationRole::Member).unwrap_err();
        assert_eq!(refused.reason(), "INSUFFICIENT_ROLE");
    }

    #[test]
    fn admins_only_policy_refuses_workspace_creators() {
        let refused = WorkspaceCreationPolicy::AdminsOnly
            .allows(OrganizationRole::WorkspaceCreator)
            .unwrap_err();
        assert_eq!(refused.reason(), "WORKSPACE_CREATION_DISABLED");
        assert!(
            WorkspaceCreationPolicy::AdminsOnly
                .allows(OrganizationRole::Admin)
                .is_ok()
        );
    }

    #[test]
    fn all_members_policy_lets_members_create() {
        assert!(
            WorkspaceCreationPolicy::AllMembers
                .allows(OrganizationRole::Member)
                .is_ok()
        );
    }

    #[test]
    fn text_forms_round_trip_and_accept_cli_spelling() {
        for role in OrganizationRole::ALL {
            assert_eq!(role.as_str().parse::<OrganizationRole>().unwrap(), *role);
        }
        assert_eq!(
            "workspace-creator".parse::<OrganizationRole>().unwrap(),
            OrganizationRole::WorkspaceCreator
        );
        assert!("boss".parse::<OrganizationRole>().is_err());
    }
}
