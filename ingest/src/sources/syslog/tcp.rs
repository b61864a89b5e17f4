//! TCP and TLS: the accept loop, the connection limit, and one task per connection that reads
//! chunks and hands each on before reading the next (the backpressure towards the sender).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinError, JoinSet};
use tokio_rustls::TlsAcceptor;
use tunnelwatch_parsers::DecoderOptions;

use super::{MAX_DATAGRAM, SyslogSource};
use crate::pipeline::{Delivery, SourceContext, SourceStats, Stream};
use crate::sources::SourceError;

/// Bytes read from a connection at once (the most one connection holds beyond the budget).
const READ_CHUNK: usize = MAX_DATAGRAM;
/// Longest wait for a client's TLS handshake (shorter if `idle_timeout` is).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed accept (e.g. out of file descriptors) before trying again.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// What every connection of one listener shares.
struct Listener {
    name: String,
    /// The `source` column of every record received here.
    label: String,
    tls: Option<TlsAcceptor>,
    idle_timeout: Option<Duration>,
    options: DecoderOptions,
}

pub(super) async fn serve(
    listener: TcpListener,
    source: SyslogSource,
    local: SocketAddr,
    cx: SourceContext,
) -> Result<(), SourceError> {
    let scheme = if source.tls.is_some() {
        "syslog+tls"
    } else {
        "syslog+tcp"
    };
    let shared = Arc::new(Listener {
        name: source.name,
        label: format!("{scheme}://{local}"),
        tls: source.tls,
        idle_timeout: source.idle_timeout,
        options: source.options,
    });
    let slots = Arc::new(Semaphore::new(source.max_connections));
    let mut connections = JoinSet::new();
    let mut result = Ok(());
    loop {
        tokio::select! {
            biased;
            _ = cx.shutdown.wait() => break,
            Some(joined) = connections.join_next() => {
                if let Err(e) = finished(joined, &cx.stats) {
                    result = Err(e);
                    connections.abort_all();
                    break;
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => match slots.clone().try_acquire_owned() {
                    Ok(slot) => {
                        let open = OpenConnection::new(cx.stats.clone(), slot);
                        connections.spawn(connection(socket, peer, shared.clone(), cx.clone(), open));
                    }
                    Err(_) => {
                        cx.stats.refused.fetch_add(1, Ordering::Relaxed);
                        drop(socket);
                    }
                },
                Err(_) => {
                    cx.stats.errors.fetch_add(1, Ordering::Relaxed);
                    tokio::select! {
                        _ = cx.shutdown.wait() => break,
                        _ = tokio::time::sleep(ACCEPT_RETRY) => {}
                    }
                }
            },
        }
    }
    // Stop accepting before waiting for the connections to hand on what they read.
    drop(listener);
    while let Some(joined) = connections.join_next().await {
        if let Err(e) = finished(joined, &cx.stats) {
            result = result.and(Err(e));
        }
    }
    result
}

/// The outcome of a connection task: pipeline failures end the source; a panic is counted.
fn finished(
    joined: Result<Result<(), SourceError>, JoinError>,
    stats: &SourceStats,
) -> Result<(), SourceError> {
    match joined {
        Ok(r) => r,
        Err(e) if e.is_cancelled() => Ok(()),
        Err(_) => {
            stats.errors.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    }
}

/// Holds a `max_connections` slot and the `open` count for as long as the connection lives.
struct OpenConnection {
    stats: Arc<SourceStats>,
    _slot: OwnedSemaphorePermit,
}

impl OpenConnection {
    fn new(stats: Arc<SourceStats>, slot: OwnedSemaphorePermit) -> OpenConnection {
        stats.open.fetch_add(1, Ordering::Relaxed);
        OpenConnection { stats, _slot: slot }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn connection(
    socket: TcpStream,
    peer: SocketAddr,
    shared: Arc<Listener>,
    cx: SourceContext,
    _open: OpenConnection,
) -> Result<(), SourceError> {
    let Some(acceptor) = &shared.tls else {
        return read_stream(socket, peer, &shared, &cx).await;
    };
    let limit = shared
        .idle_timeout
        .map_or(HANDSHAKE_TIMEOUT, |idle| idle.min(HANDSHAKE_TIMEOUT));
    let handshake = tokio::select! {
        biased;
        _ = cx.shutdown.wait() => return Ok(()),
        h = tokio::time::timeout(limit, acceptor.accept(socket)) => h,
    };
    match handshake {
        Ok(Ok(tls)) => read_stream(tls, peer, &shared, &cx).await,
        // Not TLS, a bad or missing client certificate, or too slow.
        Ok(Err(_)) | Err(_) => {
            cx.stats.refused.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    }
}

/// Reads one connection until it closes, idles out or shutdown, handing on every chunk before
/// reading the next; ends the stream if anything was handed on.
async fn read_stream<R: AsyncRead + Unpin>(
    mut io: R,
    peer: SocketAddr,
    shared: &Listener,
    cx: &SourceContext,
) -> Result<(), SourceError> {
    let stream = Arc::new(Stream {
        id: format!("{}:tcp:{peer}", shared.name),
        source: shared.label.clone(),
        options: shared.options.clone(),
    });
    let mut buf = vec![0; READ_CHUNK];
    let mut handed_on = false;
    loop {
        let read = tokio::select! {
            biased;
            _ = cx.shutdown.wait() => break,
            r = read_chunk(&mut io, &mut buf, shared.idle_timeout) => r,
        };
        match read {
            Ok(Some(n)) if n > 0 => {
                cx.out
                    .send(Delivery::new(stream.clone(), buf[..n].to_vec()))
                    .await?;
                handed_on = true;
            }
            // Closed by the peer, or idle for too long. A peer that resets, or closes TLS
            // without `close_notify`, has closed too (senders that never read do both): frames
            // are self-delimiting, so a cut-off message becomes a reject anyway.
            Ok(_) => break,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                ) =>
            {
                break;
            }
            Err(_) => {
                cx.stats.errors.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
    }
    if handed_on {
        cx.out.send(Delivery::new(stream, Vec::new()).end()).await?;
    }
    Ok(())
}

/// One read: `Some(n)` bytes (0 = closed), or `None` when the connection idled out.
async fn read_chunk<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut [u8],
    idle_timeout: Option<Duration>,
) -> std::io::Result<Option<usize>> {
    match idle_timeout {
        None => io.read(buf).await.map(Some),
        Some(limit) => match tokio::time::timeout(limit, io.read(buf)).await {
            Ok(r) => r.map(Some),
            Err(_) => Ok(None),
        },
    }
}
