//! Issuing credentials: API tokens and sessions are random secrets of
//! which only a hash is stored.

use anyhow::bail;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::storage::{NewApiToken, Storage};

/// Prefix of API tokens, so a leaked one is recognisable.
pub const API_TOKEN_PREFIX: &str = "wst_";
/// Prefix of session cookie values.
pub const SESSION_PREFIX: &str = "wss_";

/// How a workspace access token's secret begins.
pub const WORKSPACE_TOKEN_PREFIX: &str = "wsat_";

/// A new random secret (256 bits) with a prefix that says what it is.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// How API tokens and session cookies are stored: SHA-256, hex. They are
/// random 256-bit secrets, so a fast hash is enough (no dictionary to try).
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Creates an API token (random unless `token` is given), bound to no
/// organization; only its hash is stored.
pub async fn create_api_token(
    storage: &Storage,
    user_id: Uuid,
    name: &str,
    token: Option<&str>,
    expires_at: Option<DateTime<Utc>>,
) -> anyhow::Result<NewApiToken> {
    create_bound_api_token(storage, user_id, name, token, expires_at, None).await
}

/// `create_api_token`, bound to `organization` when given: a call naming
/// no organization uses it, and the token acts in it only. The user must
/// belong to it.
pub async fn create_bound_api_token(
    storage: &Storage,
    user_id: Uuid,
    name: &str,
    token: Option<&str>,
    expires_at: Option<DateTime<Utc>>,
    organization: Option<Uuid>,
) -> anyhow::Result<NewApiToken> {
    let token = token.map_or_else(|| new_secret(API_TOKEN_PREFIX), str::to_owned);
    if token.len() < 16 || token.contains('.') || token.chars().any(char::is_whitespace) {
        bail!("an API token needs at least 16 characters, no dots and no spaces");
    }
    check_binding(storage, user_id, organization).await?;
    let id = storage
        .create_api_token(
            user_id,
            name,
            &hash_secret(&token),
            expires_at,
            organization,
        )
        .await?;
    Ok(NewApiToken { id, token })
}

/// Creates a session bound to no organization and returns its cookie
/// value.
pub async fn create_session(
    storage: &Storage,
    user_id: Uuid,
    value: Option<&str>,
    ttl: Duration,
) -> anyhow::Result<String> {
    create_bound_session(storage, user_id, value, ttl, None).await
}

/// `create_session`, bound to `organization` when given (the user must
/// belong to it).
pub async fn create_bound_session(
    storage: &Storage,
    user_id: Uuid,
    value: Option<&str>,
    ttl: Duration,
    organization: Option<Uuid>,
) -> anyhow::Result<String> {
    let value = value.map_or_else(|| new_secret(SESSION_PREFIX), str::to_owned);
    check_binding(storage, user_id, organization).await?;
    storage
        .create_session(
            user_id,
            &hash_secret(&value),
            Utc::now() + ttl,
            organization,
        )
        .await?;
    Ok(value)
}

/// A credential can only be bound to an organization its user belongs to.
async fn check_binding(
    storage: &Storage,
    user_id: Uuid,
    organization: Option<Uuid>,
) -> anyhow::Result<()> {
    if let Some(organization) = organization
        && storage
            .organization_role(organization, user_id)
            .await?
            .is_none()
    {
        bail!(
            "user {user_id} is not a member of organization {organization}: \
             a credential can only be bound to an organization its user belongs to"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_prefixed() {
        let a = new_secret("wst_");
        assert!(a.starts_with("wst_") && a.len() > 40);
        assert_ne!(a, new_secret("wst_"));
        assert_eq!(hash_secret("x").len(), 64);
    }
}
