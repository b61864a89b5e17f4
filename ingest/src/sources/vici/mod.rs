//! `type = "vici"`: polls strongSwan's charon over its VICI socket (`list-sas`) and hands on
//! each IKE_SA's counters as a stamped `list-sa event {…}` line, which the gateway parser turns
//! into a `traffic` sample (TunnelDataIn/Out, ConcentratorBandwidthUsage) of the tunnel whose
//! outside IP is the SA's remote host (placed by the config's `[[connections]]` tunnels).
//!
//! Each poll: connect, register for `list-sa` events, send the `list-sas` request, read the
//! events until the response, unregister. A daemon that is down or refuses is logged and
//! tried again at the next poll; nothing is checkpointed (a sample is a reading, not a record
//! to be replayed). The async boundary is tokio's UNIX socket; `wire` is plain code.
//!
//! Limits: UNIX sockets only (charon's default `unix:///var/run/charon.vici`); one request at
//! a time; a poll that takes longer than the interval delays the next.

pub mod wire;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tunnelwatch_parsers::{DecoderOptions, InputFormat};

use crate::pipeline::{Delivery, SourceContext, Stream};
use crate::sources::{BuildError, BuildSource, Run, Source};

fn default_socket() -> String {
    "/var/run/charon.vici".into()
}

fn default_interval() -> Duration {
    Duration::from_secs(60)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// charon's VICI socket: a path or `unix://PATH`.
    #[serde(default = "default_socket")]
    pub socket: String,
    /// Time between polls (`60s` by default; CloudWatch's own period is 5 minutes).
    #[serde(default = "default_interval", with = "crate::sources::duration_str")]
    pub interval: Duration,
}

impl BuildSource for Config {
    fn build(&self, name: &str) -> Result<Box<dyn Source>, BuildError> {
        let path = self.socket.strip_prefix("unix://").unwrap_or(&self.socket);
        if path.is_empty() || self.socket.contains("://") && !self.socket.starts_with("unix://") {
            return Err(BuildError::new(
                name,
                format!("socket: `{}` is not a UNIX socket path", self.socket),
            ));
        }
        if self.interval < Duration::from_secs(1) {
            return Err(BuildError::new(name, "interval: at least 1s"));
        }
        Ok(Box::new(ViciSource {
            socket: PathBuf::from(path),
            interval: self.interval,
        }))
    }
}

struct ViciSource {
    socket: PathBuf,
    interval: Duration,
}

/// How long one poll may take before it is given up.
const POLL_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads one framed packet.
async fn read_packet(s: &mut UnixStream) -> Result<wire::Packet, String> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.map_err(|e| e.to_string())?;
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 || len > wire::MAX_PACKET {
        return Err(format!("packet of {len} bytes"));
    }
    let mut body = vec![0; len];
    s.read_exact(&mut body).await.map_err(|e| e.to_string())?;
    wire::decode(&body)
}

/// One `list-sas`: the rendered line of each IKE_SA.
pub async fn list_sas(socket: &std::path::Path) -> Result<Vec<String>, String> {
    let mut s = UnixStream::connect(socket)
        .await
        .map_err(|e| format!("{}: {e}", socket.display()))?;
    s.write_all(&wire::named(wire::EVENT_REGISTER, "list-sa"))
        .await
        .map_err(|e| e.to_string())?;
    match read_packet(&mut s).await?.kind {
        wire::EVENT_CONFIRM => {}
        other => return Err(format!("event registration refused (packet type {other})")),
    }
    s.write_all(&wire::named(wire::CMD_REQUEST, "list-sas"))
        .await
        .map_err(|e| e.to_string())?;
    let mut lines = Vec::new();
    loop {
        let p = read_packet(&mut s).await?;
        match p.kind {
            wire::EVENT if p.name.as_deref() == Some("list-sa") => {
                lines.push(wire::render("list-sa", &p.message));
            }
            wire::CMD_RESPONSE => break,
            wire::CMD_UNKNOWN => return Err("charon does not know list-sas".into()),
            _ => {}
        }
    }
    // Leaving without unregistering is fine for charon, but say goodbye properly.
    let _ = s
        .write_all(&wire::named(wire::EVENT_UNREGISTER, "list-sa"))
        .await;
    Ok(lines)
}

impl Source for ViciSource {
    fn kind(&self) -> &'static str {
        "vici"
    }

    fn run(self: Box<Self>, cx: SourceContext) -> Run {
        Box::pin(async move {
            let stream = Arc::new(Stream {
                id: format!("{}:vici", cx.name),
                source: format!("vici://{}", self.socket.display()),
                options: DecoderOptions {
                    format: InputFormat::Gateway,
                    ..DecoderOptions::default()
                },
            });
            let mut tick = tokio::time::interval(self.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = cx.shutdown.wait() => break,
                }
                let now = chrono::Utc::now()
                    .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                    .to_string();
                match tokio::time::timeout(POLL_TIMEOUT, list_sas(&self.socket)).await {
                    Ok(Ok(lines)) => {
                        if failing {
                            tracing::info!(source = %cx.name, "vici: charon answers again");
                            failing = false;
                        }
                        let mut bytes = Vec::new();
                        for l in lines {
                            bytes.extend_from_slice(format!("{now} {l}\n").as_bytes());
                        }
                        if !bytes.is_empty() {
                            cx.out.send(Delivery::new(stream.clone(), bytes)).await?;
                        }
                    }
                    Ok(Err(e)) => {
                        if !failing {
                            tracing::warn!(source = %cx.name, error = %e, "vici: list-sas failed; retrying every poll");
                        }
                        failing = true;
                    }
                    Err(_) => {
                        tracing::warn!(source = %cx.name, "vici: list-sas took longer than {POLL_TIMEOUT:?}");
                        failing = true;
                    }
                }
            }
            cx.out.send(Delivery::new(stream, Vec::new()).end()).await?;
            Ok(())
        })
    }
}
