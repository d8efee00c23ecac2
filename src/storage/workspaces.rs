//! Workspaces and their memberships: the transaction that creates one, and
//! the queries that read them back as a caller may see them.

use std::{
    collections::{HashMap, HashSet},
    sync::LazyLock,
    time::Duration,
};

use chrono::{SubsecRound, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Query},
    sqlx,
};
use uuid::Uuid;

use tracing::Instrument;

use super::{
    DEADLINE_PASSED, Storage,
    connection::{Db, from_sqlx},
    db_span_of, deadline,
    entities::*,
    events::{self, EventDraft},
    violates_unique,
};
use crate::domain::{
    CreateWorkspace, DocumentStoreIds, EventKind, OrganizationRole, OrganizationSummary,
    WorkspaceMember, WorkspaceRole, WorkspaceView,
};

/// A workspace to insert: a checked request, where and by whom.
#[derive(Debug, Clone, Copy)]
pub struct NewWorkspace<'a> {
    pub organization: &'a OrganizationSummary,
    pub creator: Uuid,
    pub request: &'a CreateWorkspace,
    pub workspace_type: &'a str,
    pub document_upload_method: &'a str,
}

/// Remembers a successful create under the caller's request id (AIP-155).
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub user_id: Uuid,
    pub request_id: String,
    pub fingerprint: String,
}

/// What an earlier successful create under a request id left: the
/// workspace it made and the fingerprint of what it asked for.
#[derive(Debug, Clone)]
pub struct EarlierCreate {
    pub workspace_id: Uuid,
    pub request_fingerprint: String,
}

/// How an insert ended. The refusals are the database's own verdicts.
#[derive(Debug, Clone)]
pub enum CreateOutcome {
    /// The workspace as its creator sees it, from the rows just written.
    Created(Box<WorkspaceView>),
    /// The conditional counter update found the organization at its limit.
    LimitReached,
    /// The unique index on (organization, normalized name) refused it.
    NameTaken,
    /// Another call with the same caller and request id committed first.
    RequestIdTaken,
}

impl Storage {
    /// Inserts the workspace, the creator's OWNER membership, the first
    /// member's membership, the idempotency record and the event, all or
    /// nothing: on PostgreSQL in one statement (one round trip), on SQLite
    /// in one transaction.
    ///
    /// Checks 9 and 10 of CreateWorkspace are decided here, by the database,
    /// so they hold across concurrent calls and replicas: the workspace
    /// limit by one conditional UPDATE of the organization's counter, the
    /// name by the unique index. Nothing is checked first and inserted after.
    pub async fn insert_workspace(
        &self,
        new: NewWorkspace<'_>,
        idempotency: Option<&IdempotencyKey>,
    ) -> Result<CreateOutcome, DbErr> {
        // Built in the call's span: the event keeps the call's trace
        // context, not the database span's.
        let rows = CreateRows::new(new, idempotency);
        let written = async {
            if self.db.get_database_backend() == DbBackend::Postgres {
                write_in_one_statement(&self.db, &rows).await
            } else {
                write_in_transaction(self, &rows).await
            }
        }
        .instrument(self.db_span("INSERT", "workspaces"))
        .await;
        match written {
            Ok(true) => Ok(CreateOutcome::Created(Box::new(rows.view))),
            Ok(false) => Ok(CreateOutcome::LimitReached),
            // Nothing was written: the statement or transaction is undone.
            Err(err) if violates_unique(&err, "normalized_name") => Ok(CreateOutcome::NameTaken),
            Err(err) if violates_unique(&err, "request_id") => Ok(CreateOutcome::RequestIdTaken),
            Err(err) => Err(err),
        }
    }

    /// The workspace a caller's earlier call with `request_id` created, with
    /// that call's request fingerprint.
    #[tracing::instrument(level = "debug", name = "db.idempotency_record", skip_all, fields(otel.kind = "client", otel.name = "SELECT idempotency_records", db.system.name = self.system(), db.operation.name = "SELECT", db.collection.name = "idempotency_records", db.namespace = self.namespace(), server.address = self.server_address(), server.port = self.server_port()))]
    pub async fn idempotency_record(
        &self,
        user_id: Uuid,
        request_id: &str,
    ) -> Result<Option<EarlierCreate>, DbErr> {
        let record = idempotency_record::Entity::find()
            .filter(idempotency_record::Column::UserId.eq(user_id))
            .filter(idempotency_record::Column::RequestId.eq(request_id))
            .one(&self.db)
            .await?;
        Ok(record.map(|record| EarlierCreate {
            workspace_id: record.workspace_id,
            request_fingerprint: record.request_fingerprint,
        }))
    }

    /// Whether the organization has a workspace of this normalized name.
    /// Only for `validate_only`, which writes nothing; real creates rely on
    /// the unique index.
    #[tracing::instrument(level = "debug", name = "db.name_taken", skip_all, fields(otel.kind = "client", otel.name = "SELECT workspaces", db.system.name = self.system(), db.operation.name = "SELECT", db.collection.name = "workspaces", db.namespace = self.namespace(), server.address = self.server_address(), server.port = self.server_port()))]
    pub async fn name_taken(
        &self,
        organization_id: Uuid,
        normalized_name: &str,
    ) -> Result<bool, DbErr> {
        Ok(workspace::Entity::find()
            .filter(workspace::Column::OrganizationId.eq(organization_id))
            .filter(workspace::Column::NormalizedName.eq(normalized_name))
            .one(&self.db)
            .await?
            .is_some())
    }

    /// The workspace `id` if `caller` may see it: a member of it, or an
    /// OWNER or ADMIN of its organization.
    /// Each statement has its span, children of the call's.
    pub async fn visible_workspace(
        &self,
        id: Uuid,
        caller: Uuid,
    ) -> Result<Option<WorkspaceView>, DbErr> {
        // One rule everywhere: only a current member of the organization
        // sees any of its workspaces; its OWNERs and ADMINs see them all,
        // everyone else those they are members of.
        let Some((model, role)) = self.workspace_with_role(id, caller).await? else {
            return Ok(None);
        };
        let Some(view) = self.views(vec![model], caller).await?.pop() else {
            return Ok(None);
        };
        Ok((view.user_role.is_some() || role.sees_all_workspaces()).then_some(view))
    }

    /// Workspace `id` and `caller`'s role in its organization, when the
    /// caller is a current member of it.
    pub(super) async fn workspace_with_role(
        &self,
        id: Uuid,
        caller: Uuid,
    ) -> Result<Option<(workspace::Model, OrganizationRole)>, DbErr> {
        let Some(model) = workspace::Entity::find_by_id(id)
            .one(&self.db)
            .instrument(self.db_span("SELECT", "workspaces"))
            .await?
        else {
            return Ok(None);
        };
        Ok(self
            .organization_role(model.organization_id, caller)
            .await?
            .map(|role| (model, role)))
    }

    /// Up to `limit` workspaces `caller` may see, in id order (UUIDv7: the
    /// order of creation) after `after`, optionally of one organization.
    /// Keyset paging: a workspace inserted meanwhile lands after the
    /// cursor or before it, never shifting a page.
    /// Each statement has its span, children of the call's.
    pub async fn visible_workspaces(
        &self,
        caller: Uuid,
        organization_id: Option<Uuid>,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<WorkspaceView>, DbErr> {
        // Index-driven reads bounded by what the caller may see, never a
        // walk over other organizations' workspaces: the caller's
        // organizations first, then, per organization it runs (OWNER or
        // ADMIN), that organization's workspaces in id order; for the
        // others, the caller's own workspaces. Merged in id order.
        let memberships: Vec<(Uuid, String)> = organization_membership::Entity::find()
            .select_only()
            .column(organization_membership::Column::OrganizationId)
            .column(organization_membership::Column::Role)
            .filter(organization_membership::Column::UserId.eq(caller))
            .into_tuple()
            .all(&self.db)
            .instrument(self.db_span("SELECT", "organization_memberships"))
            .await?;
        let mut run = Vec::new();
        let mut joined = Vec::new();
        for (organization, role) in memberships {
            if organization_id.is_some_and(|wanted| wanted != organization) {
                continue;
            }
            let runs = role
                .parse::<OrganizationRole>()
                .is_ok_and(|role| role.sees_all_workspaces());
            if runs {
                run.push(organization);
            } else {
                joined.push(organization);
            }
        }
        let page = |condition: Condition| {
            let mut query = workspace::Entity::find().filter(condition);
            if let Some(after) = after {
                query = query.filter(workspace::Column::Id.gt(after));
            }
            query.order_by_asc(workspace::Column::Id).limit(limit)
        };
        let mut models = Vec::new();
        // One ordered range of (organization_id, id) per organization run:
        // a planner given several at once may walk the primary key instead.
        for organization in run {
            models.extend(
                page(Condition::all().add(workspace::Column::OrganizationId.eq(organization)))
                    .all(&self.db)
                    .instrument(self.db_span("SELECT", "workspaces"))
                    .await?,
            );
        }
        if !joined.is_empty() {
            let own_workspaces = Query::select()
                .column(workspace_membership::Column::WorkspaceId)
                .from(workspace_membership::Entity)
                .and_where(Expr::col(workspace_membership::Column::UserId).eq(caller))
                .to_owned();
            models.extend(
                page(
                    Condition::all()
                        .add(workspace::Column::Id.in_subquery(own_workspaces))
                        .add(workspace::Column::OrganizationId.is_in(joined)),
                )
                .all(&self.db)
                .instrument(self.db_span("SELECT", "workspaces"))
                .await?,
            );
        }
        models.sort_by_key(|model| model.id);
        models.dedup_by_key(|model| model.id);
        models.truncate(limit as usize);
        self.views(models, caller).await
    }

    /// Workspaces with their organization, memberships and the members'
    /// access tokens, as `caller` sees them; four queries whatever the
    /// number of workspaces.
    async fn views(
        &self,
        models: Vec<workspace::Model>,
        caller: Uuid,
    ) -> Result<Vec<WorkspaceView>, DbErr> {
        views_in(&self.db, Some(self), models, caller).await
    }
}

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
    super::lifecycle::attach_access_tokens(conn, spans, &mut members).await?;
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
fn view_of(
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
    }
}

/// Every row one create writes, built before anything is sent: ids and
/// the time are the service's, the event's payload is complete but for its
/// number (the relay stamps it), and `view` is the answer.
struct CreateRows {
    workspace: workspace::Model,
    memberships: Vec<workspace_membership::Model>,
    record: Option<idempotency_record::Model>,
    event: event::Model,
    view: WorkspaceView,
}

impl CreateRows {
    fn new(new: NewWorkspace<'_>, idempotency: Option<&IdempotencyKey>) -> Self {
        // Microseconds: what PostgreSQL keeps, so the answer built here
        // equals what a later read returns.
        let now = Utc::now().trunc_subsecs(6);
        let request = new.request;
        let workspace = workspace::Model {
            id: Uuid::now_v7(),
            organization_id: new.organization.id,
            name: request.name.clone(),
            normalized_name: request.normalized_name.clone(),
            description: request.description.clone(),
            workspace_type: new.workspace_type.to_owned(),
            document_upload_method: new.document_upload_method.to_owned(),
            billing_account_email: request.billing_account_email.clone(),
            workspace_document_store_credentials_id: request.document_store.map(|d| d.workspace),
            pipeline_document_store_credentials_id: request.document_store.map(|d| d.pipeline),
            file_store_credentials_id: request.file_store,
            used_storage: 0.0,
            files_count: 0,
            created_by: new.creator,
            created_at: now,
            updated_at: now,
            revision: 1,
        };
        let members = request.initial_member_views(new.creator, now, || Some(Uuid::now_v7()));
        let memberships = members
            .iter()
            .filter_map(|m| {
                Some(workspace_membership::Model {
                    id: m.id?,
                    workspace_id: workspace.id,
                    user_id: m.user_id,
                    role: m.role.as_str().to_owned(),
                    created_at: now,
                    updated_at: now,
                })
            })
            .collect();
        let record = idempotency.map(|key| idempotency_record::Model {
            id: Uuid::now_v7(),
            user_id: key.user_id,
            request_id: key.request_id.clone(),
            request_fingerprint: key.fingerprint.clone(),
            workspace_id: workspace.id,
            created_at: now,
        });
        let view = view_of(
            workspace.clone(),
            new.organization.clone(),
            members,
            new.creator,
        );
        let event = events::row(EventDraft {
            kind: EventKind::WorkspaceCreated,
            organization_id: workspace.organization_id,
            workspace_id: workspace.id,
            actor: new.creator,
            workspace: Some(&view),
            membership: None,
            access_token: None,
        });
        Self {
            workspace,
            memberships,
            record,
            event,
            view,
        }
    }
}

/// Check 9 as a condition on the organization's counter: below its plan's
/// limit (none: no limit).
const BELOW_LIMIT: &str = "workspace_count < COALESCE((SELECT plans.workspace_limit FROM plans WHERE plans.id = organizations.plan_id), 2147483647)";

/// How much earlier than the call's deadline the statement stops waiting:
/// the call's timer (tokio's, to the millisecond) must not answer
/// DEADLINE_EXCEEDED while the statement may still write.
const DEADLINE_MARGIN: Duration = Duration::from_millis(5);

/// The create on PostgreSQL as one statement: one round trip, its own
/// transaction. The conditional counter UPDATE (check 9; it locks the
/// organization's row, so its creates, and its events' numbers, go one at
/// a time) and, only when it counted, the workspace (check 10 is the
/// unique index: its violation undoes the whole statement), the
/// memberships, the idempotency record and the event, numbered by the same
/// UPDATE.
static ONE_STATEMENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"WITH counted AS (
    UPDATE organizations
       SET workspace_count = workspace_count + 1, event_sequence = event_sequence + 1, updated_at = $1
     WHERE id = $2 AND {BELOW_LIMIT}
 RETURNING event_sequence
), created AS (
    INSERT INTO workspaces (id, organization_id, name, normalized_name, description, workspace_type,
                            document_upload_method, billing_account_email,
                            workspace_document_store_credentials_id, pipeline_document_store_credentials_id,
                            file_store_credentials_id, used_storage, files_count, created_by,
                            created_at, updated_at, revision)
    SELECT $3, $2, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0, 0, $13, $1, $1, 1 FROM counted
     WHERE $26::bigint IS NULL OR workspace_call_in_time(statement_timestamp() + $26 * interval '1 microsecond')
 RETURNING id
), members AS (
    INSERT INTO workspace_memberships (id, workspace_id, user_id, role, created_at, updated_at)
    SELECT m.id, created.id, m.user_id, m.role, $1, $1
      FROM created, (VALUES ($14::uuid, $15::uuid, $16::text), ($17::uuid, $18::uuid, $19::text)) AS m (id, user_id, role)
     WHERE m.id IS NOT NULL
), remembered AS (
    INSERT INTO idempotency_records (id, user_id, request_id, request_fingerprint, workspace_id, created_at)
    SELECT $20, $13, $21, $22, created.id, $1 FROM created WHERE $20::uuid IS NOT NULL
), recorded AS (
    INSERT INTO events (id, organization_id, sequence, workspace_id, event_type, payload, occurred_at, traceparent)
    SELECT $23, $2, counted.event_sequence, created.id, $24, $25, $1, $27 FROM counted, created
)
SELECT event_sequence FROM counted"#
    )
});

/// The create on PostgreSQL (`ONE_STATEMENT`). `false`: the organization
/// is at its limit.
///
/// Once sent, the statement runs to its end even if the call is dropped.
/// So that a call cut at its deadline writes nothing, the statement is
/// given the time the call has left when it is sent (less a margin) and,
/// once the UPDATE holds the organization's row, `workspace_call_in_time`
/// (migration m20261129_000004) refuses to go on past it, which undoes the
/// whole statement. The time counts from the statement's start on the
/// database's clock, so the two clocks are never compared; the connection
/// is taken from the pool first, so the wait for one is not counted as
/// time left. The call's own timer then answers DEADLINE_EXCEEDED. A call
/// its client abandons without a deadline is not seen by the database: its
/// create ends whole, or not at all.
///
/// Behind a transaction pooler the statement runs in a transaction (as
/// every statement there does), which a dropped call rolls back.
async fn write_in_one_statement(db: &Db, rows: &CreateRows) -> Result<bool, DbErr> {
    let mut conn = db.postgres_connection().await?;
    let statement = sqlx::query(sqlx::AssertSqlSafe(ONE_STATEMENT.as_str()));
    if db.isolates_statements() {
        let mut txn = db.begin_on(&mut conn).await?;
        let counted = bind(statement.persistent(false), rows, None)
            .fetch_optional(&mut *txn)
            .await
            .map_err(from_sqlx)?;
        txn.commit().await.map_err(from_sqlx)?;
        return Ok(counted.is_some());
    }
    let deadline = deadline::current();
    let time_left = deadline.map(|at| {
        let left = at.saturating_duration_since(tokio::time::Instant::now());
        left.saturating_sub(DEADLINE_MARGIN).as_micros() as i64
    });
    let counted = bind(statement, rows, time_left)
        .fetch_optional(&mut *conn)
        .await;
    match (counted, deadline) {
        (Err(sqlx::Error::Database(err)), Some(at))
            if err.code().as_deref() == Some(DEADLINE_PASSED) =>
        {
            // The lock came too late: the call's timer answers.
            tokio::time::sleep_until(at).await;
            Err(from_sqlx(sqlx::Error::Database(err)))
        }
        (counted, _) => Ok(counted.map_err(from_sqlx)?.is_some()),
    }
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// `ONE_STATEMENT`'s parameters.
fn bind<'q>(query: PgQuery<'q>, rows: &'q CreateRows, time_left: Option<i64>) -> PgQuery<'q> {
    let w = &rows.workspace;
    let mut query = query
        .bind(w.created_at)
        .bind(w.organization_id)
        .bind(w.id)
        .bind(&w.name)
        .bind(&w.normalized_name)
        .bind(&w.description)
        .bind(&w.workspace_type)
        .bind(&w.document_upload_method)
        .bind(&w.billing_account_email)
        .bind(w.workspace_document_store_credentials_id)
        .bind(w.pipeline_document_store_credentials_id)
        .bind(w.file_store_credentials_id)
        .bind(w.created_by);
    debug_assert!(
        rows.memberships.len() <= 2,
        "the creator and a first member"
    );
    for i in 0..2 {
        let member = rows.memberships.get(i);
        query = query
            .bind(member.map(|m| m.id))
            .bind(member.map(|m| m.user_id))
            .bind(member.map(|m| m.role.as_str()));
    }
    let record = rows.record.as_ref();
    query
        .bind(record.map(|r| r.id))
        .bind(record.map(|r| r.request_id.as_str()))
        .bind(record.map(|r| r.request_fingerprint.as_str()))
        .bind(rows.event.id)
        .bind(&rows.event.event_type)
        .bind(&rows.event.payload)
        .bind(time_left)
        .bind(rows.event.traceparent.as_deref())
}

/// The create on SQLite: one transaction, the counter's UPDATE first, so
/// the transaction takes the write lock at once (waiting up to the busy
/// timeout) rather than failing to upgrade a read lock later; the event is
/// numbered by the same UPDATE. `false`: the organization is at its limit.
async fn write_in_transaction(storage: &Storage, rows: &CreateRows) -> Result<bool, DbErr> {
    let _turn = storage.write_turn().await;
    let txn = storage.db.begin().await?;
    let written = write_rows(&txn, rows).await;
    match written {
        Ok(true) => txn.commit().await?,
        // The transaction is dead either way; report the first error.
        Ok(false) | Err(_) => {
            let _ = txn.rollback().await;
        }
    }
    written
}

async fn write_rows(txn: &DatabaseTransaction, rows: &CreateRows) -> Result<bool, DbErr> {
    let w = &rows.workspace;
    let counted = organization::Entity::update_many()
        .col_expr(
            organization::Column::WorkspaceCount,
            Expr::col(organization::Column::WorkspaceCount).add(1),
        )
        .col_expr(
            organization::Column::EventSequence,
            Expr::col(organization::Column::EventSequence).add(1),
        )
        .col_expr(organization::Column::UpdatedAt, Expr::value(w.created_at))
        .filter(organization::Column::Id.eq(w.organization_id))
        .filter(Expr::cust(BELOW_LIMIT))
        .exec_with_returning(txn)
        .await?;
    let Some(sequence) = counted.first().map(|org| org.event_sequence) else {
        return Ok(false);
    };
    workspace::Entity::insert(w.clone().into_active_model())
        .exec_without_returning(txn)
        .await?;
    workspace_membership::Entity::insert_many(
        rows.memberships
            .iter()
            .cloned()
            .map(IntoActiveModel::into_active_model),
    )
    .exec_without_returning(txn)
    .await?;
    if let Some(record) = &rows.record {
        idempotency_record::Entity::insert(record.clone().into_active_model())
            .exec_without_returning(txn)
            .await?;
    }
    events::insert(
        txn,
        event::Model {
            sequence,
            ..rows.event.clone()
        },
    )
    .await?;
    Ok(true)
}
