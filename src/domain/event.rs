//! What other services are told: one event per committed change.

/// The kinds of event, as subjects and CloudEvents types name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    WorkspaceCreated,
    WorkspaceUpdated,
    WorkspaceDeleted,
    MemberAdded,
    MemberUpdated,
    MemberRemoved,
    AccessTokenCreated,
    AccessTokenRevoked,
}

impl EventKind {
    pub const ALL: [EventKind; 8] = [
        Self::WorkspaceCreated,
        Self::WorkspaceUpdated,
        Self::WorkspaceDeleted,
        Self::MemberAdded,
        Self::MemberUpdated,
        Self::MemberRemoved,
        Self::AccessTokenCreated,
        Self::AccessTokenRevoked,
    ];

    /// `workspace.created`: the last tokens of the event's subject, and
    /// (prefixed) its CloudEvents type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WorkspaceCreated => "workspace.created",
            Self::WorkspaceUpdated => "workspace.updated",
            Self::WorkspaceDeleted => "workspace.deleted",
            Self::MemberAdded => "member.added",
            Self::MemberUpdated => "member.updated",
            Self::MemberRemoved => "member.removed",
            Self::AccessTokenCreated => "access_token.created",
            Self::AccessTokenRevoked => "access_token.revoked",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// Most bytes an event's payload (the encoded `WorkspaceEvent`) may have:
/// far below NATS's default `max_payload` (1 MiB), with room for the
/// CloudEvents headers and the JSON format's growth. What fills an event
/// is bounded so that no change can write a larger one (see
/// `storage::events::row`): the workspace snapshot carries no access
/// tokens and at most `EVENT_MEMBERSHIPS` memberships, and is left out
/// (ids, actor, membership and token only) if it would still be larger.
pub const EVENT_PAYLOAD_LIMIT: usize = 64 * 1024;

/// Most memberships a workspace snapshot in an event lists, the oldest
/// first (as GetWorkspace lists them); `members_count` is the full count.
pub const EVENT_MEMBERSHIPS: usize = 100;
