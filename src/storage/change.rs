//! The unit of work every lifecycle change runs in: its transaction, the
//! workspace's row lock, and the event written before the commit.

use sea_orm::{ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, sea_query::Expr};
use uuid::Uuid;

use super::{
    Storage,
    entities::*,
    events::{self, EventDraft},
    views::snapshot,
};
use crate::domain::{AccessTokenView, EventKind, WorkspaceMember, WorkspaceView};

/// How a conditional change ended: done (with what it gives back), or why
/// not.
#[derive(Debug, Clone, PartialEq)]
pub enum Changed<T = ()> {
    Done(T),
    /// The workspace's revision is not the one expected.
    Stale,
    /// The workspace is gone.
    Missing,
    /// UpdateWorkspace only: another workspace of the organization has the
    /// name.
    NameTaken,
}

impl Storage {
    pub(super) async fn why_unchanged<T>(&self, id: Uuid) -> Result<Changed<T>, DbErr> {
        Ok(
            match workspace::Entity::find_by_id(id).one(&self.db).await? {
                Some(_) => Changed::Stale,
                None => Changed::Missing,
            },
        )
    }
}

/// A change to a workspace in the making: its transaction, which holds the
/// organization's row from the start (every change takes the organization
/// first, then the workspace: one lock order), the number its event took,
/// and who makes it.
pub(super) struct Change {
    pub(super) txn: DatabaseTransaction,
    pub(super) sequence: i64,
    pub(super) organization_id: Uuid,
    pub(super) workspace_id: Uuid,
    pub(super) actor: Uuid,
    /// SQLite: this process's turn to write, until the change ends
    /// (dropped after the transaction).
    pub(super) _turn: Option<super::WriteTurn>,
}

impl Change {
    pub(super) async fn begin(
        storage: &Storage,
        organization_id: Uuid,
        workspace_id: Uuid,
        actor: Uuid,
    ) -> Result<Self, DbErr> {
        let turn = storage.write_turn().await;
        let txn = storage.db.begin().await?;
        // Before the first lock: the organization's row, just below.
        super::deadline::limit_statements(&txn).await?;
        let sequence = events::next_sequence(&txn, organization_id).await?;
        Ok(Self {
            txn,
            sequence,
            organization_id,
            workspace_id,
            actor,
            _turn: turn,
        })
    }

    /// `begin`, then workspace `id`'s row locked until the change ends;
    /// `None` (rolled back) when there is no such workspace.
    pub(super) async fn begin_on_workspace(
        storage: &Storage,
        organization_id: Uuid,
        id: Uuid,
        actor: Uuid,
    ) -> Result<Option<Self>, DbErr> {
        let change = Self::begin(storage, organization_id, id, actor).await?;
        if !lock_workspace(&change.txn, id).await? {
            change.txn.rollback().await?;
            return Ok(None);
        }
        Ok(Some(change))
    }

    /// Writes the event, carrying the workspace as it now is, and commits;
    /// gives that workspace back.
    pub(super) async fn finish(
        self,
        kind: EventKind,
        membership: Option<&WorkspaceMember>,
        access_token: Option<&AccessTokenView>,
    ) -> Result<Option<WorkspaceView>, DbErr> {
        let workspace = snapshot(&self.txn, self.workspace_id).await?;
        self.finish_with(kind, workspace.as_ref(), membership, access_token)
            .await?;
        Ok(workspace)
    }

    /// Writes the event with `workspace` as its state, and commits.
    pub(super) async fn finish_with(
        self,
        kind: EventKind,
        workspace: Option<&WorkspaceView>,
        membership: Option<&WorkspaceMember>,
        access_token: Option<&AccessTokenView>,
    ) -> Result<(), DbErr> {
        let draft = EventDraft {
            kind,
            organization_id: self.organization_id,
            workspace_id: self.workspace_id,
            actor: self.actor,
            workspace,
            membership,
            access_token,
        };
        events::record(&self.txn, self.sequence, draft).await?;
        super::deadline::commit(self.txn).await
    }
}

/// Locks workspace `id`'s row until the transaction ends (SQLite: takes
/// the write lock); false when there is no such workspace.
pub(super) async fn lock_workspace(txn: &DatabaseTransaction, id: Uuid) -> Result<bool, DbErr> {
    let locked = workspace::Entity::update_many()
        .col_expr(
            workspace::Column::Revision,
            Expr::col(workspace::Column::Revision),
        )
        .filter(workspace::Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(locked.rows_affected > 0)
}
