//! CreateWorkspace, one test per check of the product contract (SPEC
//! section 3), each with the refusal and the success next to it.

mod common;

use common::{Backend, PlanSpec, assert_error, named, spawn_app, spawn_app_with};
use tonic::Code;
use tonic_types::StatusExt;
use uuid::Uuid;
use workspace_service::domain::Reason;
use workspace_service::{
    domain::{CredentialsKind, OrganizationRole, WorkspaceCreationPolicy},
    proto::{CreateWorkspaceRequest, DocumentStoreCredentials, FileStoreCredentials, Role},
};

on_both_databases!(
    check_2_name_of_three_characters_or_fewer_is_name_too_short,
    check_2_name_longer_than_the_maximum_is_name_too_long,
    check_2_blank_or_control_character_names_are_refused,
    check_2_every_field_violation_is_reported,
    check_2_billing_email_must_be_well_formed_and_can_be_required,
    check_2_name_bounds_are_settings,
    check_3_non_member_is_permission_denied,
    check_3_unknown_organization_is_permission_denied_like_a_foreign_one,
    check_3_organization_is_inferred_when_the_caller_has_exactly_one,
    check_3_holds_for_a_caller_in_more_organizations_than_authentication_reads,
    check_4_unvalidated_account_is_failed_precondition,
    check_5_plain_member_is_insufficient_role,
    check_5_admins_only_policy_is_workspace_creation_disabled,
    check_5_all_members_policy_lets_members_create,
    check_6_plan_without_workspaces_is_plan_not_supported,
    check_7_unknown_or_foreign_credentials_are_not_found,
    check_8_first_member_outside_the_organization_is_not_found,
    check_9_workspace_limit_is_resource_exhausted,
    check_10_duplicate_name_in_same_org_is_already_exists,
    check_11_creator_becomes_owner_and_everything_is_returned,
    checks_run_in_the_contracts_order,
);

async fn check_2_name_of_three_characters_or_fewer_is_name_too_short(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let status = assert_error(
        app.create(&org.owner.token, named(&org, "abc")).await,
        Code::InvalidArgument,
        Reason::NameTooShort,
    );
    assert_eq!(
        status.message(),
        "The name of the workspace 'abc' must contain more than 3 characters. Give your workspace a longer name."
    );
    let details = status.get_error_details();
    let violations = &details
        .bad_request()
        .expect("BadRequest details")
        .field_violations;
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].field, "name");
    assert_eq!(violations[0].reason, Reason::NameTooShort);

    // Trimmed first: "  abc  " is still three characters.
    assert_error(
        app.create(&org.owner.token, named(&org, "  abc  ")).await,
        Code::InvalidArgument,
        Reason::NameTooShort,
    );
    let created = app.create_named(&org, "abcd").await;
    assert_eq!(created.name, "abcd");
}

async fn check_2_name_longer_than_the_maximum_is_name_too_long(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    assert_error(
        app.create(&org.owner.token, named(&org, &"x".repeat(101)))
            .await,
        Code::InvalidArgument,
        Reason::NameTooLong,
    );
    // Characters, not bytes: 100 two-byte characters are fine.
    app.create_named(&org, &"é".repeat(100)).await;
}

async fn check_2_blank_or_control_character_names_are_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    for blank in ["", "    "] {
        assert_error(
            app.create(&org.owner.token, named(&org, blank)).await,
            Code::InvalidArgument,
            Reason::NameRequired,
        );
    }
    assert_error(
        app.create(&org.owner.token, named(&org, "tab\there")).await,
        Code::InvalidArgument,
        Reason::NameInvalidCharacters,
    );
    let created = app.create_named(&org, "  spaces around  ").await;
    assert_eq!(created.name, "spaces around");
}

async fn check_2_every_field_violation_is_reported(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let request = CreateWorkspaceRequest {
        organization_id: "not-a-uuid".into(),
        name: "ab".into(),
        description: "d".repeat(1_001),
        first_member_id: "42".into(),
        document_store_credentials: Some(DocumentStoreCredentials {
            workspace_document_store_credentials_id: String::new(),
            pipeline_document_store_credentials_id: Uuid::now_v7().to_string(),
        }),
        file_store_credentials: Some(FileStoreCredentials {
            file_store_credentials_id: "nope".into(),
        }),
        request_id: "r".repeat(129),
        ..Default::default()
    };
    let status = assert_error(
        app.create(&org.owner.token, request).await,
        Code::InvalidArgument,
        Reason::NameTooShort,
    );
    let details = status.get_error_details();
    let fields: Vec<_> = details
        .bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|v| (v.field.as_str(), v.reason.parse::<Reason>().unwrap()))
        .collect();
    assert_eq!(
        fields,
        [
            ("name", Reason::NameTooShort),
            ("description", Reason::DescriptionTooLong),
            ("organization_id", Reason::InvalidUuid),
            ("first_member_id", Reason::InvalidUuid),
            (
                "document_store_credentials.workspace_document_store_credentials_id",
                Reason::FieldRequired
            ),
            (
                "file_store_credentials.file_store_credentials_id",
                Reason::InvalidUuid
            ),
            ("request_id", Reason::InvalidRequestId),
        ]
    );
    // A description of exactly 1,000 characters is fine.
    let mut ok = named(&org, "Long description");
    ok.description = "d".repeat(1_000);
    app.create(&org.owner.token, ok).await.unwrap();
}

async fn check_2_billing_email_must_be_well_formed_and_can_be_required(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| s.rules.require_billing_email = true).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    assert_error(
        app.create(&org.owner.token, named(&org, "Billing")).await,
        Code::InvalidArgument,
        Reason::BillingAccountEmailRequired,
    );
    let mut request = named(&org, "Billing");
    request.billing_account_email = "not an email".into();
    assert_error(
        app.create(&org.owner.token, request.clone()).await,
        Code::InvalidArgument,
        Reason::InvalidEmail,
    );
    request.billing_account_email = "billing@example.com".into();
    let created = app.create(&org.owner.token, request).await.unwrap();
    assert_eq!(created.billing_account_email, "billing@example.com");
}

async fn check_2_name_bounds_are_settings(backend: Backend) {
    // Seed 001's bounds: 1 to 128 characters.
    let Some(app) = spawn_app_with(backend, |s| {
        s.rules.name_min_chars = 1;
        s.rules.name_max_chars = 128;
    })
    .await
    else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    app.create_named(&org, "a").await;
    app.create_named(&org, &"b".repeat(128)).await;
    assert_error(
        app.create(&org.owner.token, named(&org, &"c".repeat(129)))
            .await,
        Code::InvalidArgument,
        Reason::NameTooLong,
    );
}

async fn check_3_non_member_is_permission_denied(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let other = app.organization(PlanSpec::default()).await;
    assert_error(
        app.create(&other.owner.token, named(&org, "Not mine"))
            .await,
        Code::PermissionDenied,
        Reason::NotOrganizationMember,
    );
    let outsider = app.user().await;
    assert_error(
        app.create(&outsider.token, named(&org, "Not mine")).await,
        Code::PermissionDenied,
        Reason::NotOrganizationMember,
    );
    app.create(&org.owner.token, named(&org, "Not mine"))
        .await
        .unwrap();
}

async fn check_3_unknown_organization_is_permission_denied_like_a_foreign_one(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let mut request = named(&org, "Nowhere");
    request.organization_id = Uuid::now_v7().to_string();
    let status = assert_error(
        app.create(&org.owner.token, request).await,
        Code::PermissionDenied,
        Reason::NotOrganizationMember,
    );
    assert_eq!(
        status.message(),
        "You are not a member of this organization."
    );
}

async fn check_3_organization_is_inferred_when_the_caller_has_exactly_one(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let mut request = named(&org, "Inferred");
    request.organization_id.clear();
    let created = app.create(&org.owner.token, request.clone()).await.unwrap();
    assert_eq!(created.organization_id, org.id.to_string());

    // In two organizations, the caller must say which.
    let second = app.organization(PlanSpec::default()).await;
    app.storage
        .put_organization_member(second.id, org.owner.id, OrganizationRole::Owner)
        .await
        .unwrap();
    request.name = "Ambiguous".into();
    assert_error(
        app.create(&org.owner.token, request).await,
        Code::InvalidArgument,
        Reason::OrganizationRequired,
    );

    // In none, it is not a member of anything.
    let loner = app.user().await;
    assert_error(
        app.create(
            &loner.token,
            CreateWorkspaceRequest {
                name: "Alone".into(),
                ..Default::default()
            },
        )
        .await,
        Code::PermissionDenied,
        Reason::NotOrganizationMember,
    );
}

/// Authentication with an API token reads the caller's first
/// `CallerOrganizations::READ` organizations for CreateWorkspace; beyond
/// them the create asks the database. Each organization, with its own role,
/// policy and plan, answers as it would alone.
async fn check_3_holds_for_a_caller_in_more_organizations_than_authentication_reads(
    backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let count = workspace_service::storage::CallerOrganizations::READ as usize + 3;
    let user = app.user().await;
    let mut organizations = Vec::new();
    for i in 0..count {
        // Every third one lets a plain MEMBER create nothing.
        let org = app.organization(PlanSpec::default()).await;
        let role = if i % 3 == 2 {
            OrganizationRole::Member
        } else {
            OrganizationRole::WorkspaceCreator
        };
        app.storage
            .put_organization_member(org.id, user.id, role)
            .await
            .unwrap();
        organizations.push((org, role));
    }
    organizations.sort_by_key(|(org, _)| org.id);
    for (i, (org, role)) in organizations.iter().enumerate() {
        let answer = app
            .create(&user.token, named(org, &format!("Place {i}")))
            .await;
        if *role == OrganizationRole::Member {
            assert_error(answer, Code::PermissionDenied, Reason::InsufficientRole);
        } else {
            let created = answer.unwrap_or_else(|e| panic!("organization {i}: {e:?}"));
            assert_eq!(
                created.organization_id,
                org.id.to_string(),
                "organization {i}"
            );
        }
    }
    // Not among them: a stranger's organization is still refused.
    let foreign = app.organization(PlanSpec::default()).await;
    assert_error(
        app.create(&user.token, named(&foreign, "Foreign")).await,
        Code::PermissionDenied,
        Reason::NotOrganizationMember,
    );
    let mut request = named(&foreign, "Which one");
    request.organization_id.clear();
    assert_error(
        app.create(&user.token, request).await,
        Code::InvalidArgument,
        Reason::OrganizationRequired,
    );
}

async fn check_4_unvalidated_account_is_failed_precondition(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let user = app.user_validated(false).await;
    app.storage
        .put_organization_member(org.id, user.id, OrganizationRole::Owner)
        .await
        .unwrap();
    let status = assert_error(
        app.create(&user.token, named(&org, "Unvalidated")).await,
        Code::FailedPrecondition,
        Reason::AccountNotValidated,
    );
    assert_eq!(
        status.message(),
        "User not found or account is not validated."
    );
    app.storage.set_user_validated(user.id, true).await.unwrap();
    app.create(&user.token, named(&org, "Unvalidated"))
        .await
        .unwrap();
}

async fn check_5_plain_member_is_insufficient_role(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let member = app.member(org.id, OrganizationRole::Member).await;
    let status = assert_error(
        app.create(&member.token, named(&org, "Members only")).await,
        Code::PermissionDenied,
        Reason::InsufficientRole,
    );
    assert_eq!(
        status.message(),
        "Insufficient permissions to create workspaces."
    );
    for role in [OrganizationRole::Admin, OrganizationRole::WorkspaceCreator] {
        let allowed = app.member(org.id, role).await;
        app.create(&allowed.token, named(&org, &format!("By {role}")))
            .await
            .unwrap();
    }
}

async fn check_5_admins_only_policy_is_workspace_creation_disabled(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app
        .organization(PlanSpec {
            policy: WorkspaceCreationPolicy::AdminsOnly,
            ..PlanSpec::default()
        })
        .await;
    let creator = app.member(org.id, OrganizationRole::WorkspaceCreator).await;
    assert_error(
        app.create(&creator.token, named(&org, "Standard user"))
            .await,
        Code::PermissionDenied,
        Reason::WorkspaceCreationDisabled,
    );
    let admin = app.member(org.id, OrganizationRole::Admin).await;
    app.create(&admin.token, named(&org, "Standard user"))
        .await
        .unwrap();
}

async fn check_5_all_members_policy_lets_members_create(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let member = app.member(org.id, OrganizationRole::Member).await;
    assert_error(
        app.create(&member.token, named(&org, "Open door")).await,
        Code::PermissionDenied,
        Reason::InsufficientRole,
    );
    app.storage
        .set_organization_policy(org.id, WorkspaceCreationPolicy::AllMembers)
        .await
        .unwrap();
    let created = app
        .create(&member.token, named(&org, "Open door"))
        .await
        .unwrap();
    assert_eq!(created.user_role, Role::WorkspaceOwner as i32);
}

async fn check_6_plan_without_workspaces_is_plan_not_supported(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app
        .organization(PlanSpec {
            creation_allowed: false,
            ..PlanSpec::default()
        })
        .await;
    let status = assert_error(
        app.create(&org.owner.token, named(&org, "Free tier")).await,
        Code::FailedPrecondition,
        Reason::PlanNotSupported,
    );
    assert!(
        status
            .message()
            .starts_with("Creating workspaces is not supported with your current plan.")
    );
    app.storage
        .update_plan(org.plan_id, true, None)
        .await
        .unwrap();
    app.create(&org.owner.token, named(&org, "Free tier"))
        .await
        .unwrap();
}

async fn check_7_unknown_or_foreign_credentials_are_not_found(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let other = app.organization(PlanSpec::default()).await;
    let document_store = app
        .credentials(org.id, CredentialsKind::DocumentStore)
        .await;
    let pipeline_store = app
        .credentials(org.id, CredentialsKind::DocumentStore)
        .await;
    let file_store = app.credentials(org.id, CredentialsKind::FileStore).await;
    let foreign = app.credentials(other.id, CredentialsKind::FileStore).await;

    let request = |workspace: Uuid, pipeline: Uuid, file: Uuid| CreateWorkspaceRequest {
        document_store_credentials: Some(DocumentStoreCredentials {
            workspace_document_store_credentials_id: workspace.to_string(),
            pipeline_document_store_credentials_id: pipeline.to_string(),
        }),
        file_store_credentials: Some(FileStoreCredentials {
            file_store_credentials_id: file.to_string(),
        }),
        ..named(&org, "With storage")
    };
    let unknown = Uuid::now_v7();
    for (bad, field) in [
        (
            request(unknown, pipeline_store, file_store),
            "document_store_credentials.workspace_document_store_credentials_id",
        ),
        (
            request(document_store, pipeline_store, foreign),
            "file_store_credentials.file_store_credentials_id",
        ),
        // The wrong kind: a file store where a document store belongs.
        (
            request(document_store, file_store, file_store),
            "document_store_credentials.pipeline_document_store_credentials_id",
        ),
    ] {
        let status = assert_error(
            app.create(&org.owner.token, bad).await,
            Code::NotFound,
            Reason::CredentialsNotFound,
        );
        let details = status.get_error_details();
        assert_eq!(details.error_info().unwrap().metadata["field"], field);
    }
    let created = app
        .create(
            &org.owner.token,
            request(document_store, pipeline_store, file_store),
        )
        .await
        .unwrap();
    let stored = created.document_store_credentials.unwrap();
    assert_eq!(
        stored.workspace_document_store_credentials_id,
        document_store.to_string()
    );
    assert_eq!(
        stored.pipeline_document_store_credentials_id,
        pipeline_store.to_string()
    );
    assert_eq!(
        created
            .file_store_credentials
            .unwrap()
            .file_store_credentials_id,
        file_store.to_string()
    );
}

async fn check_8_first_member_outside_the_organization_is_not_found(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let outsider = app.user().await;
    let mut request = named(&org, "Team of two");
    request.first_member_id = outsider.id.to_string();
    assert_error(
        app.create(&org.owner.token, request.clone()).await,
        Code::NotFound,
        Reason::FirstMemberNotFound,
    );
    let colleague = app.member(org.id, OrganizationRole::Member).await;
    request.first_member_id = colleague.id.to_string();
    let created = app.create(&org.owner.token, request).await.unwrap();
    assert_eq!(created.members_count, 2);
    let colleague_membership = created
        .memberships
        .iter()
        .find(|m| m.user_id == colleague.id.to_string())
        .expect("the first member is a member");
    assert_eq!(
        colleague_membership.privileges,
        [Role::WorkspaceMember as i32]
    );
}

async fn check_9_workspace_limit_is_resource_exhausted(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::with_limit(2)).await;
    app.create_named(&org, "First").await;
    app.create_named(&org, "Second").await;
    let status = assert_error(
        app.create(&org.owner.token, named(&org, "Third")).await,
        Code::ResourceExhausted,
        Reason::WorkspaceLimitReached,
    );
    assert_eq!(
        status.message(),
        "You reached the workspace limit. Delete an existing workspace to create a new one."
    );
    assert_eq!(
        status.get_error_details().error_info().unwrap().metadata["limit"],
        "2"
    );
    app.storage
        .update_plan(org.plan_id, true, Some(3))
        .await
        .unwrap();
    app.create_named(&org, "Third").await;
}

async fn check_10_duplicate_name_in_same_org_is_already_exists(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    app.create_named(&org, "Research").await;
    for duplicate in ["Research", "research", "  RESEARCH "] {
        let status = assert_error(
            app.create(&org.owner.token, named(&org, duplicate)).await,
            Code::AlreadyExists,
            Reason::WorkspaceAlreadyExists,
        );
        assert_eq!(
            status.message(),
            format!(
                "This workspace {} already exists. Try giving your new workspace a different name.",
                duplicate.trim()
            )
        );
    }
    // Another organization may use the name.
    let other = app.organization(PlanSpec::default()).await;
    app.create_named(&other, "Research").await;
}

async fn check_11_creator_becomes_owner_and_everything_is_returned(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let mut request = named(&org, "Engineering Team Workspace");
    request.description = "Workspace for the engineering team".into();
    request.billing_account_email = "billing@example.com".into();
    let created = app.create(&org.owner.token, request).await.unwrap();

    let id = Uuid::parse_str(&created.id).expect("the id is a UUID");
    assert_eq!(id.get_version_num(), 4);
    assert_eq!(created.description, "Workspace for the engineering team");
    assert_eq!(created.organization_id, org.id.to_string());
    let organization = created.organization.clone().unwrap();
    assert_eq!(
        (organization.id, organization.slug),
        (org.id.to_string(), org.slug.clone())
    );
    assert_eq!(created.workspace_type, "CUSTOM");
    assert_eq!(created.document_upload_method, "MANUAL");
    assert_eq!(created.user_role, Role::WorkspaceOwner as i32);
    assert_eq!(created.members_count, 1);
    let owner = &created.memberships[0];
    assert_eq!(owner.user_id, org.owner.id.to_string());
    assert_eq!(owner.workspace_id, created.id);
    assert_eq!(owner.privileges, [Role::WorkspaceOwner as i32]);
    assert!(created.created_at.is_some() && created.created_at == created.updated_at);

    // It is really there.
    let fetched = app
        .client()
        .await
        .get_workspace(common::authed(
            &org.owner.token,
            workspace_service::proto::GetWorkspaceRequest {
                id: created.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched, created);
}

async fn checks_run_in_the_contracts_order(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // Fails checks 4, 5, 6, 8, 9 and 10 at once; each fix reveals the next.
    let org = app
        .organization(PlanSpec {
            creation_allowed: false,
            workspace_limit: Some(1),
            ..PlanSpec::default()
        })
        .await;
    app.storage
        .update_plan(org.plan_id, true, Some(1))
        .await
        .unwrap();
    app.create_named(&org, "Taken").await;
    app.storage
        .update_plan(org.plan_id, false, Some(1))
        .await
        .unwrap();

    let user = app.user_validated(false).await;
    app.storage
        .put_organization_member(org.id, user.id, OrganizationRole::Member)
        .await
        .unwrap();
    let outsider = app.user().await;
    let mut request = named(&org, "Taken");
    request.first_member_id = outsider.id.to_string();
    let attempt = || app.create(&user.token, request.clone());

    assert_error(
        attempt().await,
        Code::FailedPrecondition,
        Reason::AccountNotValidated,
    );
    app.storage.set_user_validated(user.id, true).await.unwrap();
    assert_error(
        attempt().await,
        Code::PermissionDenied,
        Reason::InsufficientRole,
    );
    app.storage
        .put_organization_member(org.id, user.id, OrganizationRole::WorkspaceCreator)
        .await
        .unwrap();
    assert_error(
        attempt().await,
        Code::FailedPrecondition,
        Reason::PlanNotSupported,
    );
    app.storage
        .update_plan(org.plan_id, true, Some(1))
        .await
        .unwrap();
    assert_error(attempt().await, Code::NotFound, Reason::FirstMemberNotFound);
    app.storage
        .put_organization_member(org.id, outsider.id, OrganizationRole::Member)
        .await
        .unwrap();
    assert_error(
        attempt().await,
        Code::ResourceExhausted,
        Reason::WorkspaceLimitReached,
    );
    app.storage
        .update_plan(org.plan_id, true, Some(10))
        .await
        .unwrap();
    assert_error(
        attempt().await,
        Code::AlreadyExists,
        Reason::WorkspaceAlreadyExists,
    );
    request.name = "Free name".into();
    app.create(&user.token, request).await.unwrap();
}
