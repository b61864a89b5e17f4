//! `type = "slack"`: posts each alarm notification to a Slack incoming webhook as a short text:
//! the state, the alarm, the tunnel, CloudWatch's reason, the probable cause, the diagnosis and a
//! link to the status page (`status_url`); a Health notification as its event type, status,
//! connection, description and diagnosis. Slack answers 2xx when it took the message; its 429 and 5xx are
//! retried by the outbox.

use serde::Deserialize;
use serde_json::{Value, json};

use super::webhook::Poster;
use super::{BuildError, Notifier, NotifyError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The incoming webhook URL (`https://hooks.slack.com/services/…`).
    pub url: String,
    /// tunnelwatch's status page, linked from each message (e.g. `http://tw.example:9977/`).
    #[serde(default)]
    pub status_url: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

fn default_timeout() -> u64 {
    10
}

impl Config {
    pub fn build(&self, name: &str) -> Result<Box<dyn Notifier>, BuildError> {
        let poster = Poster::new(&self.url, self.timeout_seconds).map_err(|m| BuildError {
            name: name.to_owned(),
            message: m,
        })?;
        Ok(Box::new(SlackNotifier {
            status_url: self.status_url.clone(),
            poster,
        }))
    }
}

struct SlackNotifier {
    status_url: Option<String>,
    poster: Poster,
}

/// The Slack text of one notification: an alarm message, or a Health one.
pub fn text(message: &Value, status_url: Option<&str>) -> String {
    if crate::health_message::is_health(message) {
        return health_text(message, status_url);
    }
    let tw = &message["Tunnelwatch"];
    let state = message["NewStateValue"].as_str().unwrap_or("?");
    let icon = match state {
        "ALARM" => ":red_circle:",
        "OK" => ":large_green_circle:",
        _ => ":white_circle:",
    };
    let tunnel = subject(tw, tw["VpnId"].as_str().unwrap_or("?"));
    let mut text = format!(
        "{icon} *{state}* `{}` — {tunnel}\n{}",
        message["AlarmName"].as_str().unwrap_or("?"),
        message["NewStateReason"].as_str().unwrap_or("")
    );
    let causes: Vec<&str> = tw["ProbableCause"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !causes.is_empty() {
        text.push_str(&format!(
            "\nProbable cause (from the logs): {}",
            causes.join(", ")
        ));
    }
    push_diagnosis_and_link(&mut text, tw, status_url);
    text
}

/// The Slack text of a Health notification (EventBridge shape): the event type, its status,
/// the connection and tunnel, AWS's description, the diagnosis.
fn health_text(message: &Value, status_url: Option<&str>) -> String {
    let detail = &message["detail"];
    let tw = &message["Tunnelwatch"];
    let vpn = detail["affectedEntities"][0]["entityValue"]
        .as_str()
        .unwrap_or("?");
    let tunnel = subject(tw, vpn);
    let mut text = format!(
        ":warning: *AWS Health* `{}` ({}) — {tunnel}\n{}",
        detail["eventTypeCode"].as_str().unwrap_or("?"),
        detail["statusCode"].as_str().unwrap_or("?"),
        detail["eventDescription"][0]["latestDescription"]
            .as_str()
            .unwrap_or("")
    );
    push_diagnosis_and_link(&mut text, tw, status_url);
    text
}

/// "tunnel IP of VPN" when the message names a tunnel, else "VPN connection VPN".
fn subject(tw: &Value, vpn: &str) -> String {
    match tw["TunnelIpAddress"].as_str() {
        Some(ip) => format!("tunnel {ip} of {vpn}"),
        None => format!("VPN connection {vpn}"),
    }
}

fn push_diagnosis_and_link(text: &mut String, tw: &Value, status_url: Option<&str>) {
    let d = &tw["Diagnosis"];
    if let (Some(title), Some(remedy)) = (d["Title"].as_str(), d["Remedy"].as_str()) {
        text.push_str(&format!("\nDiagnosis: *{title}* — {remedy}"));
    }
    if let (Some(side), Some(verdict)) = (d["FixOnText"].as_str(), d["GatewayVerdict"].as_str()) {
        text.push_str(&format!("\nFix on: *{side}* — {verdict}"));
    }
    if let Some(url) = status_url {
        text.push_str(&format!("\n<{url}|Status page>"));
    }
}

impl Notifier for SlackNotifier {
    fn kind(&self) -> &'static str {
        "slack"
    }

    fn deliver(&self, body: &[u8], _key: &str) -> Result<(), NotifyError> {
        let message: Value = serde_json::from_slice(body)
            .map_err(|e| NotifyError::Permanent(format!("not a notification: {e}")))?;
        let payload = json!({ "text": text(&message, self.status_url.as_deref()) });
        self.poster
            .post(&serde_json::to_vec(&payload).expect("JSON serialises"), &[])
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_server::server;
    use super::*;

    #[test]
    fn posts_the_text_naming_tunnel_state_and_cause() {
        let (url, handle) = server(vec![200]);
        let n = Config {
            url,
            status_url: Some("http://tw:9977/".into()),
            timeout_seconds: 5,
        }
        .build("s")
        .unwrap();
        let message = json!({
            "AlarmName": "vpn-tunnel-down", "NewStateValue": "ALARM",
            "NewStateReason": "Threshold Crossed: 3 out of the last 3 datapoints …",
            "Tunnelwatch": {"VpnId": "vpn-1", "TunnelIpAddress": "1.2.3.4",
                            "ProbableCause": ["dpd_timeout", "ike_sa_deleted"]}
        });
        n.deliver(&serde_json::to_vec(&message).unwrap(), "k")
            .unwrap();
        let seen = handle.join().unwrap();
        let posted: Value = serde_json::from_slice(&seen[0].1).unwrap();
        assert_eq!(
            posted["text"],
            ":red_circle: *ALARM* `vpn-tunnel-down` — tunnel 1.2.3.4 of vpn-1\n\
             Threshold Crossed: 3 out of the last 3 datapoints …\n\
             Probable cause (from the logs): dpd_timeout, ike_sa_deleted\n\
             <http://tw:9977/|Status page>"
        );
    }

    #[test]
    fn a_health_notification_reads_as_one() {
        let (e, d) = crate::health_message::tests::sample();
        let m =
            crate::health_message::health_message(&e, 1_764_633_600_000, &[("vpn-1".into(), d)]);
        assert_eq!(
            text(&m, None),
            ":warning: *AWS Health* `AWS_VPN_SINGLE_TUNNEL_NOTIFICATION` (closed) — tunnel 1.2.3.4 \
             of vpn-1\nOne tunnel down.\nDiagnosis: *Dead peer detection timeouts* — Check the \
             uplink."
        );
    }
}
