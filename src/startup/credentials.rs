//! Key material the settings point at, read and checked at start: the
//! server's TLS identity and the JWT verifier.

use std::path::Path;

use anyhow::{Context, bail};
use secrecy::ExposeSecret;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::{
    auth::JwtVerifier,
    config::{JwtSettings, TlsSettings},
};

/// The TLS configuration the settings describe, `None` for plaintext.
pub fn tls_config(settings: &TlsSettings) -> anyhow::Result<Option<ServerTlsConfig>> {
    let read =
        |path: &Path| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
    let (cert, key) = match (&settings.cert_file, &settings.key_file) {
        (None, None) => {
            if settings.client_ca_file.is_some() {
                bail!("TLS_CLIENT_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE");
            }
            return Ok(None);
        }
        (Some(cert), Some(key)) => (read(cert)?, read(key)?),
        _ => bail!("set both TLS_CERT_FILE and TLS_KEY_FILE, or neither"),
    };
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
    if let Some(ca) = &settings.client_ca_file {
        tls = tls.client_ca_root(Certificate::from_pem(read(ca)?));
    }
    Ok(Some(tls))
}

/// The JWT verifier the settings describe, if any.
pub fn jwt_verifier(settings: &JwtSettings) -> anyhow::Result<Option<JwtVerifier>> {
    let issuer_and_audience = || -> anyhow::Result<(&str, &str)> {
        let issuer = settings
            .issuer
            .as_deref()
            .context("a JWT key needs JWT_ISSUER")?;
        let audience = settings
            .audience
            .as_deref()
            .context("a JWT key needs JWT_AUDIENCE")?;
        Ok((issuer, audience))
    };
    match (&settings.hs256_secret, &settings.public_key_file) {
        (Some(_), Some(_)) => bail!("set JWT_HS256_SECRET or JWT_PUBLIC_KEY_FILE, not both"),
        (Some(secret), None) => {
            let (issuer, audience) = issuer_and_audience()?;
            JwtVerifier::hs256(secret.expose_secret().as_bytes(), issuer, audience).map(Some)
        }
        (None, Some(path)) => {
            let (issuer, audience) = issuer_and_audience()?;
            JwtVerifier::public_key_file(path, issuer, audience).map(Some)
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    #[test]
    fn a_jwt_key_needs_issuer_and_audience() {
        let mut jwt = Settings::default().jwt;
        jwt.hs256_secret = Some("s".repeat(32).into());
        assert!(jwt_verifier(&jwt).is_err());
        jwt.issuer = Some("https://issuer.test".into());
        jwt.audience = Some("workspaces".into());
        assert!(jwt_verifier(&jwt).unwrap().is_some());
    }

    #[test]
    fn tls_needs_both_halves() {
        let mut tls = Settings::default().tls;
        assert!(tls_config(&tls).unwrap().is_none());
        tls.cert_file = Some("cert.pem".into());
        assert!(tls_config(&tls).is_err());
    }
}
