# syntax=docker/dockerfile:1
# Multi-stage build: compile with the Rust toolchain, run on a small Debian
# image as a non-root user. The build needs no protoc (protox compiles the
# protos in build.rs).

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
COPY src ./src
RUN cargo build --release --locked \
 && cp target/release/workspace-service /workspace-service

FROM debian:bookworm-slim AS runtime
# TLS to PostgreSQL uses rustls with its own root certificates: no packages
# to install beyond the base image.
RUN useradd --system --uid 10001 --home-dir /data --create-home workspace
COPY --from=build /workspace-service /usr/local/bin/workspace-service
USER 10001
WORKDIR /data
ENV LISTEN_ADDR=0.0.0.0:50051 \
    DATABASE_URL=sqlite:///data/workspace-service.db \
    LOG_FORMAT=json
EXPOSE 50051
ENTRYPOINT ["/usr/local/bin/workspace-service"]
CMD ["serve"]
