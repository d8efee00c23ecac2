//! An event as a NATS message: headers and body, in the configured
//! format.

use std::sync::LazyLock;

use anyhow::Context as _;
use async_nats::HeaderMap;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

use crate::{config::EventFormat, storage::PendingEvent};

/// The JSON mapping of the events' messages.
static DESCRIPTORS: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(crate::proto::FILE_DESCRIPTOR_SET)
        .expect("the compiled-in descriptor set decodes")
});

/// CloudEvents' attributes of `event`, whatever the format.
struct Attributes {
    id: String,
    source: String,
    kind: String,
    subject: String,
    time: String,
}

impl Attributes {
    fn of(event: &PendingEvent) -> Self {
        Self {
            id: event.id.to_string(),
            source: format!("/workspace-service/organizations/{}", event.organization_id),
            kind: format!("workspace.v1.{}", event.kind.as_str()),
            subject: format!("workspaces/{}", event.workspace_id),
            time: event
                .occurred_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        }
    }
}

/// The message for `event`: its headers and body, in `format`.
/// - `protobuf`: the encoded `workspace.v1.WorkspaceEvent`, CloudEvents in
///   binary mode (`ce-*` headers), `content-type: application/protobuf`;
/// - `cloudevents-json`: a structured-mode CloudEvent
///   (`content-type: application/cloudevents+json`) whose `data` is the
///   event in proto3 JSON (lowerCamelCase names, enums by name, 64-bit
///   integers as strings, every field present).
///
/// Either way `Nats-Msg-Id` is the event's id (JetStream's deduplication)
/// and `traceparent` the change's trace, when it has one.
pub(super) fn encode(
    event: &PendingEvent,
    format: EventFormat,
    dataschema: &str,
) -> anyhow::Result<(HeaderMap, Vec<u8>)> {
    let attributes = Attributes::of(event);
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", attributes.id.as_str());
    // The trace of the call that made the change: a consumer's spans join
    // it.
    if let Some(traceparent) = &event.traceparent {
        headers.insert("traceparent", traceparent.as_str());
    }
    match format {
        EventFormat::Protobuf => {
            headers.insert("ce-specversion", "1.0");
            headers.insert("ce-id", attributes.id.as_str());
            headers.insert("ce-type", attributes.kind.as_str());
            headers.insert("ce-source", attributes.source.as_str());
            headers.insert("ce-subject", attributes.subject.as_str());
            headers.insert("ce-time", attributes.time.as_str());
            headers.insert("ce-dataschema", dataschema);
            headers.insert("content-type", "application/protobuf");
            Ok((headers, event.payload.clone()))
        }
        EventFormat::CloudeventsJson => {
            let descriptor = DESCRIPTORS
                .get_message_by_name("workspace.v1.WorkspaceEvent")
                .context("workspace.v1.WorkspaceEvent in the descriptor set")?;
            let message = DynamicMessage::decode(descriptor, event.payload.as_slice())
                .with_context(|| format!("event {} does not decode", event.id))?;
            let data = message
                .serialize_with_options(
                    serde_json::value::Serializer,
                    &SerializeOptions::new().skip_default_fields(false),
                )
                .with_context(|| format!("event {} as JSON", event.id))?;
            let mut cloud_event = serde_json::json!({
                "specversion": "1.0",
                "id": attributes.id,
                "source": attributes.source,
                "type": attributes.kind,
                "subject": attributes.subject,
                "time": attributes.time,
                "datacontenttype": "application/json",
                "dataschema": dataschema,
                "data": data,
            });
            // CloudEvents' distributed tracing extension.
            if let Some(traceparent) = &event.traceparent {
                cloud_event["traceparent"] = traceparent.as_str().into();
            }
            headers.insert("ce-dataschema", dataschema);
            headers.insert("content-type", "application/cloudevents+json");
            Ok((headers, serde_json::to_vec(&cloud_event)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(traceparent: Option<&str>) -> PendingEvent {
        use prost::Message;
        let id = uuid::Uuid::now_v7();
        let (organization_id, workspace_id) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let payload = crate::proto::WorkspaceEvent {
            id: id.to_string(),
            r#type: crate::proto::EventType::WorkspaceCreated as i32,
            organization_id: organization_id.to_string(),
            workspace_id: workspace_id.to_string(),
            sequence: 7,
            ..Default::default()
        }
        .encode_to_vec();
        PendingEvent {
            id,
            organization_id,
            workspace_id,
            kind: crate::domain::EventKind::WorkspaceCreated,
            payload,
            occurred_at: chrono::Utc::now(),
            traceparent: traceparent.map(str::to_owned),
        }
    }

    #[test]
    fn both_formats_carry_the_cloudevents_attributes_and_the_dataschema() {
        let event = pending(Some(
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ));
        let (headers, body) = encode(&event, EventFormat::Protobuf, "urn:x").unwrap();
        let header = |name: &str| headers.get(name).map(|v| v.as_str().to_owned());
        assert_eq!(body, event.payload);
        assert_eq!(header("ce-dataschema").as_deref(), Some("urn:x"));
        assert_eq!(
            header("ce-type").as_deref(),
            Some("workspace.v1.workspace.created")
        );
        assert_eq!(
            header("ce-subject"),
            Some(format!("workspaces/{}", event.workspace_id))
        );
        assert_eq!(header("traceparent"), event.traceparent);

        let (headers, body) = encode(&event, EventFormat::CloudeventsJson, "urn:x").unwrap();
        let header = |name: &str| headers.get(name).map(|v| v.as_str().to_owned());
        assert_eq!(
            header("content-type").as_deref(),
            Some("application/cloudevents+json")
        );
        assert_eq!(header("ce-dataschema").as_deref(), Some("urn:x"));
        assert_eq!(header("Nats-Msg-Id"), Some(event.id.to_string()));
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["id"], event.id.to_string());
        assert_eq!(json["datacontenttype"], "application/json");
        assert_eq!(json["dataschema"], "urn:x");
        assert_eq!(json["traceparent"], event.traceparent.clone().unwrap());
        assert_eq!(json["data"]["type"], "EVENT_TYPE_WORKSPACE_CREATED");
        assert_eq!(json["data"]["workspaceId"], event.workspace_id.to_string());
        assert_eq!(
            json["data"]["sequence"], "7",
            "proto3 JSON: int64 as a string"
        );
        // Without a trace: no traceparent anywhere.
        let (headers, body) =
            encode(&pending(None), EventFormat::CloudeventsJson, "urn:x").unwrap();
        assert!(headers.get("traceparent").is_none());
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(json.get("traceparent").is_none());
    }
}
