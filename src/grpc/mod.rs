//! The tonic transport: decode the request, authenticate, call the use
//! case, encode the answer. Errors become `Status` in `status.rs` only.

mod authenticated;
mod convert;
mod deadline;
mod pipeline;
mod service;
mod status;

pub use authenticated::{
    Authenticated, AuthenticatedCaller, CREATE_WORKSPACE_PATH, KnownOrganizations, SeedNameRules,
    authenticate_within, credentials,
};
pub use convert::create_input;
pub use status::{ERROR_DOMAIN, code_for, overloaded_with, status_of_reason};

pub use deadline::CallDeadline;
pub use pipeline::WorkspaceApi;
