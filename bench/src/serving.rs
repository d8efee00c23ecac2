//! Reaching a server the benchmarks started: a free port for it, and
//! connections once it is SERVING. Shared by `workspace-bench` and
//! `growth` (`#[path]`: the bench crate has no library).

use std::{net::SocketAddr, time::Duration};

use anyhow::bail;
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

#[path = "../../tests/common/ports.rs"]
mod ports;

/// A port on 127.0.0.1 nothing listens on, below the ephemeral range.
pub(crate) fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(SocketAddr::from(([127, 0, 0, 1], ports::free_port())))
}

/// `count` connections to the server, once its health says SERVING
/// (within 60 s: a server on a large database takes a while to start).
pub(crate) async fn connect(addr: SocketAddr, count: usize) -> anyhow::Result<Vec<Channel>> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?;
    for _ in 0..600 {
        if let Ok(channel) = endpoint.connect().await {
            let serving = HealthClient::new(channel)
                .check(HealthCheckRequest::default())
                .await
                .is_ok_and(|r| r.into_inner().status == 1);
            if serving {
                let mut channels = Vec::new();
                for _ in 0..count.max(1) {
                    channels.push(endpoint.connect().await?);
                }
                return Ok(channels);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the server did not become SERVING in 60 s")
}
