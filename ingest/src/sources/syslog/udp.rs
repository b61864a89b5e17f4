//! UDP: one message per datagram, all on one stream; datagrams waiting in the socket are handed
//! on together, and dropped (counted) when the budget has no room.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::UdpSocket;

use super::{MAX_DATAGRAM, SyslogSource};
use crate::pipeline::{Delivery, SendError, SourceContext, Stream};
use crate::sources::SourceError;

/// Most datagrams handed on in one delivery.
const BATCH_DATAGRAMS: usize = 256;
/// Most bytes handed on in one delivery (a datagram is never split).
const BATCH_BYTES: usize = 256 << 10;
/// Pause after a failed receive before trying again.
const RECV_RETRY: Duration = Duration::from_millis(10);

pub(super) async fn serve(
    socket: UdpSocket,
    source: SyslogSource,
    local: SocketAddr,
    cx: SourceContext,
) -> Result<(), SourceError> {
    let stream = Arc::new(Stream {
        id: format!("{}:udp", source.name),
        source: format!("syslog+udp://{local}"),
        options: source.options,
    });
    let mut buf = vec![0; MAX_DATAGRAM];
    let mut handed_on = false;
    loop {
        let first = tokio::select! {
            biased;
            _ = cx.shutdown.wait() => break,
            r = socket.recv_from(&mut buf) => r,
        };
        let mut batch = Batch::default();
        match first {
            Ok((n, _)) => batch.push(&buf[..n], source.max_frame_bytes, &cx),
            Err(_) => {
                // E.g. ICMP errors reported on the socket: count, pause, go on.
                cx.stats.errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(RECV_RETRY).await;
                continue;
            }
        }
        while batch.datagrams < BATCH_DATAGRAMS && batch.bytes.len() < BATCH_BYTES {
            match socket.try_recv_from(&mut buf) {
                Ok((n, _)) => batch.push(&buf[..n], source.max_frame_bytes, &cx),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => {
                    cx.stats.errors.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
        if batch.datagrams == 0 {
            continue;
        }
        match cx.out.try_send(Delivery::new(stream.clone(), batch.bytes)) {
            Ok(()) => handed_on = true,
            Err(SendError::Full) => {
                cx.stats
                    .dropped
                    .fetch_add(batch.datagrams as u64, Ordering::Relaxed);
            }
            Err(SendError::Closed) => return Err(SourceError::PipelineClosed),
        }
    }
    if handed_on {
        cx.out.send(Delivery::new(stream, Vec::new()).end()).await?;
    }
    Ok(())
}

/// Datagrams framed for the decoder.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    datagrams: usize,
}

impl Batch {
    /// Frames one datagram: a syslog message (`<PRI>…`) octet-counted so that newlines inside it
    /// do not split it, then a newline (so the decoder sees the frame complete); anything else as
    /// lines. Refuses empty and oversized datagrams.
    fn push(&mut self, datagram: &[u8], max_frame_bytes: usize, cx: &SourceContext) {
        if datagram.is_empty() {
            return;
        }
        if datagram.len() > max_frame_bytes {
            cx.stats.refused.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if datagram[0] == b'<' {
            self.bytes
                .extend_from_slice(format!("{} ", datagram.len()).as_bytes());
            self.bytes.extend_from_slice(datagram);
            self.bytes.push(b'\n');
        } else {
            self.bytes.extend_from_slice(datagram);
            if datagram.last() != Some(&b'\n') {
                self.bytes.push(b'\n');
            }
        }
        self.datagrams += 1;
    }
}
