//! Builds the application from settings: database, migrations, services,
//! the bound listener. Tests start the real thing on port 0.

use std::{future::Future, net::SocketAddr, time::Duration};

use anyhow::Context;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic_reflection::server::{v1, v1alpha};

mod background;
mod credentials;
mod drain;
mod health;
mod http_server;
mod purge;

pub use health::LIVENESS_SERVICE;

use background::Background;
use drain::{Drain, within_deadline};
use health::HealthStatuses;

use crate::{
    auth::Authenticator,
    config::Settings,
    grpc::{Authenticated, WorkspaceApi},
    guard::{BodyBudget, BodyGuardLayer, GuardedListener},
    http::{Gateway, GatewayOptions, GrpcService},
    proto::{self, workspace_service_server::WorkspaceServiceServer},
    storage::Storage,
    telemetry::{self, CallLayer, Metrics, PoolReading, RpcMethods},
    workspaces::{OrganizationGate, Workspaces},
};

/// The service, bound and ready to run.
pub struct Application {
    listener: TcpListener,
    http_listener: Option<TcpListener>,
    storage: Storage,
    api: WorkspaceApi,
    authenticator: Authenticator,
    metrics: Metrics,
    tls: Option<tonic::transport::ServerTlsConfig>,
    settings: Settings,
}

impl Application {
    /// Connects to and migrates the database, then binds the listen address.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let rules = settings.rules.name_rules()?;
        crate::events::check_settings(&settings.events)?;
        settings.idempotency.check()?;
        let jwt = credentials::jwt_verifier(&settings.jwt)?;
        let tls = credentials::tls_config(&settings.tls)?;
        let metrics = Metrics::new(settings.telemetry.otlp_endpoint()?)?;
        let storage = connect_and_migrate(&settings).await?;
        let pool = storage.clone();
        metrics.observe_pool(move || {
            let stats = pool.pool_stats();
            PoolReading {
                idle: stats.idle,
                used: stats.used,
                max: stats.max,
                available: pool.availability().is_up(),
            }
        });
        let server = &settings.server;
        let listener = TcpListener::bind(server.listen_addr)
            .await
            .with_context(|| format!("binding {}", server.listen_addr))?;
        let http_listener = match server.http_addr()? {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding {addr}"))?,
            ),
            None => None,
        };
        let authenticator = Authenticator::new(storage.clone(), jwt);
        let api = WorkspaceApi::new(
            Workspaces::new(
                storage.clone(),
                rules,
                OrganizationGate::new(server.max_concurrent_calls_per_organization),
            ),
            server.max_concurrent_calls,
            server.max_call_duration(),
            server.max_reply_bytes(),
        );
        Ok(Self {
            listener,
            http_listener,
            storage,
            api,
            authenticator,
            metrics,
            tls,
            settings,
        })
    }

    /// The address the server listens on (with the real port when the
    /// settings asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The address of the JSON/HTTP mapping, when it is on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_listener
            .as_ref()
            .map(|l| l.local_addr().expect("a bound listener has an address"))
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The metrics `/metrics` shows.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Serves until `shutdown` completes, then lets in-flight calls finish.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let reporter = HealthStatuses::new();
        let health = reporter.server();
        let background = Background::start(&self.storage, &self.settings, &self.metrics, &reporter);
        let stop_monitor = background.monitor();
        let (reflection_v1, reflection_v1alpha) = reflection()?;

        // Check 1 from the headers, before a body is read.
        let workspaces = authenticated(self.api, &self.authenticator, &self.settings);
        // One memory budget for the bodies being read on both listeners.
        let bodies = body_guard(&self.settings, &self.metrics);
        let limits = self.settings.server.connection_limits();

        // One shutdown for both listeners and one grace for the process
        // (`Drain`).
        let drain = Drain::start(shutdown, reporter, stop_monitor, &self.settings.server);

        let trace_probes = self.settings.telemetry.trace_probes;
        let calls =
            CallLayer::new(self.metrics.clone(), rpc_methods()?).tracing_probes(trace_probes);

        let bodies_grpc = bodies.clone();
        let http = match self.http_listener {
            Some(listener) => Some(serve_http(
                listener,
                &self.settings,
                Gateway::new(
                    proto::FILE_DESCRIPTOR_SET,
                    self.authenticator.clone(),
                    GrpcService::new(tower::Layer::layer(&calls, workspaces.clone())),
                    gateway_options(&self.settings)?,
                )?,
                &self.metrics,
                bodies,
                drain.signal(),
            )?),
            None => None,
        };

        tracing::info!(
            addr = %self.listener.local_addr()?,
            tls = self.tls.is_some(),
            "serving gRPC"
        );
        let grpc = grpc_server(&self.settings.server, self.tls)?
            .layer(calls)
            .layer(bodies_grpc)
            .add_service(health)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(workspaces)
            .serve_with_incoming_shutdown(
                GuardedListener::new(self.listener, &limits, self.metrics.clone(), "grpc")
                    .into_stream(),
                drain.signal(),
            );
        let result = within_deadline(drain.deadline(), grpc).await;
        if let Some(mut http) = http {
            // The same deadline: the listeners drain side by side.
            match within_deadline(drain.deadline(), &mut http).await {
                Some(served) => served??,
                None => http.abort(),
            }
        }
        background.stop();
        self.metrics.shutdown();
        // Cut short, stuck calls still hold database connections: closing
        // the pool would wait for them. The process exits and ends them.
        if let Some(result) = result {
            result?;
            tracing::info!("stopped serving; closing the database");
            self.storage.close().await?;
        }
        Ok(())
    }
}

/// Connects to the database the settings name and migrates it.
pub async fn connect_and_migrate(settings: &Settings) -> anyhow::Result<Storage> {
    let database = &settings.database;
    let storage = Storage::connect_through(
        database.url.expose(),
        database.max_connections,
        database.pooler,
    )
    .await
    .context("connecting to the database")?;
    // Before the migrations, which a wrong DATABASE_POOLER may break: the
    // log then says why.
    storage.check_pooler(true).await;
    storage.migrate().await.context("migrating the database")?;
    Ok(storage)
}

/// The JSON/HTTP side: the gateway's routes, `/metrics`, request tracing,
/// and every body read within the shared memory budget.
fn http_router(
    gateway: Gateway,
    metrics: &Metrics,
    trace_probes: bool,
    bodies: BodyGuardLayer,
) -> axum::Router {
    let scraped = metrics.clone();
    gateway
        .router()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let scraped = scraped.clone();
                async move {
                    (
                        [(
                            http::header::CONTENT_TYPE,
                            telemetry::PROMETHEUS_CONTENT_TYPE,
                        )],
                        scraped.scraped_prometheus_text().await,
                    )
                }
            }),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            telemetry::HttpTracing {
                metrics: metrics.clone(),
                trace_probes,
            },
            telemetry::traced_http_request,
        ))
        .layer(axum::middleware::map_request(
            move |request: axum::extract::Request| {
                let bodies = bodies.clone();
                async move { request.map(|body| axum::body::Body::new(bodies.guard(body))) }
            },
        ))
}

/// The gRPC server with the settings' HTTP/2 limits: keepalive, streams,
/// flow-control windows, header size; TLS when configured.
fn grpc_server(
    settings: &crate::config::ServerSettings,
    tls: Option<tonic::transport::ServerTlsConfig>,
) -> anyhow::Result<Server> {
    let server = Server::builder()
        .http2_keepalive_interval(Some(Duration::from_millis(
            settings.http2_keepalive_interval_ms.max(1),
        )))
        .http2_keepalive_timeout(Some(Duration::from_millis(
            settings.http2_keepalive_timeout_ms.max(1),
        )))
        .max_concurrent_streams(Some(settings.max_concurrent_streams.max(1)))
        // Unread request data a connection may hold: one window, for the
        // connection and for each stream.
        .initial_connection_window_size(settings.http2_connection_window_bytes)
        .initial_stream_window_size(settings.http2_stream_window_bytes)
        .http2_max_header_list_size(settings.max_header_bytes);
    match tls {
        Some(tls) => server.tls_config(tls).context("the TLS settings"),
        None => Ok(server),
    }
}

/// Reflection, v1 and v1alpha (grpcurl 1.8 asks only v1alpha), of the
/// service's protos and the health service's.
fn reflection() -> anyhow::Result<(
    v1::ServerReflectionServer<impl v1::ServerReflection>,
    v1alpha::ServerReflectionServer<impl v1alpha::ServerReflection>,
)> {
    let builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    Ok((builder().build_v1()?, builder().build_v1alpha()?))
}

/// Every RPC the gRPC port serves, for the call metrics' method names.
fn rpc_methods() -> anyhow::Result<RpcMethods> {
    RpcMethods::from_descriptor_sets(&[
        proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ])
}

/// How the JSON/HTTP mapping reads and answers, from the settings.
fn gateway_options(settings: &Settings) -> anyhow::Result<GatewayOptions> {
    Ok(GatewayOptions {
        names: settings.server.http_json_names,
        dialects: settings.server.http_dialects,
        api_v1: settings.server.http_api_v1_dialect,
        name_rules: settings.rules.name_rules()?,
        max_body_bytes: settings.server.max_message_bytes,
        max_call_duration: settings.server.max_call_duration(),
    })
}

/// Serves `gateway` (with `/metrics`) on `listener`, within the
/// connection limits, until `stop`.
fn serve_http(
    listener: TcpListener,
    settings: &Settings,
    gateway: Gateway,
    metrics: &Metrics,
    bodies: BodyGuardLayer,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
    tracing::info!(addr = %listener.local_addr()?, "serving JSON/HTTP");
    let router = http_router(gateway, metrics, settings.telemetry.trace_probes, bodies);
    let limits = settings.server.connection_limits();
    let listener = GuardedListener::new(listener, &limits, metrics.clone(), "http");
    let settings = settings.server.clone();
    Ok(tokio::spawn(async move {
        http_server::serve(listener, router, &settings, stop).await
    }))
}

/// The service behind check 1: credentials checked from the headers,
/// before a body is read, within the call's deadline.
fn authenticated(
    api: WorkspaceApi,
    authenticator: &Authenticator,
    settings: &Settings,
) -> Authenticated<WorkspaceServiceServer<WorkspaceApi>> {
    Authenticated::new(
        WorkspaceServiceServer::new(api)
            .max_decoding_message_size(settings.server.max_message_bytes)
            .max_encoding_message_size(settings.server.max_reply_bytes()),
        authenticator.clone(),
        settings.server.max_call_duration(),
    )
}

/// One memory budget for the bodies being read on both listeners.
fn body_guard(settings: &Settings, metrics: &Metrics) -> BodyGuardLayer {
    BodyGuardLayer::new(
        BodyBudget::new(settings.server.body_budget_bytes),
        settings.server.body_timeout(),
        metrics.clone(),
    )
}
