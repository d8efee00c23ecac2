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
    // A file without the block it should hold fails here, by name, rather
    // than at the first handshake ("peer sent no certificates").
    let read_pem = |setting: &str, path: &Path, labels: &[&str]| -> anyhow::Result<Vec<u8>> {
        let pem = read(path)?;
        if !holds_pem_block(&pem, labels) {
            bail!(
                "{setting} {} holds no PEM block `-----BEGIN {}-----`",
                path.display(),
                labels[0]
            );
        }
        Ok(pem)
    };
    let (cert, key) = match (&settings.cert_file, &settings.key_file) {
        (None, None) => {
            if settings.client_ca_file.is_some() {
                bail!("TLS_CLIENT_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE");
            }
            return Ok(None);
        }
        (Some(cert), Some(key)) => (
            read_pem("TLS_CERT_FILE", cert, &["CERTIFICATE"])?,
            read_pem("TLS_KEY_FILE", key, PRIVATE_KEY_LABELS)?,
        ),
        _ => bail!("set both TLS_CERT_FILE and TLS_KEY_FILE, or neither"),
    };
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
    if let Some(ca) = &settings.client_ca_file {
        tls = tls.client_ca_root(Certificate::from_pem(read_pem(
            "TLS_CLIENT_CA_FILE",
            ca,
            &["CERTIFICATE"],
        )?));
    }
    Ok(Some(tls))
}

/// The PEM labels of the private keys rustls reads.
const PRIVATE_KEY_LABELS: &[&str] = &["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"];

/// Whether `pem` has a `-----BEGIN <label>-----` line for one of `labels`.
fn holds_pem_block(pem: &[u8], labels: &[&str]) -> bool {
    let text = String::from_utf8_lossy(pem);
    text.lines().any(|line| {
        labels
            .iter()
            .any(|label| line.trim() == format!("-----BEGIN {label}-----"))
    })
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
    fn a_pem_file_without_a_certificate_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(
            &cert,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let mut tls = Settings::default().tls;
        tls.cert_file = Some(cert.clone());
        tls.key_file = Some(key);
        let err = tls_config(&tls).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "TLS_CERT_FILE {} holds no PEM block `-----BEGIN CERTIFICATE-----`",
                cert.display()
            )
        );
    }

    #[test]
    fn tls_needs_both_halves() {
        let mut tls = Settings::default().tls;
        assert!(tls_config(&tls).unwrap().is_none());
        tls.cert_file = Some("cert.pem".into());
        assert!(tls_config(&tls).is_err());
    }
}
