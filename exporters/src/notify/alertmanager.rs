//! `type = "alertmanager"`: turns each alarm notification into a Prometheus Alertmanager alert
//! and POSTs it to `<url>/api/v2/alerts`, so tunnel alarms take the routes, silences and
//! receivers people already run. An ALARM fires the alert (`startsAt` = the state change,
//! `endsAt` = 24 h later, the longest it stays firing without news); an OK or
//! INSUFFICIENT_DATA resolves it (`endsAt` = the state change).
//!
//! Labels: `alertname` (the alarm's name), `alarm_instance`, `vpn_id`, `tunnel_ip` (per-tunnel
//! alarms), `severity` (the alarm's `severity`, `critical` by default), plus the configured
//! `labels`. Annotations: `summary`, `description` (CloudWatch's reason), `probable_cause`,
//! `diagnosis`, `remedy` (the tunnel's top diagnosis) and, when the gateway's logs are stored,
//! `fix_on` and `gateway_verdict` (the side to fix). A Health notification becomes an
//! alert named after its event type code (`event_arn`, `vpn_id`, `tunnel_ip`, severity
//! `warning`), firing from the event's start until it is closed. Alertmanager deduplicates by
//! label set, so a repeated delivery is harmless.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::webhook::Poster;
use super::{BuildError, Notifier, NotifyError};

/// How long a fired alert stays firing without a resolve (Alertmanager resolves it then).
const FIRING_FOR_MS: i64 = 24 * 3_600_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Alertmanager's base URL, e.g. `http://127.0.0.1:9093`.
    pub url: String,
    /// Labels added to every alert (e.g. `team = "network"`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Seconds a request may take (default 10).
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

fn default_timeout() -> u64 {
    10
}

impl Config {
    pub fn build(&self, name: &str) -> Result<Box<dyn Notifier>, BuildError> {
        let url = format!("{}/api/v2/alerts", self.url.trim_end_matches('/'));
        let poster = Poster::new(&url, self.timeout_seconds).map_err(|m| BuildError {
            name: name.to_owned(),
            message: m,
        })?;
        Ok(Box::new(AlertmanagerNotifier {
            labels: self.labels.clone(),
            poster,
        }))
    }
}

struct AlertmanagerNotifier {
    labels: BTreeMap<String, String>,
    poster: Poster,
}

/// `StateChangeTime` (`2025-11-30T01:15:00.123+0000`, CloudWatch's form) as epoch ms.
fn parse_time(s: &str) -> Option<i64> {
    tunnelwatch_parsers::time::parse_readable(s)
}

/// Alertmanager's time format (`2025-11-30T01:15:00.123Z`).
fn rfc(ms: i64) -> String {
    tunnelwatch_monitor::alarm::iso_time(ms).replace("+0000", "Z")
}

/// The `labels` of the notifier's configuration, the start of every alert's label set.
fn configured_labels(extra: &BTreeMap<String, String>) -> serde_json::Map<String, Value> {
    extra
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into()))
        .collect()
}

/// The alert of one notification (alarm or Health message), or `None` if the message lacks
/// what an alert needs.
pub fn alert(message: &Value, extra: &BTreeMap<String, String>) -> Option<Value> {
    if crate::health_message::is_health(message) {
        return health_alert(message, extra);
    }
    let tw = &message["Tunnelwatch"];
    let at = parse_time(message["StateChangeTime"].as_str()?)?;
    let mut labels = configured_labels(extra);
    labels.insert("alertname".into(), message["AlarmName"].clone());
    labels.insert("alarm_instance".into(), tw["AlarmInstance"].clone());
    labels.insert("vpn_id".into(), tw["VpnId"].clone());
    if let Some(ip) = tw["TunnelIpAddress"].as_str() {
        labels.insert("tunnel_ip".into(), ip.into());
    }
    // The definition's severity (critical unless it says otherwise).
    let severity = tw["Severity"].as_str().unwrap_or("critical");
    labels.insert("severity".into(), severity.into());
    let firing = message["NewStateValue"] == "ALARM";
    let ends = if firing { at + FIRING_FOR_MS } else { at };
    let cause: Vec<&str> = tw["ProbableCause"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    Some(json!({
        "labels": labels,
        "annotations": {
            "summary": tw["Summary"],
            "description": message["NewStateReason"],
            "probable_cause": cause.join(", "),
            "diagnosis": tw["Diagnosis"]["Title"].as_str().unwrap_or(""),
            "remedy": tw["Diagnosis"]["Remedy"].as_str().unwrap_or(""),
            "fix_on": tw["Diagnosis"]["FixOnText"].as_str().unwrap_or(""),
            "gateway_verdict": tw["Diagnosis"]["GatewayVerdict"].as_str().unwrap_or(""),
        },
        "startsAt": rfc(at),
        "endsAt": rfc(ends),
    }))
}

/// The alert of a Health message: `alertname` the event type code, severity `warning`, firing
/// from the event's start until its end once AWS (or the inference) closes it.
fn health_alert(message: &Value, extra: &BTreeMap<String, String>) -> Option<Value> {
    use tunnelwatch_parsers::time::parse_health_time;
    let detail = &message["detail"];
    let tw = &message["Tunnelwatch"];
    let code = detail["eventTypeCode"].as_str()?;
    let starts = parse_health_time(detail["startTime"].as_str()?)?;
    let notified = parse_health_time(message["time"].as_str()?)?;
    let ends = match (detail["statusCode"].as_str(), detail["endTime"].as_str()) {
        (Some("closed"), Some(end)) => parse_health_time(end)?,
        _ => notified + FIRING_FOR_MS,
    };
    let mut labels = configured_labels(extra);
    labels.insert("alertname".into(), code.into());
    labels.insert("event_arn".into(), detail["eventArn"].clone());
    if let Some(vpn) = detail["affectedEntities"][0]["entityValue"].as_str() {
        labels.insert("vpn_id".into(), vpn.into());
    }
    if let Some(ip) = tw["TunnelIpAddress"].as_str() {
        labels.insert("tunnel_ip".into(), ip.into());
    }
    labels.insert("severity".into(), "warning".into());
    Some(json!({
        "labels": labels,
        "annotations": {
            "summary": format!("AWS Health: {code}"),
            "description": detail["eventDescription"][0]["latestDescription"],
            "diagnosis": tw["Diagnosis"]["Title"].as_str().unwrap_or(""),
            "remedy": tw["Diagnosis"]["Remedy"].as_str().unwrap_or(""),
        },
        "startsAt": rfc(starts),
        "endsAt": rfc(ends),
    }))
}

impl Notifier for AlertmanagerNotifier {
    fn kind(&self) -> &'static str {
        "alertmanager"
    }

    fn deliver(&self, body: &[u8], _key: &str) -> Result<(), NotifyError> {
        let message: Value = serde_json::from_slice(body)
            .map_err(|e| NotifyError::Permanent(format!("not a notification: {e}")))?;
        let alert = alert(&message, &self.labels).ok_or_else(|| {
            NotifyError::Permanent("the notification lacks StateChangeTime or names".into())
        })?;
        let payload = serde_json::to_vec(&json!([alert])).expect("JSON serialises");
        self.poster.post(&payload, &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_health_notification_is_an_alert_of_its_event_type() {
        let (mut e, d) = crate::health_message::tests::sample();
        let m =
            crate::health_message::health_message(&e, 1_764_633_600_000, &[("vpn-1".into(), d)]);
        let a = alert(&m, &BTreeMap::new()).unwrap();
        assert_eq!(
            a["labels"]["alertname"],
            "AWS_VPN_SINGLE_TUNNEL_NOTIFICATION"
        );
        assert_eq!(a["labels"]["vpn_id"], "vpn-1");
        assert_eq!(a["labels"]["tunnel_ip"], "1.2.3.4");
        assert_eq!(a["labels"]["severity"], "warning");
        assert_eq!(
            a["annotations"]["diagnosis"],
            "Dead peer detection timeouts"
        );
        assert_eq!(a["annotations"]["description"], "One tunnel down.");
        // Closed: it ends at the event's end; open: it fires a day past the notification.
        assert_eq!(a["startsAt"], "2025-12-01T00:00:00.000Z");
        assert_eq!(a["endsAt"], "2026-01-01T00:00:00.000Z");
        e.status_code = "open";
        e.end_time = None;
        let a = alert(
            &crate::health_message::health_message(&e, 1_764_633_600_000, &[]),
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(a["endsAt"], "2025-12-03T00:00:00.000Z");
        assert_eq!(a["annotations"]["diagnosis"], "");
    }

    #[test]
    fn firing_and_resolving_alerts() {
        assert_eq!(parse_time("1970-01-01T00:00:00.000+0000"), Some(0));
        assert_eq!(
            parse_time("2025-11-30T01:15:00.123+0000"),
            Some(1_764_465_300_123)
        );
        let message = json!({
            "AlarmName": "vpn-tunnel-down",
            "NewStateValue": "ALARM",
            "NewStateReason": "Threshold Crossed: …",
            "StateChangeTime": "2025-11-30T01:15:00.000+0000",
            "Tunnelwatch": {"AlarmInstance": "vpn-tunnel-down/vpn-1/1.2.3.4", "VpnId": "vpn-1",
                            "TunnelIpAddress": "1.2.3.4", "Summary": "s",
                            "ProbableCause": ["dpd_timeout"]}
        });
        let extra = BTreeMap::from([("team".to_owned(), "net".to_owned())]);
        let a = alert(&message, &extra).unwrap();
        assert_eq!(a["labels"]["alertname"], "vpn-tunnel-down");
        assert_eq!(a["labels"]["tunnel_ip"], "1.2.3.4");
        assert_eq!(a["labels"]["team"], "net");
        assert_eq!(a["startsAt"], "2025-11-30T01:15:00.000Z");
        assert_eq!(a["endsAt"], "2025-12-01T01:15:00.000Z");
        assert_eq!(a["annotations"]["probable_cause"], "dpd_timeout");
        let mut ok = message.clone();
        ok["NewStateValue"] = "OK".into();
        assert_eq!(
            alert(&ok, &extra).unwrap()["endsAt"],
            "2025-11-30T01:15:00.000Z"
        );
    }
}
