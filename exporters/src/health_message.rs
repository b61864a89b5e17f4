//! The notification of a Health event, in the shape Amazon EventBridge delivers AWS Health
//! events (`version`, `id`, `detail-type: "AWS Health Event"`, `source: "aws.health"`,
//! `account`, `time`, `region`, `resources`, `detail{eventArn, service: "VPN", eventTypeCode,
//! eventTypeCategory, eventScopeCode, communicationId, startTime, endTime, lastUpdatedTime,
//! statusCode, eventRegion, eventDescription[{language, latestDescription}],
//! affectedEntities[{entityValue}], affectedAccount}`), so rules and integrations written for
//! AWS Health read it unchanged, plus `Tunnelwatch{Inferred, ConfirmedBy, TunnelIpAddress,
//! IdempotencyKey, Diagnosis, Diagnoses}` (`ConfirmedBy`: the AWS event that confirms an
//! inferred one; `Diagnoses`: the affected connections' diagnoses, as in alarm messages, with
//! `VpnId`; `Diagnosis`: the most confident of them).
//!
//! Invariants: the same event and notification time render the same bytes; the key is
//! `<event arn>@<notification time ms>`. Limits: tunnelwatch knows no AWS account or Region
//! (`account` is `000000000000`, `region` `global`); the times inside `detail` are written
//! the way AWS Health writes them (RFC 1123, `Sat, 11 Jun 2022 00:00:00 GMT`).

use std::sync::Arc;

use serde_json::{Value, json};
use tunnelwatch_monitor::alarm::iso_time;
use tunnelwatch_monitor::diagnose::Diagnosis;
use tunnelwatch_monitor::health::HealthEvent;

/// `<event arn>@<notification time ms>`.
pub fn health_idempotency_key(e: &HealthEvent, notified_ms: i64) -> String {
    format!("{}@{notified_ms}", e.event_arn)
}

/// `Sat, 11 Jun 2022 00:00:00 GMT`.
pub fn rfc1123(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // iso_time: yyyy-MM-ddTHH:mm:ss.SSS+0000
    let iso = iso_time(ms);
    let month: usize = iso[5..7].parse().expect("iso_time has a month");
    let weekday = DAYS[ms.div_euclid(86_400_000).rem_euclid(7) as usize];
    format!(
        "{weekday}, {} {} {} {} GMT",
        &iso[8..10],
        MONTHS[month - 1],
        &iso[0..4],
        &iso[11..19]
    )
}

/// The EventBridge-shaped message of `e`, notified at `notified_ms`, with the `diagnoses` of
/// its connections (`Diagnoses`, each with its `VpnId`; `Diagnosis`: the most confident).
pub fn health_message(
    e: &HealthEvent,
    notified_ms: i64,
    diagnoses: &[(Arc<str>, Diagnosis)],
) -> Value {
    use crate::alarm_message::diagnosis_json;
    let top = diagnoses
        .iter()
        .max_by(|a, b| a.1.confidence.total_cmp(&b.1.confidence));
    let each: Vec<Value> = diagnoses
        .iter()
        .map(|(vpn, d)| {
            let mut v = diagnosis_json(d);
            v["VpnId"] = json!(&**vpn);
            v
        })
        .collect();
    let key = health_idempotency_key(e, notified_ms);
    let vpns: Vec<&str> = e.connections.keys().map(|v| &**v).collect();
    json!({
        "version": "0",
        "id": format!("tunnelwatch-{:016x}", fnv(&key)),
        "detail-type": "AWS Health Event",
        "source": "aws.health",
        "account": "000000000000",
        "time": iso_time(notified_ms).replace(".000+0000", "Z"),
        "region": "global",
        "resources": vpns,
        "detail": {
            "eventArn": e.event_arn,
            "service": "VPN",
            "eventTypeCode": e.event_type_code,
            "eventTypeCategory": "accountNotification",
            "eventScopeCode": "ACCOUNT_SPECIFIC",
            "communicationId": key,
            "startTime": rfc1123(e.start_time),
            "endTime": e.end_time.map(rfc1123),
            "lastUpdatedTime": rfc1123(e.last_updated_time),
            "statusCode": e.status_code,
            "eventRegion": "global",
            "eventDescription": [{"language": "en_US", "latestDescription": e.description}],
            "affectedEntities": vpns.iter().map(|v| json!({"entityValue": v})).collect::<Vec<_>>(),
            "affectedAccount": "000000000000",
        },
        "Tunnelwatch": {
            "Inferred": true,
            "ConfirmedBy": e.confirmed_by,
            "TunnelIpAddress": e.tunnel_ip.as_deref(),
            "IdempotencyKey": key,
            "Diagnosis": top.map(|(_, d)| diagnosis_json(d)),
            "Diagnoses": each,
        },
    })
}

/// Whether a notification body is a Health message (else an alarm message).
pub fn is_health(message: &Value) -> bool {
    message["source"] == "aws.health" && message["detail-type"] == "AWS Health Event"
}

/// A stable 64-bit hash (FNV-1a) for the event id: the same on every run and platform.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn rfc1123_as_aws_health_writes_it() {
        // 2022-06-11T00:00:00Z, a Saturday.
        assert_eq!(rfc1123(1_654_905_600_000), "Sat, 11 Jun 2022 00:00:00 GMT");
        assert_eq!(rfc1123(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            rfc1123(1_764_547_200_000 + 3_723_000),
            "Mon, 01 Dec 2025 01:02:03 GMT"
        );
    }

    /// A closed single-tunnel event of vpn-1 (tunnel 1.2.3.4) and a DPD diagnosis of it.
    pub(crate) fn sample() -> (HealthEvent, Diagnosis) {
        let mut e = HealthEvent {
            event_arn: "arn:aws:health:global::event/VPN/X/tunnelwatch-2025-12".into(),
            event_type_code: "AWS_VPN_SINGLE_TUNNEL_NOTIFICATION",
            start_time: 1_764_547_200_000,
            end_time: Some(1_767_225_600_000),
            last_updated_time: 1_764_633_600_000,
            status_code: "closed",
            connections: Default::default(),
            notified: vec![],
            tunnel_ip: Some("1.2.3.4".into()),
            description: "One tunnel down.".into(),
            confirmed_by: None,
        };
        e.connections.insert("vpn-1".into(), 1_764_547_200_000);
        let d = Diagnosis {
            cause: "dpd-flapping",
            title: "Dead peer detection timeouts",
            tunnel_ip: "1.2.3.4".into(),
            from_ms: 1_764_550_800_000,
            until_ms: Some(1_764_558_000_000),
            tunnel_down: true,
            confidence: 0.84,
            episodes: 1,
            recurs_after_ms: None,
            evidence: vec![],
            remedy: "Check the uplink.",
            gateway: None,
        };
        (e, d)
    }

    #[test]
    fn carries_the_diagnoses_of_its_connections() {
        let (e, d) = sample();
        let m = health_message(&e, 1_764_633_600_000, &[("vpn-1".into(), d)]);
        assert!(is_health(&m));
        let tw = &m["Tunnelwatch"];
        assert_eq!(tw["Diagnosis"]["Cause"], "dpd-flapping");
        assert_eq!(tw["Diagnosis"]["Since"], "2025-12-01T01:00:00.000+0000");
        assert_eq!(tw["Diagnoses"][0]["VpnId"], "vpn-1");
        assert_eq!(tw["Diagnoses"][0]["Remedy"], "Check the uplink.");
        let none = health_message(&e, 1_764_633_600_000, &[]);
        assert_eq!(none["Tunnelwatch"]["Diagnosis"], Value::Null);
        assert_eq!(none["Tunnelwatch"]["Diagnoses"], json!([]));
    }

    #[test]
    fn eventbridge_shape() {
        let mut e = HealthEvent {
            event_arn: "arn:aws:health:global::event/VPN/X/tunnelwatch-2025-12".into(),
            event_type_code: "AWS_VPN_SINGLE_TUNNEL_NOTIFICATION",
            start_time: 1_764_547_200_000,
            end_time: None,
            last_updated_time: 1_764_633_600_000,
            status_code: "open",
            connections: Default::default(),
            notified: vec![],
            tunnel_ip: None,
            description: "d".into(),
            confirmed_by: None,
        };
        e.connections.insert("vpn-1".into(), 1_764_547_200_000);
        let m = health_message(&e, 1_764_633_600_000, &[]);
        assert_eq!(m["detail-type"], "AWS Health Event");
        assert_eq!(m["source"], "aws.health");
        assert_eq!(m["detail"]["service"], "VPN");
        assert_eq!(m["detail"]["affectedEntities"][0]["entityValue"], "vpn-1");
        assert_eq!(m["detail"]["startTime"], "Mon, 01 Dec 2025 00:00:00 GMT");
        assert_eq!(m["time"], "2025-12-02T00:00:00Z");
        assert_eq!(m, health_message(&e, 1_764_633_600_000, &[]));
    }
}
