//! Traces, metrics and logs, as a platform team would check them: the
//! service process exports to an OTLP collector (a small one in the test),
//! `/metrics` counts calls, JSON log lines carry the trace id, and nothing
//! breaks when no collector is set or it is away.

mod common;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use common::{Backend, PlanSpec, authed, process::ServiceProcess, spawn_app};
use opentelemetry_proto::tonic::{
    collector::{
        metrics::v1::{
            ExportMetricsServiceRequest, ExportMetricsServiceResponse,
            metrics_service_server::{MetricsService, MetricsServiceServer},
        },
        trace::v1::{
            ExportTraceServiceRequest, ExportTraceServiceResponse,
            trace_service_server::{TraceService, TraceServiceServer},
        },
    },
    common::v1::{KeyValue, any_value::Value},
    trace::v1::{Span, span::SpanKind},
};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};
use workspace_service::proto::{
    CreateWorkspaceRequest, workspace_service_client::WorkspaceServiceClient,
};

/// A span and the attributes of the resource that sent it.
type ReceivedSpan = (Vec<KeyValue>, Span);

/// What the collector received: spans with their resource's attributes,
/// and metric names.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    metrics: Arc<Mutex<Vec<String>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let resource = resource_spans.resource.unwrap_or_default().attributes;
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    spans.push((resource.clone(), span));
                }
            }
        }
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let mut metrics = self.metrics.lock().unwrap();
        for resource_metrics in request.into_inner().resource_metrics {
            for scope in resource_metrics.scope_metrics {
                metrics.extend(scope.metrics.into_iter().map(|m| m.name));
            }
        }
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

impl Collector {
    /// Serves OTLP/gRPC on 127.0.0.1:0 for the rest of the test.
    async fn start() -> (Self, SocketAddr) {
        let collector = Self::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .add_service(MetricsServiceServer::new(collector.clone()))
            .serve_with_incoming(TcpListenerStream::new(listener));
        tokio::spawn(server);
        (collector, addr)
    }

    /// The first span `matches` accepts, waiting for it up to 20 s.
    async fn span(&self, what: &str, matches: impl Fn(&Span) -> bool) -> ReceivedSpan {
        for _ in 0..200 {
            if let Some(found) = self
                .spans
                .lock()
                .unwrap()
                .iter()
                .find(|(_, span)| matches(span))
            {
                return found.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let names: Vec<String> = self
            .spans
            .lock()
            .unwrap()
            .iter()
            .map(|(_, s)| s.name.clone())
            .collect();
        panic!("no {what} span arrived; got {names:?}");
    }

    async fn metric(&self, name: &str) {
        for _ in 0..200 {
            if self.metrics.lock().unwrap().iter().any(|m| m == name) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "no {name} metric arrived; got {:?}",
            self.metrics.lock().unwrap()
        );
    }
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn string(value: &str) -> Option<Value> {
    Some(Value::StringValue(value.to_owned()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_create_reaches_the_collector_as_a_span_of_the_callers_trace() {
    let (collector, collector_addr) = Collector::start().await;
    let endpoint = format!("http://{collector_addr}");
    let mut service = ServiceProcess::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_SERVICE_NAME", "workspace-test"),
        ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=ci"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "500"),
    ])
    .await;

    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let caller_span_id = &uuid::Uuid::new_v4().simple().to_string()[..16];
    let mut request = authed(
        &service.token,
        CreateWorkspaceRequest {
            name: "Traced workspace".into(),
            ..Default::default()
        },
    );
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{caller_span_id}-01")
            .parse()
            .unwrap(),
    );
    let workspace = WorkspaceServiceClient::new(service.channel().await)
        .create_workspace(request)
        .await
        .expect("the create succeeds")
        .into_inner();

    let (resource, call) = collector
        .span("CreateWorkspace", |s| {
            s.name == "workspace.v1.WorkspaceService/CreateWorkspace"
                && hex(&s.trace_id) == trace_id
        })
        .await;
    assert_eq!(
        hex(&call.parent_span_id),
        caller_span_id,
        "child of the caller's span"
    );
    assert_eq!(call.kind, SpanKind::Server as i32);
    let attributes = &call.attributes;
    // Semantic conventions v1.40.0 for RPC, and nothing else.
    assert_eq!(
        attribute(attributes, "rpc.system.name").cloned(),
        string("grpc")
    );
    assert_eq!(
        attribute(attributes, "rpc.method").cloned(),
        string("workspace.v1.WorkspaceService/CreateWorkspace")
    );
    assert_eq!(
        attribute(attributes, "rpc.response.status_code").cloned(),
        string("OK")
    );
    let mut keys: Vec<&str> = attributes.iter().map(|kv| kv.key.as_str()).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "organization.id",
            "rpc.method",
            "rpc.response.status_code",
            "rpc.system.name",
            "workspace.id"
        ],
        "no noise on the call's span"
    );
    assert_eq!(
        attribute(attributes, "workspace.id").cloned(),
        string(&workspace.id)
    );
    assert_eq!(
        attribute(attributes, "organization.id").cloned(),
        string(&workspace.organization_id)
    );
    assert_eq!(
        attribute(&resource, "service.name").cloned(),
        string("workspace-test")
    );
    assert_eq!(
        attribute(&resource, "deployment.environment.name").cloned(),
        string("ci")
    );

    // The transaction is a child span of the call.
    let (_, insert) = collector
        .span("INSERT workspaces", |s| {
            s.name == "INSERT workspaces" && s.parent_span_id == call.span_id
        })
        .await;
    assert_eq!(insert.kind, SpanKind::Client as i32);
    let mut keys: Vec<&str> = insert.attributes.iter().map(|kv| kv.key.as_str()).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["db.collection.name", "db.operation.name", "db.system.name"],
        "a database span: the conventions' attributes (no server on SQLite), nothing else"
    );
    for (key, value) in [
        ("db.collection.name", "workspaces"),
        ("db.operation.name", "INSERT"),
        ("db.system.name", "sqlite"),
    ] {
        assert_eq!(attribute(&insert.attributes, key).cloned(), string(value));
    }

    // Metrics go to the same collector.
    collector.metric("rpc.server.call.duration").await;
    collector.metric("db.client.connection.count").await;

    // The call's log line carries its trace id.
    let logs = service.logs();
    assert!(
        logs.iter().any(
            |line| line.contains(&format!("\"trace_id\":\"{trace_id}\""))
                && line.contains("\"message\":\"call\"")
        ),
        "no log line with trace id {trace_id}:\n{}",
        logs.join("\n")
    );

    service.terminate();
    assert!(service.exit_status(Duration::from_secs(30)).await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_collector_costs_nothing_but_its_spans() {
    // Nothing listens on the collector's port.
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", unused.local_addr().unwrap());
    drop(unused);
    let mut service = ServiceProcess::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ])
    .await;
    let mut client = WorkspaceServiceClient::new(service.channel().await);
    for name in ["First workspace", "Second workspace"] {
        let request = authed(
            &service.token,
            CreateWorkspaceRequest {
                name: name.into(),
                ..Default::default()
            },
        );
        client
            .create_workspace(request)
            .await
            .expect("calls succeed while export fails");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    service.terminate();
    assert!(service.exit_status(Duration::from_secs(30)).await.success());
}

/// README: without a collector the calls' spans still get ids, and the
/// JSON log line of a call carries the caller's trace (database spans are
/// not traced then; the call's span must be).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_collector_a_calls_log_line_carries_its_trace() {
    let mut service = ServiceProcess::start(&[]).await;
    let mut client = WorkspaceServiceClient::new(service.channel().await);
    let mut request = authed(
        &service.token,
        CreateWorkspaceRequest {
            name: "Traced without a collector".into(),
            ..Default::default()
        },
    );
    let trace_id = in_a_new_trace(&mut request);
    client.create_workspace(request).await.unwrap();
    let line_of_the_call = |logs: &[String]| {
        logs.iter().any(|line| {
            line.contains(&format!("\"trace_id\":\"{trace_id}\""))
                && line.contains("\"message\":\"call\"")
                && line.contains("CreateWorkspace")
        })
    };
    let mut logs = service.logs();
    for _ in 0..50 {
        if line_of_the_call(&logs) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        logs = service.logs();
    }
    assert!(
        line_of_the_call(&logs),
        "no call line with trace id {trace_id}:\n{}",
        logs.join("\n")
    );
    service.terminate();
    assert!(service.exit_status(Duration::from_secs(30)).await.success());
}

/// The value of the sample `name{labels…}` (labels in any order) in
/// Prometheus text, 0 when absent.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(series, _)| {
            series.split('{').next() == Some(name)
                && labels
                    .iter()
                    .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, value)| value.parse::<f64>().unwrap())
        .sum()
}

on_both_databases!(metrics_count_calls_by_method_and_code);

async fn metrics_count_calls_by_method_and_code(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let http = reqwest::Client::new();
    let url = format!("http://{}/metrics", app.http_addr.unwrap());
    let scrape = || async {
        let response = http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        response.text().await.unwrap()
    };
    let create = [
        (
            "rpc_method",
            "workspace.v1.WorkspaceService/CreateWorkspace",
        ),
        ("rpc_system_name", "grpc"),
    ];
    let ok = [create[0], create[1], ("rpc_response_status_code", "OK")];
    let exists = [
        create[0],
        create[1],
        ("rpc_response_status_code", "ALREADY_EXISTS"),
    ];
    let calls = "rpc_server_call_duration_seconds_count";
    let before = scrape().await;

    let org = app.organization(PlanSpec::default()).await;
    app.create_named(&org, "Counted workspace").await;
    let duplicate = app
        .client()
        .await
        .create_workspace(authed(
            &org.owner.token,
            common::named(&org, "Counted workspace"),
        ))
        .await;
    assert_eq!(duplicate.unwrap_err().code(), tonic::Code::AlreadyExists);
    let via_http = http
        .post(format!(
            "http://{}/api/v1/workspaces",
            app.http_addr.unwrap()
        ))
        .bearer_auth(&org.owner.token)
        .json(&serde_json::json!({"name": "Counted over HTTP"}))
        .send()
        .await
        .unwrap();
    assert_eq!(via_http.status(), 201);

    let after = scrape().await;
    // Two successful creates (one over HTTP, which calls the same service)
    // and one ALREADY_EXISTS.
    assert_eq!(
        sample(&after, calls, &ok) - sample(&before, calls, &ok),
        2.0,
        "{after}"
    );
    assert_eq!(
        sample(&after, calls, &exists) - sample(&before, calls, &exists),
        1.0
    );
    let http_created = [
        ("http_route", "/api/v1/workspaces"),
        ("http_response_status_code", "201"),
    ];
    assert_eq!(
        sample(
            &after,
            "http_server_request_duration_seconds_count",
            &http_created
        ),
        1.0
    );
    // Nothing in flight once the calls are answered.
    assert_eq!(
        sample(&after, "workspace_service_rpc_active_calls", &create),
        0.0
    );
    // The bucket +Inf holds every call; the pool reports its bounds.
    assert_eq!(
        sample(
            &after,
            "rpc_server_call_duration_seconds_bucket",
            &[ok[0], ok[1], ok[2], ("le", "+Inf")]
        ),
        sample(&after, calls, &ok)
    );
    assert!(
        sample(&after, "db_client_connection_max", &[]) >= 1.0,
        "{after}"
    );
    assert!(
        sample(
            &after,
            "db_client_connections",
            &[("db_client_connection_state", "idle")]
        ) >= 1.0
    );
    // The process, the runtime and the resource.
    for process in [
        "process_cpu_time_seconds_total",
        "process_memory_usage_bytes",
        "process_unix_file_descriptors",
        "workspace_service_runtime_workers",
    ] {
        assert!(sample(&after, process, &[]) > 0.0, "{process}: {after}");
    }
    assert_eq!(
        sample(
            &after,
            "target_info",
            &[("service_name", "workspace-service")]
        ),
        1.0,
        "{after}"
    );
    app.stop().await;
}

/// A service process exporting to a fresh collector, spans sent every
/// 100 ms; `extra` on top.
async fn traced_service(extra: &[(&str, &str)]) -> (Collector, ServiceProcess) {
    let (collector, collector_addr) = Collector::start().await;
    let endpoint = format!("http://{collector_addr}");
    let mut env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    env.extend_from_slice(extra);
    let service = ServiceProcess::start(&env).await;
    (collector, service)
}

/// `request` with a fresh `traceparent`; the trace id.
fn in_a_new_trace<T>(request: &mut Request<T>) -> String {
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let span_id = &uuid::Uuid::new_v4().simple().to_string()[..16];
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{span_id}-01").parse().unwrap(),
    );
    trace_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_spans_are_children_of_the_call_that_made_them() {
    use workspace_service::proto::{
        GetWorkspaceRequest, ListWorkspacesRequest, UpdateWorkspaceRequest,
    };
    let (collector, service) = traced_service(&[]).await;
    let mut client = WorkspaceServiceClient::new(service.channel().await);
    let token = service.token.clone();

    let mut create = authed(
        &token,
        CreateWorkspaceRequest {
            name: "Nested spans".into(),
            ..Default::default()
        },
    );
    let create_trace = in_a_new_trace(&mut create);
    let workspace = client.create_workspace(create).await.unwrap().into_inner();
    let mut get = authed(
        &token,
        GetWorkspaceRequest {
            id: workspace.id.clone(),
        },
    );
    let get_trace = in_a_new_trace(&mut get);
    client.get_workspace(get).await.unwrap();
    let mut list = authed(&token, ListWorkspacesRequest::default());
    let list_trace = in_a_new_trace(&mut list);
    client.list_workspaces(list).await.unwrap();
    let mut update = authed(
        &token,
        UpdateWorkspaceRequest {
            id: workspace.id.clone(),
            name: "Nested spans renamed".into(),
            ..Default::default()
        },
    );
    let update_trace = in_a_new_trace(&mut update);
    client.update_workspace(update).await.unwrap();

    for (method, trace_id, must_have) in [
        ("CreateWorkspace", &create_trace, &["INSERT workspaces"][..]),
        (
            "GetWorkspace",
            &get_trace,
            &["SELECT workspaces", "SELECT organization_memberships"][..],
        ),
        ("ListWorkspaces", &list_trace, &["SELECT workspaces"][..]),
        ("UpdateWorkspace", &update_trace, &[][..]),
    ] {
        let rpc = format!("workspace.v1.WorkspaceService/{method}");
        let (_, call) = collector
            .span(&rpc, |s| s.name == rpc && hex(&s.trace_id) == *trace_id)
            .await;
        // A call's database spans end before it does: they were exported
        // with it or before.
        let spans: Vec<Span> = collector
            .spans
            .lock()
            .unwrap()
            .iter()
            .map(|(_, s)| s.clone())
            .filter(|s| hex(&s.trace_id) == *trace_id && s.kind == SpanKind::Client as i32)
            .collect();
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
        for wanted in must_have {
            assert!(names.contains(wanted), "{method}: no {wanted} in {names:?}");
        }
        for span in &spans {
            assert_eq!(
                span.parent_span_id, call.span_id,
                "{method}: {} is not a child of the call (spans: {names:?})",
                span.name
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http_spans_name_the_client_and_the_server_and_probes_make_none_unless_asked() {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    for trace_probes in [false, true] {
        let setting = trace_probes.to_string();
        let (collector, service) = traced_service(&[("TRACE_PROBES", setting.as_str())]).await;
        let http = reqwest::Client::new();
        let base = format!("http://{}", service.http_addr);
        for _ in 0..2 {
            let scrape = http.get(format!("{base}/metrics")).send().await.unwrap();
            assert_eq!(scrape.status(), 200);
            HealthClient::new(service.channel().await)
                .check(HealthCheckRequest::default())
                .await
                .unwrap();
        }
        let created = http
            .post(format!("{base}/api/v1/workspaces"))
            .bearer_auth(&service.token)
            .header("user-agent", "platform-check/2.1")
            .json(&serde_json::json!({"name": format!("Over HTTP {trace_probes}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let (_, span) = collector
            .span("POST /api/v1/workspaces", |s| {
                s.name == "POST /api/v1/workspaces"
            })
            .await;
        assert_eq!(span.kind, SpanKind::Server as i32);
        assert_eq!(
            attribute(&span.attributes, "user_agent.original").cloned(),
            string("platform-check/2.1")
        );
        assert_eq!(
            attribute(&span.attributes, "server.address").cloned(),
            string("127.0.0.1")
        );
        assert_eq!(
            attribute(&span.attributes, "server.port").cloned(),
            Some(Value::IntValue(i64::from(service.http_addr.port())))
        );
        // The probes came first: their spans, if any, are in by now.
        let names: Vec<String> = collector
            .spans
            .lock()
            .unwrap()
            .iter()
            .map(|(_, s)| s.name.clone())
            .collect();
        let scrapes = names.iter().filter(|n| *n == "GET /metrics").count();
        let checks = names
            .iter()
            .filter(|n| *n == "grpc.health.v1.Health/Check")
            .count();
        if trace_probes {
            assert_eq!((scrapes, checks), (2, 2), "TRACE_PROBES=true: {names:?}");
        } else {
            assert_eq!((scrapes, checks), (0, 0), "no probe spans: {names:?}");
        }
    }
}

/// A workspace event's `traceparent` is the call's own span: a consumer's
/// span joins the trace as a sibling of the call's database spans.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_events_traceparent_names_the_span_of_the_call_that_made_it() {
    use workspace_service::proto::UpdateWorkspaceRequest;
    let Some(nats) = common::nats::Nats::started() else {
        return;
    };
    let nats_url = nats.url();
    let (collector, service) = traced_service(&[
        ("NATS_URL", nats_url.as_str()),
        ("EVENTS_RELAY_INTERVAL_MS", "50"),
    ])
    .await;
    let mut client = WorkspaceServiceClient::new(service.channel().await);
    let mut create = authed(
        &service.token,
        CreateWorkspaceRequest {
            name: "Evented and traced".into(),
            ..Default::default()
        },
    );
    let create_trace = in_a_new_trace(&mut create);
    let workspace = client.create_workspace(create).await.unwrap().into_inner();
    let mut update = authed(
        &service.token,
        UpdateWorkspaceRequest {
            id: workspace.id.clone(),
            name: "Evented, traced, renamed".into(),
            ..Default::default()
        },
    );
    let update_trace = in_a_new_trace(&mut update);
    client.update_workspace(update).await.unwrap();

    let events = nats.events("WORKSPACE_EVENTS", 2).await;
    for (event, method, trace_id) in [
        (&events[0], "CreateWorkspace", &create_trace),
        (&events[1], "UpdateWorkspace", &update_trace),
    ] {
        let rpc = format!("workspace.v1.WorkspaceService/{method}");
        let (_, call) = collector
            .span(&rpc, |s| s.name == rpc && hex(&s.trace_id) == *trace_id)
            .await;
        assert_eq!(
            event.headers.get("traceparent"),
            Some(&format!("00-{trace_id}-{}-01", hex(&call.span_id))),
            "{method}"
        );
    }
}
