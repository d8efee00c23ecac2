//! Open connections, bounded and timed: at most `max` open per listener
//! (one more is closed at once), and a connection that sends nothing for
//! the idle timeout is closed. HTTP/2 pings from the server (every
//! HTTP2_KEEPALIVE_INTERVAL_MS) are answered by a live client, so only
//! dead or silent peers idle out.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
    time::{Instant, Sleep},
};

use crate::telemetry::Metrics;

/// The bounds every accepted connection is held to.
#[derive(Clone)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub idle_timeout: Duration,
}

/// A listener that accepts within the limits.
pub struct GuardedListener {
    listener: TcpListener,
    open: Arc<Semaphore>,
    idle_timeout: Duration,
    metrics: Metrics,
    name: &'static str,
}

impl GuardedListener {
    pub fn new(
        listener: TcpListener,
        limits: &ConnectionLimits,
        metrics: Metrics,
        name: &'static str,
    ) -> Self {
        Self {
            listener,
            open: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            idle_timeout: limits.idle_timeout,
            metrics,
            name,
        }
    }

    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// The next connection within the limits. Accept errors (out of file
    /// descriptors, a peer gone before accept) are logged and waited out.
    pub async fn accept_guarded(&self) -> (GuardedStream, std::net::SocketAddr) {
        loop {
            let (stream, addr) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(%err, listener = self.name, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = self.open.clone().try_acquire_owned() else {
                self.metrics.connection_refused(self.name);
                drop(stream);
                continue;
            };
            // Small answers go out at once, not after the peer's delayed
            // ACK (a 40 ms stall per call otherwise).
            let _ = stream.set_nodelay(true);
            self.metrics.connection_open(self.name, 1);
            return (
                GuardedStream {
                    inner: stream,
                    idle: Box::pin(tokio::time::sleep(self.idle_timeout)),
                    idle_timeout: self.idle_timeout,
                    _permit: permit,
                    metrics: self.metrics.clone(),
                    name: self.name,
                },
                addr,
            );
        }
    }

    /// The accepted connections as a stream, for tonic.
    pub fn into_stream(
        self,
    ) -> impl futures_util::Stream<Item = Result<GuardedStream, io::Error>> + Send + 'static {
        futures_util::stream::unfold(self, |listener| async move {
            let (stream, _) = listener.accept_guarded().await;
            Some((Ok(stream), listener))
        })
    }
}

impl axum::serve::Listener for GuardedListener {
    type Io = GuardedStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        self.accept_guarded().await
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// An accepted connection: holds its place among the open ones, and ends
/// when the peer has sent nothing for the idle timeout.
pub struct GuardedStream {
    inner: TcpStream,
    idle: Pin<Box<Sleep>>,
    idle_timeout: Duration,
    _permit: OwnedSemaphorePermit,
    metrics: Metrics,
    name: &'static str,
}

impl Drop for GuardedStream {
    fn drop(&mut self) {
        self.metrics.connection_open(self.name, -1);
    }
}

impl tonic::transport::server::Connected for GuardedStream {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    let next = Instant::now() + self.idle_timeout;
                    self.idle.as_mut().reset(next);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => {
                if self.idle.as_mut().poll(cx).is_ready() {
                    self.metrics.connection_timed_out(self.name);
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the connection was idle too long",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    /// No: h2 then copies a DATA frame of up to 1 KiB into its buffer
    /// with the frames around it, where with vectored writes it chains any
    /// frame over 256 bytes and must write it before the next frame: a
    /// unary answer (HEADERS, DATA, trailers) was two writes, now one.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// h2 writes a small answer's HEADERS, DATA and trailers in one write
    /// only on a connection that takes no vectored writes (README,
    /// "Performance"): every accepted connection says so.
    #[tokio::test]
    async fn an_accepted_connection_takes_no_vectored_writes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = ConnectionLimits {
            max_connections: 1,
            idle_timeout: Duration::from_secs(5),
        };
        let metrics = Metrics::new(None).unwrap();
        let guarded = GuardedListener::new(listener, &limits, metrics, "test");
        let _client = TcpStream::connect(addr).await.unwrap();
        let (stream, _) = guarded.accept_guarded().await;
        assert!(!stream.is_write_vectored());
    }
}
