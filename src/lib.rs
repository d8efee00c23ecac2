//! The workspace service: a gRPC service that owns workspaces, whose
//! CreateWorkspace unifies five public "Create Workspace" REST APIs.
//!
//! Data flows one way: transport (`grpc`) → use cases (`workspaces`) and
//! rules (`domain`) → `storage`.

pub mod admin;
pub mod auth;
pub mod config;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod guard;
pub mod http;
pub mod messages;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod workspaces;

/// Code generated from `proto/workspace/v1/workspace.proto`.
pub mod proto {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("workspace.v1");

    /// The encoded descriptor set of the service's protos (and their
    /// imports), served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/workspace_descriptor.bin"));
}
