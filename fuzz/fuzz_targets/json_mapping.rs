//! The JSON mapping both ways, from arbitrary bytes.
//!
//! Requests: a body (JSON or urlencoded form) for any HTTP route becomes
//! that RPC's request message as the gateway builds it, or a 4xx-kind
//! refusal; never a panic, never INTERNAL. A CreateWorkspace request that
//! decodes also goes through validation.
//!
//! Replies: any message of an RPC's reply type is written as the gateway
//! writes it, in both naming styles, and reads back to the same JSON.

#![no_main]

use std::{collections::HashMap, sync::LazyLock};

use libfuzzer_sys::fuzz_target;
use prost::Message;
use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage, ReflectMessage};
use workspace_service::{
    domain::{NameRules, validate_create},
    grpc::create_input,
    http::{
        BodyFormat, HttpRule, JsonNames, body_fields, http_rules, json_options, request_message,
    },
    proto::{CreateWorkspaceRequest, FILE_DESCRIPTOR_SET},
};

static RULES: LazyLock<Vec<HttpRule>> = LazyLock::new(|| {
    let pool = DescriptorPool::decode(FILE_DESCRIPTOR_SET).unwrap();
    http_rules(&pool).unwrap()
});

const CONTENT_TYPES: [&str; 4] = [
    "application/json",
    "",
    "application/merge-patch+json",
    "application/x-www-form-urlencoded",
];

fuzz_target!(|data: &[u8]| {
    let [selector, body @ ..] = data else {
        return;
    };
    let rule = &RULES[usize::from(selector & 0x0f) % RULES.len()];
    let content_type = CONTENT_TYPES[usize::from(selector >> 4) % CONTENT_TYPES.len()];
    if selector & 0x40 == 0 {
        request(rule, content_type, body);
    } else {
        reply(rule, body, JsonNames::Camel);
        reply(rule, body, JsonNames::Proto);
    }
});

fn request(rule: &HttpRule, content_type: &str, body: &[u8]) {
    let refused = |status: tonic::Status| {
        assert_ne!(status.code(), tonic::Code::Internal, "{status:?}");
        assert_ne!(status.code(), tonic::Code::Unknown, "{status:?}");
    };
    let format = if selector_gateway(body) {
        BodyFormat::Gateway
    } else {
        BodyFormat::Seed { forms: true }
    };
    let fields = match body_fields(&rule.rpc.input(), content_type, body, format) {
        Ok(fields) => fields,
        Err(status) => return refused(status),
    };
    let message = match request_message(rule, Some(fields), &HashMap::new(), &[]) {
        Ok(message) => message,
        Err(status) => return refused(status),
    };
    assert_eq!(message.descriptor(), rule.rpc.input());
    if rule.rpc.name() == "CreateWorkspace" {
        let request = CreateWorkspaceRequest::decode(message.encode_to_vec().as_slice())
            .expect("the gateway's message is a CreateWorkspaceRequest");
        let _ = validate_create(&create_input(request), &NameRules::default());
    }
}

fn reply(rule: &HttpRule, bytes: &[u8], names: JsonNames) {
    let Ok(message) = DynamicMessage::decode(rule.rpc.output(), bytes) else {
        return;
    };
    let options = json_options(names);
    // Values outside JSON's range (a timestamp past year 9999) cannot be
    // written; the service never produces them.
    let Ok(json) = message.serialize_with_options(serde_json::value::Serializer, &options) else {
        return;
    };
    let back = DynamicMessage::deserialize_with_options(
        rule.rpc.output(),
        json.clone(),
        &DeserializeOptions::new().deny_unknown_fields(true),
    )
    .unwrap_or_else(|e| panic!("{json} does not read back: {e}"));
    let again = back
        .serialize_with_options(serde_json::value::Serializer, &options)
        .unwrap();
    assert_eq!(json, again);
}

/// Both ways of reading a body, by the body's length: grpc-gateway's
/// (JSON also as a form, keys once) and a seed framework's.
fn selector_gateway(body: &[u8]) -> bool {
    body.len() % 2 == 0
}
