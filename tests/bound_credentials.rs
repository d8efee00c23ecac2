//! Credentials bound to an organization (issue 27), as real clients call:
//! a user in two organizations creates through each of the five routes
//! (seeds 000 to 004 with their own auth schemes, and gRPC) with a
//! credential bound to one of them, and its workspace lands there; an
//! unbound credential is told how to fix it; a bound credential acts in
//! its organization only. Binding itself (admin CLI, bootstrap file, JWT
//! claim): `bound_credentials_issuing.rs`.

mod bound;
mod common;

use bound::{Route, app_speaking, body, create_grpc, list, organization_of, post, two_orgs};
use common::{Backend, assert_error, authed};
use reqwest::StatusCode;
use serde_json::json;
use tonic::Code;
use uuid::Uuid;
use workspace_service::{
    domain::Reason,
    http::ApiV1Dialect,
    proto::{
        AddWorkspaceMemberRequest, CreateWorkspaceAccessTokenRequest, CreateWorkspaceRequest,
        DeleteWorkspaceRequest, GetWorkspaceRequest, ListWorkspaceAccessTokensRequest,
        ListWorkspaceMembersRequest, UpdateWorkspaceRequest,
    },
};

on_both_databases!(
    a_bound_credential_creates_through_every_route_in_its_organization,
    an_unbound_credential_is_told_how_to_fix_it_on_each_route,
    a_bound_credential_acts_in_its_organization_only,
);

async fn a_bound_credential_creates_through_every_route_in_its_organization(backend: Backend) {
    for (v1, routes) in [
        (
            ApiV1Dialect::Seed000,
            &[
                Route::Seed000,
                Route::Seed002,
                Route::Seed003,
                Route::Seed004,
            ][..],
        ),
        (ApiV1Dialect::Seed001, &[Route::Seed001][..]),
    ] {
        let Some(app) = app_speaking(backend, v1).await else {
            return;
        };
        let orgs = two_orgs(&app).await;
        let mut names = Vec::new();
        for &route in routes {
            let secret = match route {
                Route::Seed004 => &orgs.bound_session,
                _ => &orgs.bound,
            };
            let name = format!("Bound {route:?}");
            let (status, answer) = post(&app, route, secret, body(route, &name)).await;
            assert_eq!(status, StatusCode::CREATED, "{route:?}: {answer}");
            names.push(name);
        }
        let grpc = create_grpc(&app, &orgs.bound, None).await.unwrap();
        assert_eq!(grpc.organization.unwrap().id, orgs.a.to_string());
        // Each landed in A, as the unbound token's list of A shows.
        let in_a = list(&app, &orgs.unbound, Some(orgs.a)).await.unwrap();
        for name in &names {
            assert_eq!(organization_of(&in_a, name), orgs.a.to_string(), "{name}");
        }
        assert!(
            list(&app, &orgs.unbound, Some(orgs.b))
                .await
                .unwrap()
                .is_empty()
        );
    }
}

async fn an_unbound_credential_is_told_how_to_fix_it_on_each_route(backend: Backend) {
    for (v1, routes) in [
        (
            ApiV1Dialect::Seed000,
            &[
                Route::Seed000,
                Route::Seed002,
                Route::Seed003,
                Route::Seed004,
            ][..],
        ),
        (ApiV1Dialect::Seed001, &[Route::Seed001][..]),
    ] {
        let Some(app) = app_speaking(backend, v1).await else {
            return;
        };
        let orgs = two_orgs(&app).await;
        for &route in routes {
            let secret = match route {
                Route::Seed004 => &orgs.unbound_session,
                _ => &orgs.unbound,
            };
            let (status, answer) = post(&app, route, secret, body(route, "Unbound")).await;
            let text = answer.to_string();
            match route {
                // 004's body has organization_id: it says to send it.
                Route::Seed004 => {
                    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
                    assert!(
                        text.contains("say which one in organization_id"),
                        "{answer}"
                    );
                }
                _ => {
                    let expected = match route {
                        Route::Seed000 | Route::Seed001 => StatusCode::UNPROCESSABLE_ENTITY,
                        _ => StatusCode::BAD_REQUEST,
                    };
                    assert_eq!(status, expected, "{route:?}: {answer}");
                    assert!(
                        text.contains("bound to one of them")
                            && text.contains("workspace-service admin token create")
                            && text.contains("--organization"),
                        "{route:?} does not say how to fix it: {answer}"
                    );
                    assert!(!text.contains("organization_id"), "{route:?}: {answer}");
                }
            }
        }
        // The route's own shape around it.
        if v1 == ApiV1Dialect::Seed000 {
            let (_, answer) = post(
                &app,
                Route::Seed002,
                &orgs.unbound,
                body(Route::Seed002, "x y"),
            )
            .await;
            assert_eq!(
                answer.as_object().unwrap().keys().collect::<Vec<_>>(),
                ["non_field_errors"]
            );
            let (_, answer) = post(
                &app,
                Route::Seed003,
                &orgs.unbound,
                body(Route::Seed003, "x y"),
            )
            .await;
            assert_eq!(answer["success"], false, "{answer}");
        }
        let status = create_grpc(&app, &orgs.unbound, None).await;
        let status = assert_error(status, Code::InvalidArgument, Reason::OrganizationRequired);
        assert!(
            status
                .message()
                .contains("say which one in organization_id")
        );
    }
}

async fn a_bound_credential_acts_in_its_organization_only(backend: Backend) {
    let Some(app) = app_speaking(backend, ApiV1Dialect::Seed000).await else {
        return;
    };
    let orgs = two_orgs(&app).await;
    let stranger_org = app.organization(Default::default()).await.id;
    let in_a = create_grpc(&app, &orgs.unbound, Some(orgs.a))
        .await
        .unwrap();
    let in_b = create_grpc(&app, &orgs.unbound, Some(orgs.b))
        .await
        .unwrap();

    // Naming B with a token bound to A: exactly a non-member's answer.
    let non_member = create_grpc(&app, &orgs.unbound, Some(stranger_org)).await;
    let non_member = assert_error(
        non_member,
        Code::PermissionDenied,
        Reason::NotOrganizationMember,
    );
    let bound = create_grpc(&app, &orgs.bound, Some(orgs.b)).await;
    let bound = assert_error(bound, Code::PermissionDenied, Reason::NotOrganizationMember);
    assert_eq!(bound.message(), non_member.message());
    let listed = list(&app, &orgs.bound, Some(orgs.b)).await;
    let listed = assert_error(
        listed,
        Code::PermissionDenied,
        Reason::NotOrganizationMember,
    );
    let stranger = list(&app, &orgs.unbound, Some(stranger_org)).await;
    let stranger = assert_error(
        stranger,
        Code::PermissionDenied,
        Reason::NotOrganizationMember,
    );
    assert_eq!(listed.message(), stranger.message());
    // Not even as the retry of a call an unbound token made in B.
    let retried = |token: &str| {
        let request = CreateWorkspaceRequest {
            name: "Retried".into(),
            organization_id: orgs.b.to_string(),
            request_id: "retry-1".into(),
            ..Default::default()
        };
        let token = token.to_owned();
        let app = &app;
        async move {
            let mut client = app.client().await;
            client.create_workspace(authed(&token, request)).await
        }
    };
    retried(&orgs.unbound).await.unwrap();
    let replayed = retried(&orgs.bound).await;
    assert_error(
        replayed,
        Code::PermissionDenied,
        Reason::NotOrganizationMember,
    );
    // Seed 004 (a bound session) answers 403 as it does a non-member.
    let elsewhere = |org: Uuid| json!({"name": "Elsewhere", "organization_id": org});
    let stranger = post(
        &app,
        Route::Seed004,
        &orgs.unbound_session,
        elsewhere(stranger_org),
    )
    .await;
    let answer = post(&app, Route::Seed004, &orgs.bound_session, elsewhere(orgs.b)).await;
    assert_eq!(answer.0, StatusCode::FORBIDDEN, "{}", answer.1);
    assert_eq!(answer, stranger);

    // List without an organization: A's workspaces only.
    let listed = list(&app, &orgs.bound, None).await.unwrap();
    let ids: Vec<_> = listed.iter().map(|w| w.id.clone()).collect();
    assert_eq!(ids, std::slice::from_ref(&in_a.id));
    assert_eq!(
        list(&app, &orgs.bound, Some(orgs.a)).await.unwrap().len(),
        1
    );

    // B's workspace is invisible: NOT_FOUND as for a non-member.
    let mut client = app.client().await;
    let token = &orgs.bound;
    let id = in_b.id.clone();
    let get = GetWorkspaceRequest { id: id.clone() };
    assert_eq!(
        client
            .get_workspace(authed(token, get))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let update = UpdateWorkspaceRequest {
        id: id.clone(),
        name: "Renamed".into(),
        ..Default::default()
    };
    assert_eq!(
        client
            .update_workspace(authed(token, update))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let members = ListWorkspaceMembersRequest {
        workspace_id: id.clone(),
        ..Default::default()
    };
    assert_eq!(
        client
            .list_workspace_members(authed(token, members))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let tokens = ListWorkspaceAccessTokensRequest {
        workspace_id: id.clone(),
        ..Default::default()
    };
    assert_eq!(
        client
            .list_workspace_access_tokens(authed(token, tokens))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let add = AddWorkspaceMemberRequest {
        workspace_id: id.clone(),
        user_id: orgs.user.to_string(),
        ..Default::default()
    };
    let added = client.add_workspace_member(authed(token, add)).await;
    assert_eq!(added.unwrap_err().code(), Code::NotFound);
    let new_token = CreateWorkspaceAccessTokenRequest {
        workspace_id: id.clone(),
        name: "ci".into(),
        ..Default::default()
    };
    let made = client
        .create_workspace_access_token(authed(token, new_token))
        .await;
    assert_eq!(made.unwrap_err().code(), Code::NotFound);
    let delete = DeleteWorkspaceRequest {
        id: id.clone(),
        ..Default::default()
    };
    assert_eq!(
        client
            .delete_workspace(authed(token, delete))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    // ...while A's is there, and B's still is for the unbound token.
    let get = GetWorkspaceRequest {
        id: in_a.id.clone(),
    };
    client.get_workspace(authed(token, get)).await.unwrap();
    let get = GetWorkspaceRequest { id };
    client
        .get_workspace(authed(&orgs.unbound, get))
        .await
        .unwrap();
}
