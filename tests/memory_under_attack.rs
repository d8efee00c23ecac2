//! Hostile clients cannot exhaust memory (the service as a process of its
//! own, its resident memory read from /proc): bodies held back after a
//! promised megabyte, on HTTP/1.1 and as unfinished gRPC messages on
//! HTTP/2 streams, stay within the body budget; unauthenticated bodies are
//! answered 401 / UNAUTHENTICATED without being read; idle connections are
//! closed; a legitimate caller on another connection is answered
//! throughout.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{authed, process::ServiceProcess};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use workspace_service::proto::{
    CreateWorkspaceRequest, workspace_service_client::WorkspaceServiceClient,
};

const MIB: u64 = 1 << 20;

/// The settings the attacks meet: the defaults but a smaller budget, so
/// the bound is tight enough to tell.
const ENV: &[(&str, &str)] = &[("BODY_BUDGET_BYTES", "33554432")];

async fn legitimate_create(service: &ServiceProcess, name: &str) {
    let mut client = WorkspaceServiceClient::new(service.channel().await);
    let mut request = authed(
        &service.token,
        CreateWorkspaceRequest {
            name: name.into(),
            ..Default::default()
        },
    );
    request.set_timeout(Duration::from_secs(5));
    let started = Instant::now();
    client
        .create_workspace(request)
        .await
        .unwrap_or_else(|status| panic!("{name}: {status:?}"));
    eprintln!("{name}: answered in {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// The highest RSS seen while `attack` runs, sampling every 50 ms.
async fn peak_rss_during(
    service: &ServiceProcess,
    attack: impl std::future::Future<Output = ()>,
) -> u64 {
    tokio::pin!(attack);
    let mut peak = service.rss_bytes();
    loop {
        tokio::select! {
            () = &mut attack => return peak.max(service.rss_bytes()),
            () = tokio::time::sleep(Duration::from_millis(50)) => {
                peak = peak.max(service.rss_bytes());
            }
        }
    }
}

/// 200 HTTP/1.1 connections each promise a 1 MiB body, send all but its
/// last byte, and hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn held_back_http1_bodies_stay_within_the_budget() {
    let service = ServiceProcess::start(ENV).await;
    legitimate_create(&service, "Before the attack").await;
    let rest = service.rss_bytes();

    let addr = service.http_addr;
    let token = service.token.clone();
    let mut held = Vec::new();
    let attack = async {
        let mut tasks = Vec::new();
        for _ in 0..200 {
            let token = token.clone();
            tasks.push(tokio::spawn(async move {
                let mut stream = TcpStream::connect(addr).await.ok()?;
                let head = format!(
                    "POST /api/v1/workspaces HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    MIB
                );
                stream.write_all(head.as_bytes()).await.ok()?;
                let chunk = vec![b' '; 64 * 1024];
                let mut sent = 0u64;
                while sent + (chunk.len() as u64) < MIB {
                    if stream.write_all(&chunk).await.is_err() {
                        break;
                    }
                    sent += chunk.len() as u64;
                }
                Some(stream)
            }));
        }
        for task in tasks {
            if let Ok(Some(stream)) = task.await {
                held.push(stream);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let peak = peak_rss_during(&service, attack).await;
    // Callers on other connections are still answered.
    legitimate_create(&service, "During the attack").await;
    let grown = peak.saturating_sub(rest);
    eprintln!("HTTP/1.1: rest {} MiB, peak {} MiB", rest / MIB, peak / MIB);
    assert!(grown < 64 * MIB, "RSS grew by {} MiB", grown / MIB);

    drop(held);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = service.rss_bytes();
    eprintln!("HTTP/1.1: after {} MiB", after / MIB);
    assert!(after < rest + 48 * MIB, "RSS stayed at {} MiB", after / MIB);
    legitimate_create(&service, "After the attack").await;
}

/// 2 HTTP/2 connections on the gRPC port, each with 200 streams carrying
/// an unfinished 1 MiB gRPC message.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unfinished_grpc_messages_stay_within_the_budget() {
    let service = ServiceProcess::start(ENV).await;
    legitimate_create(&service, "Before the attack").await;
    let rest = service.rss_bytes();

    let addr = service.addr;
    let token = service.token.clone();
    let mut connections = Vec::new();
    let attack = async {
        let mut streams = Vec::new();
        for _ in 0..2 {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let (client, connection) = h2::client::handshake(tcp).await.unwrap();
            connections.push(tokio::spawn(connection));
            for _ in 0..200 {
                let mut client = client.clone().ready().await.unwrap();
                let request = http::Request::post(format!(
                    "http://{addr}/workspace.v1.WorkspaceService/CreateWorkspace"
                ))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .header("authorization", format!("Bearer {token}"))
                .body(())
                .unwrap();
                let (response, mut body) = client.send_request(request, false).unwrap();
                streams.push(tokio::spawn(async move {
                    // A message that says 1 MiB, and never quite ends.
                    let mut prefix = vec![0u8];
                    prefix.extend_from_slice(&(MIB as u32).to_be_bytes());
                    let mut left = MIB as usize - 1;
                    let _ = body.send_data(Bytes::from(prefix), false);
                    while left > 0 {
                        body.reserve_capacity(left.min(64 * 1024));
                        match futures::future::poll_fn(|cx| body.poll_capacity(cx)).await {
                            Some(Ok(n)) if n > 0 => {
                                let n = n.min(left);
                                if body.send_data(Bytes::from(vec![0u8; n]), false).is_err() {
                                    break;
                                }
                                left -= n;
                            }
                            _ => break,
                        }
                    }
                    drop(response);
                    body
                }));
            }
        }
        // The streams send what flow control lets through, then wait.
        tokio::time::sleep(Duration::from_secs(3)).await;
        drop(streams);
    };
    let peak = peak_rss_during(&service, attack).await;
    legitimate_create(&service, "During the attack").await;
    let grown = peak.saturating_sub(rest);
    eprintln!("HTTP/2: rest {} MiB, peak {} MiB", rest / MIB, peak / MIB);
    assert!(grown < 64 * MIB, "RSS grew by {} MiB", grown / MIB);
    for connection in connections {
        connection.abort();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    legitimate_create(&service, "After the attack").await;
}

/// Without credentials a promised megabyte is answered 401 at once, with
/// not a byte of it sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unauthenticated_bodies_are_answered_before_they_are_read() {
    let service = ServiceProcess::start(ENV).await;

    let mut stream = TcpStream::connect(service.http_addr).await.unwrap();
    stream
        .write_all(
            format!(
                "POST /api/v1/workspaces HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {MIB}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut answer = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut answer))
        .await
        .expect("answered without the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");

    let tcp = TcpStream::connect(service.addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    let connection = tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = http::Request::post(format!(
        "http://{}/workspace.v1.WorkspaceService/CreateWorkspace",
        service.addr
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(())
    .unwrap();
    let (response, _body) = client.send_request(request, false).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(2), response)
        .await
        .expect("answered without the body")
        .unwrap();
    assert_eq!(response.headers()["grpc-status"], "16", "{response:?}");
    connection.abort();
}

/// A connection that sends nothing is closed after the idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_connections_are_closed() {
    let service = ServiceProcess::start(&[("IDLE_CONNECTION_TIMEOUT_MS", "500")]).await;
    for addr in [service.addr, service.http_addr] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut buffer = [0u8; 64];
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "{addr}: an idle connection stayed open");
    }
    let metrics = reqwest::get(format!("http://{}/metrics", service.http_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "workspace_service_connections_timed_out_total",
        "workspace_service_connections_open",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    let timed_out: f64 = metrics
        .lines()
        .filter(|line| line.starts_with("workspace_service_connections_timed_out_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(timed_out >= 2.0, "{metrics}");
}

/// HTTP/1.1 headers sent a byte at a time are cut at the header timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_headers_are_cut() {
    let service = ServiceProcess::start(&[("HEADER_READ_TIMEOUT_MS", "1000")]).await;
    let mut stream = TcpStream::connect(service.http_addr).await.unwrap();
    let started = Instant::now();
    let head = b"GET /api/v1/workspaces HTTP/1.1\r\nhost: x\r\nx-slow: ";
    let mut closed = false;
    for byte in head.iter().chain(std::iter::repeat(&b'a')) {
        if stream.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        let mut buffer = [0u8; 256];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buffer)).await
        {
            // Answered (408) and closed, or closed.
            if n == 0 || buffer.starts_with(b"HTTP/1.1 408") {
                closed = true;
                break;
            }
        }
        if started.elapsed() > Duration::from_secs(6) {
            break;
        }
    }
    assert!(closed, "slow headers were read for {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(4));
}

/// A body past the budget is refused as the catalogue says, on both ports:
/// RESOURCE_EXHAUSTED / 429 MEMORY_BUDGET_EXHAUSTED with a RetryInfo.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_body_past_the_budget_is_refused_with_retry_info() {
    use tonic_types::StatusExt;
    use workspace_service::domain::Reason;

    let Some(app) = common::spawn_app_with(common::Backend::Sqlite, |s| {
        s.server.body_budget_bytes = 64 << 10;
        s.server.http_dialects = workspace_service::http::DialectChoice::GrpcGateway;
    })
    .await
    else {
        return;
    };
    let org = app.organization(common::PlanSpec::default()).await;
    let mut request = common::named(&org, "Too big to hold");
    request.description = "x".repeat(200 << 10);
    let status = app
        .create(&org.owner.token, request)
        .await
        .expect_err("refused");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    let details = status.get_error_details();
    assert_eq!(
        details.error_info().unwrap().reason,
        Reason::MemoryBudgetExhausted
    );
    assert!(details.retry_info().is_some());

    let answer = reqwest::Client::new()
        .post(format!(
            "http://{}/api/v1/workspaces",
            app.http_addr.unwrap()
        ))
        .bearer_auth(&org.owner.token)
        .json(&serde_json::json!({"name": "Too big", "description": "x".repeat(200 << 10)}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 429);
    let body: serde_json::Value = answer.json().await.unwrap();
    let reasons: Vec<&str> = body["details"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|detail| detail["reason"].as_str())
        .collect();
    assert_eq!(reasons, [Reason::MemoryBudgetExhausted.as_str()], "{body}");
    // Within the budget, all is as before.
    app.create_named(&org, "Small enough").await;
    app.stop().await;
}
