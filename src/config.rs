//! Typed settings, from flags or the environment, grouped by what they set
//! up: the database, the server, TLS, JWTs, the name rules, telemetry.
//! Secrets are kept in types that print masked; the settings are printed
//! at start.

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use clap::{ArgAction, Args, FromArgMatches};
use secrecy::{ExposeSecret, SecretString};

use crate::{
    domain::NameRules,
    http::{ApiV1Dialect, DialectChoice, JsonNames},
    storage::{Pooler, mask_url},
    telemetry::LogFormat,
};

/// The embedded default: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://workspace-service.db";

/// Every setting of the service.
#[derive(Clone, Debug, Args)]
pub struct Settings {
    #[command(flatten, next_help_heading = "Database")]
    pub database: DatabaseSettings,
    #[command(flatten, next_help_heading = "Server")]
    pub server: ServerSettings,
    #[command(flatten, next_help_heading = "TLS")]
    pub tls: TlsSettings,
    #[command(flatten, next_help_heading = "JWT")]
    pub jwt: JwtSettings,
    #[command(flatten, next_help_heading = "Rules")]
    pub rules: RuleSettings,
    #[command(flatten, next_help_heading = "Telemetry")]
    pub telemetry: TelemetrySettings,
    #[command(flatten, next_help_heading = "Events")]
    pub events: EventSettings,
}

/// The outbox relay: where workspace events are published.
#[derive(Clone, Debug, Args)]
pub struct EventSettings {
    /// NATS with JetStream (`nats://nats:4222`). Unset: events are written
    /// to the outbox and kept, nothing is published.
    #[arg(long, env = "NATS_URL", global = true)]
    pub nats_url: Option<String>,

    /// The JetStream stream the events go to (created when missing).
    #[arg(
        long,
        env = "EVENTS_STREAM",
        default_value = "WORKSPACE_EVENTS",
        global = true
    )]
    pub stream: String,

    /// Subjects are `<prefix>.<organization id>.<event type>`, such as
    /// `workspace.events.<id>.workspace.created`.
    #[arg(
        long,
        env = "EVENTS_SUBJECT_PREFIX",
        default_value = "workspace.events",
        global = true
    )]
    pub subject_prefix: String,

    /// How long a published event stays in the outbox.
    #[arg(
        long,
        env = "EVENTS_RETENTION_HOURS",
        default_value_t = 24,
        global = true
    )]
    pub retention_hours: u64,

    /// How often the relay looks for unsent events, in milliseconds.
    #[arg(
        long,
        env = "EVENTS_RELAY_INTERVAL_MS",
        default_value_t = 200,
        global = true
    )]
    pub relay_interval_ms: u64,

    /// Oldest an event may get in a stream the relay creates before
    /// JetStream drops it (the stream's `max_age`): `7d`, `36h`, `90m`.
    #[arg(long, env = "EVENTS_MAX_AGE", default_value = "7d", global = true)]
    pub max_age: HumanDuration,

    /// Largest a stream the relay creates may grow, its oldest events
    /// dropped first (`max_bytes`): `1GiB`, `512MiB`, or bytes.
    #[arg(long, env = "EVENTS_MAX_BYTES", default_value = "1GiB", global = true)]
    pub max_bytes: ByteSize,

    /// Copies of each event a stream the relay creates keeps in a JetStream
    /// cluster (`num_replicas`, 1 to 5; 3 for a cluster of three).
    #[arg(long, env = "EVENTS_REPLICAS", default_value_t = 1, global = true)]
    pub replicas: usize,

    /// How long JetStream remembers an event's id to drop a second publish
    /// of it (the stream's `duplicate_window`): the longest the relay may
    /// take to publish again an event JetStream stored but the relay did
    /// not record as sent (a lost acknowledgement, a crash and restart).
    /// A stream created in advance with a shorter window is reported at
    /// start.
    #[arg(
        long,
        env = "EVENTS_DUPLICATE_WINDOW",
        default_value = "1h",
        global = true
    )]
    pub duplicate_window: HumanDuration,

    /// How events are written: `protobuf` (a `workspace.v1.WorkspaceEvent`
    /// with CloudEvents binary-mode `ce-*` headers) or `cloudevents-json`
    /// (a structured-mode CloudEvent in JSON, its `data` the event in
    /// proto3 JSON: no proto needed to read it).
    #[arg(long, env = "EVENTS_FORMAT", value_enum, default_value_t = EventFormat::Protobuf, global = true)]
    pub format: EventFormat,

    /// The CloudEvents `dataschema` (`ce-dataschema` header, or the JSON
    /// event's attribute): a URI naming the schema of the data, such as
    /// your schema registry's address of `workspace.v1.WorkspaceEvent`.
    #[arg(
        long,
        env = "EVENTS_DATASCHEMA",
        default_value = "urn:workspace-service:proto:workspace.v1.WorkspaceEvent",
        global = true
    )]
    pub dataschema: String,
}

/// How events are written on the wire (`EVENTS_FORMAT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EventFormat {
    /// Protobuf payload, CloudEvents binary mode (`ce-*` headers).
    Protobuf,
    /// CloudEvents structured mode, JSON (`application/cloudevents+json`).
    CloudeventsJson,
}

impl EventSettings {
    /// The shortest duplicate window that covers the relay's own retries:
    /// an acknowledgement that timed out (`ack_timeout`) is published again
    /// the next round; twice that, for a margin.
    pub fn retry_horizon(&self, ack_timeout: Duration) -> Duration {
        2 * (ack_timeout + Duration::from_millis(self.relay_interval_ms))
    }

    /// The stream limits, checked: a bounded age and size, 1 to 5
    /// replicas, a duplicate window that covers the relay's retries and
    /// fits in the age (JetStream refuses a longer one).
    pub fn check_stream_limits(&self, ack_timeout: Duration) -> anyhow::Result<()> {
        if self.max_age.0.is_zero() {
            bail!("EVENTS_MAX_AGE must be more than 0: the stream would keep events forever");
        }
        if self.max_bytes.0 <= 0 {
            bail!("EVENTS_MAX_BYTES must be more than 0: the stream would grow without bound");
        }
        if !(1..=5).contains(&self.replicas) {
            bail!(
                "EVENTS_REPLICAS {} is not 1 to 5 (JetStream's range)",
                self.replicas
            );
        }
        let horizon = self.retry_horizon(ack_timeout);
        if self.duplicate_window.0 < horizon {
            bail!(
                "EVENTS_DUPLICATE_WINDOW {} is shorter than the relay's retries need ({}): an \
                 event published again after a lost acknowledgement could be stored twice",
                self.duplicate_window,
                HumanDuration(horizon)
            );
        }
        if self.duplicate_window.0 > self.max_age.0 {
            bail!(
                "EVENTS_DUPLICATE_WINDOW {} is longer than EVENTS_MAX_AGE {} (JetStream refuses it)",
                self.duplicate_window,
                self.max_age
            );
        }
        Ok(())
    }
}

/// A duration written with a unit: `500ms`, `30s`, `90m`, `36h`, `7d`
/// (a bare number is seconds). Printed in the largest unit that is whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl std::str::FromStr for HumanDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: u64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a duration such as 30s, 90m, 36h or 7d"))?;
        let seconds = match unit.trim() {
            "ms" => return Ok(Self(Duration::from_millis(number))),
            "" | "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            other => return Err(format!("{other:?} is not a unit: use ms, s, m, h or d")),
        };
        number
            .checked_mul(seconds)
            .map(|s| Self(Duration::from_secs(s)))
            .ok_or_else(|| format!("{text:?} is too long"))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        if !millis.is_multiple_of(1_000) || millis == 0 {
            return write!(f, "{millis}ms");
        }
        let seconds = millis / 1_000;
        for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
            if seconds.is_multiple_of(size) {
                return write!(f, "{}{unit}", seconds / size);
            }
        }
        write!(f, "{seconds}s")
    }
}

/// A size in bytes, written with a binary unit or none: `1GiB`, `512MiB`,
/// `64KiB`, `1048576`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(pub i64);

impl std::str::FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit() && c != '-')
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: i64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a size such as 1GiB, 512MiB or 1048576"))?;
        let scale: i64 = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            "TiB" => 1 << 40,
            other => return Err(format!("{other:?} is not a unit: use KiB, MiB, GiB or TiB")),
        };
        number
            .checked_mul(scale)
            .map(Self)
            .ok_or_else(|| format!("{text:?} is too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] {
            if self.0 != 0 && self.0 % (1 << shift) == 0 {
                return write!(f, "{}{unit}", self.0 >> shift);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl Default for Settings {
    /// The defaults, as if no flag and no environment variable were given:
    /// whatever the shell running the tests has set.
    fn default() -> Self {
        let command = Self::augment_args(clap::Command::new("workspace-service"))
            .mut_args(|arg| arg.env(None));
        let matches = command
            .try_get_matches_from(["workspace-service"])
            .expect("every setting has a default");
        Self::from_arg_matches(&matches).expect("the defaults are valid settings")
    }
}

/// A database URL. Printed with its password masked.
#[derive(Clone)]
pub struct DatabaseUrl(SecretString);

impl DatabaseUrl {
    /// The URL itself, password included: for connecting only.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn is_sqlite(&self) -> bool {
        self.expose().starts_with("sqlite:")
    }

    /// The URL with its password masked, for logs and errors.
    pub fn masked(&self) -> String {
        mask_url(self.expose())
    }
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        Self(url.into())
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        Ok(Self(url.into()))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[derive(Clone, Debug, Args)]
pub struct DatabaseSettings {
    /// `sqlite://FILE` (created when missing) or `postgres://…`.
    #[arg(long = "database-url", env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    pub url: DatabaseUrl,

    /// Largest number of database connections per replica.
    #[arg(
        long = "database-max-connections",
        env = "DATABASE_MAX_CONNECTIONS",
        default_value_t = 10,
        global = true
    )]
    pub max_connections: u32,

    /// What sits between the service and PostgreSQL: `none`, a pooler in
    /// `session` mode, or one in `transaction` mode (pgbouncer's
    /// `pool_mode`). See "Behind a connection pooler" in the README.
    #[arg(
        long = "database-pooler",
        env = "DATABASE_POOLER",
        value_enum,
        default_value_t = Pooler::None,
        global = true
    )]
    pub pooler: Pooler,

    /// How often the database is pinged for the health service, in
    /// milliseconds.
    #[arg(
        long,
        env = "HEALTH_CHECK_INTERVAL_MS",
        default_value_t = 2_000,
        global = true
    )]
    pub health_check_interval_ms: u64,
}

impl DatabaseSettings {
    pub fn health_check_interval(&self) -> Duration {
        Duration::from_millis(self.health_check_interval_ms.max(100))
    }
}

#[derive(Clone, Debug, Args)]
pub struct ServerSettings {
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

    /// `seeds`: each seed's route speaks its seed's JSON (README, "JSON
    /// dialects"); `grpc-gateway`: every route speaks grpc-gateway's.
    #[arg(long, env = "HTTP_DIALECTS", value_enum, default_value_t = DialectChoice::Seeds, global = true)]
    pub http_dialects: DialectChoice,

    /// The seed whose JSON `POST /api/v1/workspaces` speaks: `000` or
    /// `001` (both document that route).
    #[arg(long, env = "HTTP_API_V1_DIALECT", value_enum, default_value_t = ApiV1Dialect::Seed000, global = true)]
    pub http_api_v1_dialect: ApiV1Dialect,

    /// Most WorkspaceService calls in flight per replica (gRPC and HTTP
    /// together); more are answered RESOURCE_EXHAUSTED (HTTP 429) at once.
    #[arg(
        long,
        env = "MAX_CONCURRENT_CALLS",
        default_value_t = 256,
        global = true
    )]
    pub max_concurrent_calls: usize,

    /// Most CreateWorkspace calls of one organization in flight per replica;
    /// more are answered RESOURCE_EXHAUSTED (HTTP 429) at once, so that one
    /// organization (a burst, a row lock held on it) cannot take every
    /// place among the calls in flight or every database connection.
    #[arg(
        long,
        env = "MAX_CONCURRENT_CALLS_PER_ORGANIZATION",
        default_value_t = 8,
        global = true
    )]
    pub max_concurrent_calls_per_organization: usize,

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

    /// After SIGTERM (and the drain delay), how long the calls in flight on
    /// both listeners together may take to finish, in milliseconds. Keep
    /// DRAIN_DELAY_MS + SHUTDOWN_GRACE_MS under Kubernetes'
    /// terminationGracePeriodSeconds.
    #[arg(
        long,
        env = "SHUTDOWN_GRACE_MS",
        default_value_t = 20_000,
        global = true
    )]
    pub shutdown_grace_ms: u64,

    /// After SIGTERM, how long to keep serving with readiness NOT_SERVING
    /// before refusing new calls, in milliseconds: time for load balancers
    /// and endpoints to stop sending (what a preStop sleep would do).
    #[arg(long, env = "DRAIN_DELAY_MS", default_value_t = 0, global = true)]
    pub drain_delay_ms: u64,

    /// Most open client connections per listener; one more is closed at
    /// once. With the HTTP/2 windows below it bounds what unread request
    /// data the connections can hold. Twice MAX_CONCURRENT_CALLS: a proxy
    /// that opens one upstream connection per call in flight (nginx
    /// `grpc_pass`) then meets the call limit, answered RESOURCE_EXHAUSTED
    /// with a RetryInfo, before the connection limit, which it would turn
    /// into 502s.
    #[arg(
        long = "max-connections",
        env = "MAX_CONNECTIONS",
        default_value_t = 512,
        global = true
    )]
    pub max_client_connections: usize,

    /// Bytes of request bodies held at once across all connections (the
    /// memory budget); when used up, a body is refused at once with
    /// RESOURCE_EXHAUSTED (HTTP 429, MEMORY_BUDGET_EXHAUSTED).
    #[arg(long, env = "BODY_BUDGET_BYTES", default_value_t = 32 << 20, global = true)]
    pub body_budget_bytes: usize,

    /// A request body must arrive in full within this many milliseconds of
    /// the request's start (DEADLINE_EXCEEDED, HTTP 408 BODY_TIMEOUT).
    #[arg(long, env = "BODY_TIMEOUT_MS", default_value_t = 10_000, global = true)]
    pub body_timeout_ms: u64,

    /// HTTP/1.1: a request's headers must arrive within this many
    /// milliseconds (slow headers are cut; 408 and the connection closed).
    #[arg(
        long,
        env = "HEADER_READ_TIMEOUT_MS",
        default_value_t = 10_000,
        global = true
    )]
    pub header_read_timeout_ms: u64,

    /// A connection whose peer sends nothing for this many milliseconds is
    /// closed.
    #[arg(
        long,
        env = "IDLE_CONNECTION_TIMEOUT_MS",
        default_value_t = 120_000,
        global = true
    )]
    pub idle_connection_timeout_ms: u64,

    /// HTTP/2 flow-control window per connection, in bytes: the most unread
    /// request data one connection can hold (MAX_CONNECTIONS × this bounds
    /// it across connections). Much smaller, and clients with many calls
    /// in flight on one connection split their data into frames so small
    /// that h2's defence against them closes the connection.
    #[arg(
        long,
        env = "HTTP2_CONNECTION_WINDOW_BYTES",
        default_value_t = 1 << 20,
        global = true
    )]
    pub http2_connection_window_bytes: u32,

    /// HTTP/2 flow-control window per stream (call), in bytes.
    #[arg(
        long,
        env = "HTTP2_STREAM_WINDOW_BYTES",
        default_value_t = 64 << 10,
        global = true
    )]
    pub http2_stream_window_bytes: u32,

    /// Largest request header list (HTTP/2) or header section (HTTP/1.1),
    /// in bytes.
    #[arg(long, env = "MAX_HEADER_BYTES", default_value_t = 16 << 10, global = true)]
    pub max_header_bytes: u32,

    /// Largest request message, in bytes.
    #[arg(long, env = "MAX_MESSAGE_BYTES", default_value_t = 1 << 20, global = true)]
    pub max_message_bytes: usize,

    /// Seed a demo organization, owner and API token at start and print a
    /// grpcurl command. Default: on for SQLite, off for PostgreSQL.
    #[arg(long, env = "SEED_DEMO", global = true)]
    pub seed_demo: Option<bool>,
}

impl ServerSettings {
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

    /// The largest answer: the largest request, and at least gRPC's
    /// usual 4 MiB.
    pub fn max_reply_bytes(&self) -> usize {
        self.max_message_bytes.max(4 << 20)
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms.max(1))
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms.max(1))
    }

    pub fn connection_limits(&self) -> crate::guard::ConnectionLimits {
        crate::guard::ConnectionLimits {
            max_connections: self.max_client_connections,
            idle_timeout: Duration::from_millis(self.idle_connection_timeout_ms.max(1)),
        }
    }

    pub fn drain_delay(&self) -> Duration {
        Duration::from_millis(self.drain_delay_ms)
    }

    pub fn max_call_duration(&self) -> Duration {
        Duration::from_millis(self.max_call_duration_ms.max(1))
    }
}

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

#[derive(Clone, Debug, Args)]
pub struct RuleSettings {
    /// Shortest workspace name, in characters, after trimming.
    #[arg(long, env = "NAME_MIN_CHARS", default_value_t = 4, global = true)]
    pub name_min_chars: usize,

    /// Longest workspace name, in characters, after trimming.
    #[arg(long, env = "NAME_MAX_CHARS", default_value_t = 100, global = true)]
    pub name_max_chars: usize,

    /// Refuse CreateWorkspace without a billing account email (seed 001).
    #[arg(long, env = "REQUIRE_BILLING_EMAIL", action = ArgAction::SetTrue, global = true)]
    pub require_billing_email: bool,
}

impl RuleSettings {
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
            ..NameRules::default()
        })
    }
}

#[derive(Clone, Debug, Args)]
pub struct TelemetrySettings {
    /// OTLP/gRPC collector (`http://collector:4317`): export traces and
    /// metrics there. Unset: nothing is exported.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", global = true)]
    pub otel_exporter_otlp_endpoint: Option<String>,

    /// OTLP protocol; only `grpc` is supported.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_PROTOCOL", global = true)]
    pub otel_exporter_otlp_protocol: Option<String>,

    /// Trace `/metrics` scrapes and gRPC health checks too. Off: they are
    /// measured but make no span (a scrape or probe every few seconds
    /// would bury the calls that matter).
    #[arg(long, env = "TRACE_PROBES", default_value_t = false, action = ArgAction::Set, global = true)]
    pub trace_probes: bool,

    /// Log lines as text or JSON (RUST_LOG picks what is logged).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

impl TelemetrySettings {
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
}

impl Settings {
    /// Whether the demo is seeded: as set, else on for SQLite only.
    pub fn seeds_demo(&self) -> bool {
        self.server
            .seed_demo
            .unwrap_or_else(|| self.database.url.is_sqlite())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_when_printed() {
        let mut settings = Settings::default();
        settings.database.url = "postgres://app:hunter2@db:5432/workspaces"
            .to_owned()
            .into();
        settings.jwt.hs256_secret = Some("x".repeat(40).into());
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
        let mut settings = Settings::default();
        settings.rules.name_min_chars = 10;
        settings.rules.name_max_chars = 5;
        assert!(settings.rules.name_rules().is_err());
    }

    #[test]
    fn durations_and_sizes_read_and_print_with_their_units() {
        for (text, secs, shown) in [
            ("7d", 7 * 86_400, "7d"),
            ("36h", 36 * 3_600, "36h"),
            ("90m", 5_400, "90m"),
            ("120", 120, "2m"),
            ("45s", 45, "45s"),
        ] {
            let read: HumanDuration = text.parse().unwrap();
            assert_eq!(read.0, Duration::from_secs(secs), "{text}");
            assert_eq!(read.to_string(), shown);
        }
        assert_eq!(
            "1500ms".parse::<HumanDuration>().unwrap().to_string(),
            "1500ms"
        );
        assert!("7 weeks".parse::<HumanDuration>().is_err());
        assert!("d".parse::<HumanDuration>().is_err());
        assert_eq!("1GiB".parse::<ByteSize>().unwrap(), ByteSize(1 << 30));
        assert_eq!("512MiB".parse::<ByteSize>().unwrap().to_string(), "512MiB");
        assert_eq!("1000".parse::<ByteSize>().unwrap().to_string(), "1000B");
        assert!("1GB".parse::<ByteSize>().is_err());
    }

    #[test]
    fn stream_limits_are_bounded_by_default_and_checked() {
        let ack = Duration::from_secs(5);
        let events = Settings::default().events;
        assert_eq!(events.max_age.0, Duration::from_secs(7 * 86_400));
        assert_eq!(events.max_bytes.0, 1 << 30);
        assert_eq!(events.replicas, 1);
        assert_eq!(events.duplicate_window.0, Duration::from_secs(3_600));
        events.check_stream_limits(ack).unwrap();
        let with = |change: fn(&mut EventSettings)| {
            let mut events = Settings::default().events;
            change(&mut events);
            events.check_stream_limits(ack).unwrap_err().to_string()
        };
        assert!(with(|e| e.max_age = HumanDuration(Duration::ZERO)).contains("EVENTS_MAX_AGE"));
        assert!(with(|e| e.max_bytes = ByteSize(-1)).contains("EVENTS_MAX_BYTES"));
        assert!(with(|e| e.replicas = 7).contains("EVENTS_REPLICAS"));
        let short = with(|e| e.duplicate_window = HumanDuration(Duration::from_secs(3)));
        assert!(
            short.contains("EVENTS_DUPLICATE_WINDOW 3s") && short.contains("10400ms"),
            "{short}"
        );
        assert!(
            with(|e| e.max_age = HumanDuration(Duration::from_secs(60))).contains("longer than")
        );
    }

    #[test]
    fn defaults_ignore_the_environment() {
        // SAFETY: this test's process-wide variable is read back at once;
        // no other test reads DATABASE_MAX_CONNECTIONS.
        unsafe { std::env::set_var("DATABASE_MAX_CONNECTIONS", "77") };
        let settings = Settings::default();
        unsafe { std::env::remove_var("DATABASE_MAX_CONNECTIONS") };
        assert_eq!(settings.database.max_connections, 10);
    }
}
