//! Compiles the protos with protox (no system `protoc`) and writes the file
//! descriptor set that server reflection, the JSON/HTTP mapping and
//! `workspace-service descriptor-set` (for Envoy) serve.

use std::{env, fs, path::PathBuf};

const PROTOS: &[&str] = &[
    "workspace/v1/workspace.proto",
    // Not used by the service's messages; served so clients can decode the
    // error details (ErrorInfo, BadRequest) every error carries.
    "google/rpc/error_details.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler
        .include_source_info(true)
        .include_imports(true)
        .open_files(PROTOS)?;

    // Encoded by protox itself, which keeps custom options such as
    // google.api.http and field_behavior (prost_types would drop them as
    // unknown fields). Reflection, the JSON mapping and Envoy read these.
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("workspace_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;

    let descriptors = compiler.file_descriptor_set();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
