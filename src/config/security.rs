//! TLS and JWT settings.

use std::path::PathBuf;

use clap::Args;
use secrecy::SecretString;

#[derive(Clone, Debug, Args)]
pub struct TlsSettings {
    /// PEM certificate chain: serve gRPC over TLS (with TLS_KEY_FILE).
    #[arg(long = "tls-cert-file", env = "TLS_CERT_FILE", global = true)]
    pub cert_file: Option<PathBuf>,

    /// PEM private key of TLS_CERT_FILE.
    #[arg(long = "tls-key-file", env = "TLS_KEY_FILE", global = true)]
    pub key_file: Option<PathBuf>,

    /// PEM CA certificates: require client certificates they signed (mTLS).
    #[arg(long = "tls-client-ca-file", env = "TLS_CLIENT_CA_FILE", global = true)]
    pub client_ca_file: Option<PathBuf>,
}

#[derive(Clone, Debug, Args)]
pub struct JwtSettings {
    /// Shared secret (at least 32 bytes) for HS256 JWTs.
    #[arg(
        long = "jwt-hs256-secret",
        env = "JWT_HS256_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub hs256_secret: Option<SecretString>,

    /// PEM public key (RSA or EC P-256) for RS256 or ES256 JWTs.
    #[arg(
        long = "jwt-public-key-file",
        env = "JWT_PUBLIC_KEY_FILE",
        global = true
    )]
    pub public_key_file: Option<PathBuf>,

    /// Required `iss` of JWTs; needed when a JWT key is set.
    #[arg(long = "jwt-issuer", env = "JWT_ISSUER", global = true)]
    pub issuer: Option<String>,

    /// Required `aud` of JWTs; needed when a JWT key is set.
    #[arg(long = "jwt-audience", env = "JWT_AUDIENCE", global = true)]
    pub audience: Option<String>,
}
