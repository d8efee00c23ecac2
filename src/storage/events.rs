//! The transactional outbox: `record` writes an event in the transaction of
//! the change it describes; the relay (`crate::events`) reads what is
//! unsent, in each organization's order (`relay.rs`), and marks it sent
//! once JetStream acknowledged it, or parks it when NATS refuses it for
//! good or it does not make a message (`parked.rs`); `backlog.rs` counts
//! what waits, `purge.rs` deletes old events in batches.

mod backlog;
mod parked;
mod purge;
mod relay;
mod waiting;

use chrono::{DateTime, SubsecRound, Utc};
use prost::Message;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use super::entities::*;
use crate::{
    domain::{
        AccessTokenView, EVENT_MEMBERSHIPS, EVENT_PAYLOAD_LIMIT, EventKind, WorkspaceMember,
        WorkspaceView,
    },
    messages, proto,
};

pub use backlog::Backlog;
pub use relay::{RelayRound, UnreadableEvent};

/// An event to write: what changed, where, by whom, and the state after.
#[derive(Debug, Clone, Copy)]
pub struct EventDraft<'a> {
    pub kind: EventKind,
    pub organization_id: Uuid,
    pub workspace_id: Uuid,
    pub actor: Uuid,
    pub workspace: Option<&'a WorkspaceView>,
    pub membership: Option<&'a WorkspaceMember>,
    pub access_token: Option<&'a AccessTokenView>,
}

/// An event waiting to be published.
#[derive(Debug, Clone)]
pub struct PendingEvent {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub workspace_id: Uuid,
    pub kind: EventKind,
    pub payload: Vec<u8>,
    pub occurred_at: DateTime<Utc>,
    /// The W3C trace context of the call that made the change.
    pub traceparent: Option<String>,
}

/// The next number of `organization_id`'s events. The organization's row
/// stays locked until the transaction ends: the organization's changes
/// commit one at a time, in the order of their numbers.
pub(super) async fn next_sequence(
    txn: &DatabaseTransaction,
    organization_id: Uuid,
) -> Result<i64, DbErr> {
    organization::Entity::update_many()
        .col_expr(
            organization::Column::EventSequence,
            Expr::col(organization::Column::EventSequence).add(1),
        )
        .filter(organization::Column::Id.eq(organization_id))
        .exec_with_returning(txn)
        .await?
        .first()
        .map(|organization| organization.event_sequence)
        .ok_or_else(|| DbErr::Custom(format!("no organization {organization_id}")))
}

/// `draft` as an outbox row, before it is numbered: its payload carries
/// no `sequence`; the relay's read stamps the row's (`pending_events`), so
/// a create can build its event before the statement that numbers it.
pub(super) fn row(draft: EventDraft<'_>) -> event::Model {
    let id = Uuid::now_v7();
    let now = Utc::now().trunc_subsecs(6);
    let event = proto::WorkspaceEvent {
        id: id.to_string(),
        r#type: messages::event_type(draft.kind) as i32,
        time: messages::timestamp(now),
        organization_id: draft.organization_id.to_string(),
        workspace_id: draft.workspace_id.to_string(),
        workspace: draft.workspace.map(snapshot),
        actor_id: draft.actor.to_string(),
        membership: draft.membership.map(|m| proto::WorkspaceMembership {
            access_tokens: Vec::new(),
            ..messages::membership(&draft.workspace_id.to_string(), m)
        }),
        access_token: draft.access_token.map(|token| proto::WorkspaceAccessToken {
            hash: String::new(),
            ..messages::access_token(token)
        }),
        sequence: 0,
    };
    event::Model {
        id,
        organization_id: draft.organization_id,
        sequence: 0,
        workspace_id: draft.workspace_id,
        event_type: draft.kind.as_str().to_owned(),
        payload: encode_bounded(event),
        occurred_at: now,
        sent_at: None,
        parked_at: None,
        parked_reason: None,
        // The call's trace: the current span is the call's or one of its
        // children.
        traceparent: current_traceparent(),
    }
}

/// The workspace as an event carries it: as its organization's OWNERs see
/// it (no caller's own role), without access tokens (a token's own events
/// carry it; no hash ever leaves in an event), and with at most
/// `EVENT_MEMBERSHIPS` memberships, the oldest first (`members_count` is
/// the full count): a tenant adding tokens or members cannot grow it.
fn snapshot(view: &WorkspaceView) -> proto::Workspace {
    let members = view.members.len();
    let view = WorkspaceView {
        user_role: None,
        members: view
            .members
            .iter()
            .take(EVENT_MEMBERSHIPS)
            .map(|member| WorkspaceMember {
                id: member.id,
                user_id: member.user_id,
                role: member.role,
                created_at: member.created_at,
                updated_at: member.updated_at,
                access_tokens: Vec::new(),
            })
            .collect(),
        ..view.clone()
    };
    proto::Workspace {
        members_count: i32::try_from(members).unwrap_or(i32::MAX),
        // A create's event is built before the database numbers it.
        number: 0,
        ..messages::workspace(view)
    }
}

/// `event` encoded within `EVENT_PAYLOAD_LIMIT`: when the snapshot is still
/// too large (names and descriptions as long as the settings allow, and a
/// hundred memberships), its memberships go, then the snapshot itself; what
/// is left (ids, the actor, one membership without tokens, one token whose
/// name is at most 100 characters) is small by construction.
fn encode_bounded(mut event: proto::WorkspaceEvent) -> Vec<u8> {
    if event.encoded_len() > EVENT_PAYLOAD_LIMIT
        && let Some(workspace) = event.workspace.as_mut()
    {
        workspace.memberships.clear();
    }
    if event.encoded_len() > EVENT_PAYLOAD_LIMIT {
        event.workspace = None;
    }
    event.encode_to_vec()
}

/// The current span's W3C `traceparent` (`00-<trace id>-<span id>-<flags>`),
/// when it is in a trace. (Here rather than in `telemetry`, which reads
/// storage's pool: no import loop.)
fn current_traceparent() -> Option<String> {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    traceparent(&tracing::Span::current().context())
}

/// `context`'s `traceparent` as the W3C propagator writes it, without the
/// propagator's map of headers and its `tracestate` (test
/// `a_traceparent_is_written_as_the_propagator_writes_it`).
fn traceparent(context: &opentelemetry::Context) -> Option<String> {
    use opentelemetry::trace::{TraceContextExt, TraceFlags};
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            span_context.trace_id(),
            span_context.span_id(),
            span_context.trace_flags() & TraceFlags::SAMPLED
        )
    })
}

/// Writes `draft` as event number `sequence` of its organization, in `txn`.
pub(super) async fn record(
    txn: &DatabaseTransaction,
    sequence: i64,
    draft: EventDraft<'_>,
) -> Result<(), DbErr> {
    insert(
        txn,
        event::Model {
            sequence,
            ..row(draft)
        },
    )
    .await
}

/// Inserts a numbered outbox row.
pub(super) async fn insert<C: ConnectionTrait>(conn: &C, row: event::Model) -> Result<(), DbErr> {
    event::Entity::insert(row.into_active_model())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// The payload to publish: the stored one with the row's number.
fn numbered_payload(row: &event::Model) -> Result<Vec<u8>, DbErr> {
    let mut event = proto::WorkspaceEvent::decode(row.payload.as_slice())
        .map_err(|err| DbErr::Custom(format!("event {} does not decode: {err}", row.id)))?;
    event.sequence = row.sequence;
    Ok(event.encode_to_vec())
}

/// `conn`'s events, for tests and tools: every event, oldest first.
pub async fn all_events<C: ConnectionTrait>(conn: &C) -> Result<Vec<event::Model>, DbErr> {
    event::Entity::find()
        .order_by_asc(event::Column::OrganizationId)
        .order_by_asc(event::Column::Sequence)
        .all(conn)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{OrganizationSummary, WorkspaceRole};

    #[test]
    fn a_traceparent_is_written_as_the_propagator_writes_it() {
        use opentelemetry::{
            propagation::TextMapPropagator,
            trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState},
        };
        let propagated = |context: &opentelemetry::Context| {
            let mut fields = std::collections::HashMap::new();
            opentelemetry_sdk::propagation::TraceContextPropagator::new()
                .inject_context(context, &mut fields);
            fields.remove("traceparent")
        };
        for flags in [0x00, 0x01, 0x02, 0xff] {
            let context = opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
                SpanId::from_hex("00f067aa0ba902b7").unwrap(),
                TraceFlags::new(flags),
                true,
                TraceState::default(),
            ));
            assert!(traceparent(&context).is_some());
            assert_eq!(
                traceparent(&context),
                propagated(&context),
                "flags {flags:#x}"
            );
        }
        let none = opentelemetry::Context::new();
        assert_eq!(traceparent(&none), None);
        assert_eq!(propagated(&none), None);
    }

    fn token(name: &str) -> AccessTokenView {
        AccessTokenView {
            id: Uuid::now_v7(),
            user_id: Uuid::now_v7(),
            name: name.to_owned(),
            hash: "ab".repeat(32),
            created_at: Utc::now(),
            expires_at: None,
        }
    }

    /// A workspace with `members` members of `tokens` tokens each, every
    /// name as long as allowed.
    fn crowded(members: usize, tokens: usize, name: &str) -> WorkspaceView {
        let now = Utc::now();
        WorkspaceView {
            id: Some(Uuid::now_v7()),
            name: name.to_owned(),
            description: "\u{FDFA}".repeat(1_000),
            organization: OrganizationSummary {
                id: Uuid::now_v7(),
                name: "Org".into(),
                slug: "org".into(),
            },
            workspace_type: String::new(),
            document_upload_method: String::new(),
            user_role: Some(WorkspaceRole::Owner),
            members: (0..members)
                .map(|_| WorkspaceMember {
                    id: Some(Uuid::now_v7()),
                    user_id: Uuid::now_v7(),
                    role: WorkspaceRole::Member,
                    created_at: now,
                    updated_at: now,
                    access_tokens: (0..tokens)
                        .map(|_| token(&"\u{FDFA}".repeat(100)))
                        .collect(),
                })
                .collect(),
            billing_account_email: String::new(),
            document_store: None,
            file_store: None,
            used_storage: 0.0,
            files_count: 0,
            created_at: now,
            updated_at: now,
            revision: 1,
            number: 1,
        }
    }

    fn event_of(view: &WorkspaceView, kind: EventKind) -> proto::WorkspaceEvent {
        let token = token(&"\u{FDFA}".repeat(100));
        let row = row(EventDraft {
            kind,
            organization_id: view.organization.id,
            workspace_id: view.id.unwrap(),
            actor: Uuid::now_v7(),
            workspace: Some(view),
            membership: view.members.first(),
            access_token: Some(&token),
        });
        assert!(
            row.payload.len() <= EVENT_PAYLOAD_LIMIT,
            "{} bytes",
            row.payload.len()
        );
        proto::WorkspaceEvent::decode(row.payload.as_slice()).unwrap()
    }

    #[test]
    fn a_token_event_carries_the_token_without_its_hash_and_no_other_token() {
        // 2,100 tokens with long names made one event 1.1 MB (issue 26).
        let view = crowded(1, 2_100, "Flooded");
        let event = event_of(&view, EventKind::AccessTokenCreated);
        let token = event.access_token.unwrap();
        assert_eq!(token.name.chars().count(), 100);
        assert!(token.hash.is_empty());
        let workspace = event.workspace.unwrap();
        assert_eq!(workspace.name, "Flooded");
        assert!(
            workspace
                .memberships
                .iter()
                .all(|m| m.access_tokens.is_empty())
        );
        assert!(event.membership.unwrap().access_tokens.is_empty());
        assert_eq!(workspace.user_role, proto::Role::Unspecified as i32);
    }

    #[test]
    fn a_snapshot_lists_at_most_a_hundred_memberships_and_counts_them_all() {
        let view = crowded(3_000, 0, "Crowded");
        let workspace = event_of(&view, EventKind::MemberAdded).workspace.unwrap();
        assert_eq!(workspace.members_count, 3_000);
        assert_eq!(workspace.number, 0, "a snapshot carries no number");
        assert_eq!(workspace.memberships.len(), EVENT_MEMBERSHIPS);
        assert_eq!(
            workspace.memberships[0].user_id,
            view.members[0].user_id.to_string()
        );
    }

    #[test]
    fn no_content_makes_an_event_over_the_limit() {
        // Names as long as a setting may allow: the memberships go first,
        // then the snapshot; the event stays within the limit.
        let view = crowded(100, 100, &"\u{FDFA}".repeat(18_000));
        let event = event_of(&view, EventKind::WorkspaceUpdated);
        assert!(event.workspace.as_ref().unwrap().memberships.is_empty());
        let view = crowded(100, 100, &"\u{FDFA}".repeat(30_000));
        let event = event_of(&view, EventKind::WorkspaceUpdated);
        assert!(event.workspace.is_none());
        assert_eq!(event.workspace_id, view.id.unwrap().to_string());
        assert!(event.access_token.is_some() && event.membership.is_some());
    }
}
