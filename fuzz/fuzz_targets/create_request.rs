//! CreateWorkspaceRequest from arbitrary bytes, as the gRPC server would
//! decode it, then check 2's validation: never a panic, and every verdict
//! keeps its promises (an accepted request is in bounds; a refusal is
//! INVALID_ARGUMENT with small messages).

#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use workspace_service::{
    domain::{DomainError, NameRules, normalize_name, validate_create, workspace},
    grpc::create_input,
    proto::CreateWorkspaceRequest,
};

fuzz_target!(|data: &[u8]| {
    let Ok(request) = CreateWorkspaceRequest::decode(data) else {
        return;
    };
    let rules = NameRules::default();
    match validate_create(&create_input(request.clone()), &rules) {
        Ok(valid) => {
            assert_eq!(valid.name, request.name.trim());
            let chars = valid.name.chars().count();
            assert!((rules.min_chars..=rules.max_chars).contains(&chars));
            assert!(!valid.name.chars().any(char::is_control));
            assert_eq!(valid.normalized_name, normalize_name(&valid.name));
            assert!(valid.description.chars().count() <= workspace::DESCRIPTION_MAX_CHARS);
            assert_eq!(valid.validate_only, request.validate_only);
            if let Some(id) = &valid.request_id {
                assert!(id.chars().count() <= workspace::REQUEST_ID_MAX_CHARS);
            }
            // A retry of the same request is recognised as the same.
            let again = validate_create(&create_input(request.clone()), &rules).unwrap();
            assert_eq!(valid.fingerprint(), again.fingerprint());
        }
        Err(DomainError::InvalidArgument(violations)) => {
            assert!(!violations.is_empty());
            for violation in &violations {
                // Refused values are quoted as excerpts: answers stay small.
                assert!(violation.description.len() < 1024, "{violation:?}");
            }
            let status = tonic::Status::from(DomainError::InvalidArgument(violations));
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
        }
        Err(other) => panic!("validation answered {other:?}"),
    }
});
