//! CreateWorkspace keeps an API token's caller for its next creates
//! (`storage::callers`): each test makes a create that keeps the caller,
//! changes what that create was decided on, and creates again with the
//! same token at once. The change is never missed: the second create gets
//! the answer a fresh read gives, and nothing is written that should not
//! be. Both databases; requests naming their organization and inferring
//! it.

mod common;

use chrono::Utc;
use common::{Backend, Org, PlanSpec, TestApp, User, assert_error, named, spawn_app};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, sea_query::Expr};
use tonic::Code;
use uuid::Uuid;
use workspace_service::{
    domain::{OrganizationRole, Reason, WorkspaceCreationPolicy},
    proto::CreateWorkspaceRequest,
    storage::entities::{api_token, organization_membership, workspace},
};

on_both_databases!(
    a_revoked_or_expired_token_creates_nothing,
    a_changed_account_role_policy_or_plan_creates_nothing,
    a_removed_member_creates_nothing,
    a_second_organization_is_seen_at_once,
    a_retry_or_validate_only_is_answered_on_a_fresh_read,
);

/// A create that infers its organization (the caller's only one).
fn inferred(name: &str) -> CreateWorkspaceRequest {
    CreateWorkspaceRequest {
        name: name.to_owned(),
        ..Default::default()
    }
}

/// Creates two workspaces as `user` in `org` (inferred, then named), so
/// that its caller is kept whichever way the next create asks.
async fn keep(app: &TestApp, org: &Org, user: &User, tag: &str) {
    for request in [
        inferred(&format!("{tag} one")),
        named(org, &format!("{tag} two")),
    ] {
        app.create(&user.token, request)
            .await
            .unwrap_or_else(|status| panic!("{tag}: {status:?}"));
    }
}

async fn workspaces_of(app: &TestApp, org: &Org) -> u64 {
    workspace::Entity::find()
        .filter(workspace::Column::OrganizationId.eq(org.id))
        .count(app.storage.connection())
        .await
        .unwrap()
}

async fn a_revoked_or_expired_token_creates_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // Revoked.
    let org = app.organization(PlanSpec::default()).await;
    keep(&app, &org, &org.owner, "revoked").await;
    app.storage
        .delete_api_tokens_named(org.owner.id, "test")
        .await
        .unwrap();
    for request in [inferred("After revoke"), named(&org, "After revoke 2")] {
        let result = app.create(&org.owner.token, request).await;
        assert_error(result, Code::Unauthenticated, Reason::Unauthenticated);
    }
    assert_eq!(workspaces_of(&app, &org).await, 2);

    // Expired.
    let org = app.organization(PlanSpec::default()).await;
    keep(&app, &org, &org.owner, "expired").await;
    api_token::Entity::update_many()
        .col_expr(
            api_token::Column::ExpiresAt,
            Expr::value(Some(Utc::now() - chrono::Duration::seconds(1))),
        )
        .filter(api_token::Column::UserId.eq(org.owner.id))
        .exec(app.storage.connection())
        .await
        .unwrap();
    for request in [inferred("After expiry"), named(&org, "After expiry 2")] {
        let result = app.create(&org.owner.token, request).await;
        assert_error(result, Code::Unauthenticated, Reason::Unauthenticated);
    }
    assert_eq!(workspaces_of(&app, &org).await, 2);
}

async fn a_changed_account_role_policy_or_plan_creates_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // The account no longer validated.
    let org = app.organization(PlanSpec::default()).await;
    keep(&app, &org, &org.owner, "validated").await;
    app.storage
        .set_user_validated(org.owner.id, false)
        .await
        .unwrap();
    let result = app.create(&org.owner.token, inferred("Unvalidated")).await;
    assert_error(
        result,
        Code::FailedPrecondition,
        Reason::AccountNotValidated,
    );
    assert_eq!(workspaces_of(&app, &org).await, 2);

    // A WORKSPACE_CREATOR made a MEMBER.
    let org = app.organization(PlanSpec::default()).await;
    let creator = app.member(org.id, OrganizationRole::WorkspaceCreator).await;
    keep(&app, &org, &creator, "role").await;
    app.storage
        .put_organization_member(org.id, creator.id, OrganizationRole::Member)
        .await
        .unwrap();
    let result = app.create(&creator.token, named(&org, "Demoted")).await;
    assert_error(result, Code::PermissionDenied, Reason::InsufficientRole);
    assert_eq!(workspaces_of(&app, &org).await, 2);

    // The policy now lets OWNERs and ADMINs only.
    let org = app.organization(PlanSpec::default()).await;
    let creator = app.member(org.id, OrganizationRole::WorkspaceCreator).await;
    keep(&app, &org, &creator, "policy").await;
    app.storage
        .set_organization_policy(org.id, WorkspaceCreationPolicy::AdminsOnly)
        .await
        .unwrap();
    let result = app.create(&creator.token, inferred("Policy changed")).await;
    assert_error(
        result,
        Code::PermissionDenied,
        Reason::WorkspaceCreationDisabled,
    );
    assert_eq!(workspaces_of(&app, &org).await, 2);

    // The plan no longer allows workspaces.
    let org = app.organization(PlanSpec::default()).await;
    keep(&app, &org, &org.owner, "plan").await;
    app.storage
        .update_plan(org.plan_id, false, None)
        .await
        .unwrap();
    let result = app
        .create(&org.owner.token, named(&org, "Plan changed"))
        .await;
    assert_error(result, Code::FailedPrecondition, Reason::PlanNotSupported);
    assert_eq!(workspaces_of(&app, &org).await, 2);
}

async fn a_removed_member_creates_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let creator = app.member(org.id, OrganizationRole::WorkspaceCreator).await;
    keep(&app, &org, &creator, "removed").await;
    organization_membership::Entity::delete_many()
        .filter(organization_membership::Column::UserId.eq(creator.id))
        .exec(app.storage.connection())
        .await
        .unwrap();
    for request in [inferred("Removed"), named(&org, "Removed 2")] {
        let result = app.create(&creator.token, request).await;
        assert_error(
            result,
            Code::PermissionDenied,
            Reason::NotOrganizationMember,
        );
    }
    assert_eq!(workspaces_of(&app, &org).await, 2);
}

async fn a_second_organization_is_seen_at_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // The second organization's id sorts before the first's, then after
    // it: the statement asks for another membership on each side.
    for second_sorts_first in [true, false] {
        let earlier = app.organization(PlanSpec::default()).await;
        let later = app.organization(PlanSpec::default()).await;
        let (org, second) = if second_sorts_first {
            (later, earlier)
        } else {
            (earlier, later)
        };
        assert_eq!(second.id < org.id, second_sorts_first, "ids in time order");
        keep(&app, &org, &org.owner, "first").await;
        app.storage
            .put_organization_member(second.id, org.owner.id, OrganizationRole::Admin)
            .await
            .unwrap();
        // The caller kept says one organization; there are two now.
        let result = app.create(&org.owner.token, inferred("Which one")).await;
        assert_error(result, Code::InvalidArgument, Reason::OrganizationRequired);
        assert_eq!(workspaces_of(&app, &org).await, 2);
        // And the new one is the caller's.
        let created = app
            .create(&org.owner.token, named(&second, "In the second"))
            .await
            .expect("a member of the second organization creates in it");
        assert_eq!(created.organization_id, second.id.to_string());
    }
}

async fn a_retry_or_validate_only_is_answered_on_a_fresh_read(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let request_id = Uuid::new_v4().to_string();
    let first = CreateWorkspaceRequest {
        request_id: request_id.clone(),
        ..named(&org, "Retried")
    };
    app.create(&org.owner.token, first.clone()).await.unwrap();
    keep(&app, &org, &org.owner, "kept").await;
    app.storage
        .delete_api_tokens_named(org.owner.id, "test")
        .await
        .unwrap();
    // The retry would answer the workspace without writing: not to a
    // revoked token.
    let result = app.create(&org.owner.token, first).await;
    assert_error(result, Code::Unauthenticated, Reason::Unauthenticated);
    let preview = CreateWorkspaceRequest {
        validate_only: true,
        ..named(&org, "Previewed")
    };
    let result = app.create(&org.owner.token, preview).await;
    assert_error(result, Code::Unauthenticated, Reason::Unauthenticated);
    assert_eq!(workspaces_of(&app, &org).await, 3);
}
