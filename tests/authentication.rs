//! Check 1: who is calling. JWTs (HS256, RS256, ES256 with issuer,
//! audience and expiry), API tokens as Bearer or in Basic auth, the
//! `session` cookie; anything else is UNAUTHENTICATED, the same answer
//! whatever was wrong.

mod common;

use std::path::PathBuf;
use workspace_service::domain::Reason;

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{Duration, Utc};
use common::{
    Backend, PlanSpec, TestApp, assert_error, named, spawn_app, spawn_app_with, with_header,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use tonic::{Code, Request};
use workspace_service::proto::CreateWorkspaceRequest;

const ISSUER: &str = "https://auth.example.test";
const AUDIENCE: &str = "workspace-service";
const SECRET: &str = "an-hs256-secret-of-at-least-32-bytes!";

on_both_databases!(
    check_1_missing_or_unknown_credentials_are_unauthenticated,
    check_1_api_token_as_bearer_or_basic_authenticates,
    check_1_session_cookie_authenticates_until_it_expires,
    check_1_hs256_jwt_with_right_issuer_audience_and_expiry_authenticates,
    check_1_rs256_and_es256_jwts_authenticate_with_a_public_key,
);

fn expect_issuer_and_audience(settings: &mut workspace_service::config::Settings) {
    settings.jwt.issuer = Some(ISSUER.into());
    settings.jwt.audience = Some(AUDIENCE.into());
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: String,
    iss: &'a str,
    aud: &'a str,
    exp: i64,
}

fn claims(sub: String) -> Claims<'static> {
    Claims {
        sub,
        iss: ISSUER,
        aud: AUDIENCE,
        exp: (Utc::now() + Duration::minutes(5)).timestamp(),
    }
}

fn sign(claims: &Claims<'_>, algorithm: Algorithm, key: &EncodingKey) -> String {
    jsonwebtoken::encode(&Header::new(algorithm), claims, key).unwrap()
}

async fn create_with(
    app: &TestApp,
    request: Request<CreateWorkspaceRequest>,
) -> Result<(), tonic::Status> {
    app.client()
        .await
        .create_workspace(request)
        .await
        .map(|_| ())
}

async fn check_1_missing_or_unknown_credentials_are_unauthenticated(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let basic_wrong = format!(
        "Basic {}",
        STANDARD.encode("user:wst_not-a-real-token-at-all")
    );
    let refusals = [
        None,
        Some(("authorization", "Bearer wst_not-a-real-token-at-all")),
        Some(("authorization", "Bearer")),
        Some(("authorization", "Token abc")),
        Some(("authorization", basic_wrong.as_str())),
        Some(("authorization", "Bearer a.b.c")),
        Some(("cookie", "session=wss_unknown")),
    ];
    let mut messages = Vec::new();
    for credentials in refusals {
        let request = match credentials {
            None => Request::new(named(&org, "Anonymous")),
            Some((header, value)) => with_header(named(&org, "Anonymous"), header, value),
        };
        let status = assert_error(
            create_with(&app, request).await,
            Code::Unauthenticated,
            Reason::Unauthenticated,
        );
        messages.push(status.message().to_owned());
    }
    // One answer for every failure: nothing tells which part was wrong.
    messages.dedup();
    assert_eq!(messages, ["Missing or invalid credentials."]);

    // Get and List are guarded too.
    let mut client = app.client().await;
    assert_error(
        client
            .list_workspaces(workspace_service::proto::ListWorkspacesRequest::default())
            .await,
        Code::Unauthenticated,
        Reason::Unauthenticated,
    );
    create_with(
        &app,
        common::authed(&org.owner.token, named(&org, "Anonymous")),
    )
    .await
    .unwrap();
}

async fn check_1_api_token_as_bearer_or_basic_authenticates(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let token = &org.owner.token;
    create_with(&app, common::authed(token, named(&org, "Bearer token")))
        .await
        .unwrap();
    for (i, userinfo) in [format!("{}:{token}", org.owner.email), format!("{token}:")]
        .iter()
        .enumerate()
    {
        let header = format!("Basic {}", STANDARD.encode(userinfo));
        create_with(
            &app,
            with_header(
                named(&org, &format!("Basic token {i}")),
                "authorization",
                &header,
            ),
        )
        .await
        .unwrap();
    }
    // An expired token stops working.
    let expired = workspace_service::auth::issue::create_api_token(
        &app.storage,
        org.owner.id,
        "expired",
        None,
        Some(Utc::now() - Duration::minutes(1)),
    )
    .await
    .unwrap();
    assert_error(
        create_with(&app, common::authed(&expired.token, named(&org, "Expired"))).await,
        Code::Unauthenticated,
        Reason::Unauthenticated,
    );
}

async fn check_1_session_cookie_authenticates_until_it_expires(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let session = workspace_service::auth::issue::create_session(
        &app.storage,
        org.owner.id,
        None,
        Duration::hours(1),
    )
    .await
    .unwrap();
    let cookie = format!("theme=dark; session={session}");
    create_with(
        &app,
        with_header(named(&org, "Via cookie"), "cookie", &cookie),
    )
    .await
    .unwrap();
    let expired = workspace_service::auth::issue::create_session(
        &app.storage,
        org.owner.id,
        None,
        Duration::hours(-1),
    )
    .await
    .unwrap();
    assert_error(
        create_with(
            &app,
            with_header(
                named(&org, "Stale cookie"),
                "cookie",
                &format!("session={expired}"),
            ),
        )
        .await,
        Code::Unauthenticated,
        Reason::Unauthenticated,
    );
}

async fn check_1_hs256_jwt_with_right_issuer_audience_and_expiry_authenticates(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| {
        s.jwt.hs256_secret = Some(SECRET.into());
        expect_issuer_and_audience(s);
    })
    .await
    else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let sub = org.owner.id.to_string();

    let wrong = [
        sign(
            &Claims {
                iss: "https://elsewhere.test",
                ..claims(sub.clone())
            },
            Algorithm::HS256,
            &key,
        ),
        sign(
            &Claims {
                aud: "another-service",
                ..claims(sub.clone())
            },
            Algorithm::HS256,
            &key,
        ),
        sign(
            &Claims {
                exp: (Utc::now() - Duration::minutes(5)).timestamp(),
                ..claims(sub.clone())
            },
            Algorithm::HS256,
            &key,
        ),
        sign(
            &claims(sub.clone()),
            Algorithm::HS256,
            &EncodingKey::from_secret(b"another-secret-of-at-least-32-bytes!!"),
        ),
        sign(&claims("not-a-uuid".into()), Algorithm::HS256, &key),
    ];
    for token in wrong {
        assert_error(
            create_with(&app, common::authed(&token, named(&org, "Via JWT"))).await,
            Code::Unauthenticated,
            Reason::Unauthenticated,
        );
    }
    let token = sign(&claims(sub), Algorithm::HS256, &key);
    create_with(&app, common::authed(&token, named(&org, "Via JWT")))
        .await
        .unwrap();
}

async fn check_1_rs256_and_es256_jwts_authenticate_with_a_public_key(backend: Backend) {
    for (algorithm, public, private) in [
        (
            Algorithm::RS256,
            "jwt_rs256_public.pem",
            "jwt_rs256_private.pem",
        ),
        (
            Algorithm::ES256,
            "jwt_es256_public.pem",
            "jwt_es256_private.pem",
        ),
    ] {
        let Some(app) = spawn_app_with(backend, |s| {
            s.jwt.public_key_file = Some(fixture(public));
            expect_issuer_and_audience(s);
        })
        .await
        else {
            return;
        };
        let org = app.organization(PlanSpec::default()).await;
        let pem = std::fs::read(fixture(private)).unwrap();
        let key = match algorithm {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem).unwrap(),
            _ => EncodingKey::from_ec_pem(&pem).unwrap(),
        };
        let token = sign(&claims(org.owner.id.to_string()), algorithm, &key);
        create_with(&app, common::authed(&token, named(&org, "Signed")))
            .await
            .unwrap_or_else(|s| panic!("{algorithm:?}: {s:?}"));
        // An HS256 token is refused where a public key is configured.
        let forged = sign(
            &claims(org.owner.id.to_string()),
            Algorithm::HS256,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        );
        assert_error(
            create_with(&app, common::authed(&forged, named(&org, "Forged"))).await,
            Code::Unauthenticated,
            Reason::Unauthenticated,
        );
    }
}
