//! `request_id` (AIP-155): a retry returns the first result and writes
//! nothing; `validate_only` (AIP-163): every check, nothing written.

mod common;

use common::{Backend, PlanSpec, assert_error, authed, concurrently, named, spawn_app};
use tonic::Code;
use workspace_service::domain::Reason;
use workspace_service::proto::{
    CreateWorkspaceRequest, DeleteWorkspaceRequest, ListWorkspacesRequest,
};

on_both_databases!(
    retry_with_same_request_id_returns_the_same_workspace,
    same_request_id_with_a_different_request_is_invalid_argument,
    request_ids_belong_to_their_caller,
    concurrent_retries_create_one_workspace,
    failed_calls_are_not_remembered,
    validate_only_runs_every_check_and_writes_nothing,
    a_retry_may_name_the_organization_the_first_call_inferred_or_leave_it_out,
    a_request_id_is_forgotten_with_its_workspace,
);

async fn count_workspaces(app: &common::TestApp, token: &str) -> usize {
    app.client()
        .await
        .list_workspaces(authed(token, ListWorkspacesRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .workspaces
        .len()
}

fn with_request_id(mut request: CreateWorkspaceRequest, id: &str) -> CreateWorkspaceRequest {
    request.request_id = id.to_owned();
    request
}

async fn retry_with_same_request_id_returns_the_same_workspace(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::with_limit(1)).await;
    let request = with_request_id(
        named(&org, "Retried"),
        "5f0c6f5e-1d7a-4c55-9d0e-7f5d3c1b2a90",
    );
    let first = app.create(&org.owner.token, request.clone()).await.unwrap();
    // The retry succeeds although the name is now taken and the limit of 1
    // is reached: it is answered from the first call.
    let retry = app.create(&org.owner.token, request).await.unwrap();
    assert_eq!(retry.id, first.id);
    assert_eq!(count_workspaces(&app, &org.owner.token).await, 1);
}

async fn same_request_id_with_a_different_request_is_invalid_argument(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    app.create(
        &org.owner.token,
        with_request_id(named(&org, "Original"), "req-1"),
    )
    .await
    .unwrap();
    assert_error(
        app.create(
            &org.owner.token,
            with_request_id(named(&org, "Something else"), "req-1"),
        )
        .await,
        Code::InvalidArgument,
        Reason::RequestIdReused,
    );
    app.create(
        &org.owner.token,
        with_request_id(named(&org, "Something else"), "req-2"),
    )
    .await
    .unwrap();
}

async fn request_ids_belong_to_their_caller(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let admin = app
        .member(org.id, workspace_service::domain::OrganizationRole::Admin)
        .await;
    let a = app
        .create(
            &org.owner.token,
            with_request_id(named(&org, "Owner's"), "shared-id"),
        )
        .await
        .unwrap();
    let b = app
        .create(
            &admin.token,
            with_request_id(named(&org, "Admin's"), "shared-id"),
        )
        .await
        .unwrap();
    assert_ne!(a.id, b.id);
}

async fn concurrent_retries_create_one_workspace(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let channel = app.channel().await;
    let request = with_request_id(named(&org, "Stormy retries"), "storm");
    let token = org.owner.token.clone();
    let results = concurrently(10, |_| {
        let mut client =
            workspace_service::proto::workspace_service_client::WorkspaceServiceClient::new(
                channel.clone(),
            );
        let request = authed(&token, request.clone());
        async move {
            client
                .create_workspace(request)
                .await
                .map(|r| r.into_inner().id)
        }
    })
    .await;
    let ids: Vec<String> = results
        .into_iter()
        .map(|r| r.unwrap_or_else(|s| panic!("a retry failed: {s:?}")))
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(count_workspaces(&app, &org.owner.token).await, 1);
}

async fn failed_calls_are_not_remembered(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::with_limit(0)).await;
    let request = with_request_id(named(&org, "Later"), "try-again");
    assert_error(
        app.create(&org.owner.token, request.clone()).await,
        Code::ResourceExhausted,
        Reason::WorkspaceLimitReached,
    );
    app.storage
        .update_plan(org.plan_id, true, Some(1))
        .await
        .unwrap();
    app.create(&org.owner.token, request).await.unwrap();
}

async fn validate_only_runs_every_check_and_writes_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let mut request = named(&org, "Dry run");
    request.validate_only = true;
    request.request_id = "dry".into();
    let preview = app.create(&org.owner.token, request.clone()).await.unwrap();
    assert_eq!(preview.id, "", "a preview has no id");
    assert_eq!(preview.name, "Dry run");
    assert_eq!(preview.members_count, 1);
    assert_eq!(count_workspaces(&app, &org.owner.token).await, 0);

    // Refusals are the same as for a real call.
    let mut short = request.clone();
    short.name = "abc".into();
    assert_error(
        app.create(&org.owner.token, short).await,
        Code::InvalidArgument,
        Reason::NameTooShort,
    );
    app.create_named(&org, "Dry run").await;
    assert_error(
        app.create(&org.owner.token, request.clone()).await,
        Code::AlreadyExists,
        Reason::WorkspaceAlreadyExists,
    );
    app.storage
        .update_plan(org.plan_id, true, Some(1))
        .await
        .unwrap();
    request.name = "Another".into();
    assert_error(
        app.create(&org.owner.token, request).await,
        Code::ResourceExhausted,
        Reason::WorkspaceLimitReached,
    );
    assert_eq!(count_workspaces(&app, &org.owner.token).await, 1);
}

/// The organization is part of what a request asks for as the create
/// resolved it: a retry that names the organization the first call
/// inferred, or leaves out the one it named, is the same request; naming
/// another is a reused request_id.
async fn a_retry_may_name_the_organization_the_first_call_inferred_or_leave_it_out(
    backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let token = &org.owner.token;
    let request =
        |name: &str, request_id: &str, organization: Option<String>| CreateWorkspaceRequest {
            name: name.to_owned(),
            request_id: request_id.to_owned(),
            organization_id: organization.unwrap_or_default(),
            ..Default::default()
        };
    let mut client = app.client().await;
    // Inferred first, named on the retry.
    let first = client
        .create_workspace(authed(token, request("Inferred", "req-inferred", None)))
        .await
        .unwrap()
        .into_inner();
    let retry = client
        .create_workspace(authed(
            token,
            request("Inferred", "req-inferred", Some(org.id.to_string())),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retry.id, first.id);
    // Named first, left out on the retry.
    let first = client
        .create_workspace(authed(
            token,
            request("Named", "req-named", Some(org.id.to_string())),
        ))
        .await
        .unwrap()
        .into_inner();
    let retry = client
        .create_workspace(authed(token, request("Named", "req-named", None)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retry.id, first.id);
    // Another organization: not the same request.
    let other = app.organization(PlanSpec::default()).await;
    assert_error(
        client
            .create_workspace(authed(
                token,
                request("Named", "req-named", Some(other.id.to_string())),
            ))
            .await,
        Code::InvalidArgument,
        Reason::RequestIdReused,
    );
    assert_eq!(count_workspaces(&app, token).await, 2);
}

/// README: a request_id is forgotten with the workspace it created, so a
/// retry after that workspace was deleted creates a new one.
async fn a_request_id_is_forgotten_with_its_workspace(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let token = &org.owner.token;
    let request = || CreateWorkspaceRequest {
        request_id: "req-deleted".into(),
        ..named(&org, "Deleted then retried")
    };
    let mut client = app.client().await;
    let first = client
        .create_workspace(authed(token, request()))
        .await
        .unwrap()
        .into_inner();
    client
        .delete_workspace(authed(
            token,
            DeleteWorkspaceRequest {
                id: first.id.clone(),
                etag: first.etag.clone(),
                allow_missing: false,
            },
        ))
        .await
        .unwrap();
    let retry = client
        .create_workspace(authed(token, request()))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(retry.id, first.id);
    assert_eq!(count_workspaces(&app, token).await, 1);
}
