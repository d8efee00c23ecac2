//! Credentials to caller identity (check 1 of every call): a JWT, an API
//! token (as a Bearer token or in Basic auth) or a session cookie; and,
//! beside it, the issuing of API tokens and sessions (`issue.rs`).
//!
//! Every failure is the same `DomainError::Unauthenticated`, so a caller
//! cannot learn which part of its credentials was wrong.

mod credentials;
pub mod issue;
mod jwt;

use std::sync::Arc;

use chrono::Utc;

pub use credentials::Credentials;
pub use issue::hash_secret;
pub use jwt::JwtVerifier;

use crate::{
    domain::{Caller, DomainError},
    storage::Storage,
};

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

    /// The database credentials are checked against.
    pub fn storage(&self) -> &Storage {
        &self.storage
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
            Some(Credentials::Bearer(token)) => self.token_user(&token, now).await?,
            Some(Credentials::Basic { username, password }) => {
                // The API token is the password (`any:token`), or the user
                // name when the password is empty (`token:`).
                let token = if password.is_empty() {
                    username
                } else {
                    password
                };
                self.token_user(&token, now).await?
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

impl Authenticator {
    /// The caller an API token (`wst_…`) or a workspace access token
    /// (`wsat_…`, limited to its workspace) stands for.
    async fn token_user(
        &self,
        token: &str,
        now: chrono::DateTime<Utc>,
    ) -> Result<Option<Caller>, DomainError> {
        let hash = hash_secret(token);
        Ok(if token.starts_with(issue::WORKSPACE_TOKEN_PREFIX) {
            self.storage.user_of_workspace_token(&hash, now).await?
        } else {
            self.storage.user_of_api_token(&hash, now).await?
        })
    }
}

/// A JWT is three base64url parts; API tokens (`wst_…`) have no dots.
fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}
