//! JWT verification: one key and the issuer, audience and expiry.

use std::{fs, path::Path};

use anyhow::{Context, bail};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use uuid::Uuid;

/// Checks JWTs: one key (an HS256 secret, or an RS256/ES256 public key),
/// and the issuer, audience and expiry.
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    /// The one organization the token is bound to, if any: a UUID string.
    #[serde(default)]
    org_id: Option<String>,
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

    /// The user id (`sub`) of a valid token, and the organization its
    /// `org_id` claim binds it to. A token whose `org_id` is not a UUID is
    /// not valid.
    pub(super) fn verify(&self, token: &str) -> Option<(Uuid, Option<Uuid>)> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).ok()?;
        let user = Uuid::try_parse(&data.claims.sub).ok()?;
        let organization = match data.claims.org_id.as_deref() {
            None => None,
            Some(id) => Some(Uuid::try_parse(id).ok()?),
        };
        Some((user, organization))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_hs256_secrets_are_refused() {
        assert!(JwtVerifier::hs256(b"short", "iss", "aud").is_err());
    }
}
