//! Issue 19's faults and edges: no input reaches a 500, names that look the
//! same are one name, access follows current membership, List's cost
//! follows what the caller can see.

mod common;

use common::http::url;
use common::{
    Backend, OwnPostgres, PlanSpec, assert_error, authed, named, spawn_app, spawn_app_at,
    spawn_app_with,
};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use tonic::Code;
use workspace_service::{
    domain::{OrganizationRole, Reason},
    proto::{GetWorkspaceRequest, ListWorkspacesRequest},
    storage::entities::organization_membership,
};

on_both_databases!(
    nul_and_control_characters_are_invalid_argument_on_every_transport,
    names_that_look_the_same_are_one_name,
    a_member_removed_from_the_organization_sees_none_of_its_workspaces,
    the_largest_page_fits_in_one_answer_and_the_rest_follows,
    multipart_bodies_are_held_to_the_message_limit,
);

async fn nul_and_control_characters_are_invalid_argument_on_every_transport(backend: Backend) {
    // grpc-gateway's dialect on the HTTP side: every field, forms too.
    let Some(app) = spawn_app_with(backend, |s| {
        s.server.http_dialects = workspace_service::http::DialectChoice::GrpcGateway;
    })
    .await
    else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;

    let mut request = named(&org, "Nul description");
    request.description = "before\0after".into();
    assert_error(
        app.create(&org.owner.token, request).await,
        Code::InvalidArgument,
        Reason::DescriptionInvalidCharacters,
    );
    let mut request = named(&org, "Nul\0name");
    request.description = "fine".into();
    assert_error(
        app.create(&org.owner.token, request).await,
        Code::InvalidArgument,
        Reason::NameInvalidCharacters,
    );
    let mut request = named(&org, "Nul email");
    request.billing_account_email = "a\0@b.example".into();
    assert_error(
        app.create(&org.owner.token, request).await,
        Code::InvalidArgument,
        Reason::InvalidEmail,
    );
    let mut request = named(&org, "Nul request id");
    request.request_id = "id\0".into();
    assert_error(
        app.create(&org.owner.token, request).await,
        Code::InvalidArgument,
        Reason::InvalidRequestId,
    );
    // Lines and tabs stay allowed in a description.
    let mut request = named(&org, "Multi-line");
    request.description = "one\ntwo\tthree\r\n".into();
    app.create(&org.owner.token, request).await.unwrap();

    let client = reqwest::Client::new();
    let json = client
        .post(url(&app, "/api/v1/workspaces"))
        .bearer_auth(&org.owner.token)
        .json(&json!({"name": "Json nul", "description": "a\u{0}b", "organization_id": org.id}))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), StatusCode::BAD_REQUEST);
    let body: Value = json.json().await.unwrap();
    assert_eq!(body["code"], 3, "{body}");
    let form = client
        .post(url(&app, "/api/v1/workspaces"))
        .bearer_auth(&org.owner.token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "name=Form+nul&description=a%00b&organization_id={}",
            org.id
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::BAD_REQUEST);
    let get = client
        .get(url(&app, "/api/v1/workspaces/%00"))
        .bearer_auth(&org.owner.token)
        .send()
        .await
        .unwrap();
    // A path variable, not a body: grpc-gateway's 400 for INVALID_ARGUMENT.
    assert_eq!(get.status(), StatusCode::BAD_REQUEST);
    app.stop().await;
}

async fn names_that_look_the_same_are_one_name(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let pairs = [
        ("Caf\u{e9} Team", "Cafe\u{301} Team"),
        ("Data\u{a0}Team", "Data Team"),
        ("\u{430}lpha Team", "alpha Team"),
        ("Stra\u{df}e Team", "STRASSE TEAM"),
        ("Zero\u{200b}Width", "ZeroWidth"),
        ("\u{ff34}okyo", "Tokyo"),
    ];
    for (first, second) in pairs {
        app.create_named(&org, first).await;
        assert_error(
            app.create(&org.owner.token, named(&org, second)).await,
            Code::AlreadyExists,
            Reason::WorkspaceAlreadyExists,
        );
    }
    // Bidirectional overrides could make a name show as another.
    assert_error(
        app.create(&org.owner.token, named(&org, "Invoice \u{202e}fdp.exe"))
            .await,
        Code::InvalidArgument,
        Reason::NameInvalidCharacters,
    );
    // Different names stay different.
    app.create_named(&org, "Cafe Team").await;
    app.create_named(&org, "Data Team 2").await;
    app.stop().await;
}

async fn a_member_removed_from_the_organization_sees_none_of_its_workspaces(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let member = app.member(org.id, OrganizationRole::Member).await;
    let admin = app.member(org.id, OrganizationRole::Admin).await;
    let mut request = named(&org, "Shared");
    request.first_member_id = member.id.to_string();
    let shared = app.create(&org.owner.token, request).await.unwrap();
    let mut client = app.client().await;

    for user in [&member, &admin] {
        let seen = client
            .get_workspace(authed(
                &user.token,
                GetWorkspaceRequest {
                    id: shared.id.clone(),
                },
            ))
            .await;
        assert!(seen.is_ok(), "{seen:?}");
        organization_membership::Entity::delete_many()
            .filter(organization_membership::Column::OrganizationId.eq(org.id))
            .filter(organization_membership::Column::UserId.eq(user.id))
            .exec(app.storage.connection())
            .await
            .unwrap();
        assert_error(
            client
                .get_workspace(authed(
                    &user.token,
                    GetWorkspaceRequest {
                        id: shared.id.clone(),
                    },
                ))
                .await,
            Code::NotFound,
            Reason::WorkspaceNotFound,
        );
        let listed = client
            .list_workspaces(authed(&user.token, ListWorkspacesRequest::default()))
            .await
            .unwrap()
            .into_inner();
        assert!(listed.workspaces.is_empty(), "{listed:?}");
        assert_error(
            client
                .list_workspaces(authed(
                    &user.token,
                    ListWorkspacesRequest {
                        organization_id: org.id.to_string(),
                        ..Default::default()
                    },
                ))
                .await,
            Code::PermissionDenied,
            Reason::NotOrganizationMember,
        );
    }
    app.stop().await;
}

/// ListWorkspaces' work in the database, counted in buffers touched by
/// pg_stat_statements on a server of the test's own, stays small for a
/// caller who sees one workspace however many other organizations hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_cost_follows_what_the_caller_can_see() {
    let Some(postgres) =
        OwnPostgres::start_with(&["-c", "shared_preload_libraries=pg_stat_statements"])
    else {
        return;
    };
    let app = spawn_app_at(postgres.url()).await;
    let db = app.storage.connection();
    db.execute_unprepared("CREATE EXTENSION pg_stat_statements")
        .await
        .unwrap();

    let big = app.organization(PlanSpec::default()).await;
    db.execute_unprepared(&format!(
        "INSERT INTO workspaces (id, organization_id, name, normalized_name, description, \
         workspace_type, document_upload_method, billing_account_email, used_storage, files_count, \
         created_by, created_at, updated_at) \
         SELECT gen_random_uuid(), '{org}', 'w' || g, 'w' || g, repeat('x', 200), 'CUSTOM', 'MANUAL', '', \
         0, 0, '{owner}', now(), now() FROM generate_series(1, 30000) g",
        org = big.id,
        owner = big.owner.id
    ))
    .await
    .unwrap();
    db.execute_unprepared("ANALYZE").await.unwrap();

    let small = app.organization(PlanSpec::default()).await;
    let member = app.member(small.id, OrganizationRole::Member).await;
    let mut request = named(&small, "Mine");
    request.first_member_id = member.id.to_string();
    app.create(&small.owner.token, request).await.unwrap();

    let mut client = app.client().await;
    for (who, token) in [("member", &member.token), ("owner", &small.owner.token)] {
        db.execute_unprepared("SELECT pg_stat_statements_reset()")
            .await
            .unwrap();
        let listed = client
            .list_workspaces(authed(token, ListWorkspacesRequest::default()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(listed.workspaces.len(), 1, "{who}");
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT coalesce(sum(shared_blks_hit + shared_blks_read), 0)::bigint AS blocks \
                 FROM pg_stat_statements WHERE query ILIKE '%from \"workspaces\"%'",
            ))
            .await
            .unwrap()
            .unwrap();
        let blocks: i64 = row.try_get("", "blocks").unwrap();
        eprintln!("{who}: ListWorkspaces touched {blocks} blocks");
        // A walk over the big organization's rows touches ~1,000 blocks.
        assert!(
            blocks < 100,
            "{who}: ListWorkspaces touched {blocks} blocks"
        );
    }
    app.stop().await;
}

/// The migration to the new name keys recomputes every key; of two
/// existing workspaces that now share one, the older keeps it.
#[tokio::test]
async fn existing_names_get_the_new_keys_and_collisions_keep_both() {
    use sea_orm::{ActiveValue::Set, EntityTrait};
    use sea_orm_migration::MigratorTrait;
    use workspace_service::storage::{entities::workspace, migrations::Migrator};

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    let storage = workspace_service::storage::Storage::connect(&url, 1)
        .await
        .unwrap();
    let db = storage.connection().clone();
    Migrator::up(&db, Some(1)).await.unwrap();
    let app_url = url.clone();
    // The first schema, with rows keyed the old way (trimmed, lowercase).
    let plan = storage.create_plan("p", true, None).await.unwrap();
    let user = storage.create_user("u@x.example", "u", true).await.unwrap();
    let org = storage
        .create_organization("o", "o", plan, Default::default())
        .await
        .unwrap();
    let now = chrono::Utc::now();
    let mut ids = Vec::new();
    for name in ["Caf\u{e9}", "Cafe\u{301}", "Other"] {
        let id = uuid::Uuid::now_v7();
        ids.push(id);
        // The first schema has no `revision` yet: left out of the insert.
        let row = workspace::ActiveModel {
            id: Set(id),
            organization_id: Set(org),
            name: Set(name.into()),
            normalized_name: Set(name.to_lowercase()),
            description: Set(String::new()),
            workspace_type: Set("CUSTOM".into()),
            document_upload_method: Set("MANUAL".into()),
            billing_account_email: Set(String::new()),
            workspace_document_store_credentials_id: Set(None),
            pipeline_document_store_credentials_id: Set(None),
            file_store_credentials_id: Set(None),
            used_storage: Set(0.0),
            files_count: Set(0),
            created_by: Set(user),
            created_at: Set(now),
            updated_at: Set(now),
            revision: sea_orm::ActiveValue::NotSet,
            number: sea_orm::ActiveValue::NotSet,
        };
        workspace::Entity::insert(row)
            .exec_without_returning(&db)
            .await
            .unwrap();
    }
    drop(db);
    storage.close().await.unwrap();
    let app = spawn_app_at(app_url).await;
    let rows = workspace::Entity::find()
        .all(app.storage.connection())
        .await
        .unwrap();
    // Existing workspaces got their numbers (seed 002's ids): distinct, positive.
    let numbers: std::collections::HashSet<i64> = rows.iter().map(|w| w.number).collect();
    assert!(numbers.len() == 3 && !numbers.contains(&0), "{numbers:?}");
    let keys: Vec<(uuid::Uuid, String)> = rows
        .into_iter()
        .map(|w| (w.id, w.normalized_name))
        .collect();
    let key_of = |id| keys.iter().find(|(i, _)| *i == id).unwrap().1.clone();
    let cafe = workspace_service::domain::normalize_name("café");
    assert_eq!(key_of(ids[0]), cafe);
    assert_eq!(key_of(ids[1]), format!("{cafe}#{}", ids[1]));
    assert_eq!(
        key_of(ids[2]),
        workspace_service::domain::normalize_name("other")
    );
    app.stop().await;
}

/// 1,000 workspaces as large as the rules allow (4-byte characters) do
/// not fit in one 4 MiB answer: List answers the part that fits and a
/// token for the rest, on gRPC and on JSON/HTTP.
async fn the_largest_page_fits_in_one_answer_and_the_rest_follows(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| {
        s.server.max_concurrent_calls_per_organization = 1_000
    })
    .await
    else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let description = "\u{1F600}".repeat(1_000);
    let token = org.owner.token.clone();
    let channel = app.channel().await;
    let created = common::concurrently(1_000, |i| {
        let mut request = named(&org, &format!("{i:04}{}", "\u{1F680}".repeat(96)));
        request.description = description.clone();
        request.billing_account_email = format!("{}@example.com", "b".repeat(60));
        let channel = channel.clone();
        let token = token.clone();
        async move {
            let mut client =
                workspace_service::proto::workspace_service_client::WorkspaceServiceClient::new(
                    channel,
                );
            client
                .create_workspace(authed(&token, request))
                .await
                .map(|_| ())
        }
    })
    .await;
    assert!(
        created.iter().all(Result::is_ok),
        "{:?}",
        created.iter().find(|r| r.is_err())
    );

    let mut client = app.client().await;
    let mut seen = std::collections::HashSet::new();
    let mut page_token = String::new();
    let mut pages = 0;
    loop {
        let page = client
            .list_workspaces(authed(
                &org.owner.token,
                ListWorkspacesRequest {
                    page_size: 1_000,
                    page_token: page_token.clone(),
                    ..Default::default()
                },
            ))
            .await
            .expect("a page that fits")
            .into_inner();
        pages += 1;
        assert!(!page.workspaces.is_empty());
        for workspace in page.workspaces {
            assert!(seen.insert(workspace.id), "listed twice");
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(seen.len(), 1_000);
    assert!(
        pages >= 2,
        "1,000 maximal workspaces fit in {pages} page(s)"
    );

    let http = reqwest::Client::new()
        .get(url(&app, "/api/v1/workspaces?page_size=1000"))
        .bearer_auth(&org.owner.token)
        .send()
        .await
        .unwrap();
    assert_eq!(http.status(), StatusCode::OK);
    let body: Value = http.json().await.unwrap();
    assert!(body["workspaces"].as_array().unwrap().len() < 1_000);
    assert!(
        !body["nextPageToken"].as_str().unwrap().is_empty(),
        "{}",
        body["nextPageToken"]
    );
    app.stop().await;
}

/// A multipart body is held to MAX_MESSAGE_BYTES over all its parts, and
/// to a bound on the number of parts: 413, never a 201 or a 400.
async fn multipart_bodies_are_held_to_the_message_limit(backend: Backend) {
    use reqwest::multipart::Form;
    let Some(app) = spawn_app_with(backend, |s| {
        s.server.http_dialects = workspace_service::http::DialectChoice::GrpcGateway;
    })
    .await
    else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let post = |form: Form| {
        reqwest::Client::new()
            .post(url(&app, "/api/v1/workspaces"))
            .bearer_auth(&org.owner.token)
            .multipart(form)
            .send()
    };
    // Written by hand: reqwest chains one stream per part, too deep here.
    let boundary = "XyZzY";
    let mut many = String::new();
    let mut part = |name: &str, value: &str| {
        many.push_str(&format!(
            "--{boundary}\r\ncontent-disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ))
    };
    part("name", "Many parts");
    part("organization_id", &org.id.to_string());
    for _ in 0..20_000 {
        part("description", &"x".repeat(60));
    }
    many.push_str(&format!("--{boundary}--\r\n"));
    let answer = reqwest::Client::new()
        .post(url(&app, "/api/v1/workspaces"))
        .bearer_auth(&org.owner.token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(many)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(
        body["details"][0]["reason"],
        Reason::BodyTooLarge.as_str(),
        "{body}"
    );

    let large = Form::new()
        .text("name", "One large part")
        .text("organization_id", org.id.to_string())
        .text("description", "x".repeat(1_500_000));
    let answer = post(large).await.unwrap();
    assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let fine = Form::new()
        .text("name", "Small form")
        .text("organization_id", org.id.to_string())
        .text("description", "short");
    assert_eq!(post(fine).await.unwrap().status(), StatusCode::CREATED);
    app.stop().await;
}
