//! Issue 27, the same name: names built to pass for another are refused
//! beside it (a look-alike from another script, an invisible character
//! between or after words), while names that merely resemble each other
//! within one script are different names. On gRPC (ALREADY_EXISTS) and on
//! a JSON route (409), in both orders, on both databases; and the
//! migration that recomputes the stored keys.

mod common;

use common::http::url;
use common::{Backend, Org, PlanSpec, TestApp, assert_error, named, spawn_app};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, EntityTrait};
use serde_json::json;
use tonic::Code;
use uuid::Uuid;
use workspace_service::{
    domain::{Reason, normalize_name},
    storage::{Storage, entities::workspace, migrations::Migrator},
};

on_both_databases!(
    look_alikes_across_scripts_and_invisibles_are_one_name,
    names_alike_within_one_script_are_different_names,
    a_name_that_shows_nothing_is_refused,
    the_migration_recomputes_keys_and_keeps_the_older_on_a_collision,
);

/// Each pair is one name to a reader.
const LOOK_ALIKES: &[(&str, &str)] = &[
    ("Team One", "Team \u{200b} One"),
    ("Team Two", "Team Two \u{200b}"),
    ("TEAM SPACE", "\u{422}\u{415}\u{410}\u{41c} SPACE"),
    (
        "ABE KMNOPTX",
        "\u{391}\u{392}\u{395} \u{39a}\u{39c}\u{39d}\u{39f}\u{3a1}\u{3a4}\u{3a7}",
    ),
];

/// Each pair is two names.
const DIFFERENT: &[(&str, &str)] = &[
    ("Modern Lab", "Modem Lab"),
    ("Burn Notes", "Bum Notes"),
    ("Office", "0ffice"),
    ("Team 2010", "Team 2O1O"),
    ("Alex", "AIex"),
];

/// POST /workspaces (seed 004's route) as `org`'s owner: the status.
async fn create_over_json(app: &TestApp, org: &Org, name: &str) -> StatusCode {
    reqwest::Client::new()
        .post(url(app, "/workspaces"))
        .bearer_auth(&org.owner.token)
        .json(&json!({"name": name, "organization_id": org.id.to_string()}))
        .send()
        .await
        .unwrap()
        .status()
}

async fn look_alikes_across_scripts_and_invisibles_are_one_name(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    for &(a, b) in LOOK_ALIKES {
        for (first, second) in [(a, b), (b, a)] {
            let org = app.organization(PlanSpec::default()).await;
            app.create_named(&org, first).await;
            assert_error(
                app.create(&org.owner.token, named(&org, second)).await,
                Code::AlreadyExists,
                Reason::WorkspaceAlreadyExists,
            );
            assert_eq!(
                create_over_json(&app, &org, second).await,
                StatusCode::CONFLICT,
                "{second:?} after {first:?}"
            );
        }
    }
    app.stop().await;
}

async fn names_alike_within_one_script_are_different_names(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    for &(a, b) in DIFFERENT {
        let org = app.organization(PlanSpec::default()).await;
        app.create_named(&org, a).await;
        app.create_named(&org, b).await;
        let org = app.organization(PlanSpec::default()).await;
        for name in [b, a] {
            assert_eq!(
                create_over_json(&app, &org, name).await,
                StatusCode::CREATED,
                "{name:?} beside {a:?}/{b:?}"
            );
        }
    }
    app.stop().await;
}

async fn a_name_that_shows_nothing_is_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    for name in ["\u{16fe4}", "\u{16fe4}\u{16fe4}\u{16fe4}\u{16fe4}"] {
        assert_error(
            app.create(&org.owner.token, named(&org, name)).await,
            Code::InvalidArgument,
            Reason::NameRequired,
        );
    }
    app.stop().await;
}

/// A database migrated up to the migration before the new keys, with
/// workspaces keyed the old way, then migrated to the end: each key is
/// the new `normalize_name`; of two names that now share a key, the older
/// keeps it and the newer gets `key#id`; names the old keys took for one
/// get their own keys back.
async fn the_migration_recomputes_keys_and_keeps_the_older_on_a_collision(backend: Backend) {
    use sea_orm_migration::MigratorTrait;

    let _dir;
    let _postgres;
    let url = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
            _dir = dir;
            url
        }
        Backend::Postgres => {
            let Some(postgres) = common::FreshPostgres::create().await else {
                return;
            };
            let url = postgres.url.clone();
            _postgres = postgres;
            url
        }
    };
    let storage = Storage::connect(&url, 1).await.unwrap();
    let db = storage.connection().clone();
    let before = Migrator::migrations()
        .iter()
        .position(|m| m.name().starts_with("m20261203_000002"))
        .expect("the migration is registered");
    Migrator::up(&db, Some(before as u32)).await.unwrap();

    let plan = storage.create_plan("p", true, None).await.unwrap();
    let user = storage.create_user("u@x.example", "u", true).await.unwrap();
    let org = storage
        .create_organization("o", "o", plan, Default::default())
        .await
        .unwrap();
    let start = chrono::Utc::now() - chrono::Duration::hours(1);
    // (name, key as the old rule stored it), oldest first; ids in the
    // reverse order, so that age, not the id, decides.
    let rows = [
        ("Modem Lab", "modern lab".to_owned()),
        ("Modern Lab", String::new()), // the old rule's collision: key#id
        ("TEAM SPACE", "tearn space".to_owned()),
        (
            "\u{422}\u{415}\u{410}\u{41c} SPACE",
            "\u{1d1b}ea\u{28d} space".to_owned(),
        ),
        ("Other", "other".to_owned()),
    ];
    let mut ids: Vec<Uuid> = (0..rows.len()).map(|_| Uuid::new_v4()).collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    for (i, ((name, key), id)) in rows.iter().zip(&ids).enumerate() {
        let key = if key.is_empty() {
            format!("modern lab#{id}")
        } else {
            key.clone()
        };
        let at = start + chrono::Duration::seconds(i as i64);
        insert_workspace(&db, *id, org, user, name, &key, at).await;
    }
    Migrator::up(&db, None).await.unwrap();

    let keys: Vec<(Uuid, String)> = workspace::Entity::find()
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|w| (w.id, w.normalized_name))
        .collect();
    let key_of = |i: usize| keys.iter().find(|(id, _)| *id == ids[i]).unwrap().1.clone();
    assert_eq!(key_of(0), normalize_name("Modem Lab"));
    assert_eq!(key_of(1), normalize_name("Modern Lab"));
    assert_ne!(key_of(0), key_of(1));
    let team = normalize_name("TEAM SPACE");
    assert_eq!(key_of(2), team);
    assert_eq!(key_of(3), format!("{team}#{}", ids[3]));
    assert_eq!(key_of(4), normalize_name("Other"));
    drop(db);
    storage.close().await.unwrap();
}

/// A workspace row as the schema before the new keys holds it, written
/// column by column (columns added later have defaults).
async fn insert_workspace(
    db: &sea_orm::DatabaseConnection,
    id: Uuid,
    organization: Uuid,
    user: Uuid,
    name: &str,
    key: &str,
    at: chrono::DateTime<chrono::Utc>,
) {
    use sea_orm::sea_query::Query;
    let insert = Query::insert()
        .into_table("workspaces")
        .columns([
            "id",
            "organization_id",
            "name",
            "normalized_name",
            "description",
            "workspace_type",
            "document_upload_method",
            "billing_account_email",
            "used_storage",
            "files_count",
            "created_by",
            "created_at",
            "updated_at",
        ])
        .values_panic([
            id.into(),
            organization.into(),
            name.into(),
            key.into(),
            "".into(),
            "CUSTOM".into(),
            "MANUAL".into(),
            "".into(),
            0.0f64.into(),
            0i32.into(),
            user.into(),
            at.into(),
            at.into(),
        ])
        .to_owned();
    db.execute(&insert).await.unwrap();
}
