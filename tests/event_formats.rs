//! What a consumer reads: the trace context of the call that made the
//! change, and `EVENTS_FORMAT=cloudevents-json` events read with serde_json
//! alone.

mod common;

use common::{Backend, PlanSpec, authed, nats::Nats, process::ServiceProcess, spawn_app_with};
use workspace_service::proto::{
    CreateWorkspaceRequest, DeleteWorkspaceRequest, UpdateWorkspaceRequest,
    workspace_service_client::WorkspaceServiceClient,
};

const STREAM: &str = "WORKSPACE_EVENTS";

on_both_databases!(
    an_event_carries_the_trace_context_of_the_call_that_made_it,
    json_events_decode_with_serde_json_alone,
);

/// The service process (it sets up tracing as in production) on `backend`,
/// publishing to `nats`.
async fn service_with_nats(
    backend: Backend,
    nats: &Nats,
    extra: &[(&str, &str)],
) -> Option<(ServiceProcess, Option<common::FreshPostgres>)> {
    let postgres = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(common::FreshPostgres::create().await?),
    };
    let url = nats.url();
    let mut env = vec![
        ("NATS_URL", url.as_str()),
        ("EVENTS_RELAY_INTERVAL_MS", "50"),
    ];
    if let Some(postgres) = &postgres {
        env.push(("DATABASE_URL", postgres.url.as_str()));
    }
    env.extend_from_slice(extra);
    Some((ServiceProcess::start(&env).await, postgres))
}

async fn an_event_carries_the_trace_context_of_the_call_that_made_it(backend: Backend) {
    let Some(nats) = Nats::started() else {
        return;
    };
    let Some((service, _postgres)) = service_with_nats(backend, &nats, &[]).await else {
        return;
    };
    let mut grpc = WorkspaceServiceClient::new(service.channel().await);
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let caller_span = &uuid::Uuid::new_v4().simple().to_string()[..16];
    let mut request = authed(
        &service.token,
        CreateWorkspaceRequest {
            name: "Traced event".into(),
            ..Default::default()
        },
    );
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{caller_span}-01").parse().unwrap(),
    );
    let created = grpc.create_workspace(request).await.unwrap().into_inner();
    // A second change, in another trace of its own.
    let mut untraced = authed(
        &service.token,
        UpdateWorkspaceRequest {
            id: created.id.clone(),
            name: "Traced event, renamed".into(),
            ..Default::default()
        },
    );
    let other_trace = uuid::Uuid::new_v4().simple().to_string();
    untraced.metadata_mut().insert(
        "traceparent",
        format!("00-{other_trace}-{caller_span}-01")
            .parse()
            .unwrap(),
    );
    grpc.update_workspace(untraced).await.unwrap();

    let events = nats.events(STREAM, 2).await;
    let parts = |event: &common::nats::StoredEvent| -> Vec<String> {
        let traceparent = event
            .headers
            .get("traceparent")
            .unwrap_or_else(|| panic!("no traceparent on {:?}", event.headers));
        traceparent.split('-').map(str::to_owned).collect()
    };
    let first = parts(&events[0]);
    assert_eq!(first.len(), 4, "{first:?}");
    assert_eq!(first[0], "00");
    assert_eq!(first[1], trace_id, "the create's trace");
    assert_eq!(first[2].len(), 16);
    assert_ne!(
        first[2], caller_span,
        "a span of the service, in the caller's trace"
    );
    assert_eq!(first[3], "01", "sampled, as the caller asked");
    assert_eq!(parts(&events[1])[1], other_trace, "the update's trace");
}

/// A consumer without the service's proto: `EVENTS_FORMAT=cloudevents-json`
/// events read with serde_json only.
async fn json_events_decode_with_serde_json_alone(backend: Backend) {
    let Some(nats) = Nats::started() else {
        return;
    };
    let url = nats.url();
    let Some(app) = spawn_app_with(backend, move |s| {
        s.events.nats_url = Some(url);
        s.events.relay_interval_ms = 50;
        s.events.format = workspace_service::config::EventFormat::CloudeventsJson;
        s.events.dataschema = "https://schemas.example.com/workspace.v1.WorkspaceEvent".into();
    })
    .await
    else {
        return;
    };
    let org = app.organization(PlanSpec::default()).await;
    let workspace = app.create_named(&org, "JSON events").await;
    let mut grpc = WorkspaceServiceClient::new(app.channel().await);
    grpc.delete_workspace(authed(
        &org.owner.token,
        DeleteWorkspaceRequest {
            id: workspace.id.clone(),
            ..Default::default()
        },
    ))
    .await
    .unwrap();

    let events = nats.events(STREAM, 2).await;
    let mut types = Vec::new();
    for (index, stored) in events.iter().enumerate() {
        assert_eq!(stored.content_type, "application/cloudevents+json");
        assert_eq!(
            stored.headers.get("ce-dataschema").map(String::as_str),
            Some("https://schemas.example.com/workspace.v1.WorkspaceEvent")
        );
        // serde_json only: no proto, no generated code.
        let event: serde_json::Value = serde_json::from_slice(&stored.payload).unwrap();
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["id"].as_str(), Some(stored.msg_id.as_str()));
        assert_eq!(
            event["source"],
            format!("/workspace-service/organizations/{}", org.id)
        );
        assert_eq!(event["subject"], format!("workspaces/{}", workspace.id));
        assert_eq!(event["datacontenttype"], "application/json");
        assert_eq!(
            event["dataschema"],
            "https://schemas.example.com/workspace.v1.WorkspaceEvent"
        );
        let time = event["time"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{time}");
        let data = &event["data"];
        assert_eq!(data["id"], event["id"]);
        assert_eq!(data["organizationId"], org.id.to_string());
        assert_eq!(data["workspaceId"], workspace.id);
        assert_eq!(data["actorId"], org.owner.id.to_string());
        assert_eq!(data["sequence"], (index + 1).to_string());
        assert_eq!(data["workspace"]["name"], "JSON events");
        assert!(data["time"].as_str().unwrap().ends_with('Z'));
        types.push((
            event["type"].as_str().unwrap().to_owned(),
            data["type"].as_str().unwrap().to_owned(),
        ));
    }
    assert_eq!(
        types,
        [
            (
                "workspace.v1.workspace.created".to_owned(),
                "EVENT_TYPE_WORKSPACE_CREATED".to_owned()
            ),
            (
                "workspace.v1.workspace.deleted".to_owned(),
                "EVENT_TYPE_WORKSPACE_DELETED".to_owned()
            ),
        ]
    );
}
