//! TLS and mutual TLS from PEM files: a client that trusts the CA gets
//! through; with TLS_CLIENT_CA_FILE set, only a client that shows a
//! certificate the CA signed does; plaintext gets nowhere.

mod common;

use std::{path::PathBuf, time::Duration};

use common::{Backend, PlanSpec, TestApp, authed, named, spawn_app_with};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use workspace_service::{
    proto::workspace_service_client::WorkspaceServiceClient, startup::Application,
};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

fn pem(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

async fn tls_app(mutual: bool) -> TestApp {
    spawn_app_with(Backend::Sqlite, |s| {
        s.tls.cert_file = Some(fixture("server.pem"));
        s.tls.key_file = Some(fixture("server.key"));
        s.tls.client_ca_file = mutual.then(|| fixture("ca.pem"));
    })
    .await
    .expect("a SQLite app always starts")
}

/// A channel over TLS that trusts the test CA, with the client
/// certificate when `identity`.
async fn connect(app: &TestApp, identity: bool) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(pem("ca.pem")))
        .domain_name("localhost");
    if identity {
        tls = tls.identity(Identity::from_pem(pem("client.pem"), pem("client.key")));
    }
    Channel::from_shared(format!("https://{}", app.addr))
        .unwrap()
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
}

async fn creates(app: &TestApp, channel: Channel, name: &str) -> Result<(), tonic::Status> {
    let org = app.organization(PlanSpec::default()).await;
    WorkspaceServiceClient::new(channel)
        .create_workspace(authed(&org.owner.token, named(&org, name)))
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_serves_clients_that_trust_the_ca_and_refuses_plaintext() {
    let app = tls_app(false).await;
    let channel = connect(&app, false).await.expect("TLS handshake");
    creates(&app, channel, "Over TLS")
        .await
        .expect("a call over TLS");

    let plaintext = Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await;
    if let Ok(channel) = plaintext {
        let refused = creates(&app, channel, "In the clear").await;
        assert!(refused.is_err(), "a plaintext call was served");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mutual_tls_requires_a_client_certificate_the_ca_signed() {
    let app = tls_app(true).await;
    let channel = connect(&app, true).await.expect("mTLS handshake");
    creates(&app, channel, "With a certificate")
        .await
        .expect("a call with a client certificate");

    // Without a certificate the handshake or the first call fails.
    match connect(&app, false).await {
        Err(_) => {}
        Ok(channel) => assert!(
            creates(&app, channel, "Without a certificate")
                .await
                .is_err(),
            "a call without a client certificate was served"
        ),
    }
    app.stop().await;
}

#[tokio::test]
async fn half_a_tls_setting_is_refused_at_start() {
    let mut settings = workspace_service::config::Settings::default();
    settings.database.url = "sqlite::memory:".to_owned().into();
    settings.server.listen_addr = "127.0.0.1:0".parse().unwrap();
    settings.server.http_listen_addr = "off".into();
    settings.tls.cert_file = Some(fixture("server.pem"));
    let err = Application::build(settings.clone())
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("TLS_KEY_FILE"), "{err}");
    settings.tls.cert_file = None;
    settings.tls.client_ca_file = Some(fixture("ca.pem"));
    assert!(Application::build(settings).await.is_err());
}
