//! Callers who try to get in or out of bounds: forged and confused JWTs,
//! another organization's credentials, ids of things they must not learn
//! about, SQL in every field. Each is refused with its own code, answers
//! exactly as if the thing did not exist, and writes nothing.

mod common;

use std::path::PathBuf;
use workspace_service::domain::Reason;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{Duration, Utc};
use common::{Backend, PlanSpec, TestApp, assert_error, authed, named, spawn_app, spawn_app_with};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::json;
use tonic::Code;
use tonic_types::StatusExt;
use uuid::Uuid;
use workspace_service::{
    domain::{CredentialsKind, OrganizationRole},
    proto::{
        CreateWorkspaceRequest, DocumentStoreCredentials, FileStoreCredentials,
        GetWorkspaceRequest, ListWorkspacesRequest,
    },
    storage::entities::{idempotency_record, workspace, workspace_membership},
};

on_both_databases!(
    forged_and_confused_jwts_are_unauthenticated_and_write_nothing,
    another_organizations_token_reaches_nothing_of_it,
    foreign_ids_answer_exactly_like_unknown_ones,
    sql_metacharacters_are_data_in_every_field,
);

const ISSUER: &str = "https://auth.example.test";
const AUDIENCE: &str = "workspace-service";
const SECRET: &str = "an-hs256-secret-of-at-least-32-bytes!";

/// Rows of the tables a create writes: workspaces, memberships and
/// idempotency records.
async fn written(app: &TestApp) -> [u64; 3] {
    let db = app.storage.connection();
    [
        workspace::Entity::find().count(db).await.unwrap(),
        workspace_membership::Entity::find()
            .count(db)
            .await
            .unwrap(),
        idempotency_record::Entity::find().count(db).await.unwrap(),
    ]
}

fn claims(sub: impl ToString) -> serde_json::Value {
    json!({
        "sub": sub.to_string(),
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": (Utc::now() + Duration::minutes(5)).timestamp(),
    })
}

fn not_yet_valid(sub: Uuid) -> serde_json::Value {
    let mut claims = claims(sub);
    claims["nbf"] = (Utc::now() + Duration::minutes(10)).timestamp().into();
    claims
}

/// A JWT with any header and claims and a signature of raw bytes.
fn raw_jwt(header: serde_json::Value, claims: &serde_json::Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

fn sign(claims: &serde_json::Value, algorithm: Algorithm, key: &EncodingKey) -> String {
    jsonwebtoken::encode(&Header::new(algorithm), claims, key).unwrap()
}

async fn forged_and_confused_jwts_are_unauthenticated_and_write_nothing(backend: Backend) {
    let public_key =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jwt_rs256_public.pem");
    let public_pem = std::fs::read(&public_key).unwrap();
    let expecting_jwts = |hs256_secret: Option<&'static str>, public_key: Option<PathBuf>| {
        spawn_app_with(backend, move |s| {
            s.jwt.hs256_secret = hs256_secret.map(Into::into);
            s.jwt.public_key_file = public_key;
            s.jwt.issuer = Some(ISSUER.into());
            s.jwt.audience = Some(AUDIENCE.into());
        })
    };
    // HS256 configured: alg none, tampering, another algorithm.
    let Some(app) = expecting_jwts(Some(SECRET), None).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let victim = org.owner.id;
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let genuine = sign(&claims(victim), Algorithm::HS256, &key);
    let outsider = app.user().await;
    let outsider_token = sign(&claims(outsider.id), Algorithm::HS256, &key);
    let (outsider_header, _) = outsider_token.split_once('.').unwrap();
    let outsider_signature = outsider_token.rsplit_once('.').unwrap().1;
    let (_, victim_claims) = genuine.split_once('.').unwrap();
    let victim_claims = victim_claims.split_once('.').unwrap().0;
    let before = written(&app).await;

    let forged = [
        // alg none, with and without an empty signature part.
        raw_jwt(json!({"alg": "none", "typ": "JWT"}), &claims(victim), b""),
        raw_jwt(json!({"alg": "None"}), &claims(victim), b""),
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string()),
            URL_SAFE_NO_PAD.encode(claims(victim).to_string())
        ),
        // The genuine token with its signature stripped.
        format!("{}.", genuine.rsplit_once('.').unwrap().0),
        // Someone's valid signature over the victim's claims.
        format!("{outsider_header}.{victim_claims}.{outsider_signature}"),
        // The right secret with an algorithm that is not configured.
        sign(&claims(victim), Algorithm::HS512, &key),
        // A sub that names no user, signed correctly.
        sign(&claims(Uuid::now_v7()), Algorithm::HS256, &key),
        // No expiry at all.
        sign(
            &json!({"sub": victim.to_string(), "iss": ISSUER, "aud": AUDIENCE}),
            Algorithm::HS256,
            &key,
        ),
        // Not yet valid.
        sign(&not_yet_valid(victim), Algorithm::HS256, &key),
    ];
    for token in &forged {
        assert_error(
            app.create(token, named(&org, "Forged")).await,
            Code::Unauthenticated,
            Reason::Unauthenticated,
        );
    }
    assert_eq!(written(&app).await, before, "a forged call wrote rows");
    // The genuine token still works: the refusals were about the tokens.
    app.create(&genuine, named(&org, "Genuine")).await.unwrap();
    drop(app);

    // RS256 configured: the public key used as an HMAC secret (key
    // confusion) is refused.
    let Some(app) = expecting_jwts(None, Some(public_key)).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let before = written(&app).await;
    for algorithm in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let confused = sign(
            &claims(org.owner.id),
            algorithm,
            &EncodingKey::from_secret(&public_pem),
        );
        assert_error(
            app.create(&confused, named(&org, "Confused")).await,
            Code::Unauthenticated,
            Reason::Unauthenticated,
        );
    }
    let none = raw_jwt(json!({"alg": "none"}), &claims(org.owner.id), b"");
    assert_error(
        app.create(&none, named(&org, "Confused")).await,
        Code::Unauthenticated,
        Reason::Unauthenticated,
    );
    assert_eq!(written(&app).await, before);
}

async fn another_organizations_token_reaches_nothing_of_it(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let victim = app.organization(PlanSpec::default()).await;
    let attacker = app.organization(PlanSpec::default()).await;
    let mut original = named(&victim, "Private plans");
    original.request_id = "shared-request-id".into();
    let secret = app
        .create(&victim.owner.token, original.clone())
        .await
        .unwrap();
    let before = written(&app).await;

    // The same request, request id included: no replay of the victim's
    // answer, no workspace.
    for validate_only in [false, true] {
        let mut replay = original.clone();
        replay.validate_only = validate_only;
        assert_error(
            app.create(&attacker.owner.token, replay).await,
            Code::PermissionDenied,
            Reason::NotOrganizationMember,
        );
    }
    let mut client = app.client().await;
    assert_error(
        client
            .get_workspace(authed(
                &attacker.owner.token,
                GetWorkspaceRequest {
                    id: secret.id.clone(),
                },
            ))
            .await,
        Code::NotFound,
        Reason::WorkspaceNotFound,
    );
    assert_error(
        client
            .list_workspaces(authed(
                &attacker.owner.token,
                ListWorkspacesRequest {
                    organization_id: victim.id.to_string(),
                    ..Default::default()
                },
            ))
            .await,
        Code::PermissionDenied,
        Reason::NotOrganizationMember,
    );
    assert_eq!(written(&app).await, before);

    // The same request id in the attacker's own organization is the
    // attacker's own: a new workspace, not the victim's.
    let mut own = named(&attacker, "Private plans");
    own.request_id = "shared-request-id".into();
    let theirs = app.create(&attacker.owner.token, own).await.unwrap();
    assert_ne!(theirs.id, secret.id);
    assert_eq!(theirs.organization_id, attacker.id.to_string());
}

async fn foreign_ids_answer_exactly_like_unknown_ones(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let other = app.organization(PlanSpec::default()).await;
    let ours = app
        .credentials(org.id, CredentialsKind::DocumentStore)
        .await;
    let ours_file = app.credentials(org.id, CredentialsKind::FileStore).await;
    let foreign_document = app
        .credentials(other.id, CredentialsKind::DocumentStore)
        .await;
    let foreign_file = app.credentials(other.id, CredentialsKind::FileStore).await;
    let foreign_member = app.member(other.id, OrganizationRole::Member).await;
    let before = written(&app).await;

    // What a caller sees for an id: code, message and details, compared
    // between an id of another organization and one that does not exist.
    // The id asked about may be echoed back; with it blanked out, the
    // answers must be the same.
    let answer = |request: CreateWorkspaceRequest, asked: Uuid| {
        let app = &app;
        let token = org.owner.token.clone();
        async move {
            let status = app.create(&token, request).await.unwrap_err();
            let blank = |text: &str| text.replace(&asked.to_string(), "<id>");
            let info = status.get_error_details().error_info().unwrap().clone();
            let mut metadata: Vec<_> = info
                .metadata
                .iter()
                .map(|(key, value)| (key.clone(), blank(value)))
                .collect();
            metadata.sort();
            (
                status.code(),
                blank(status.message()),
                info.reason,
                metadata,
            )
        }
    };
    let with_document = |id: Uuid| CreateWorkspaceRequest {
        document_store_credentials: Some(DocumentStoreCredentials {
            workspace_document_store_credentials_id: id.to_string(),
            pipeline_document_store_credentials_id: ours.to_string(),
        }),
        ..named(&org, "Probe")
    };
    let with_file = |id: Uuid| CreateWorkspaceRequest {
        file_store_credentials: Some(FileStoreCredentials {
            file_store_credentials_id: id.to_string(),
        }),
        ..named(&org, "Probe")
    };
    let with_member = |id: Uuid| CreateWorkspaceRequest {
        first_member_id: id.to_string(),
        ..named(&org, "Probe")
    };
    for validate_only in [false, true] {
        let only = |mut r: CreateWorkspaceRequest| {
            r.validate_only = validate_only;
            r
        };
        let unknown = Uuid::now_v7();
        let cases: [(&dyn Fn(Uuid) -> CreateWorkspaceRequest, _, _); 3] = [
            (
                &with_document,
                foreign_document,
                Reason::CredentialsNotFound,
            ),
            (&with_file, foreign_file, Reason::CredentialsNotFound),
            (&with_member, foreign_member.id, Reason::FirstMemberNotFound),
        ];
        for (make, foreign, reason) in cases {
            let foreign = answer(only(make(foreign)), foreign).await;
            let unknown = answer(only(make(unknown)), unknown).await;
            assert_eq!(foreign.0, Code::NotFound);
            assert_eq!(foreign.2, reason);
            assert_eq!(foreign, unknown, "a foreign id is told apart");
        }
    }
    assert_eq!(written(&app).await, before);
    // Our own ids work, so the refusals were about ownership.
    let mut fine = with_document(ours);
    fine.file_store_credentials = Some(FileStoreCredentials {
        file_store_credentials_id: ours_file.to_string(),
    });
    app.create(&org.owner.token, fine).await.unwrap();
}

/// Strings that break a query built by concatenation, or match too much
/// in a LIKE pattern.
const INJECTIONS: [&str; 8] = [
    "x'); DROP TABLE workspaces; --",
    "' OR '1'='1",
    "\" OR \"\"=\"",
    "%' UNION SELECT * FROM api_tokens --",
    "%%%%",
    "____",
    "\\'; SELECT pg_sleep(5); --",
    "$1 $$ :name ?",
];

async fn sql_metacharacters_are_data_in_every_field(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let other = app.organization(PlanSpec::default()).await;
    app.create_named(&other, "Someone else's").await;

    // Free text (name, description, request id) is stored and returned
    // byte for byte.
    for (i, text) in INJECTIONS.iter().enumerate() {
        let request = CreateWorkspaceRequest {
            description: (*text).to_owned(),
            request_id: format!("{text}{i}"),
            // Quotes and wildcards are legal in an address's local part.
            billing_account_email: format!("o'hara+{i}%_\"x\"@example.test"),
            ..named(&org, text)
        };
        let created = app
            .create(&org.owner.token, request.clone())
            .await
            .unwrap_or_else(|s| panic!("{text:?}: {s:?}"));
        assert_eq!(created.name, *text);
        assert_eq!(created.description, *text);
        assert_eq!(
            created.billing_account_email,
            format!("o'hara+{i}%_\"x\"@example.test")
        );
        // The retry finds its own record, and only that.
        let again = app.create(&org.owner.token, request).await.unwrap();
        assert_eq!(again.id, created.id);
    }
    // LIKE wildcards match only themselves: "%%%%" and "____" did not
    // collide with each other or with other names.
    let mut client = app.client().await;
    let listed = client
        .list_workspaces(authed(&org.owner.token, ListWorkspacesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let mut names: Vec<_> = listed.workspaces.iter().map(|w| w.name.as_str()).collect();
    names.sort_unstable();
    let mut expected = INJECTIONS.to_vec();
    expected.sort_unstable();
    assert_eq!(names, expected, "the list shows exactly our workspaces");
    // A name equal to one of them up to case is still a duplicate.
    assert_error(
        app.create(&org.owner.token, named(&org, &INJECTIONS[0].to_uppercase()))
            .await,
        Code::AlreadyExists,
        Reason::WorkspaceAlreadyExists,
    );

    // Ids and emails are checked before any query: INVALID_ARGUMENT, with
    // nothing written.
    let before = written(&app).await;
    for text in INJECTIONS {
        let attempts = [
            CreateWorkspaceRequest {
                organization_id: text.to_owned(),
                ..named(&org, "Injected id")
            },
            CreateWorkspaceRequest {
                first_member_id: text.to_owned(),
                ..named(&org, "Injected id")
            },
            CreateWorkspaceRequest {
                // No `@`: not an address.
                billing_account_email: text.to_owned(),
                ..named(&org, "Injected id")
            },
            CreateWorkspaceRequest {
                document_store_credentials: Some(DocumentStoreCredentials {
                    workspace_document_store_credentials_id: text.to_owned(),
                    pipeline_document_store_credentials_id: text.to_owned(),
                }),
                file_store_credentials: Some(FileStoreCredentials {
                    file_store_credentials_id: text.to_owned(),
                }),
                ..named(&org, "Injected id")
            },
        ];
        for request in attempts {
            let status = app.create(&org.owner.token, request).await.unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument, "{text:?}: {status:?}");
        }
        assert_error(
            client
                .get_workspace(authed(
                    &org.owner.token,
                    GetWorkspaceRequest {
                        id: text.to_owned(),
                    },
                ))
                .await,
            Code::InvalidArgument,
            Reason::InvalidUuid,
        );
        let status = client
            .list_workspaces(authed(
                &org.owner.token,
                ListWorkspacesRequest {
                    organization_id: text.to_owned(),
                    page_token: text.to_owned(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        // As a credential, it authenticates nobody.
        assert_error(
            app.create(text, named(&org, "Injected token")).await,
            Code::Unauthenticated,
            Reason::Unauthenticated,
        );
    }
    assert_eq!(written(&app).await, before);
    // The other organization's workspace is untouched.
    let theirs = client
        .list_workspaces(authed(&other.owner.token, ListWorkspacesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(theirs.workspaces.len(), 1);
}
