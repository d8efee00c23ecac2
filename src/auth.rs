//! Credentials to caller identity (check 1 of every call): a JWT, an API
//! token (as a Bearer token or in Basic auth) or a session cookie.
//!
//! Every failure is the same `DomainError::Unauthenticated`, so a caller
//! cannot learn which part of its credentials was wrong.

use std::{fs, path::Path, sync::Arc};

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::STANDARD, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    domain::{Caller, DomainError},
    storage::Storage,
};

/// What a caller presented, before it is checked.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `authorization: Bearer <JWT or API token>`.
    Bearer(String),
    /// `authorization: Basic base64(user:password)`, carrying an API token.
    Basic { username: String, password: String },
    /// The `session` cookie (seed 004).
    Session(String),
}

impl std::fmt::Debug for Credentials {
    /// Never prints a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Self::Bearer(_) => "Bearer",
            Self::Basic { .. } => "Basic",
            Self::Session(_) => "Session",
        };
        write!(f, "Credentials::{kind}(***)")
    }
}

impl Credentials {
    /// Reads the credentials from an `authorization` header value and the
    /// `cookie` header values; `authorization` wins when both are there.
    /// Anything malformed is `None`, which authenticates nobody.
    pub fn from_headers<'a>(
        authorization: Option<&str>,
        cookies: impl IntoIterator<Item = &'a str>,
    ) -> Option<Self> {
        if let Some(value) = authorization {
            let (scheme, rest) = value.trim().split_once(' ')?;
            let rest = rest.trim();
            if rest.is_empty() {
                return None;
            }
            return if scheme.eq_ignore_ascii_case("bearer") {
                Some(Self::Bearer(rest.to_owned()))
            } else if scheme.eq_ignore_ascii_case("basic") {
                let decoded = String::from_utf8(STANDARD.decode(rest).ok()?).ok()?;
                let (username, password) = decoded.split_once(':').unwrap_or((&decoded, ""));
                Some(Self::Basic {
                    username: username.to_owned(),
                    password: password.to_owned(),
                })
            } else {
                None
            };
        }
        cookies
            .into_iter()
            .flat_map(|header| header.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == "session")
            .map(|(_, value)| value.trim_matches('"'))
            .filter(|value| !value.is_empty())
            .map(|value| Self::Session(value.to_owned()))
    }
}

/// Checks JWTs: one key (an HS256 secret, or an RS256/ES256 public key),
/// and the issuer, audience and expiry.
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

impl JwtVerifier {
    /// HS256 with a shared secret.
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str) -> anyhow::Result<Self> {
        if secret.len() < 32 {
            bail!("the JWT HS256 secret must be at least 32 bytes long");
        }
        Ok(Self::new(
            DecodingKey::from_secret(secret),
            Algorithm::HS256,
            issuer,
            audience,
        ))
    }

    /// RS256 or ES256, picked by the kind of public key in the PEM file.
    pub fn public_key_file(path: &Path, issuer: &str, audience: &str) -> anyhow::Result<Self> {
        let pem = fs::read(path)
            .with_context(|| format!("reading the JWT public key {}", path.display()))?;
        if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
            return Ok(Self::new(key, Algorithm::RS256, issuer, audience));
        }
        if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
            return Ok(Self::new(key, Algorithm::ES256, issuer, audience));
        }
        bail!(
            "{} holds neither an RSA nor an EC (P-256) public key in PEM form",
            path.display()
        )
    }

    fn new(key: DecodingKey, algorithm: Algorithm, issuer: &str, audience: &str) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // jsonwebtoken checks `nbf` only when asked; a token not yet valid
        // is not valid.
        validation.validate_nbf = true;
        validation.leeway = 30;
        Self { key, validation }
    }

    /// The user id (`sub`) of a valid token.
    fn verify(&self, token: &str) -> Option<Uuid> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).ok()?;
        Uuid::try_parse(&data.claims.sub).ok()
    }
}

/// Turns credentials into the caller they belong to.
#[derive(Clone)]
pub struct Authenticator {
    storage: Storage,
    jwt: Option<Arc<JwtVerifier>>,
}

impl Authenticator {
    pub fn new(storage: Storage, jwt: Option<JwtVerifier>) -> Self {
        Self {
            storage,
            jwt: jwt.map(Arc::new),
        }
    }

    /// Check 1. The database being away is UNAVAILABLE, not
    /// UNAUTHENTICATED: the caller's credentials may be fine.
    pub async fn authenticate(
        &self,
        credentials: Option<Credentials>,
    ) -> Result<Caller, DomainError> {
        let now = Utc::now();
        let caller = match credentials {
            None => None,
            Some(Credentials::Bearer(token)) if looks_like_jwt(&token) => {
                // A well-signed token for a user this service does not
                // know authenticates nobody.
                match self.jwt.as_ref().and_then(|jwt| jwt.verify(&token)) {
                    Some(subject) => self.storage.user_of_subject(subject).await?,
                    None => None,
                }
            }
            Some(Credentials::Bearer(token)) => {
                self.storage
                    .user_of_api_token(&hash_secret(&token), now)
                    .await?
            }
            Some(Credentials::Basic { username, password }) => {
                // The API token is the password (`any:token`), or the user
                // name when the password is empty (`token:`).
                let token = if password.is_empty() {
                    username
                } else {
                    password
                };
                self.storage
                    .user_of_api_token(&hash_secret(&token), now)
                    .await?
            }
            Some(Credentials::Session(value)) => {
                self.storage
                    .user_of_session(&hash_secret(&value), now)
                    .await?
            }
        };
        caller.ok_or(DomainError::Unauthenticated)
    }
}

/// A JWT is three base64url parts; API tokens (`wst_…`) have no dots.
fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_basic_and_cookie_are_read() {
        assert_eq!(
            Credentials::from_headers(Some("Bearer abc"), []),
            Some(Credentials::Bearer("abc".into()))
        );
        assert_eq!(
            Credentials::from_headers(Some("bearer  abc "), []),
            Some(Credentials::Bearer("abc".into()))
        );
        let basic = format!("Basic {}", STANDARD.encode("user:tok"));
        assert_eq!(
            Credentials::from_headers(Some(&basic), []),
            Some(Credentials::Basic {
                username: "user".into(),
                password: "tok".into()
            })
        );
        assert_eq!(
            Credentials::from_headers(None, ["theme=dark; session=s3cret"]),
            Some(Credentials::Session("s3cret".into()))
        );
    }

    #[test]
    fn malformed_headers_are_no_credentials() {
        for header in ["Bearer", "Bearer ", "Token abc", "Basic !!!", "abc"] {
            assert_eq!(
                Credentials::from_headers(Some(header), ["session=s"]),
                None,
                "{header}"
            );
        }
        assert_eq!(
            Credentials::from_headers(None, ["sessionid=x", "session="]),
            None
        );
    }

    #[test]
    fn secrets_are_random_and_prefixed() {
        let a = new_secret("wst_");
        assert!(a.starts_with("wst_") && a.len() > 40);
        assert_ne!(a, new_secret("wst_"));
        assert_eq!(hash_secret("x").len(), 64);
    }

    #[test]
    fn short_hs256_secrets_are_refused() {
        assert!(JwtVerifier::hs256(b"short", "iss", "aud").is_err());
    }
}
