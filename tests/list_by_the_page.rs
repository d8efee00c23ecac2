//! ListWorkspaces read by the page (issue 29): statements merge what
//! the caller sees of each of its organizations (all of an organization it
//! runs as OWNER or ADMIN, its own workspaces elsewhere). Paging through
//! it at any page size gives every visible workspace once, in
//! (created_at, id) order, ties on created_at included, and nothing else.

mod common;

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, sea_query::Expr};
use uuid::Uuid;

use common::{Backend, Org, PlanSpec, TestApp, User, authed, named, spawn_app};
use workspace_service::{
    domain::OrganizationRole,
    proto::{AddWorkspaceMemberRequest, ListWorkspacesRequest},
    storage::entities::{organization_membership, workspace, workspace_membership},
    workspaces::MAX_PAGE_SIZE,
};

on_both_databases!(
    a_caller_in_several_organizations_pages_through_everything_once,
    an_owner_of_thirty_organizations_pages_through_all_of_them,
    callers_of_seventy_organizations_page_through_runs_and_turns,
);

/// Every page of `caller`'s list (optionally of `organization`) at
/// `page_size`, concatenated: the workspaces' ids.
async fn page_through(
    app: &TestApp,
    caller: &User,
    organization: Option<Uuid>,
    page_size: i32,
) -> Vec<Uuid> {
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .client()
            .await
            .list_workspaces(authed(
                &caller.token,
                ListWorkspacesRequest {
                    organization_id: organization.map(|o| o.to_string()).unwrap_or_default(),
                    page_size,
                    page_token: token.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(page.workspaces.len() <= page_size as usize);
        seen.extend(
            page.workspaces
                .iter()
                .map(|w| w.id.parse::<Uuid>().unwrap()),
        );
        if page.next_page_token.is_empty() {
            return seen;
        }
        assert!(
            !page.workspaces.is_empty(),
            "a page with a next page is full"
        );
        token = page.next_page_token;
    }
}

/// `ids` in the List's order, (created_at, id), as stored.
async fn in_list_order(app: &TestApp, ids: &[Uuid]) -> Vec<Uuid> {
    let mut rows = workspace::Entity::find()
        .filter(workspace::Column::Id.is_in(ids.iter().copied()))
        .all(app.storage.connection())
        .await
        .unwrap();
    assert_eq!(rows.len(), ids.len());
    rows.sort_by_key(|w| (w.created_at, w.id));
    rows.into_iter().map(|w| w.id).collect()
}

/// Gives workspaces `ids` one creation time (ties that only the id
/// breaks), in their rows and in their memberships' copies of it.
async fn created_together(app: &TestApp, ids: &[Uuid], at: DateTime<Utc>) {
    // Microseconds, as the service writes times (and page tokens carry).
    let at = at.trunc_subsecs(6);
    let db = app.storage.connection();
    workspace::Entity::update_many()
        .col_expr(workspace::Column::CreatedAt, Expr::value(at))
        .filter(workspace::Column::Id.is_in(ids.iter().copied()))
        .exec(db)
        .await
        .unwrap();
    workspace_membership::Entity::update_many()
        .col_expr(
            workspace_membership::Column::WorkspaceCreatedAt,
            Expr::value(at),
        )
        .filter(workspace_membership::Column::WorkspaceId.is_in(ids.iter().copied()))
        .exec(db)
        .await
        .unwrap();
}

/// Creates `count` workspaces in `org` as its OWNER, with `first_member`
/// as their first member when given.
async fn create_in(
    app: &TestApp,
    org: &Org,
    count: usize,
    first_member: Option<&User>,
) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for _ in 0..count {
        let mut request = named(org, &format!("W {}", Uuid::new_v4().simple()));
        if let Some(member) = first_member {
            request.first_member_id = member.id.to_string();
        }
        let created = app.create(&org.owner.token, request).await.unwrap();
        ids.push(created.id.parse().unwrap());
    }
    ids
}

async fn a_caller_in_several_organizations_pages_through_everything_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let caller = app.user().await;
    let owned = app.organization(PlanSpec::default()).await;
    let administered = app.organization(PlanSpec::default()).await;
    let joined = app.organization(PlanSpec::default()).await;
    let left = app.organization(PlanSpec::default()).await;
    let stranger = app.organization(PlanSpec::default()).await;
    for (org, role) in [
        (&owned, OrganizationRole::Owner),
        (&administered, OrganizationRole::Admin),
        (&joined, OrganizationRole::Member),
        (&left, OrganizationRole::WorkspaceCreator),
    ] {
        app.storage
            .put_organization_member(org.id, caller.id, role)
            .await
            .unwrap();
    }
    let mut visible = Vec::new();
    // All of the organizations it runs, its memberships among them too.
    visible.extend(create_in(&app, &owned, 4, None).await);
    visible.extend(create_in(&app, &owned, 2, Some(&caller)).await);
    visible.extend(create_in(&app, &administered, 5, None).await);
    // Elsewhere its own only: made with it as first member, or added.
    visible.extend(create_in(&app, &joined, 4, Some(&caller)).await);
    let others = create_in(&app, &joined, 4, None).await;
    app.client()
        .await
        .add_workspace_member(authed(
            &joined.owner.token,
            AddWorkspaceMemberRequest {
                workspace_id: others[0].to_string(),
                user_id: caller.id.to_string(),
                role: 0,
            },
        ))
        .await
        .unwrap();
    visible.push(others[0]);
    // Memberships of an organization it has left show nothing; an
    // organization it never joined neither.
    let hidden_by_leaving = create_in(&app, &left, 2, Some(&caller)).await;
    organization_membership::Entity::delete_many()
        .filter(organization_membership::Column::OrganizationId.eq(left.id))
        .filter(organization_membership::Column::UserId.eq(caller.id))
        .exec(app.storage.connection())
        .await
        .unwrap();
    create_in(&app, &stranger, 3, None).await;
    // Ties on created_at across every kind of visibility, and with a
    // workspace the caller does not see.
    let tied = [
        visible[1],
        visible[5],
        visible[7],
        visible[12],
        visible[15],
        others[1],
        hidden_by_leaving[0],
    ];
    created_together(&app, &tied, Utc::now() - chrono::Duration::days(1)).await;

    let expected = in_list_order(&app, &visible).await;
    assert_eq!(expected.len(), 16);
    for page_size in [1, 2, 3, 5, 7, 16, MAX_PAGE_SIZE] {
        assert_eq!(
            page_through(&app, &caller, None, page_size).await,
            expected,
            "page size {page_size}"
        );
    }
    // One organization at a time: its part of the same order.
    for (org, of_org) in [
        (&owned, &visible[..6]),
        (&administered, &visible[6..11]),
        (&joined, &visible[11..]),
    ] {
        let expected: Vec<Uuid> = expected
            .iter()
            .copied()
            .filter(|id| of_org.contains(id))
            .collect();
        for page_size in [1, 2, MAX_PAGE_SIZE] {
            assert_eq!(
                page_through(&app, &caller, Some(org.id), page_size).await,
                expected,
                "page size {page_size}"
            );
        }
    }
}

async fn an_owner_of_thirty_organizations_pages_through_all_of_them(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let owner = app.user().await;
    let mut all = Vec::new();
    let mut organizations = Vec::new();
    for i in 0..30 {
        let org = app.organization(PlanSpec::default()).await;
        app.storage
            .put_organization_member(org.id, owner.id, OrganizationRole::Owner)
            .await
            .unwrap();
        // Organizations of 0 to 3 workspaces, made in turn.
        all.extend(create_in(&app, &org, i % 4, None).await);
        organizations.push(org);
    }
    // A second round, so that organizations interleave in time.
    for org in organizations.iter().step_by(3) {
        all.extend(create_in(&app, org, 1, None).await);
    }
    let tied: Vec<Uuid> = all.iter().copied().step_by(4).collect();
    created_together(&app, &tied, Utc::now() - chrono::Duration::hours(1)).await;

    let expected = in_list_order(&app, &all).await;
    assert_eq!(expected.len(), 53);
    for page_size in [1, 2, 4, 29, 30, 31, MAX_PAGE_SIZE] {
        assert_eq!(
            page_through(&app, &owner, None, page_size).await,
            expected,
            "page size {page_size}"
        );
    }
}

/// PostgreSQL's JIT compiled the List statement's first plans on every
/// connection (20 to 36 ms each, BENCHMARKS.md "Growth"): the service's
/// own sessions run without it, whichever connection a call gets.
#[tokio::test]
async fn the_service_sessions_run_without_jit_on_postgres() {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let Some(app) = common::spawn_app_with(Backend::Postgres, |_| {}).await else {
        return;
    };
    let db = app.storage.connection();
    let show = Statement::from_string(DbBackend::Postgres, "SHOW jit");
    let answers = futures::future::join_all((0..4).map(|_| db.query_one_raw(show.clone()))).await;
    for answer in answers {
        let row = answer.unwrap().expect("SHOW answers a row");
        let jit: String = row.try_get("", "jit").unwrap();
        assert_eq!(jit, "off");
    }
}

/// Seventy organizations of 60 workspaces each, 50 made in a run of the
/// organization's own, 10 in turns with the others: the List's first read
/// gives each organization 29 keys (2,048 over 70 ranges), fewer than a
/// run holds, so pages of 50 or more need the later stages, over
/// PostgreSQL's LATERAL and SQLite's walk alike, for an OWNER (all of each
/// organization) and a MEMBER (its own workspaces: the runs, and every
/// other one of the turns).
async fn callers_of_seventy_organizations_page_through_runs_and_turns(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (owner, member) = (app.user().await, app.user().await);
    let db = app.storage.connection();
    let template = app
        .create_named(&app.organization(PlanSpec::default()).await, "Template")
        .await;
    let template = workspace::Entity::find_by_id(template.id.parse::<Uuid>().unwrap())
        .one(db)
        .await
        .unwrap()
        .unwrap();
    let start = Utc::now().trunc_subsecs(6) - chrono::Duration::days(1);
    let (mut all, mut members) = (Vec::new(), Vec::new());
    for o in 0..70i64 {
        let org = app.organization(PlanSpec::default()).await;
        for (user, role) in [
            (&owner, OrganizationRole::Owner),
            (&member, OrganizationRole::Member),
        ] {
            app.storage
                .put_organization_member(org.id, user.id, role)
                .await
                .unwrap();
        }
        let mut rows = Vec::new();
        let mut memberships = Vec::new();
        for j in 0..60i64 {
            // A run of 50 seconds of its own, then a turn every 70 ms.
            let at = if j < 50 {
                start + chrono::Duration::seconds(o * 100 + j)
            } else {
                start
                    + chrono::Duration::hours(3)
                    + chrono::Duration::milliseconds((j - 50) * 70 + o)
            };
            let id = Uuid::new_v4();
            rows.push(
                workspace::Model {
                    id,
                    organization_id: org.id,
                    name: format!("W {o} {j}"),
                    normalized_name: format!("w {o} {j}"),
                    created_by: org.owner.id,
                    created_at: at,
                    updated_at: at,
                    number: 1_000_000 + o * 100 + j,
                    ..template.clone()
                }
                .into_active_model(),
            );
            if j < 50 || j % 2 == 0 {
                memberships.push(
                    workspace_membership::Model {
                        id: Uuid::new_v4(),
                        workspace_id: id,
                        user_id: member.id,
                        role: "MEMBER".into(),
                        created_at: at,
                        updated_at: at,
                        organization_id: org.id,
                        workspace_created_at: at,
                    }
                    .into_active_model(),
                );
                members.push(id);
            }
            all.push(id);
        }
        workspace::Entity::insert_many(rows).exec(db).await.unwrap();
        workspace_membership::Entity::insert_many(memberships)
            .exec(db)
            .await
            .unwrap();
    }
    let (all, members) = (
        in_list_order(&app, &all).await,
        in_list_order(&app, &members).await,
    );
    assert_eq!((all.len(), members.len()), (4_200, 3_850));
    for page_size in [7, 50, 333, MAX_PAGE_SIZE] {
        for (who, caller, expected) in [("OWNER", &owner, &all), ("MEMBER", &member, &members)] {
            let seen = page_through(&app, caller, None, page_size).await;
            let first_wrong = seen.iter().zip(expected.iter()).position(|(a, b)| a != b);
            assert!(
                seen == *expected,
                "{who}, page size {page_size}: {} seen of {}, first out of place at {first_wrong:?}",
                seen.len(),
                expected.len()
            );
        }
    }
}
