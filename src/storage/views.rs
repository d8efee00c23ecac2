//! Rows as the domain's read models: a workspace with its organization,
//! members and their access tokens.

use std::collections::{HashMap, HashSet};

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryOrder,
};
use tracing::Instrument;
use uuid::Uuid;

use super::{Storage, db_span_of, entities::*};
use crate::domain::{
    AccessTokenView, DocumentStoreIds, OrganizationSummary, WorkspaceMember, WorkspaceRole,
    WorkspaceView,
};

/// `views` on `conn`: the pool, or a transaction (an event's snapshot).
pub(super) async fn views_in<C: ConnectionTrait>(
    conn: &C,
    spans: Option<&Storage>,
    models: Vec<workspace::Model>,
    caller: Uuid,
) -> Result<Vec<WorkspaceView>, DbErr> {
    if models.is_empty() {
        return Ok(Vec::new());
    }
    let organization_ids: HashSet<Uuid> = models.iter().map(|m| m.organization_id).collect();
    let organizations: HashMap<Uuid, organization::Model> = organization::Entity::find()
        .filter(organization::Column::Id.is_in(organization_ids))
        .all(conn)
        .instrument(db_span_of(spans, "SELECT", "organizations"))
        .await?
        .into_iter()
        .map(|o| (o.id, o))
        .collect();
    let mut members: HashMap<Uuid, Vec<WorkspaceMember>> = HashMap::new();
    for m in workspace_membership::Entity::find()
        .filter(workspace_membership::Column::WorkspaceId.is_in(models.iter().map(|m| m.id)))
        .order_by_asc(workspace_membership::Column::CreatedAt)
        .order_by_asc(workspace_membership::Column::Id)
        .all(conn)
        .instrument(db_span_of(spans, "SELECT", "workspace_memberships"))
        .await?
    {
        members
            .entry(m.workspace_id)
            .or_default()
            .push(member_of(m)?);
    }
    attach_access_tokens(conn, spans, &mut members).await?;
    models
        .into_iter()
        .map(|w| {
            let organization = organizations
                .get(&w.organization_id)
                .ok_or_else(|| DbErr::Custom(format!("workspace {} has no organization", w.id)))?;
            let organization = OrganizationSummary {
                id: organization.id,
                name: organization.name.clone(),
                slug: organization.slug.clone(),
            };
            let members = members.remove(&w.id).unwrap_or_default();
            Ok(view_of(w, organization, members, caller))
        })
        .collect()
}

pub(super) fn member_of(m: workspace_membership::Model) -> Result<WorkspaceMember, DbErr> {
    let role: WorkspaceRole = m
        .role
        .parse()
        .map_err(|_| DbErr::Custom(format!("unexpected workspace role {:?}", m.role)))?;
    Ok(WorkspaceMember {
        id: Some(m.id),
        user_id: m.user_id,
        role,
        created_at: m.created_at,
        updated_at: m.updated_at,
        access_tokens: Vec::new(),
    })
}

/// A workspace row with its organization and members, as `caller` sees it.
pub(super) fn view_of(
    w: workspace::Model,
    organization: OrganizationSummary,
    members: Vec<WorkspaceMember>,
    caller: Uuid,
) -> WorkspaceView {
    WorkspaceView {
        id: Some(w.id),
        user_role: members.iter().find(|m| m.user_id == caller).map(|m| m.role),
        members,
        name: w.name,
        description: w.description,
        organization,
        workspace_type: w.workspace_type,
        document_upload_method: w.document_upload_method,
        billing_account_email: w.billing_account_email,
        document_store: w
            .workspace_document_store_credentials_id
            .zip(w.pipeline_document_store_credentials_id)
            .map(|(workspace, pipeline)| DocumentStoreIds {
                workspace,
                pipeline,
            }),
        file_store: w.file_store_credentials_id,
        used_storage: w.used_storage,
        files_count: w.files_count,
        created_at: w.created_at,
        updated_at: w.updated_at,
        revision: w.revision,
        number: w.number,
    }
}

/// Gives each member in `members` (by workspace) their unrevoked access
/// tokens, read on `conn` in one query.
pub(super) async fn attach_access_tokens<C: ConnectionTrait>(
    conn: &C,
    spans: Option<&Storage>,
    members: &mut HashMap<Uuid, Vec<WorkspaceMember>>,
) -> Result<(), DbErr> {
    let tokens = workspace_access_token::Entity::find()
        .filter(workspace_access_token::Column::WorkspaceId.is_in(members.keys().copied()))
        .filter(workspace_access_token::Column::RevokedAt.is_null())
        .order_by_asc(workspace_access_token::Column::Id)
        .all(conn)
        .instrument(super::db_span_of(
            spans,
            "SELECT",
            "workspace_access_tokens",
        ))
        .await?;
    for token in tokens {
        if let Some(member) = members
            .get_mut(&token.workspace_id)
            .and_then(|ms| ms.iter_mut().find(|m| m.user_id == token.user_id))
        {
            member.access_tokens.push(token_view(token));
        }
    }
    Ok(())
}

/// Workspace `id` as its organization's OWNERs see it, read in `txn`:
/// what its event carries.
pub(super) async fn snapshot(
    txn: &DatabaseTransaction,
    id: Uuid,
) -> Result<Option<WorkspaceView>, DbErr> {
    let Some(model) = workspace::Entity::find_by_id(id).one(txn).await? else {
        return Ok(None);
    };
    Ok(views_in(txn, None, vec![model], Uuid::nil()).await?.pop())
}

pub(super) fn token_view(t: workspace_access_token::Model) -> AccessTokenView {
    AccessTokenView {
        id: t.id,
        user_id: t.user_id,
        name: t.name,
        hash: t.token_hash,
        created_at: t.created_at,
        expires_at: t.expires_at,
    }
}
