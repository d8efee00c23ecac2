//! Typed settings, from flags or the environment. Printed at start with
//! secrets masked.

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::{admin::AdminArgs, auth::JwtVerifier, domain::NameRules, http::JsonNames};

/// The embedded default: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://workspace-service.db";

#[derive(Debug, Parser)]
#[command(
    name = "workspace-service",
    version,
    about = "gRPC service that owns workspaces"
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gRPC server (the default).
    Serve,
    /// Bring the database schema up to date, then exit.
    Migrate,
    /// Create organizations, users, memberships, plans, credentials, API
    /// tokens and sessions.
    Admin(AdminArgs),
    /// Write the protos' encoded descriptor set (with the google.api.http
    /// annotations) to stdout, for Envoy's grpc_json_transcoder.
    DescriptorSet,
    /// Ask the running server's gRPC health service (on LISTEN_ADDR's
    /// port, via 127.0.0.1) and exit 0 when it is SERVING: a container
    /// HEALTHCHECK without extra tools.
    HealthCheck {
        /// The health service name: "" (readiness, follows the database)
        /// or "liveness".
        #[arg(long, default_value = "")]
        service: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Args)]
pub struct Settings {
    /// `sqlite://FILE` (created when missing) or `postgres://…`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    pub database_url: String,

    /// Largest number of database connections per replica.
    #[arg(
        long,
        env = "DATABASE_MAX_CONNECTIONS",
        default_value_t = 10,
        global = true
    )]
    pub database_max_connections: u32,

    /// Where the gRPC server listens.
    #[arg(
        long,
        env = "LISTEN_ADDR",
        default_value = "0.0.0.0:50051",
        global = true
    )]
    pub listen_addr: SocketAddr,

    /// Where the JSON/HTTP mapping listens; `off` turns it off.
    #[arg(
        long,
        env = "HTTP_LISTEN_ADDR",
        default_value = "0.0.0.0:8080",
        global = true
    )]
    pub http_listen_addr: String,

    /// Field names of JSON answers: `camel` (createdAt) or `proto`
    /// (created_at). Requests accept both.
    #[arg(long, env = "HTTP_JSON_NAMES", value_enum, default_value_t = JsonNames::Camel, global = true)]
    pub http_json_names: JsonNames,

    /// Shared secret (at least 32 bytes) for HS256 JWTs.
    #[arg(long, env = "JWT_HS256_SECRET", hide_env_values = true, global = true)]
    pub jwt_hs256_secret: Option<String>,

    /// PEM public key (RSA or EC P-256) for RS256 or ES256 JWTs.
    #[arg(long, env = "JWT_PUBLIC_KEY_FILE", global = true)]
    pub jwt_public_key_file: Option<PathBuf>,

    /// Required `iss` of JWTs; needed when a JWT key is set.
    #[arg(long, env = "JWT_ISSUER", global = true)]
    pub jwt_issuer: Option<String>,

    /// Required `aud` of JWTs; needed when a JWT key is set.
    #[arg(long, env = "JWT_AUDIENCE", global = true)]
    pub jwt_audience: Option<String>,

    /// Shortest workspace name, in characters, after trimming.
    #[arg(long, env = "NAME_MIN_CHARS", default_value_t = 4, global = true)]
    pub name_min_chars: usize,

    /// Longest workspace name, in characters, after trimming.
    #[arg(long, env = "NAME_MAX_CHARS", default_value_t = 100, global = true)]
    pub name_max_chars: usize,

    /// Refuse CreateWorkspace without a billing account email (seed 001).
    #[arg(long, env = "REQUIRE_BILLING_EMAIL", action = ArgAction::SetTrue, global = true)]
    pub require_billing_email: bool,

    /// How often the database is pinged for the health service, in
    /// milliseconds.
    #[arg(
        long,
        env = "HEALTH_CHECK_INTERVAL_MS",
        default_value_t = 2_000,
        global = true
    )]
    pub health_check_interval_ms: u64,

    /// Most WorkspaceService calls in flight per replica (gRPC and HTTP
    /// together); more are answered RESOURCE_EXHAUSTED (HTTP 429) at once.
    #[arg(
        long,
        env = "MAX_CONCURRENT_CALLS",
        default_value_t = 256,
        global = true
    )]
    pub max_concurrent_calls: usize,

    /// How long calls in flight may take to finish after SIGTERM, in
    /// milliseconds; keep it under Kubernetes' terminationGracePeriodSeconds.
    #[arg(
        long,
        env = "SHUTDOWN_GRACE_MS",
        default_value_t = 20_000,
        global = true
    )]
    pub shutdown_grace_ms: u64,

    /// Longest a call may run, in milliseconds: the client's `grpc-timeout`
    /// when shorter, this otherwise. A call past it ends DEADLINE_EXCEEDED.
    #[arg(
        long,
        env = "MAX_CALL_DURATION_MS",
        default_value_t = 30_000,
        global = true
    )]
    pub max_call_duration_ms: u64,

    /// Most concurrent HTTP/2 streams (calls) per client connection.
    #[arg(
        long,
        env = "MAX_CONCURRENT_STREAMS",
        default_value_t = 200,
        global = true
    )]
    pub max_concurrent_streams: u32,

    /// How often an idle HTTP/2 connection is pinged, in milliseconds.
    #[arg(
        long,
        env = "HTTP2_KEEPALIVE_INTERVAL_MS",
        default_value_t = 30_000,
        global = true
    )]
    pub http2_keepalive_interval_ms: u64,

    /// How long a ping may go unanswered before the connection is closed,
    /// in milliseconds.
    #[arg(
        long,
        env = "HTTP2_KEEPALIVE_TIMEOUT_MS",
        default_value_t = 10_000,
        global = true
    )]
    pub http2_keepalive_timeout_ms: u64,

    /// PEM certificate chain: serve gRPC over TLS (with TLS_KEY_FILE).
    #[arg(long, env = "TLS_CERT_FILE", global = true)]
    pub tls_cert_file: Option<PathBuf>,

    /// PEM private key of TLS_CERT_FILE.
    #[arg(long, env = "TLS_KEY_FILE", global = true)]
    pub tls_key_file: Option<PathBuf>,

    /// PEM CA certificates: require client certificates they signed (mTLS).
    #[arg(long, env = "TLS_CLIENT_CA_FILE", global = true)]
    pub tls_client_ca_file: Option<PathBuf>,

    /// OTLP/gRPC collector (`http://collector:4317`): export traces and
    /// metrics there. Unset: nothing is exported.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", global = true)]
    pub otel_exporter_otlp_endpoint: Option<String>,

    /// OTLP protocol; only `grpc` is supported.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_PROTOCOL", global = true)]
    pub otel_exporter_otlp_protocol: Option<String>,

    /// Largest request message, in bytes.
    #[arg(long, env = "MAX_MESSAGE_BYTES", default_value_t = 1 << 20, global = true)]
    pub max_message_bytes: usize,

    /// Seed a demo organization, owner and API token at start and print a
    /// grpcurl command. Default: on for SQLite, off for PostgreSQL.
    #[arg(long, env = "SEED_DEMO", global = true)]
    pub seed_demo: Option<bool>,

    /// Log lines as text or JSON (RUST_LOG picks what is logged).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

impl Settings {
    /// Settings as if no flag and no environment variable were given.
    pub fn defaults() -> Self {
        Cli::parse_from(["workspace-service"]).settings
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }

    pub fn seeds_demo(&self) -> bool {
        self.seed_demo.unwrap_or_else(|| self.is_sqlite())
    }

    pub fn name_rules(&self) -> anyhow::Result<NameRules> {
        if self.name_min_chars == 0 || self.name_max_chars < self.name_min_chars {
            bail!(
                "name bounds {}..{} are not a range: need 1 <= NAME_MIN_CHARS <= NAME_MAX_CHARS",
                self.name_min_chars,
                self.name_max_chars
            );
        }
        Ok(NameRules {
            min_chars: self.name_min_chars,
            max_chars: self.name_max_chars,
            require_billing_email: self.require_billing_email,
        })
    }

    /// The HTTP listen address, `None` when turned off.
    pub fn http_addr(&self) -> anyhow::Result<Option<SocketAddr>> {
        match self.http_listen_addr.trim() {
            "" | "off" | "none" | "false" => Ok(None),
            addr => addr.parse().map(Some).with_context(|| {
                format!("HTTP_LISTEN_ADDR {addr:?} is neither an address nor `off`")
            }),
        }
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }

    pub fn max_call_duration(&self) -> Duration {
        Duration::from_millis(self.max_call_duration_ms.max(1))
    }

    /// The OTLP endpoint to export to, if any (empty counts as unset).
    pub fn otlp_endpoint(&self) -> anyhow::Result<Option<&str>> {
        let endpoint = self
            .otel_exporter_otlp_endpoint
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty());
        match self.otel_exporter_otlp_protocol.as_deref().map(str::trim) {
            None | Some("" | "grpc") => Ok(endpoint),
            Some(other) if endpoint.is_some() => bail!(
                "OTEL_EXPORTER_OTLP_PROTOCOL {other:?} is not supported: use grpc (port 4317)"
            ),
            Some(_) => Ok(None),
        }
    }

    /// The TLS settings, when TLS_CERT_FILE and TLS_KEY_FILE are set.
    pub fn tls(&self) -> anyhow::Result<Option<tonic::transport::ServerTlsConfig>> {
        use tonic::transport::{Certificate, Identity, ServerTlsConfig};
        let read = |path: &PathBuf| {
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))
        };
        let (cert, key) = match (&self.tls_cert_file, &self.tls_key_file) {
            (None, None) => {
                if self.tls_client_ca_file.is_some() {
                    bail!("TLS_CLIENT_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE");
                }
                return Ok(None);
            }
            (Some(cert), Some(key)) => (read(cert)?, read(key)?),
            _ => bail!("set both TLS_CERT_FILE and TLS_KEY_FILE, or neither"),
        };
        let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
        if let Some(ca) = &self.tls_client_ca_file {
            tls = tls.client_ca_root(Certificate::from_pem(read(ca)?));
        }
        Ok(Some(tls))
    }

    pub fn health_check_interval(&self) -> Duration {
        Duration::from_millis(self.health_check_interval_ms.max(100))
    }

    /// The JWT verifier the settings describe, if any.
    pub fn jwt_verifier(&self) -> anyhow::Result<Option<JwtVerifier>> {
        let issuer_and_audience = || -> anyhow::Result<(&str, &str)> {
            let issuer = self
                .jwt_issuer
                .as_deref()
                .context("a JWT key needs JWT_ISSUER")?;
            let audience = self
                .jwt_audience
                .as_deref()
                .context("a JWT key needs JWT_AUDIENCE")?;
            Ok((issuer, audience))
        };
        match (&self.jwt_hs256_secret, &self.jwt_public_key_file) {
            (Some(_), Some(_)) => bail!("set JWT_HS256_SECRET or JWT_PUBLIC_KEY_FILE, not both"),
            (Some(secret), None) => {
                let (issuer, audience) = issuer_and_audience()?;
                JwtVerifier::hs256(secret.as_bytes(), issuer, audience).map(Some)
            }
            (None, Some(path)) => {
                let (issuer, audience) = issuer_and_audience()?;
                JwtVerifier::public_key_file(path, issuer, audience).map(Some)
            }
            (None, None) => Ok(None),
        }
    }
}

/// Masks the password of `scheme://user:password@host/…`.
fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

impl fmt::Debug for Settings {
    /// What is printed at start: everything, secrets masked.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &mask_url(&self.database_url))
            .field("database_max_connections", &self.database_max_connections)
            .field("listen_addr", &self.listen_addr)
            .field("http_listen_addr", &self.http_listen_addr)
            .field("http_json_names", &self.http_json_names)
            .field(
                "jwt_hs256_secret",
                &self.jwt_hs256_secret.as_ref().map(|_| "***"),
            )
            .field("jwt_public_key_file", &self.jwt_public_key_file)
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("name_min_chars", &self.name_min_chars)
            .field("name_max_chars", &self.name_max_chars)
            .field("require_billing_email", &self.require_billing_email)
            .field("health_check_interval_ms", &self.health_check_interval_ms)
            .field("max_concurrent_calls", &self.max_concurrent_calls)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("max_call_duration_ms", &self.max_call_duration_ms)
            .field("max_concurrent_streams", &self.max_concurrent_streams)
            .field(
                "http2_keepalive_interval_ms",
                &self.http2_keepalive_interval_ms,
            )
            .field(
                "http2_keepalive_timeout_ms",
                &self.http2_keepalive_timeout_ms,
            )
            .field("tls_cert_file", &self.tls_cert_file)
            .field("tls_key_file", &self.tls_key_file)
            .field("tls_client_ca_file", &self.tls_client_ca_file)
            .field(
                "otel_exporter_otlp_endpoint",
                &self.otel_exporter_otlp_endpoint,
            )
            .field("shutdown_grace_ms", &self.shutdown_grace_ms)
            .field("seed_demo", &self.seeds_demo())
            .field("log_format", &self.log_format)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_when_printed() {
        let mut settings = Settings::defaults();
        settings.database_url = "postgres://app:hunter2@db:5432/workspaces".into();
        settings.jwt_hs256_secret = Some("x".repeat(40));
        let printed = format!("{settings:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!printed.contains(&"x".repeat(40)), "{printed}");
        assert!(
            printed.contains("postgres://app:***@db:5432/workspaces"),
            "{printed}"
        );
    }

    #[test]
    fn name_bounds_must_be_a_range() {
        let mut settings = Settings::defaults();
        settings.name_min_chars = 10;
        settings.name_max_chars = 5;
        assert!(settings.name_rules().is_err());
    }

    #[test]
    fn a_jwt_key_needs_issuer_and_audience() {
        let mut settings = Settings::defaults();
        settings.jwt_hs256_secret = Some("s".repeat(32));
        assert!(settings.jwt_verifier().is_err());
        settings.jwt_issuer = Some("https://issuer.test".into());
        settings.jwt_audience = Some("workspaces".into());
        assert!(settings.jwt_verifier().unwrap().is_some());
    }
}
