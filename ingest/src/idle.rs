//! An idle limit for the connections of the HTTP servers (`serve`'s API and the `http` and
//! `firehose` sources): a connection on which nothing has been read or written for the limit is
//! closed, so clients that open connections and send nothing — idle keep-alives, slow-loris
//! headers that never end — give their descriptors back instead of holding them forever.
//!
//! Invariant: the limit must be longer than the longest a request may legitimately keep its
//! connection silent (the server's request timeout, a source's ack timeout): callers pass that
//! plus a margin. Each read or write that moves bytes starts the limit again.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

/// The idle limit for a server whose requests may keep a connection silent for `timeout` (a
/// request timeout, an ack timeout): twice that, and 5 s more.
pub fn limit_for(timeout: Duration) -> Duration {
    timeout.saturating_mul(2) + Duration::from_secs(5)
}

/// A stream whose reads fail with `TimedOut` after `limit` without traffic.
pub struct IdleStream<S> {
    inner: S,
    limit: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl<S> IdleStream<S> {
    pub fn new(inner: S, limit: Duration) -> IdleStream<S> {
        IdleStream {
            inner,
            limit,
            deadline: Box::pin(tokio::time::sleep(limit)),
        }
    }

    fn touch(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.limit);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    self.touch();
                }
                Poll::Ready(r)
            }
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle past its limit",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A plain TCP listener for `axum::serve` whose connections carry an idle limit.
pub struct IdleListener {
    tcp: TcpListener,
    limit: Duration,
}

impl IdleListener {
    pub fn new(tcp: TcpListener, limit: Duration) -> IdleListener {
        IdleListener { tcp, limit }
    }
}

impl axum::serve::Listener for IdleListener {
    type Io = IdleStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.tcp.accept().await {
                Ok((stream, peer)) => return (IdleStream::new(stream, self.limit), peer),
                Err(e) => {
                    // Out of file descriptors and the like: wait, as axum's own loop does.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_silent_peer_times_out_and_traffic_restarts_the_limit() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut a = IdleStream::new(a, Duration::from_secs(2));
        let mut buf = [0u8; 4];
        // Bytes well within the limit, three times: each read starts it again, so the
        // connection outlives one limit.
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(800)).await;
            b.write_all(b"ping").await.unwrap();
            a.read_exact(&mut buf).await.unwrap();
        }
        // Then silence.
        let err = a.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
