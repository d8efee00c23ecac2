//! A private NATS server with JetStream (Debian's nats-server) on a free
//! port with a store of its own; stopped when dropped, and restartable on
//! the same port and store.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use async_nats::jetstream;
use futures::StreamExt;
use prost::Message;
use uuid::Uuid;
use workspace_service::{proto::WorkspaceEvent, storage::all_events};

use super::{Backend, TestApp, spawn_app_with};

pub struct Nats {
    child: Option<Child>,
    pub port: u16,
    store: tempfile::TempDir,
}

fn binary() -> Option<PathBuf> {
    ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
}

impl Nats {
    /// A port nothing listens on yet, and the store a server will use:
    /// `start` brings it up. `None` (skip) without nats-server, unless
    /// `REQUIRE_TEST_DATABASE` is set (CI).
    pub fn stopped() -> Option<Self> {
        if binary().is_none() {
            if std::env::var_os("REQUIRE_TEST_DATABASE").is_some() {
                panic!("nats-server is not installed (Debian package nats-server)");
            }
            eprintln!("skipped: nats-server is not installed");
            return None;
        }
        let port = super::free_port();
        Some(Self {
            child: None,
            port,
            store: tempfile::tempdir().unwrap(),
        })
    }

    pub fn started() -> Option<Self> {
        let mut nats = Self::stopped()?;
        nats.start();
        Some(nats)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new(binary().unwrap())
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every message of `stream`, oldest first, once it holds at least
    /// `count` (waits up to 30 s), with its headers and decoded event.
    pub async fn events(&self, stream: &str, count: usize) -> Vec<StoredEvent> {
        let client = async_nats::connect(self.url()).await.unwrap();
        let context = jetstream::new(client);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut stream = loop {
            if let Ok(stream) = context.get_stream(stream).await {
                break stream;
            }
            assert!(Instant::now() < deadline, "no stream {stream}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        loop {
            let stored = stream.info().await.unwrap().state.messages as usize;
            if stored >= count {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the stream holds {stored} events, not {count}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let last = stream.info().await.unwrap().state.last_sequence;
        let mut events = Vec::new();
        for sequence in 1..=last {
            let message = stream.get_raw_message(sequence).await.unwrap();
            let header = |name: &str| {
                message
                    .headers
                    .get(name)
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default()
            };
            let content_type = header("content-type");
            let headers = message
                .headers
                .iter()
                .map(|(name, values)| {
                    let value = values.first().map(|v| v.as_str().to_owned());
                    (name.to_string(), value.unwrap_or_default())
                })
                .collect();
            events.push(StoredEvent {
                subject: message.subject.to_string(),
                msg_id: header("Nats-Msg-Id"),
                ce_type: header("ce-type"),
                ce_id: header("ce-id"),
                event: if content_type == "application/protobuf" {
                    prost::Message::decode(message.payload.as_ref()).unwrap()
                } else {
                    WorkspaceEvent::default()
                },
                content_type,
                headers,
                payload: message.payload.to_vec(),
            });
        }
        events
    }
}

impl Nats {
    /// A JetStream context on this server.
    pub async fn jetstream(&self) -> jetstream::Context {
        jetstream::new(async_nats::connect(self.url()).await.unwrap())
    }

    /// The configuration of `stream` as the server holds it.
    pub async fn stream_config(&self, stream: &str) -> jetstream::stream::Config {
        let mut stream = self.jetstream().await.get_stream(stream).await.unwrap();
        stream.info().await.unwrap().config.clone()
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One message of the stream.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub subject: String,
    pub msg_id: String,
    pub ce_type: String,
    pub ce_id: String,
    pub content_type: String,
    /// Decoded when the payload is protobuf; empty otherwise.
    pub event: WorkspaceEvent,
    /// Every header, by name (the first value of each).
    pub headers: std::collections::HashMap<String, String>,
    pub payload: Vec<u8>,
}

/// The service on a fresh `backend` database, relaying to `nats` every
/// 50 ms.
pub async fn app_with_nats(backend: Backend, nats: &Nats) -> Option<TestApp> {
    Some(app_with_nats_at(backend, nats).await?.0)
}

/// `app_with_nats`, and its database's URL (for the admin command line).
pub async fn app_with_nats_at(backend: Backend, nats: &Nats) -> Option<(TestApp, String)> {
    let nats_url = nats.url();
    let mut database_url = String::new();
    let app = spawn_app_with(backend, |s| {
        s.events.nats_url = Some(nats_url);
        s.events.relay_interval_ms = 50;
        s.server.max_concurrent_calls_per_organization = 1_000;
        database_url = s.database.url.expose().to_owned();
    })
    .await?;
    Some((app, database_url))
}

/// Waits until the outbox has nothing unsent.
pub async fn drained(app: &TestApp) {
    for _ in 0..300 {
        let events = all_events(app.storage.connection()).await.unwrap();
        if events.iter().all(|e| e.sent_at.is_some()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the outbox did not drain");
}

/// The next event on `subscriber` (core NATS sees what JetStream stores),
/// within `within`.
pub async fn next_event(
    subscriber: &mut async_nats::Subscriber,
    within: Duration,
) -> Option<WorkspaceEvent> {
    let message = tokio::time::timeout(within, subscriber.next())
        .await
        .ok()??;
    Some(WorkspaceEvent::decode(message.payload.as_ref()).unwrap())
}

/// Organization `org`'s events as they are published, from now on.
pub async fn subscribe(nats: &Nats, org: Uuid) -> async_nats::Subscriber {
    let client = async_nats::connect(nats.url()).await.unwrap();
    let subscriber = client
        .subscribe(format!("workspace.events.{org}.>"))
        .await
        .unwrap();
    client.flush().await.unwrap();
    subscriber
}
