//! GetWorkspace and ListWorkspaces: a caller sees the workspaces it is a
//! member of, and all of its organization's as an OWNER or ADMIN; others
//! are NOT_FOUND. Pages are keyset-based and stable under inserts.

mod common;

use std::collections::HashSet;
use workspace_service::domain::Reason;

use common::{Backend, PlanSpec, TestApp, assert_error, authed, named, spawn_app};
use tonic::Code;
use uuid::Uuid;
use workspace_service::{
    domain::OrganizationRole,
    proto::{GetWorkspaceRequest, ListWorkspacesRequest, ListWorkspacesResponse, Role, Workspace},
};

on_both_databases!(
    members_and_organization_admins_see_a_workspace_others_get_not_found,
    get_with_a_malformed_id_is_invalid_argument,
    list_shows_only_visible_workspaces_and_filters_by_organization,
    list_pages_are_stable_under_concurrent_inserts,
    list_refuses_bad_page_sizes_and_tokens,
);

async fn get(app: &TestApp, token: &str, id: &str) -> Result<Workspace, tonic::Status> {
    app.client()
        .await
        .get_workspace(authed(token, GetWorkspaceRequest { id: id.to_owned() }))
        .await
        .map(|r| r.into_inner())
}

async fn list(
    app: &TestApp,
    token: &str,
    request: ListWorkspacesRequest,
) -> Result<ListWorkspacesResponse, tonic::Status> {
    app.client()
        .await
        .list_workspaces(authed(token, request))
        .await
        .map(|r| r.into_inner())
}

async fn members_and_organization_admins_see_a_workspace_others_get_not_found(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let first_member = app.member(org.id, OrganizationRole::Member).await;
    let mut request = named(&org, "Visible");
    request.first_member_id = first_member.id.to_string();
    let workspace = app.create(&org.owner.token, request).await.unwrap();

    let as_member = get(&app, &first_member.token, &workspace.id).await.unwrap();
    assert_eq!(as_member.user_role, Role::WorkspaceMember as i32);

    // An ADMIN of the organization sees it without being a member.
    let admin = app.member(org.id, OrganizationRole::Admin).await;
    let as_admin = get(&app, &admin.token, &workspace.id).await.unwrap();
    assert_eq!(as_admin.id, workspace.id);
    assert_eq!(as_admin.user_role, Role::Unspecified as i32);

    // A plain member of the organization, a member of another one and an
    // unknown id all get the same NOT_FOUND.
    let bystander = app.member(org.id, OrganizationRole::WorkspaceCreator).await;
    let stranger = app.organization(PlanSpec::default()).await.owner;
    for (token, id) in [
        (&bystander.token, workspace.id.clone()),
        (&stranger.token, workspace.id.clone()),
        (&org.owner.token, Uuid::now_v7().to_string()),
    ] {
        assert_error(
            get(&app, token, &id).await,
            Code::NotFound,
            Reason::WorkspaceNotFound,
        );
    }
}

async fn get_with_a_malformed_id_is_invalid_argument(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    assert_error(
        get(&app, &org.owner.token, "42").await,
        Code::InvalidArgument,
        Reason::InvalidUuid,
    );
}

async fn list_shows_only_visible_workspaces_and_filters_by_organization(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let other = app.organization(PlanSpec::default()).await;
    let creator = app.member(org.id, OrganizationRole::WorkspaceCreator).await;
    app.storage
        .put_organization_member(other.id, creator.id, OrganizationRole::Owner)
        .await
        .unwrap();

    let owners = app.create_named(&org, "Owner's").await;
    let mine = app
        .create(&creator.token, named(&org, "Creator's"))
        .await
        .unwrap();
    let elsewhere = app
        .create(&creator.token, named(&other, "Elsewhere"))
        .await
        .unwrap();
    let hidden = app.create_named(&other, "Not for org's owner").await;

    let names = |response: ListWorkspacesResponse| -> Vec<String> {
        response.workspaces.into_iter().map(|w| w.name).collect()
    };
    // The owner of `org` sees all of org's, none of other's.
    assert_eq!(
        names(
            list(&app, &org.owner.token, ListWorkspacesRequest::default())
                .await
                .unwrap()
        ),
        [owners.name.clone(), mine.name.clone()]
    );
    // The creator is a plain creator in org (sees its own) and owner of other (sees all).
    assert_eq!(
        names(
            list(&app, &creator.token, ListWorkspacesRequest::default())
                .await
                .unwrap()
        ),
        [
            mine.name.clone(),
            elsewhere.name.clone(),
            hidden.name.clone()
        ]
    );
    let only_org = ListWorkspacesRequest {
        organization_id: org.id.to_string(),
        ..Default::default()
    };
    assert_eq!(
        names(list(&app, &creator.token, only_org.clone()).await.unwrap()),
        [mine.name]
    );
    // Filtering by an organization the caller is not in is refused.
    let outsider = app.user().await;
    assert_error(
        list(&app, &outsider.token, only_org).await,
        Code::PermissionDenied,
        Reason::NotOrganizationMember,
    );
    assert!(
        list(&app, &outsider.token, ListWorkspacesRequest::default())
            .await
            .unwrap()
            .workspaces
            .is_empty()
    );
}

async fn list_pages_are_stable_under_concurrent_inserts(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    for i in 0..5 {
        app.create_named(&org, &format!("Before {i}")).await;
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = list(
            &app,
            &org.owner.token,
            ListWorkspacesRequest {
                page_size: 2,
                page_token: token.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        pages += 1;
        assert!(page.workspaces.len() <= 2);
        seen.extend(page.workspaces.into_iter().map(|w| w.name));
        // Others insert while we page, two at once.
        if pages <= 2 {
            let (a, b) = (format!("During {pages}a"), format!("During {pages}b"));
            futures::join!(app.create_named(&org, &a), app.create_named(&org, &b));
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a workspace came twice: {seen:?}");
    // Every workspace that existed before paging began is there, in order.
    let before: Vec<_> = seen
        .iter()
        .filter(|n| n.starts_with("Before"))
        .cloned()
        .collect();
    assert_eq!(
        before,
        (0..5).map(|i| format!("Before {i}")).collect::<Vec<_>>()
    );
    // Inserts land after the cursor (pages are in creation order; ids are
    // random and only break ties), so they are seen too.
    assert_eq!(seen.len(), 9, "{seen:?}");
    // One page of all is in (created_at, id) order, the order paging saw.
    let all = list(
        &app,
        &org.owner.token,
        ListWorkspacesRequest {
            page_size: 100,
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .workspaces;
    let keys: Vec<_> = all
        .iter()
        .map(|w| {
            let at = w.created_at.unwrap();
            ((at.seconds, at.nanos), Uuid::parse_str(&w.id).unwrap())
        })
        .collect();
    assert!(keys.windows(2).all(|k| k[0] < k[1]), "{keys:?}");
    let names: Vec<_> = all.into_iter().map(|w| w.name).collect();
    assert_eq!(names, seen);
}

async fn list_refuses_bad_page_sizes_and_tokens(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    assert_error(
        list(
            &app,
            &org.owner.token,
            ListWorkspacesRequest {
                page_size: -1,
                ..Default::default()
            },
        )
        .await,
        Code::InvalidArgument,
        Reason::InvalidPageSize,
    );
    assert_error(
        list(
            &app,
            &org.owner.token,
            ListWorkspacesRequest {
                page_token: "not-a-token".into(),
                ..Default::default()
            },
        )
        .await,
        Code::InvalidArgument,
        Reason::InvalidPageToken,
    );
    // A token made for one organization filter does not work for another.
    for i in 0..3 {
        app.create_named(&org, &format!("Paged {i}")).await;
    }
    let first = list(
        &app,
        &org.owner.token,
        ListWorkspacesRequest {
            page_size: 1,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(!first.next_page_token.is_empty());
    assert_error(
        list(
            &app,
            &org.owner.token,
            ListWorkspacesRequest {
                organization_id: org.id.to_string(),
                page_size: 1,
                page_token: first.next_page_token,
            },
        )
        .await,
        Code::InvalidArgument,
        Reason::InvalidPageToken,
    );
    // A huge page size is lowered, not refused.
    let all = list(
        &app,
        &org.owner.token,
        ListWorkspacesRequest {
            page_size: 1_000_000,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(all.workspaces.len(), 3);
    assert!(all.next_page_token.is_empty());
}
