//! gRPC health for "" and the service, and server reflection v1 and
//! v1alpha (what grpcurl uses), with the error-detail types resolvable.

mod common;

use common::{Backend, spawn_app};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::{v1, v1alpha};

on_both_databases!(
    health_is_serving_for_the_server_and_the_service,
    reflection_v1_and_v1alpha_list_the_services
);

async fn health_is_serving_for_the_server_and_the_service(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut health = HealthClient::new(app.channel().await);
    for service in ["", "workspace.v1.WorkspaceService", "liveness"] {
        let mut status = None;
        // The database monitor reports within one interval (200 ms in tests).
        for _ in 0..50 {
            let answer = health
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await;
            if let Ok(response) = answer {
                status = Some(response.into_inner().status());
                if status == Some(ServingStatus::Serving) {
                    break;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(status, Some(ServingStatus::Serving), "service {service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
}

async fn reflection_v1_and_v1alpha_list_the_services(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let channel = app.channel().await;

    let mut v1_client = v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let requests = vec![
        v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            )),
        },
        v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                v1::server_reflection_request::MessageRequest::FileContainingSymbol(
                    "google.rpc.ErrorInfo".into(),
                ),
            ),
        },
    ];
    let mut answers = v1_client
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a list of services");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    for expected in [
        "workspace.v1.WorkspaceService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let Some(v1::server_reflection_response::MessageResponse::FileDescriptorResponse(files)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("google.rpc.ErrorInfo is not resolvable");
    };
    assert!(!files.file_descriptor_proto.is_empty());

    let mut alpha = v1alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut answers = alpha
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a list of services");
    };
    assert!(
        list.service
            .iter()
            .any(|s| s.name == "workspace.v1.WorkspaceService")
    );
}

/// A reflection stream a client keeps open between requests (grpcurl and
/// grpcui do, for a session) is not cut by the request-body timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reflection_stream_may_stay_open_past_the_body_timeout() {
    let Some(app) =
        common::spawn_app_with(Backend::Sqlite, |s| s.server.body_timeout_ms = 300).await
    else {
        return;
    };
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(app.channel().await);
    let (send, receive) = tokio::sync::mpsc::channel(4);
    let list = || v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    send.send(list()).await.unwrap();
    let mut answers = client
        .server_reflection_info(tokio_stream::wrappers::ReceiverStream::new(receive))
        .await
        .unwrap()
        .into_inner();
    answers.message().await.unwrap().expect("a first answer");
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    send.send(list()).await.unwrap();
    answers
        .message()
        .await
        .expect("the stream is still open")
        .expect("a second answer");
    drop(send);
    drop(answers);
    app.stop().await;
}
