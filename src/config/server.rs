//! The listeners, limits and defences of the server.

use std::{net::SocketAddr, time::Duration};

use anyhow::Context;
use clap::Args;

use crate::http::{ApiV1Dialect, DialectChoice, JsonNames};

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

    /// Threads that run calls. Unset: one per CPU the process may use (a
    /// container's CPU limit counts: one under a limit of one CPU or
    /// less). Each thread more serves more calls at once when the service's
    /// own CPU is the limit, and costs CPU per call when it is not: threads
    /// that share the calls wake each other (BENCHMARKS.md).
    #[arg(
        long,
        env = "WORKER_THREADS",
        value_parser = clap::value_parser!(u16).range(1..=1024),
        global = true
    )]
    pub worker_threads: Option<u16>,

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
