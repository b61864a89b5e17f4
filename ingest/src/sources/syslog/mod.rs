//! `type = "syslog"`: receives syslog from gateways and forwarders (rsyslog, syslog-ng, Vector,
//! `logger`, a VPN gateway) over TCP, TLS (RFC 5425) or UDP (RFC 5426).
//!
//! Owns: listening, accepting, reading, TLS, connection limits, and naming the byte streams. It
//! does not frame or parse messages: the decoder of each stream splits newline-framed and
//! RFC 6587 octet-counted messages (`LEN <PRI>…`), also across read boundaries, and turns bad
//! frames into rejects.
//!
//! Streams:
//! - TCP/TLS: one stream per connection, id `<name>:tcp:<peer ip:port>`, `source` column
//!   `syslog+tcp://<listen address>` (`syslog+tls://…` with TLS). Chunks are handed on as they
//!   are read; the connection's last delivery is marked `end` (its decoder is flushed, so a last
//!   message without its newline still counts).
//! - UDP: one stream for the whole source, id `<name>:udp`, `source` `syslog+udp://<listen
//!   address>`. Each datagram is one message: one that starts with `<` is handed on
//!   octet-counted (`LEN ` + datagram + newline), so newlines inside it do not split it; any
//!   other datagram is handed on as lines (NDJSON or text records sent bare). Datagrams that
//!   arrive together are handed on in one delivery.
//!
//! Invariants:
//! - Backpressure (TCP): a connection reads its next chunk only after the previous one was
//!   accepted by [`Output::send`](crate::pipeline::Output::send), so a slow store fills the
//!   kernel buffers and blocks the sender; the bytes read but not yet durable never exceed the
//!   in-flight budget plus one read chunk per connection.
//! - UDP has no backpressure: when the budget is full the datagrams are dropped and counted in
//!   `dropped` (one per datagram), never queued.
//! - Refused, counted in `refused`: connections over `max_connections` (accepted and closed at
//!   once), failed or timed-out TLS handshakes (including plain-text clients on a TLS port and
//!   clients without a valid certificate under mutual TLS), and datagrams longer than
//!   `max_frame_bytes`. `open` counts connections from accept (TLS handshake included) to close.
//!   Read errors count in `errors` and close that connection only; a peer reset or a TLS close
//!   without `close_notify` is a normal close.
//! - Shutdown: the listener closes first; each connection stops reading, hands on what it had
//!   read and ends its stream; the UDP stream is ended; then `run` returns.
//!
//! Limits:
//! - A TCP message longer than `max_frame_bytes` without a newline becomes a `TooLarge` reject
//!   (the decoder's `max_record_bytes` is set from it); the connection stays open and the bytes
//!   after the cut are decoded as what they look like (usually one more reject).
//! - Only the local address names the `source`: rejects from different senders to one listener
//!   carry the same source (the stream id, with the peer, is not stored).
//! - `address` must be an IP address and port (no host names); port 0 picks a free port, which
//!   [`SyslogListener::local_addr`] reports.
//! - No UDP receive-buffer tuning: the kernel default (`net.core.rmem_default`) decides how big a
//!   burst survives while the source is busy.

mod tcp;
mod udp;

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use tokio::net::{TcpListener, UdpSocket};
use tokio_rustls::TlsAcceptor;
use tunnelwatch_parsers::{DEFAULT_MAX_RECORD_BYTES, DecoderOptions};

use crate::pipeline::SourceContext;
use crate::sources::parse_format;
use crate::sources::{BuildError, BuildSource, Run, Source, SourceError};

pub use crate::tls::TlsConfig;

/// The longest datagram UDP can carry (and the read size of one TCP chunk).
const MAX_DATAGRAM: usize = 65_536;

/// Transport of a syslog listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Tcp,
    Udp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `tcp` (default; newline or octet-counting framing, optionally TLS) or `udp` (one message
    /// per datagram).
    #[serde(default)]
    pub mode: Mode,
    /// Address to listen on, `IP:PORT` (default `127.0.0.1:5514`; `0.0.0.0:6514` for all IPv4
    /// interfaces, `[::]:6514` for IPv6; port 0 picks a free port).
    #[serde(default = "default_address")]
    pub address: String,
    /// Serve TLS (RFC 5425) with this certificate; `tcp` mode only.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Connections served at once (default 256); further connections are closed at once and
    /// counted as refused.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Longest message in bytes (default 65536). TCP: a longer message without a newline is
    /// rejected (it goes to `rejects`); UDP: a longer datagram is refused and counted.
    #[serde(default = "default_max_frame_bytes")]
    pub max_frame_bytes: usize,
    /// Close a connection that sent nothing for this long (default `5m`; `0s` never closes).
    #[serde(
        default = "default_idle_timeout",
        deserialize_with = "crate::sources::duration_str::deserialize"
    )]
    pub idle_timeout: Duration,
    /// Format of the messages (`auto` by default, which detects syslog and its framing).
    #[serde(default)]
    pub format: Option<String>,
    /// Log stream name (`vpn-…-<outside ip>`) for tunnel activity records whose syslog header
    /// names no tunnel (in app-name, msgid or hostname).
    #[serde(default)]
    pub stream_name: Option<String>,
    /// Year of RFC 3164 timestamps, which carry none (default: the current UTC year).
    #[serde(default)]
    pub syslog_year: Option<i32>,
}

fn default_address() -> String {
    "127.0.0.1:5514".to_owned()
}

fn default_max_connections() -> usize {
    256
}

fn default_max_frame_bytes() -> usize {
    64 << 10
}

fn default_idle_timeout() -> Duration {
    Duration::from_secs(300)
}

impl Default for Config {
    fn default() -> Config {
        Config {
            mode: Mode::Tcp,
            address: default_address(),
            tls: None,
            max_connections: default_max_connections(),
            max_frame_bytes: default_max_frame_bytes(),
            idle_timeout: default_idle_timeout(),
            format: None,
            stream_name: None,
            syslog_year: None,
        }
    }
}

impl Config {
    /// Validates the config and reads the TLS files; the concrete type, for callers that
    /// [`bind`](SyslogSource::bind) before running (to learn the port, or to fail early).
    pub fn build_syslog(&self, name: &str) -> Result<SyslogSource, BuildError> {
        let address: SocketAddr = self.address.parse().map_err(|_| {
            BuildError::new(
                name,
                format!(
                    "address: `{}` is not IP:PORT (e.g. 0.0.0.0:5514)",
                    self.address
                ),
            )
        })?;
        if self.max_connections == 0 {
            return Err(BuildError::new(name, "max_connections: must be at least 1"));
        }
        if self.max_frame_bytes == 0 || self.max_frame_bytes > DEFAULT_MAX_RECORD_BYTES {
            return Err(BuildError::new(
                name,
                format!("max_frame_bytes: must be between 1 and {DEFAULT_MAX_RECORD_BYTES}"),
            ));
        }
        let tls = match (&self.tls, self.mode) {
            (None, _) => None,
            (Some(_), Mode::Udp) => {
                return Err(BuildError::new(
                    name,
                    "tls: only for mode = \"tcp\" (syslog over UDP has no TLS)",
                ));
            }
            (Some(t), Mode::Tcp) => Some(TlsAcceptor::from(
                crate::tls::server_config(t).map_err(|m| BuildError::new(name, m))?,
            )),
        };
        let format = parse_format(name, self.format.as_deref())?;
        Ok(SyslogSource {
            name: name.to_owned(),
            mode: self.mode,
            address,
            tls,
            max_connections: self.max_connections,
            max_frame_bytes: self.max_frame_bytes,
            idle_timeout: (!self.idle_timeout.is_zero()).then_some(self.idle_timeout),
            options: DecoderOptions {
                format,
                stream_name: self.stream_name.clone(),
                max_record_bytes: self.max_frame_bytes,
                syslog_year: self.syslog_year,
                gateway_peers: None,
            },
        })
    }
}

impl BuildSource for Config {
    fn build(&self, name: &str) -> Result<Box<dyn Source>, BuildError> {
        Ok(Box::new(self.build_syslog(name)?))
    }
}

/// A built, not yet listening syslog source. Running it binds first; [`bind`](Self::bind)
/// separately to learn the bound address before running.
pub struct SyslogSource {
    name: String,
    mode: Mode,
    address: SocketAddr,
    tls: Option<TlsAcceptor>,
    max_connections: usize,
    max_frame_bytes: usize,
    idle_timeout: Option<Duration>,
    options: DecoderOptions,
}

impl std::fmt::Debug for SyslogSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyslogSource")
            .field("name", &self.name)
            .field("mode", &self.mode)
            .field("address", &self.address)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

enum Socket {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

/// A syslog source with its socket bound (and listening, for TCP).
pub struct SyslogListener {
    source: SyslogSource,
    socket: Socket,
    local_addr: SocketAddr,
}

impl SyslogSource {
    /// Binds the socket (and listens, for TCP). Fails if the address is taken or not local.
    pub async fn bind(self) -> Result<SyslogListener, SourceError> {
        let io_error = |what: &str, source| SourceError::Io {
            what: format!(
                "syslog source `{}`: cannot {what} {}",
                self.name, self.address
            ),
            source,
        };
        let socket = match self.mode {
            Mode::Tcp => Socket::Tcp(
                TcpListener::bind(self.address)
                    .await
                    .map_err(|e| io_error("listen on", e))?,
            ),
            Mode::Udp => Socket::Udp(
                UdpSocket::bind(self.address)
                    .await
                    .map_err(|e| io_error("bind", e))?,
            ),
        };
        let local_addr = match &socket {
            Socket::Tcp(l) => l.local_addr(),
            Socket::Udp(s) => s.local_addr(),
        }
        .map_err(|e| io_error("read the bound address of", e))?;
        Ok(SyslogListener {
            source: self,
            socket,
            local_addr,
        })
    }
}

impl std::fmt::Debug for SyslogListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyslogListener")
            .field("source", &self.source)
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl SyslogListener {
    /// The address actually bound (the real port when the config said port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Source for SyslogSource {
    fn kind(&self) -> &'static str {
        "syslog"
    }

    fn listens(&self) -> bool {
        true
    }

    fn run(self: Box<Self>, cx: SourceContext) -> Run {
        Box::pin(async move { Box::new(self.bind().await?).run(cx).await })
    }
}

impl Source for SyslogListener {
    fn kind(&self) -> &'static str {
        "syslog"
    }

    fn listens(&self) -> bool {
        true
    }

    fn run(self: Box<Self>, cx: SourceContext) -> Run {
        let SyslogListener {
            source,
            socket,
            local_addr,
        } = *self;
        Box::pin(async move {
            let scheme = match (&socket, source.tls.is_some()) {
                (Socket::Udp(_), _) => "syslog+udp",
                (Socket::Tcp(_), true) => "syslog+tls",
                (Socket::Tcp(_), false) => "syslog+tcp",
            };
            let _ = cx.stats.listening.set(format!("{scheme}://{local_addr}"));
            match socket {
                Socket::Tcp(listener) => tcp::serve(listener, source, local_addr, cx).await,
                Socket::Udp(socket) => udp::serve(socket, source, local_addr, cx).await,
            }
        })
    }
}
