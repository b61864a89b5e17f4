//! `type = "prometheus"`: scrapes a Prometheus exporter on the customer gateway (node_exporter's
//! interface counters, an IPsec exporter's per-tunnel bytes) every `interval` and hands on one
//! `TunnelTraffic` record per configured tunnel, so TunnelDataIn/Out and
//! ConcentratorBandwidthUsage come from counters the gateway already exports.
//!
//! Each tunnel names the series of its counters with selectors (`name{label="value",…}`,
//! matching samples that carry those labels; several matches are summed, e.g. one series per
//! CHILD SA). The directions are AWS's: `bytes_in` is TunnelDataIn, customer gateway → AWS, so
//! it is what the gateway's tunnel interface *transmits*. A sample's own timestamp is used when
//! the exporter gives one, else the scrape's time.
//!
//! A scrape that fails (connection refused, non-2xx, timeout, a body over [`MAX_BODY`]) is
//! logged once and tried again every interval; a tunnel whose series are missing from a scrape
//! gives no record that time (logged once). Nothing is checkpointed: a sample is a reading.
//!
//! Sync/async: the source runs on the pipeline's tokio runtime (hyper's client, rustls for
//! `https://` with the system's root certificates); `exposition` is plain code.

pub mod exposition;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use tunnelwatch_parsers::DecoderOptions;

use crate::pipeline::{Delivery, SourceContext, Stream};
use crate::sources::{BuildError, BuildSource, Run, Source};
use exposition::Selector;

/// The largest exposition read (node_exporter serves well under 1 MB).
pub const MAX_BODY: usize = 16 << 20;

fn default_interval() -> Duration {
    Duration::from_secs(60)
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The exporter's metrics URL, `http://` or `https://`.
    pub url: String,
    /// Time between scrapes (`60s` by default).
    #[serde(default = "default_interval", with = "crate::sources::duration_str")]
    pub interval: Duration,
    /// How long a scrape may take (`10s` by default).
    #[serde(default = "default_timeout", with = "crate::sources::duration_str")]
    pub timeout: Duration,
    /// The tunnels whose counters this exporter has.
    pub tunnels: Vec<TunnelSeries>,
}

/// One tunnel and the series of its counters (AWS's directions).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelSeries {
    pub vpn_id: String,
    /// The tunnel's AWS outside IP.
    pub tunnel_ip: String,
    /// TunnelDataIn: bytes the gateway sends into the tunnel, e.g.
    /// `node_network_transmit_bytes_total{device="vti1"}`.
    #[serde(default)]
    pub bytes_in: Option<String>,
    /// TunnelDataOut: bytes the gateway receives from the tunnel.
    #[serde(default)]
    pub bytes_out: Option<String>,
    #[serde(default)]
    pub packets_in: Option<String>,
    #[serde(default)]
    pub packets_out: Option<String>,
    /// The VPN Concentrator the connection is on (turns on ConcentratorBandwidthUsage).
    #[serde(default)]
    pub concentrator_id: Option<String>,
}

/// A tunnel's selectors, checked.
#[derive(Debug, Clone)]
struct Tunnel {
    resource_id: String,
    /// bytes_in, bytes_out, packets_in, packets_out.
    series: [Option<Selector>; 4],
    concentrator_id: Option<String>,
}

const COLUMNS: [&str; 4] = ["bytes_in", "bytes_out", "packets_in", "packets_out"];

impl BuildSource for Config {
    fn build(&self, name: &str) -> Result<Box<dyn Source>, BuildError> {
        let err = |m: String| BuildError::new(name, m);
        let uri: hyper::Uri = self
            .url
            .parse()
            .map_err(|e| err(format!("url `{}`: {e}", self.url)))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(err(format!(
                "url `{}` must be http:// or https:// with a host",
                self.url
            )));
        }
        if self.interval < Duration::from_secs(1) {
            return Err(err("interval: at least 1s".into()));
        }
        if self.timeout.is_zero() {
            return Err(err("timeout: more than 0".into()));
        }
        if self.tunnels.is_empty() {
            return Err(err(
                "tunnels: name at least one tunnel and the series of its counters".into(),
            ));
        }
        let mut tunnels = Vec::new();
        for (i, t) in self.tunnels.iter().enumerate() {
            let resource_id = format!("{}_{}", t.vpn_id, t.tunnel_ip);
            match tunnelwatch_parsers::identity::parse_tunnel_name(&resource_id) {
                Some((v, ip)) if v == t.vpn_id && ip == t.tunnel_ip => {}
                _ => {
                    return Err(err(format!(
                        "tunnels[{i}]: `{}` / `{}` is not a VPN connection id (vpn-…) and an IP address",
                        t.vpn_id, t.tunnel_ip
                    )));
                }
            }
            let given = [&t.bytes_in, &t.bytes_out, &t.packets_in, &t.packets_out];
            let mut series: [Option<Selector>; 4] = Default::default();
            for (slot, (text, column)) in series.iter_mut().zip(given.iter().zip(COLUMNS)) {
                if let Some(text) = text {
                    *slot = Some(
                        Selector::parse(text)
                            .map_err(|e| err(format!("tunnels[{i}].{column}: {e}")))?,
                    );
                }
            }
            if series[0].is_none() && series[1].is_none() {
                return Err(err(format!(
                    "tunnels[{i}]: give bytes_in or bytes_out (a traffic sample needs one)"
                )));
            }
            tunnels.push(Tunnel {
                resource_id,
                series,
                concentrator_id: t.concentrator_id.clone(),
            });
        }
        Ok(Box::new(ScrapeSource {
            url: self.url.clone(),
            uri,
            interval: self.interval,
            timeout: self.timeout,
            tunnels,
        }))
    }
}

struct ScrapeSource {
    url: String,
    uri: hyper::Uri,
    interval: Duration,
    timeout: Duration,
    tunnels: Vec<Tunnel>,
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

fn client() -> Result<HttpClient, String> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| format!("loading the system's root certificates: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

/// One scrape: the exposition's text.
async fn scrape(client: &HttpClient, uri: &hyper::Uri) -> Result<String, String> {
    let request = hyper::Request::get(uri.clone())
        .header("accept", "text/plain;version=0.0.4")
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("reading the body: {e}"))?
        .to_bytes();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    String::from_utf8(body.to_vec()).map_err(|_| "the body is not UTF-8".into())
}

/// A counter as an integer: finite and not negative, else absent.
fn counter(v: f64) -> Option<u64> {
    (v.is_finite() && v >= 0.0).then_some(v as u64)
}

/// The `TunnelTraffic` record of `t` in `samples` (scraped at `now_ms`), or the columns whose
/// series are missing.
fn record(
    t: &Tunnel,
    samples: &[exposition::Sample],
    now_ms: i64,
) -> Result<String, Vec<&'static str>> {
    let mut out = serde_json::Map::new();
    out.insert("type".into(), "TunnelTraffic".into());
    out.insert("resource_id".into(), t.resource_id.clone().into());
    let (mut ts, mut missing) = (None, Vec::new());
    for (selector, column) in t.series.iter().zip(COLUMNS) {
        let Some(selector) = selector else { continue };
        match selector.sum(samples) {
            Some((v, sample_ts)) => {
                ts = ts.max(sample_ts);
                if let Some(n) = counter(v) {
                    out.insert(column.into(), n.into());
                }
            }
            None => missing.push(column),
        }
    }
    if !out.contains_key("bytes_in") && !out.contains_key("bytes_out") {
        return Err(missing);
    }
    out.insert("event_timestamp".into(), ts.unwrap_or(now_ms).into());
    if let Some(c) = &t.concentrator_id {
        out.insert("concentrator_id".into(), c.clone().into());
    }
    Ok(serde_json::Value::Object(out).to_string())
}

impl Source for ScrapeSource {
    fn kind(&self) -> &'static str {
        "prometheus"
    }

    fn run(self: Box<Self>, cx: SourceContext) -> Run {
        Box::pin(async move {
            let stream = Arc::new(Stream {
                id: format!("{}:prometheus", cx.name),
                source: self.url.clone(),
                options: DecoderOptions::default(),
            });
            let client = match client() {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(source = %cx.name, error = %e, "prometheus: no HTTP client");
                    return Ok(());
                }
            };
            let mut tick = tokio::time::interval(self.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let (mut failing, mut warned) = (false, HashSet::new());
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = cx.shutdown.wait() => break,
                }
                let now_ms = chrono::Utc::now().timestamp_millis();
                let text = match tokio::time::timeout(self.timeout, scrape(&client, &self.uri))
                    .await
                {
                    Ok(Ok(text)) => text,
                    Ok(Err(e)) => {
                        if !failing {
                            tracing::warn!(source = %cx.name, url = %self.url, error = %e, "prometheus: scrape failed; retrying every interval");
                        }
                        failing = true;
                        continue;
                    }
                    Err(_) => {
                        if !failing {
                            tracing::warn!(source = %cx.name, url = %self.url, "prometheus: no answer within {:?}", self.timeout);
                        }
                        failing = true;
                        continue;
                    }
                };
                if failing {
                    tracing::info!(source = %cx.name, url = %self.url, "prometheus: the exporter answers again");
                    failing = false;
                }
                let (samples, errors) = exposition::parse(&text);
                if let Some(first) = errors.first() {
                    tracing::warn!(source = %cx.name, url = %self.url, lines = errors.len(), first = %first, "prometheus: lines that are not samples were skipped");
                }
                let mut bytes = Vec::new();
                for t in &self.tunnels {
                    match record(t, &samples, now_ms) {
                        Ok(line) => {
                            bytes.extend_from_slice(line.as_bytes());
                            bytes.push(b'\n');
                        }
                        Err(missing) => {
                            if warned.insert(t.resource_id.clone()) {
                                tracing::warn!(source = %cx.name, tunnel = %t.resource_id, missing = ?missing, "prometheus: the tunnel's series are not in the scrape");
                            }
                        }
                    }
                }
                if !bytes.is_empty() {
                    cx.out.send(Delivery::new(stream.clone(), bytes)).await?;
                }
            }
            cx.out.send(Delivery::new(stream, Vec::new()).end()).await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tunnel(fields: serde_json::Value) -> serde_json::Value {
        let mut t =
            serde_json::json!({"vpn_id": "vpn-0123456789abcdef0", "tunnel_ip": "192.0.2.10"});
        t.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        t
    }

    fn build(url: &str, tunnels: serde_json::Value) -> Result<Box<dyn Source>, String> {
        let c: Config = serde_json::from_value(serde_json::json!({"url": url, "tunnels": tunnels}))
            .map_err(|e| e.to_string())?;
        c.build("t").map_err(|e| e.message)
    }

    #[test]
    fn configs_are_checked() {
        let url = "http://127.0.0.1:9100/metrics";
        let ok = tunnel(
            serde_json::json!({"bytes_in": "node_network_transmit_bytes_total{device=\"vti1\"}"}),
        );
        assert!(build(url, serde_json::json!([ok])).is_ok());
        let cases = [
            (serde_json::json!([]), "at least one tunnel"),
            (
                serde_json::json!([tunnel(serde_json::json!({}))]),
                "bytes_in or bytes_out",
            ),
            (
                serde_json::json!([tunnel(
                    serde_json::json!({"vpn_id": "vpn-x", "bytes_in": "a"})
                )]),
                "not a VPN connection id",
            ),
            (
                serde_json::json!([tunnel(serde_json::json!({"bytes_out": "a{b!=\"c\"}"}))]),
                "tunnels[0].bytes_out",
            ),
        ];
        for (tunnels, want) in cases {
            let e = build(url, tunnels.clone())
                .err()
                .unwrap_or_else(|| panic!("{tunnels}: accepted"));
            assert!(e.contains(want), "{tunnels}: {e}");
        }
        let e = build("ftp://x/metrics", serde_json::json!([ok]))
            .err()
            .unwrap();
        assert!(e.contains("http://"), "{e}");
    }

    #[test]
    fn a_scrape_becomes_a_traffic_record_in_aws_directions() {
        let (samples, _) = exposition::parse(
            "node_network_transmit_bytes_total{device=\"vti1\"} 1.5e+06\n\
             node_network_receive_bytes_total{device=\"vti1\"} 2000\n\
             node_network_transmit_packets_total{device=\"vti1\"} 1000 1796360400000\n\
             node_network_receive_packets_total{device=\"vti1\"} -1\n",
        );
        let sel = |s: &str| Some(Selector::parse(s).unwrap());
        let t = Tunnel {
            resource_id: "vpn-0123456789abcdef0_192.0.2.10".into(),
            series: [
                sel("node_network_transmit_bytes_total{device=\"vti1\"}"),
                sel("node_network_receive_bytes_total{device=\"vti1\"}"),
                sel("node_network_transmit_packets_total{device=\"vti1\"}"),
                sel("node_network_receive_packets_total{device=\"vti1\"}"),
            ],
            concentrator_id: None,
        };
        let line = record(&t, &samples, 5).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["bytes_in"], 1_500_000);
        assert_eq!(v["bytes_out"], 2000);
        assert_eq!(v["packets_in"], 1000);
        assert!(
            v.get("packets_out").is_none(),
            "a negative counter is dropped"
        );
        assert_eq!(v["event_timestamp"], 1_796_360_400_000i64);
        // The record parses as a traffic sample of that tunnel.
        let parsed =
            tunnelwatch_parsers::parse_all("scrape", line.as_bytes(), DecoderOptions::default());
        let [tunnelwatch_parsers::Parsed::Event(e)] = parsed.as_slice() else {
            panic!("{parsed:?}")
        };
        assert_eq!(e.tunnel_ip(), Some("192.0.2.10"));
        assert!(matches!(e.body, tunnelwatch_parsers::EventBody::Traffic(_)));
        // Series missing from the scrape: no record, and which ones.
        let (none, _) = exposition::parse("up 1\n");
        assert_eq!(
            record(&t, &none, 5),
            Err(vec!["bytes_in", "bytes_out", "packets_in", "packets_out"])
        );
    }
}
