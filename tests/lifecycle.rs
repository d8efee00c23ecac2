//! The rest of a workspace's life over gRPC, on SQLite and PostgreSQL:
//! UpdateWorkspace, DeleteWorkspace, members, access tokens, who may do
//! what, and the invariants under concurrent calls.

mod common;

use common::reason_of as reason;

use std::time::Duration;

use common::{
    Backend, Org, PlanSpec, TestApp, assert_error, authed, concurrently, named, spawn_app,
};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use tonic::{Code, Status, transport::Channel};
use uuid::Uuid;
use workspace_service::{
    domain::{OrganizationRole, Reason},
    proto::{
        AddWorkspaceMemberRequest, CreateWorkspaceAccessTokenRequest, DeleteWorkspaceRequest,
        GetWorkspaceRequest, ListWorkspaceAccessTokensRequest, ListWorkspaceMembersRequest,
        ListWorkspacesRequest, RemoveWorkspaceMemberRequest, RevokeWorkspaceAccessTokenRequest,
        Role, UpdateWorkspaceMemberRequest, UpdateWorkspaceRequest, Workspace,
        workspace_service_client::WorkspaceServiceClient,
    },
    storage::entities::workspace_membership,
};

on_both_databases!(
    update_renames_with_the_rules_of_create_and_refuses_a_stale_etag,
    delete_frees_the_name_and_a_place_under_the_limit,
    members_join_change_role_and_leave_but_one_owner_stays,
    access_tokens_act_on_their_workspace_only_until_revoked_or_expired,
    creates_and_deletes_racing_under_a_limit_keep_the_counter_exact,
    of_two_updates_with_one_etag_exactly_one_wins,
    concurrent_removals_never_leave_a_workspace_without_an_owner,
    the_smaller_holes_stay_closed,
    an_admin_racing_a_promotion_never_removes_an_owner,
    token_hashes_are_shown_only_to_those_who_may_list_tokens,
);

async fn client(app: &TestApp) -> WorkspaceServiceClient<Channel> {
    WorkspaceServiceClient::new(app.channel().await)
}

fn update(workspace: &Workspace, name: &str, etag: &str) -> UpdateWorkspaceRequest {
    UpdateWorkspaceRequest {
        id: workspace.id.clone(),
        name: name.to_owned(),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["name".into()],
        }),
        etag: etag.to_owned(),
        ..Default::default()
    }
}

fn delete(id: &str) -> DeleteWorkspaceRequest {
    DeleteWorkspaceRequest {
        id: id.to_owned(),
        ..Default::default()
    }
}

async fn get(app: &TestApp, token: &str, id: &str) -> Result<Workspace, Status> {
    client(app)
        .await
        .get_workspace(authed(token, GetWorkspaceRequest { id: id.to_owned() }))
        .await
        .map(|r| r.into_inner())
}

async fn update_renames_with_the_rules_of_create_and_refuses_a_stale_etag(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let token = &org.owner.token;
    let alpha = app.create_named(&org, "Alpha team").await;
    app.create_named(&org, "Gamma team").await;
    assert_eq!(alpha.etag, "\"1\"");
    let mut grpc = client(&app).await;

    let renamed = grpc
        .update_workspace(authed(token, update(&alpha, "Beta team", &alpha.etag)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (renamed.name.as_str(), renamed.etag.as_str()),
        ("Beta team", "\"2\"")
    );
    assert_ne!(renamed.updated_at, alpha.updated_at);
    assert_eq!(get(&app, token, &alpha.id).await.unwrap().name, "Beta team");

    // The etag read before the rename is stale now.
    assert_error(
        grpc.update_workspace(authed(token, update(&alpha, "Delta team", &alpha.etag)))
            .await,
        Code::Aborted,
        Reason::EtagMismatch,
    );
    // The rules of create: unique (as names that look the same), lengths.
    assert_error(
        grpc.update_workspace(authed(token, update(&renamed, " gamma TEAM ", "")))
            .await,
        Code::AlreadyExists,
        Reason::WorkspaceAlreadyExists,
    );
    assert_error(
        grpc.update_workspace(authed(token, update(&renamed, "abc", "")))
            .await,
        Code::InvalidArgument,
        Reason::NameTooShort,
    );
    // Without a mask, the fields given; the description alone.
    let described = grpc
        .update_workspace(authed(
            token,
            UpdateWorkspaceRequest {
                id: alpha.id.clone(),
                description: "Now with a description".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (described.name.as_str(), described.description.as_str()),
        ("Beta team", "Now with a description")
    );
    assert_error(
        grpc.update_workspace(authed(
            token,
            UpdateWorkspaceRequest {
                id: alpha.id.clone(),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["organization_id".into()],
                }),
                ..Default::default()
            },
        ))
        .await,
        Code::InvalidArgument,
        Reason::InvalidUpdateMask,
    );
    // Someone who may not change it is told it does not exist.
    let member = app.member(org.id, OrganizationRole::Member).await;
    assert_error(
        grpc.update_workspace(authed(&member.token, update(&described, "Mine now", "")))
            .await,
        Code::NotFound,
        Reason::WorkspaceNotFound,
    );
}

async fn delete_frees_the_name_and_a_place_under_the_limit(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::with_limit(1)).await;
    let token = &org.owner.token;
    let only = app.create_named(&org, "The only one").await;
    assert_error(
        app.create(token, named(&org, "A second one")).await,
        Code::ResourceExhausted,
        Reason::WorkspaceLimitReached,
    );
    let mut grpc = client(&app).await;
    // A workspace member who is not its OWNER cannot delete it.
    let colleague = app.member(org.id, OrganizationRole::Member).await;
    grpc.add_workspace_member(authed(
        token,
        AddWorkspaceMemberRequest {
            workspace_id: only.id.clone(),
            user_id: colleague.id.to_string(),
            role: Role::WorkspaceAdmin as i32,
        },
    ))
    .await
    .unwrap();
    assert_error(
        grpc.delete_workspace(authed(&colleague.token, delete(&only.id)))
            .await,
        Code::NotFound,
        Reason::WorkspaceNotFound,
    );
    // A stale etag deletes nothing.
    assert_error(
        grpc.delete_workspace(authed(
            token,
            DeleteWorkspaceRequest {
                id: only.id.clone(),
                etag: "\"7\"".into(),
                allow_missing: false,
            },
        ))
        .await,
        Code::Aborted,
        Reason::EtagMismatch,
    );
    grpc.delete_workspace(authed(
        token,
        DeleteWorkspaceRequest {
            id: only.id.clone(),
            etag: only.etag.clone(),
            allow_missing: false,
        },
    ))
    .await
    .unwrap();
    assert_error(
        get(&app, token, &only.id).await,
        Code::NotFound,
        Reason::WorkspaceNotFound,
    );
    // The name and the place are free again.
    app.create_named(&org, "The only one").await;
    assert_eq!(common::assert_whole(&app.storage, &org).await.len(), 1);
    // Gone already: NOT_FOUND, or nothing with allow_missing.
    assert_error(
        grpc.delete_workspace(authed(token, delete(&only.id))).await,
        Code::NotFound,
        Reason::WorkspaceNotFound,
    );
    grpc.delete_workspace(authed(
        token,
        DeleteWorkspaceRequest {
            id: Uuid::now_v7().to_string(),
            allow_missing: true,
            ..Default::default()
        },
    ))
    .await
    .expect("allow_missing answers a missing workspace as deleted");
}

async fn members_join_change_role_and_leave_but_one_owner_stays(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let token = &org.owner.token;
    let workspace = app.create_named(&org, "Shared space").await;
    let colleague = app.member(org.id, OrganizationRole::Member).await;
    let stranger = app.user().await;
    let mut grpc = client(&app).await;
    let add = |user: Uuid, role: Role| AddWorkspaceMemberRequest {
        workspace_id: workspace.id.clone(),
        user_id: user.to_string(),
        role: role as i32,
    };

    let added = grpc
        .add_workspace_member(authed(token, add(colleague.id, Role::Unspecified)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(added.privileges, vec![Role::WorkspaceMember as i32]);
    assert_error(
        grpc.add_workspace_member(authed(token, add(colleague.id, Role::WorkspaceMember)))
            .await,
        Code::AlreadyExists,
        Reason::AlreadyMember,
    );
    assert_error(
        grpc.add_workspace_member(authed(token, add(stranger.id, Role::WorkspaceMember)))
            .await,
        Code::FailedPrecondition,
        Reason::UserNotInOrganization,
    );
    // A plain member manages nothing, and sees the workspace.
    assert_error(
        grpc.add_workspace_member(authed(
            &colleague.token,
            add(stranger.id, Role::WorkspaceMember),
        ))
        .await,
        Code::NotFound,
        Reason::WorkspaceNotFound,
    );
    let listed = grpc
        .list_workspace_members(authed(
            &colleague.token,
            ListWorkspaceMembersRequest {
                workspace_id: workspace.id.clone(),
                page_size: 1,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.memberships.len(), 1);
    let rest = grpc
        .list_workspace_members(authed(
            &colleague.token,
            ListWorkspaceMembersRequest {
                workspace_id: workspace.id.clone(),
                page_size: 1,
                page_token: listed.next_page_token.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.memberships[0].user_id, colleague.id.to_string());

    // The only OWNER cannot step down or leave.
    let demote = UpdateWorkspaceMemberRequest {
        workspace_id: workspace.id.clone(),
        user_id: org.owner.id.to_string(),
        role: Role::WorkspaceMember as i32,
    };
    assert_error(
        grpc.update_workspace_member(authed(token, demote.clone()))
            .await,
        Code::FailedPrecondition,
        Reason::LastOwner,
    );
    let remove = |user: Uuid| RemoveWorkspaceMemberRequest {
        workspace_id: workspace.id.clone(),
        user_id: user.to_string(),
    };
    assert_error(
        grpc.remove_workspace_member(authed(token, remove(org.owner.id)))
            .await,
        Code::FailedPrecondition,
        Reason::LastOwner,
    );
    // A workspace ADMIN manages members but not OWNERs.
    let deputy = app.member(org.id, OrganizationRole::Member).await;
    grpc.add_workspace_member(authed(token, add(deputy.id, Role::WorkspaceAdmin)))
        .await
        .unwrap();
    assert_error(
        grpc.remove_workspace_member(authed(&deputy.token, remove(org.owner.id)))
            .await,
        Code::PermissionDenied,
        Reason::InsufficientRole,
    );
    assert_error(
        grpc.update_workspace_member(authed(
            &deputy.token,
            UpdateWorkspaceMemberRequest {
                workspace_id: workspace.id.clone(),
                user_id: deputy.id.to_string(),
                role: Role::WorkspaceOwner as i32,
            },
        ))
        .await,
        Code::PermissionDenied,
        Reason::InsufficientRole,
    );
    grpc.remove_workspace_member(authed(&deputy.token, remove(deputy.id)))
        .await
        .expect("anyone may leave");

    // With a second OWNER, the first may.
    grpc.update_workspace_member(authed(
        token,
        UpdateWorkspaceMemberRequest {
            workspace_id: workspace.id.clone(),
            user_id: colleague.id.to_string(),
            role: Role::WorkspaceOwner as i32,
        },
    ))
    .await
    .unwrap();
    grpc.update_workspace_member(authed(token, demote))
        .await
        .unwrap();
    // Anyone may leave; a member who is gone is NOT_FOUND.
    grpc.remove_workspace_member(authed(token, remove(org.owner.id)))
        .await
        .unwrap();
    assert_error(
        grpc.remove_workspace_member(authed(&colleague.token, remove(org.owner.id)))
            .await,
        Code::NotFound,
        Reason::MemberNotFound,
    );
    let seen = get(&app, &colleague.token, &workspace.id).await.unwrap();
    assert_eq!(seen.memberships.len(), 1);
    assert_eq!(
        seen.memberships[0].privileges,
        vec![Role::WorkspaceOwner as i32]
    );
}

async fn access_tokens_act_on_their_workspace_only_until_revoked_or_expired(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let token = &org.owner.token;
    let mine = app.create_named(&org, "Token home").await;
    let other = app.create_named(&org, "Elsewhere").await;
    let mut grpc = client(&app).await;
    let created = grpc
        .create_workspace_access_token(authed(
            token,
            CreateWorkspaceAccessTokenRequest {
                workspace_id: mine.id.clone(),
                name: "CI".into(),
                expire_time: None,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let secret = created.secret.clone();
    assert!(secret.starts_with("wsat_"), "{secret}");
    let stored = created.access_token.unwrap();
    assert_eq!(
        stored.hash,
        workspace_service::auth::issue::hash_secret(&secret)
    );
    assert!(stored.expires_at.is_none());

    // Listed without its secret, and in memberships[].accessTokens.
    let listed = grpc
        .list_workspace_access_tokens(authed(
            token,
            ListWorkspaceAccessTokensRequest {
                workspace_id: mine.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.access_tokens, vec![stored.clone()]);
    let seen = get(&app, token, &mine.id).await.unwrap();
    let owner = seen
        .memberships
        .iter()
        .find(|m| m.user_id == org.owner.id.to_string())
        .unwrap();
    assert_eq!(owner.access_tokens, vec![stored.clone()]);

    // The token works for its workspace only.
    assert_eq!(get(&app, &secret, &mine.id).await.unwrap().id, mine.id);
    assert_error(
        get(&app, &secret, &other.id).await,
        Code::NotFound,
        Reason::WorkspaceNotFound,
    );
    let listed = grpc
        .list_workspaces(authed(&secret, ListWorkspacesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed
            .workspaces
            .iter()
            .map(|w| w.id.clone())
            .collect::<Vec<_>>(),
        vec![mine.id.clone()]
    );
    // Its workspace wherever it stands among the user's: one created last,
    // past the first page of the owner's, is still the token's page.
    let latest = app.create_named(&org, "Created last").await;
    let latest_secret = grpc
        .create_workspace_access_token(authed(
            token,
            CreateWorkspaceAccessTokenRequest {
                workspace_id: latest.id.clone(),
                name: "Latest".into(),
                expire_time: None,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .secret;
    let page = grpc
        .list_workspaces(authed(
            &latest_secret,
            ListWorkspacesRequest {
                page_size: 1,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        page.workspaces
            .iter()
            .map(|w| w.id.clone())
            .collect::<Vec<_>>(),
        vec![latest.id.clone()]
    );
    assert!(page.next_page_token.is_empty());
    assert_error(
        app.create(&secret, named(&org, "Made by a token")).await,
        Code::PermissionDenied,
        Reason::AccessTokenNotAllowed,
    );
    assert_error(
        grpc.create_workspace_access_token(authed(
            &secret,
            CreateWorkspaceAccessTokenRequest {
                workspace_id: mine.id.clone(),
                name: "Child".into(),
                expire_time: None,
            },
        ))
        .await,
        Code::PermissionDenied,
        Reason::AccessTokenNotAllowed,
    );

    // Revoked: refused on the next call.
    grpc.revoke_workspace_access_token(authed(
        token,
        RevokeWorkspaceAccessTokenRequest {
            workspace_id: mine.id.clone(),
            token_id: stored.id.clone(),
        },
    ))
    .await
    .unwrap();
    assert_error(
        get(&app, &secret, &mine.id).await,
        Code::Unauthenticated,
        Reason::Unauthenticated,
    );
    assert_error(
        grpc.revoke_workspace_access_token(authed(
            token,
            RevokeWorkspaceAccessTokenRequest {
                workspace_id: mine.id.clone(),
                token_id: stored.id.clone(),
            },
        ))
        .await,
        Code::NotFound,
        Reason::AccessTokenNotFound,
    );

    // Expired: refused once its time is past; a time in the past is refused.
    let soon = chrono::Utc::now() + chrono::Duration::milliseconds(1_200);
    let short_lived = grpc
        .create_workspace_access_token(authed(
            token,
            CreateWorkspaceAccessTokenRequest {
                workspace_id: mine.id.clone(),
                name: "Short-lived".into(),
                expire_time: Some(prost_types::Timestamp {
                    seconds: soon.timestamp(),
                    nanos: soon.timestamp_subsec_nanos() as i32,
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .secret;
    assert!(get(&app, &short_lived, &mine.id).await.is_ok());
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_error(
        get(&app, &short_lived, &mine.id).await,
        Code::Unauthenticated,
        Reason::Unauthenticated,
    );
    assert_error(
        grpc.create_workspace_access_token(authed(
            token,
            CreateWorkspaceAccessTokenRequest {
                workspace_id: mine.id.clone(),
                name: "Already over".into(),
                expire_time: Some(prost_types::Timestamp {
                    seconds: 1,
                    nanos: 0,
                }),
            },
        ))
        .await,
        Code::InvalidArgument,
        Reason::ExpireTimeInPast,
    );
    // Past year 9999 no reply could carry it (RFC 3339): refused, so no
    // member's Get or List over JSON can fail on it.
    assert_error(
        grpc.create_workspace_access_token(authed(
            token,
            CreateWorkspaceAccessTokenRequest {
                workspace_id: mine.id.clone(),
                name: "Year 14645".into(),
                expire_time: Some(prost_types::Timestamp {
                    seconds: 400_000_000_000,
                    nanos: 0,
                }),
            },
        ))
        .await,
        Code::InvalidArgument,
        Reason::ExpireTimeOutOfRange,
    );
    assert_error(
        grpc.create_workspace_access_token(authed(
            token,
            CreateWorkspaceAccessTokenRequest {
                workspace_id: mine.id.clone(),
                name: "invoice\u{202E}fdp.exe".into(),
                expire_time: None,
            },
        ))
        .await,
        Code::InvalidArgument,
        Reason::AccessTokenNameInvalid,
    );
}

async fn creates_and_deletes_racing_under_a_limit_keep_the_counter_exact(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::with_limit(10)).await;
    let mut existing = Vec::new();
    for i in 0..10 {
        existing.push(app.create_named(&org, &format!("Existing {i:02}")).await.id);
    }
    let channel = app.channel().await;
    let token = org.owner.token.clone();
    // 50 creates and 50 deletes (five of each existing workspace) at once.
    let results = concurrently(100, |i| {
        let mut grpc = WorkspaceServiceClient::new(channel.clone());
        let token = token.clone();
        let org_id = org.id.to_string();
        let target = existing[(i / 2) % 10].clone();
        async move {
            if i % 2 == 0 {
                let request = workspace_service::proto::CreateWorkspaceRequest {
                    organization_id: org_id,
                    name: format!("Racing {i:03}"),
                    ..Default::default()
                };
                (
                    "create",
                    grpc.create_workspace(authed(&token, request))
                        .await
                        .map(|_| ()),
                )
            } else {
                (
                    "delete",
                    grpc.delete_workspace(authed(&token, delete(&target)))
                        .await
                        .map(|_| ()),
                )
            }
        }
    })
    .await;
    for (kind, result) in &results {
        if let Err(status) = result {
            let expected = match *kind {
                "create" => {
                    reason(status) == Reason::WorkspaceLimitReached.as_str()
                        || reason(status) == Reason::OrganizationOverloaded.as_str()
                }
                // Deletes pass the organization's gate too.
                _ => {
                    reason(status) == Reason::WorkspaceNotFound.as_str()
                        || reason(status) == Reason::OrganizationOverloaded.as_str()
                }
            };
            assert!(expected, "{kind}: {status:?}");
        }
    }
    let deleted = results
        .iter()
        .filter(|(kind, r)| *kind == "delete" && r.is_ok())
        .count();
    let created = results
        .iter()
        .filter(|(kind, r)| *kind == "create" && r.is_ok())
        .count();
    // Each existing workspace was deleted once, whatever the order: by
    // exactly one of its five deletes, unless all five were turned away at
    // the organization's gate (a busy machine can make one wait past its
    // quarter second).
    for target in 0..10 {
        let its_deletes: Vec<_> = results
            .iter()
            .enumerate()
            .filter(|(i, (kind, _))| *kind == "delete" && (i / 2) % 10 == target)
            .map(|(_, (_, result))| result)
            .collect();
        let succeeded = its_deletes.iter().filter(|r| r.is_ok()).count();
        let turned_away = its_deletes
            .iter()
            .filter(|r| {
                r.as_ref()
                    .is_err_and(|status| reason(status) == Reason::OrganizationOverloaded.as_str())
            })
            .count();
        assert!(
            succeeded == 1 || (succeeded == 0 && turned_away == its_deletes.len()),
            "workspace {target}: {succeeded} deletes succeeded, {turned_away} turned away"
        );
    }
    let stored = common::assert_whole(&app.storage, &org).await;
    assert_eq!(stored.len(), 10 - deleted + created);
    assert!(stored.len() <= 10, "over the limit: {}", stored.len());
}

async fn of_two_updates_with_one_etag_exactly_one_wins(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let workspace = app.create_named(&org, "Contested").await;
    let channel = app.channel().await;
    let token = org.owner.token.clone();
    let results = concurrently(10, |i| {
        let mut grpc = WorkspaceServiceClient::new(channel.clone());
        let request = authed(
            &token,
            update(&workspace, &format!("Winner {i}"), &workspace.etag),
        );
        async move { grpc.update_workspace(request).await }
    })
    .await;
    let winners: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|w| w.get_ref().name.clone())
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for refused in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(
            (refused.code(), reason(refused)),
            (Code::Aborted, Reason::EtagMismatch.as_str().to_owned())
        );
    }
    let stored = get(&app, &token, &workspace.id).await.unwrap();
    assert_eq!(
        (stored.name, stored.etag),
        (winners[0].clone(), "\"2\"".to_owned())
    );
}

async fn concurrent_removals_never_leave_a_workspace_without_an_owner(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org: Org = app.organization(PlanSpec::default()).await;
    let workspace = app.create_named(&org, "Many owners").await;
    let admin = app.member(org.id, OrganizationRole::Admin).await;
    let mut grpc = client(&app).await;
    let mut owners = vec![org.owner.id];
    for _ in 0..4 {
        let user = app.member(org.id, OrganizationRole::Member).await;
        grpc.add_workspace_member(authed(
            &org.owner.token,
            AddWorkspaceMemberRequest {
                workspace_id: workspace.id.clone(),
                user_id: user.id.to_string(),
                role: Role::WorkspaceOwner as i32,
            },
        ))
        .await
        .unwrap();
        owners.push(user.id);
    }
    // The organization's ADMIN removes every OWNER at once.
    let channel = app.channel().await;
    let results = concurrently(owners.len(), |i| {
        let mut grpc = WorkspaceServiceClient::new(channel.clone());
        let request = authed(
            &admin.token,
            RemoveWorkspaceMemberRequest {
                workspace_id: workspace.id.clone(),
                user_id: owners[i].to_string(),
            },
        );
        async move { grpc.remove_workspace_member(request).await }
    })
    .await;
    let removed = results.iter().filter(|r| r.is_ok()).count();
    let refused: Vec<&Status> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(removed, 4, "{results:?}");
    assert_eq!(refused.len(), 1);
    assert_eq!(reason(refused[0]), Reason::LastOwner.as_str());
    let id = Uuid::parse_str(&workspace.id).unwrap();
    let left = workspace_membership::Entity::find()
        .filter(workspace_membership::Column::WorkspaceId.eq(id))
        .filter(workspace_membership::Column::Role.eq("OWNER"))
        .count(app.storage.connection())
        .await
        .unwrap();
    assert_eq!(left, 1);
}

/// Issue 26's smaller findings: a role number the enum does not have, a
/// revocation by an account that is not validated, allow_missing on a
/// workspace the caller sees but may not delete, a members page token of
/// another workspace.
async fn the_smaller_holes_stay_closed(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let token = &org.owner.token;
    let mut grpc = client(&app).await;
    let alpha = app.create_named(&org, "Alpha").await;
    let beta = app.create_named(&org, "Beta").await;
    let member = app.member(org.id, OrganizationRole::Member).await;

    assert_error(
        grpc.add_workspace_member(authed(
            token,
            AddWorkspaceMemberRequest {
                workspace_id: alpha.id.clone(),
                user_id: member.id.to_string(),
                role: 99,
            },
        ))
        .await,
        Code::InvalidArgument,
        Reason::InvalidRole,
    );
    grpc.add_workspace_member(authed(
        token,
        AddWorkspaceMemberRequest {
            workspace_id: alpha.id.clone(),
            user_id: member.id.to_string(),
            role: Role::Unspecified as i32,
        },
    ))
    .await
    .expect("ROLE_UNSPECIFIED adds a MEMBER");

    // A MEMBER sees Alpha but may not delete it: allow_missing does not
    // turn that into a success, and Alpha stays.
    assert_error(
        grpc.delete_workspace(authed(
            &member.token,
            DeleteWorkspaceRequest {
                id: alpha.id.clone(),
                allow_missing: true,
                ..Default::default()
            },
        ))
        .await,
        Code::NotFound,
        Reason::WorkspaceNotFound,
    );
    assert!(get(&app, token, &alpha.id).await.is_ok());
    // A workspace that is not there is deleted already.
    grpc.delete_workspace(authed(
        &member.token,
        DeleteWorkspaceRequest {
            id: Uuid::now_v7().to_string(),
            allow_missing: true,
            ..Default::default()
        },
    ))
    .await
    .expect("allow_missing answers a missing workspace as deleted");

    // An organization ADMIN whose account is not validated revokes nothing.
    let created = grpc
        .create_workspace_access_token(authed(
            token,
            CreateWorkspaceAccessTokenRequest {
                workspace_id: alpha.id.clone(),
                name: "Kept".into(),
                expire_time: None,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let unvalidated = app.user_validated(false).await;
    app.storage
        .put_organization_member(org.id, unvalidated.id, OrganizationRole::Admin)
        .await
        .unwrap();
    assert_error(
        grpc.revoke_workspace_access_token(authed(
            &unvalidated.token,
            RevokeWorkspaceAccessTokenRequest {
                workspace_id: alpha.id.clone(),
                token_id: created.access_token.unwrap().id,
            },
        ))
        .await,
        Code::FailedPrecondition,
        Reason::AccountNotValidated,
    );
    assert!(get(&app, &created.secret, &alpha.id).await.is_ok());

    // A members page token is for its own workspace only.
    let first = grpc
        .list_workspace_members(authed(
            token,
            ListWorkspaceMembersRequest {
                workspace_id: alpha.id.clone(),
                page_size: 1,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!first.next_page_token.is_empty());
    assert_error(
        grpc.list_workspace_members(authed(
            token,
            ListWorkspaceMembersRequest {
                workspace_id: beta.id.clone(),
                page_size: 1,
                page_token: first.next_page_token.clone(),
            },
        ))
        .await,
        Code::InvalidArgument,
        Reason::InvalidPageToken,
    );
    let rest = grpc
        .list_workspace_members(authed(
            token,
            ListWorkspaceMembersRequest {
                workspace_id: alpha.id.clone(),
                page_size: 1,
                page_token: first.next_page_token,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.memberships.len(), 1);
}

/// While an OWNER promotes a member to OWNER, a workspace ADMIN removes
/// (or demotes) that member: one of the two must lose. The target's role
/// is read under the workspace's lock, so when the promotion commits
/// first, the ADMIN is refused.
async fn an_admin_racing_a_promotion_never_removes_an_owner(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let workspace = app.create_named(&org, "Raced").await;
    let admin = app.member(org.id, OrganizationRole::Member).await;
    let mut grpc = client(&app).await;
    let add = |user: Uuid, role: Role| {
        authed(
            &org.owner.token,
            AddWorkspaceMemberRequest {
                workspace_id: workspace.id.clone(),
                user_id: user.to_string(),
                role: role as i32,
            },
        )
    };
    grpc.add_workspace_member(add(admin.id, Role::WorkspaceAdmin))
        .await
        .unwrap();
    let channel = app.channel().await;
    let mut both = Vec::new();
    for round in 0..20 {
        let target = app.member(org.id, OrganizationRole::Member).await;
        grpc.add_workspace_member(add(target.id, Role::WorkspaceMember))
            .await
            .unwrap();
        let (mut owner_side, mut admin_side) = (
            WorkspaceServiceClient::new(channel.clone()),
            WorkspaceServiceClient::new(channel.clone()),
        );
        let promote = owner_side.update_workspace_member(authed(
            &org.owner.token,
            UpdateWorkspaceMemberRequest {
                workspace_id: workspace.id.clone(),
                user_id: target.id.to_string(),
                role: Role::WorkspaceOwner as i32,
            },
        ));
        let (promoted, lowered) = if round % 2 == 0 {
            let remove = admin_side.remove_workspace_member(authed(
                &admin.token,
                RemoveWorkspaceMemberRequest {
                    workspace_id: workspace.id.clone(),
                    user_id: target.id.to_string(),
                },
            ));
            let (promoted, removed) = tokio::join!(promote, remove);
            (promoted.is_ok(), removed.map(|_| ()))
        } else {
            let demote = admin_side.update_workspace_member(authed(
                &admin.token,
                UpdateWorkspaceMemberRequest {
                    workspace_id: workspace.id.clone(),
                    user_id: target.id.to_string(),
                    role: Role::WorkspaceMember as i32,
                },
            ));
            let (promoted, demoted) = tokio::join!(promote, demote);
            (promoted.is_ok(), demoted.map(|_| ()))
        };
        match &lowered {
            // Removed or demoted first: the promotion may follow, or find
            // no member.
            Ok(()) if promoted => {
                // Both succeeded: only fine if the ADMIN's change came first
                // and the promotion after, so the target is an OWNER now.
                let members = grpc
                    .list_workspace_members(authed(
                        &org.owner.token,
                        ListWorkspaceMembersRequest {
                            workspace_id: workspace.id.clone(),
                            page_size: 1_000,
                            ..Default::default()
                        },
                    ))
                    .await
                    .unwrap()
                    .into_inner();
                let role = members
                    .memberships
                    .iter()
                    .find(|m| m.user_id == target.id.to_string())
                    .map(|m| m.privileges.clone());
                if role != Some(vec![Role::WorkspaceOwner as i32]) {
                    both.push((round, role));
                }
            }
            Ok(()) => {}
            Err(status) => assert!(
                status.code() == Code::PermissionDenied || status.code() == Code::NotFound,
                "round {round}: {status:?}"
            ),
        }
    }
    assert!(both.is_empty(), "an ADMIN lowered a fresh OWNER: {both:?}");
}

/// A plain MEMBER may not list a workspace's tokens, so GetWorkspace,
/// ListWorkspaces and ListWorkspaceMembers show it no hash but its own;
/// an OWNER sees them all.
async fn token_hashes_are_shown_only_to_those_who_may_list_tokens(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let owner = &org.owner.token;
    let workspace = app.create_named(&org, "Hashed").await;
    let member = app.member(org.id, OrganizationRole::Member).await;
    let mut grpc = client(&app).await;
    grpc.add_workspace_member(authed(
        owner,
        AddWorkspaceMemberRequest {
            workspace_id: workspace.id.clone(),
            user_id: member.id.to_string(),
            role: Role::WorkspaceMember as i32,
        },
    ))
    .await
    .unwrap();
    let token = grpc
        .create_workspace_access_token(authed(
            owner,
            CreateWorkspaceAccessTokenRequest {
                workspace_id: workspace.id.clone(),
                name: "CI".into(),
                expire_time: None,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .access_token
        .unwrap();
    assert!(!token.hash.is_empty());
    let hashes = |w: &Workspace| -> Vec<String> {
        w.memberships
            .iter()
            .flat_map(|m| m.access_tokens.iter().map(|t| t.hash.clone()))
            .collect()
    };
    let seen_by_owner = get(&app, owner, &workspace.id).await.unwrap();
    assert_eq!(hashes(&seen_by_owner), vec![token.hash.clone()]);
    let seen_by_member = get(&app, &member.token, &workspace.id).await.unwrap();
    assert_eq!(hashes(&seen_by_member), vec![String::new()]);
    let listed = grpc
        .list_workspaces(authed(&member.token, ListWorkspacesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hashes(&listed.workspaces[0]), vec![String::new()]);
    let members = grpc
        .list_workspace_members(authed(
            &member.token,
            ListWorkspaceMembersRequest {
                workspace_id: workspace.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let member_hashes: Vec<String> = members
        .memberships
        .iter()
        .flat_map(|m| m.access_tokens.iter().map(|t| t.hash.clone()))
        .collect();
    assert_eq!(member_hashes, vec![String::new()]);
}
