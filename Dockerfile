# syntax=docker/dockerfile:1
# Multi-stage build: compile with the Rust toolchain, run on a small Debian
# image as a non-root user. The build needs no protoc (protox compiles the
# protos in build.rs). CI replays the build stage (scripts/replay-dockerfile.py)
# and starts the binary it builds.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, in a layer of their own that source edits do not
# invalidate: build them against empty stand-ins for our code. Every member
# of the Cargo workspace needs its manifest and a source to load; only the
# service is built.
COPY Cargo.toml Cargo.lock build.rs ./
COPY bench/Cargo.toml ./bench/
COPY proto ./proto
RUN mkdir -p src bench/src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && echo 'fn main() {}' > bench/src/main.rs \
 && cargo build --release --locked -p workspace-service \
 && rm -rf src
COPY src ./src
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked -p workspace-service

FROM debian:bookworm-slim AS runtime
# TLS to PostgreSQL uses rustls with its own root certificates: no packages
# to install beyond the base image.
RUN useradd --system --uid 10001 --home-dir /data --create-home workspace
COPY --from=build /src/target/release/workspace-service /usr/local/bin/workspace-service
USER 10001
WORKDIR /data
ENV LISTEN_ADDR=0.0.0.0:50051 \
    HTTP_LISTEN_ADDR=0.0.0.0:8080 \
    DATABASE_URL=sqlite:///data/workspace-service.db \
    LOG_FORMAT=json
# 50051: gRPC (health, reflection); 8080: JSON/HTTP and /openapi.json.
EXPOSE 50051 8080
# Asks the gRPC health service ("" follows the database). Kubernetes uses
# native gRPC probes instead (deploy/kubernetes/deployment.yaml).
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/workspace-service", "health-check"]
ENTRYPOINT ["/usr/local/bin/workspace-service"]
CMD ["serve"]
