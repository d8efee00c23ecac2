//! Builds the application from settings: database, migrations, services,
//! the bound listener. Tests start the real thing on port 0.

use std::{future::Future, net::SocketAddr, time::Duration};

use anyhow::Context;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic_health::pb::health_check_response::ServingStatus;

mod credentials;
mod health;
mod http_server;

pub use health::LIVENESS_SERVICE;

use health::{HealthStatuses, READINESS_SERVICES, watch_database};

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
        // Not ready until the database has answered once (the migrations
        // ran in `build`): the monitor's first check turns it SERVING.
        for service in READINESS_SERVICES {
            reporter.set_service_status(service, ServingStatus::NotServing);
        }
        let monitor = tokio::spawn(watch_database(
            self.storage.clone(),
            reporter.clone(),
            self.settings.database.health_check_interval(),
        ));
        let stop_monitor = monitor.abort_handle();
        // The outbox relay: events of committed changes to NATS JetStream.
        let relay = tokio::spawn(crate::events::relay(
            self.storage.clone(),
            self.settings.events.clone(),
            self.metrics.clone(),
        ));

        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        // grpcurl 1.8 asks only the v1alpha reflection service.
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;

        let max = self.settings.server.max_message_bytes;
        // Check 1 from the headers, before a body is read.
        let workspaces = Authenticated::new(
            WorkspaceServiceServer::new(self.api)
                .max_decoding_message_size(max)
                .max_encoding_message_size(self.settings.server.max_reply_bytes()),
            self.authenticator.clone(),
            self.settings.server.max_call_duration(),
        );
        // One memory budget for the bodies being read on both listeners.
        let bodies = BodyGuardLayer::new(
            BodyBudget::new(self.settings.server.body_budget_bytes),
            self.settings.server.body_timeout(),
            self.metrics.clone(),
        );
        let limits = self.settings.server.connection_limits();

        // One shutdown for both listeners and one grace for the process.
        // Readiness turns NOT_SERVING first (the monitor stopped, so it
        // stays so) and calls are still served for the drain delay, while
        // load balancers and Kubernetes' endpoints stop sending; then both
        // listeners stop taking calls and share one deadline to finish
        // those in flight. Liveness stays SERVING meanwhile.
        let (stop, stopped) = tokio::sync::watch::channel(None::<tokio::time::Instant>);
        let drain_delay = self.settings.server.drain_delay();
        let grace = self.settings.server.shutdown_grace();
        tokio::spawn(async move {
            shutdown.await;
            stop_monitor.abort();
            for service in READINESS_SERVICES {
                reporter.set_service_status(service, ServingStatus::NotServing);
            }
            if !drain_delay.is_zero() {
                tracing::info!(
                    ?drain_delay,
                    "shutting down: health NOT_SERVING, still serving for the drain delay"
                );
                tokio::time::sleep(drain_delay).await;
            }
            tracing::info!(?grace, "shutting down: refusing new calls, draining");
            let _ = stop.send(Some(tokio::time::Instant::now() + grace));
        });
        let deadline = move || {
            let mut stopped = stopped.clone();
            async move {
                let set = stopped
                    .wait_for(Option::is_some)
                    .await
                    .ok()
                    .and_then(|d| *d);
                match set {
                    Some(deadline) => deadline,
                    // The sender is gone without a shutdown: never.
                    None => std::future::pending().await,
                }
            }
        };
        let signal = {
            let deadline = deadline.clone();
            move || {
                let deadline = deadline();
                async move {
                    deadline.await;
                }
            }
        };

        let methods = RpcMethods::from_descriptor_sets(&[
            proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ])?;
        let trace_probes = self.settings.telemetry.trace_probes;
        let calls = CallLayer::new(self.metrics.clone(), methods).tracing_probes(trace_probes);

        let bodies_grpc = bodies.clone();
        let http = match self.http_listener {
            Some(listener) => {
                let gateway = Gateway::new(
                    proto::FILE_DESCRIPTOR_SET,
                    self.authenticator.clone(),
                    GrpcService::new(tower::Layer::layer(&calls, workspaces.clone())),
                    GatewayOptions {
                        names: self.settings.server.http_json_names,
                        dialects: self.settings.server.http_dialects,
                        api_v1: self.settings.server.http_api_v1_dialect,
                        name_rules: self.settings.rules.name_rules()?,
                        max_body_bytes: max,
                        max_call_duration: self.settings.server.max_call_duration(),
                    },
                )?;
                tracing::info!(addr = %listener.local_addr()?, "serving JSON/HTTP");
                let metrics = self.metrics.clone();
                let router =
                    gateway
                        .router()
                        .route(
                            "/metrics",
                            axum::routing::get(move || async move {
                                (
                                    [(
                                        http::header::CONTENT_TYPE,
                                        telemetry::PROMETHEUS_CONTENT_TYPE,
                                    )],
                                    metrics.prometheus_text(),
                                )
                            }),
                        )
                        .route_layer(axum::middleware::from_fn_with_state(
                            telemetry::HttpTracing {
                                metrics: self.metrics.clone(),
                                trace_probes,
                            },
                            telemetry::traced_http_request,
                        ))
                        .layer(axum::middleware::map_request(
                            move |request: axum::extract::Request| {
                                let bodies = bodies.clone();
                                async move {
                                    request.map(|body| axum::body::Body::new(bodies.guard(body)))
                                }
                            },
                        ));
                let listener =
                    GuardedListener::new(listener, &limits, self.metrics.clone(), "http");
                let settings = self.settings.server.clone();
                let stop = signal();
                Some(tokio::spawn(async move {
                    http_server::serve(listener, router, &settings, stop).await
                }))
            }
            None => None,
        };

        tracing::info!(
            addr = %self.listener.local_addr()?,
            tls = self.tls.is_some(),
            "serving gRPC"
        );
        let settings = &self.settings.server;
        let mut server = Server::builder()
            .http2_keepalive_interval(Some(Duration::from_millis(
                settings.http2_keepalive_interval_ms.max(1),
            )))
            .http2_keepalive_timeout(Some(Duration::from_millis(
                settings.http2_keepalive_timeout_ms.max(1),
            )))
            .max_concurrent_streams(Some(settings.max_concurrent_streams.max(1)))
            // Unread request data a connection may hold: one window, for
            // the connection and for each stream.
            .initial_connection_window_size(settings.http2_connection_window_bytes)
            .initial_stream_window_size(settings.http2_stream_window_bytes)
            .http2_max_header_list_size(settings.max_header_bytes);
        if let Some(tls) = self.tls {
            server = server.tls_config(tls).context("the TLS settings")?;
        }
        let grpc = server
            .layer(calls)
            .layer(bodies_grpc)
            .add_service(health)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(workspaces)
            .serve_with_incoming_shutdown(
                GuardedListener::new(self.listener, &limits, self.metrics.clone(), "grpc")
                    .into_stream(),
                signal(),
            );
        let result = within_deadline(deadline(), grpc).await;
        if let Some(mut http) = http {
            // The same deadline: the listeners drain side by side.
            match within_deadline(deadline(), &mut http).await {
                Some(served) => served??,
                None => http.abort(),
            }
        }
        monitor.abort();
        // What it has not published waits in the outbox for the next start.
        relay.abort();
        self.metrics.shutdown();
        let Some(result) = result else {
            // Stuck calls still hold database connections; closing the pool
            // would wait for them. The process exits and ends them.
            return Ok(());
        };
        result?;
        tracing::info!("stopped serving; closing the database");
        self.storage.close().await?;
        Ok(())
    }
}

/// Runs `server` until it ends; once shutdown has set the deadline, lets
/// it run until then, then drops what is left. `None`: cut short.
async fn within_deadline<R>(
    deadline: impl Future<Output = tokio::time::Instant>,
    server: impl Future<Output = R>,
) -> Option<R> {
    tokio::pin!(server);
    let deadline = tokio::select! {
        result = &mut server => return Some(result),
        deadline = deadline => deadline,
    };
    match tokio::time::timeout_at(deadline, server).await {
        Ok(result) => Some(result),
        Err(_) => {
            tracing::warn!("calls still in flight at the end of the grace period; dropping them");
            None
        }
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
