//! The JSON/HTTP listener: HTTP/1.1 and HTTP/2 (prior knowledge) with the
//! limits axum::serve does not set: a time limit for a request's headers,
//! a bound on their size, HTTP/2 flow-control windows, the connection cap
//! and idle timeout (`guard`), and a graceful drain.

use std::{future::Future, time::Duration};

use axum::Router;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};

use crate::{config::ServerSettings, guard::GuardedListener};

/// Serves `router` on `listener` until `stop`, then waits for the
/// connections to finish (the caller bounds that wait).
pub async fn serve(
    listener: GuardedListener,
    router: Router,
    settings: &ServerSettings,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout())
        // The read buffer holds the request head: the header bound, and
        // room for the request line. (hyper's floor is 8 KiB.)
        .max_buf_size((settings.max_header_bytes as usize + 8 * 1024).max(8 * 1024));
    builder
        .http2()
        .timer(TokioTimer::new())
        .initial_stream_window_size(settings.http2_stream_window_bytes)
        .initial_connection_window_size(settings.http2_connection_window_bytes)
        .max_header_list_size(settings.max_header_bytes)
        .max_concurrent_streams(settings.max_concurrent_streams.max(1))
        .keep_alive_interval(Duration::from_millis(
            settings.http2_keepalive_interval_ms.max(1),
        ))
        .keep_alive_timeout(Duration::from_millis(
            settings.http2_keepalive_timeout_ms.max(1),
        ));
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let (io, _) = tokio::select! {
            accepted = listener.accept_guarded() => accepted,
            () = &mut stop => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(io), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(err = %err, "HTTP connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
