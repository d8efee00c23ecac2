//! Checks 9 and 10 under concurrent calls: the database decides, so the
//! counts are exact however the calls interleave.

mod common;

use common::reason_of as reason;

use common::{Backend, PlanSpec, authed, concurrently, named, spawn_app};
use tonic::Code;
use workspace_service::domain::Reason;
use workspace_service::proto::{
    ListWorkspacesRequest, workspace_service_client::WorkspaceServiceClient,
};

on_both_databases!(
    fifty_concurrent_creates_of_one_name_give_one_success,
    limit_of_five_with_thirty_concurrent_creates_gives_exactly_five,
);

async fn fifty_concurrent_creates_of_one_name_give_one_success(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let channel = app.channel().await;
    let token = org.owner.token.clone();
    let request = named(&org, "Contended");
    let results = concurrently(50, |i| {
        let mut client = WorkspaceServiceClient::new(channel.clone());
        let mut request = request.clone();
        // Spellings differ; the normalized name is the same.
        if i % 2 == 1 {
            request.name = " contended ".into();
        }
        let request = authed(&token, request);
        async move { client.create_workspace(request).await }
    })
    .await;
    let successes = results.iter().filter(|r| r.is_ok()).count();
    let duplicates = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .filter(|s| s.code() == Code::AlreadyExists && reason(s) == Reason::WorkspaceAlreadyExists)
        .count();
    let others: Vec<_> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .filter(|s| s.code() != Code::AlreadyExists)
        .collect();
    assert!(others.is_empty(), "unexpected errors: {others:?}");
    assert_eq!((successes, duplicates), (1, 49));
}

async fn limit_of_five_with_thirty_concurrent_creates_gives_exactly_five(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::with_limit(5)).await;
    let channel = app.channel().await;
    let token = org.owner.token.clone();
    let results = concurrently(30, |i| {
        let mut client = WorkspaceServiceClient::new(channel.clone());
        let request = authed(&token, named(&org, &format!("Workspace {i:02}")));
        async move { client.create_workspace(request).await }
    })
    .await;
    let successes = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .filter(|s| {
            s.code() == Code::ResourceExhausted && reason(s) == Reason::WorkspaceLimitReached
        })
        .count();
    assert_eq!((successes, refused), (5, 25), "{results:?}");

    let listed = WorkspaceServiceClient::new(channel)
        .list_workspaces(authed(&token, ListWorkspacesRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .workspaces;
    assert_eq!(listed.len(), 5);
}
