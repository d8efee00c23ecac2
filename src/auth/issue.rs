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

/// Creates an API token (random unless `token` is given); only its hash is
/// stored.
pub async fn create_api_token(
    storage: &Storage,
    user_id: Uuid,
    name: &str,
    token: Option<&str>,
    expires_at: Option<DateTime<Utc>>,
) -> anyhow::Result<NewApiToken> {
    let token = token.map_or_else(|| new_secret(API_TOKEN_PREFIX), str::to_owned);
    if token.len() < 16 || token.contains('.') || token.chars().any(char::is_whitespace) {
        bail!("an API token needs at least 16 characters, no dots and no spaces");
    }
    let id = storage
        .create_api_token(user_id, name, &hash_secret(&token), expires_at)
        .await?;
    Ok(NewApiToken { id, token })
}

/// Creates a session and returns its cookie value.
pub async fn create_session(
    storage: &Storage,
    user_id: Uuid,
    value: Option<&str>,
    ttl: Duration,
) -> anyhow::Result<String> {
    let value = value.map_or_else(|| new_secret(SESSION_PREFIX), str::to_owned);
    storage
        .create_session(user_id, &hash_secret(&value), Utc::now() + ttl)
        .await?;
    Ok(value)
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
