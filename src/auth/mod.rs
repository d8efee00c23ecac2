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
    storage::{CallerOrganizations, Storage},
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
        Ok(self.authenticate_creator(credentials, false).await?.0)
    }

    /// `authenticate`, for a CreateWorkspace when `creating`: with an API
    /// token, the same query also reads the caller's organizations, so
    /// check 3 asks the database nothing more, and the caller is kept for
    /// the token's next creates (no query at all; the write checks again
    /// what it was decided on). Other credentials read them in the
    /// create, as before.
    pub async fn authenticate_creator(
        &self,
        credentials: Option<Credentials>,
        creating: bool,
    ) -> Result<(Caller, Option<CallerOrganizations>), DomainError> {
        let now = Utc::now();
        if let Some(token) = credentials.as_ref().and_then(api_token)
            && creating
            && !token.starts_with(issue::WORKSPACE_TOKEN_PREFIX)
        {
            // A caller kept from an earlier create is checked again by the
            // create's write (`storage::callers`).
            let found = self
                .storage
                .creator_of_api_token(&hash_secret(token), now, true)
                .await?;
            let (caller, organizations) = found.ok_or(DomainError::Unauthenticated)?;
            return Ok((caller, Some(organizations)));
        }
        let caller = match &credentials {
            None => None,
            Some(Credentials::Session(value)) => {
                self.storage
                    .user_of_session(&hash_secret(value), now)
                    .await?
            }
            Some(credentials) => match (api_token(credentials), credentials) {
                (Some(token), _) => self.token_user(token, now).await?,
                // A well-signed token for a user this service does not
                // know authenticates nobody.
                (None, Credentials::Bearer(jwt)) => {
                    match self.jwt.as_ref().and_then(|verifier| verifier.verify(jwt)) {
                        Some((subject, organization)) => self
                            .storage
                            .user_of_subject(subject)
                            .await?
                            .map(|caller| Caller {
                                organization_scope: organization,
                                ..caller
                            }),
                        None => None,
                    }
                }
                (None, _) => None,
            },
        };
        Ok((caller.ok_or(DomainError::Unauthenticated)?, None))
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

/// The API token (or workspace access token) in `credentials`: a Bearer
/// token that is not a JWT, or Basic auth's password (`any:token`), or its
/// user name when the password is empty (`token:`).
fn api_token(credentials: &Credentials) -> Option<&str> {
    match credentials {
        Credentials::Bearer(token) if !looks_like_jwt(token) => Some(token),
        Credentials::Basic { username, password } if password.is_empty() => Some(username),
        Credentials::Basic { password, .. } => Some(password),
        _ => None,
    }
}

/// A JWT is three base64url parts; API tokens (`wst_…`) have no dots.
fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}
