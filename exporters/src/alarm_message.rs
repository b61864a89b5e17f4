//! The notification of one alarm state change, in the JSON shape CloudWatch publishes to an SNS
//! topic (`AlarmName`, `NewStateValue`, `NewStateReason`, `StateChangeTime`, `OldStateValue`,
//! `Trigger{MetricName, Namespace, StatisticType, Statistic, Unit, Dimensions[{value, name}],
//! Period, EvaluationPeriods, DatapointsToAlarm, ComparisonOperator, Threshold,
//! TreatMissingData, EvaluateLowSampleCountPercentile}`, …), so integrations written for
//! CloudWatch read it unchanged, plus one key CloudWatch does not have, `Tunnelwatch`: the
//! instance, the tunnel, the probable cause and an idempotency key.
//!
//! Invariants: the same transition always renders the same bytes (keys sorted, times
//! from the transition), so a retried delivery is byte-identical; `Tunnelwatch.IdempotencyKey`
//! is `<instance>@<state change time ms>:<new state>`, unique per transition.
//! Limits: CloudWatch's `Statistic` is upper case in SNS messages (`AVERAGE`), its `Dimensions`
//! the alarm's concrete ones (the instance's, not the `*` of the definition). There is no AWS
//! account: `AWSAccountId` and the ARN carry the configured `account_id` (default
//! `000000000000`).

use serde_json::{Value, json};
use tunnelwatch_monitor::alarm::{AlarmDefinition, Transition, iso_time};

/// What a message says beyond the transition and its definition.
#[derive(Debug, Clone, Default)]
pub struct MessageContext<'a> {
    /// `AWSAccountId` (default `000000000000`).
    pub account_id: Option<&'a str>,
    /// `Region` (default `tunnelwatch`).
    pub region: Option<&'a str>,
    /// Where to look: the status page of the tunnel.
    pub status_url: Option<&'a str>,
    /// The message kinds the logs showed before the change, newest first (e.g. `dpd_timeout`).
    pub probable_cause: &'a [String],
    /// The tunnel's top diagnosis at the change (`tunnelwatch diagnose`), when there is one.
    pub diagnosis: Option<&'a tunnelwatch_monitor::diagnose::Diagnosis>,
}

/// `Tunnelwatch.Diagnosis` of a notification (alarm or Health): the cause, where and since
/// when, how sure, the evidence and the remedy.
pub fn diagnosis_json(d: &tunnelwatch_monitor::diagnose::Diagnosis) -> Value {
    let mut v = json!({
        "Cause": d.cause,
        "Title": d.title,
        "TunnelIpAddress": &*d.tunnel_ip,
        "Since": iso_time(d.from_ms),
        "Confidence": d.confidence,
        "Evidence": d.evidence.iter().map(|e| format!("{} x{}", e.message_kind, e.count)).collect::<Vec<_>>(),
        "Remedy": d.remedy,
    });
    // With the customer gateway's logs stored: which side to fix, and what the gateway said.
    if let Some(g) = &d.gateway {
        v["FixOn"] = json!(g.side);
        v["FixOnText"] = json!(g.side.as_str());
        v["GatewayVerdict"] = json!(g.verdict);
        v["GatewayEvidence"] = g
            .evidence
            .iter()
            .map(|e| format!("{} {} x{}", e.daemon, e.gateway_kind, e.count))
            .collect();
    }
    v
}

/// `<instance>@<state change time ms>:<new state>`: unique per transition, the same on every
/// delivery of it.
pub fn idempotency_key(t: &Transition) -> String {
    format!("{}@{}:{}", t.instance_id, t.ts, t.new_state.as_str())
}

/// The SNS-shaped message of `t`, a transition of the alarm `def`.
pub fn alarm_message(def: &AlarmDefinition, t: &Transition, cx: &MessageContext) -> Value {
    let account = cx.account_id.unwrap_or("000000000000");
    let region = cx.region.unwrap_or("tunnelwatch");
    let mut dimensions = vec![json!({"value": &*t.vpn_id, "name": "VpnId"})];
    if let Some(ip) = &t.tunnel_ip {
        dimensions.push(json!({"value": &**ip, "name": "TunnelIpAddress"}));
    }
    let tunnel = match &t.tunnel_ip {
        Some(ip) => format!("tunnel {ip} of {}", t.vpn_id),
        None => format!("VPN connection {}", t.vpn_id),
    };
    let headline = match t.new_state.as_str() {
        "ALARM" => format!("{}: {tunnel} is in ALARM", def.name),
        "OK" => format!("{}: {tunnel} is OK again", def.name),
        _ => format!("{}: {tunnel} has insufficient data", def.name),
    };
    json!({
        "AlarmName": &*t.alarm_name,
        "AlarmDescription": def.description,
        "AWSAccountId": account,
        "NewStateValue": t.new_state.as_str(),
        "NewStateReason": t.reason,
        "StateChangeTime": iso_time(t.ts),
        "Region": region,
        "AlarmArn": format!("arn:aws:cloudwatch:{region}:{account}:alarm:{}", t.alarm_name),
        "OldStateValue": t.old_state.as_str(),
        "OKActions": def.actions.ok,
        "AlarmActions": def.actions.alarm,
        "InsufficientDataActions": def.actions.insufficient_data,
        "Trigger": {
            "MetricName": def.metric,
            "Namespace": def.namespace,
            "StatisticType": "Statistic",
            "Statistic": def.statistic.as_str().to_ascii_uppercase(),
            "Unit": null,
            "Dimensions": dimensions,
            "Period": def.period,
            "EvaluationPeriods": def.evaluation_periods,
            "DatapointsToAlarm": def.datapoints_to_alarm(),
            "ComparisonOperator": def.comparison.as_str(),
            "Threshold": def.threshold,
            "TreatMissingData": def.treat_missing_data.as_str(),
            "EvaluateLowSampleCountPercentile": "",
        },
        "Tunnelwatch": {
            "Summary": headline,
            "AlarmInstance": &*t.instance_id,
            "VpnId": &*t.vpn_id,
            "TunnelIpAddress": t.tunnel_ip.as_deref(),
            "ProbableCause": cx.probable_cause,
            "StatusPage": cx.status_url,
            "IdempotencyKey": idempotency_key(t),
            "RecoveryPeriods": def.recovery_periods,
            "Severity": def.severity.as_str(),
            "Diagnosis": cx.diagnosis.map(diagnosis_json),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_change_time_is_cloudwatchs_form() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00.000+0000");
        assert_eq!(iso_time(1_764_465_300_123), "2025-11-30T01:15:00.123+0000");
        assert_eq!(iso_time(951_782_400_000), "2000-02-29T00:00:00.000+0000");
    }

    #[test]
    fn a_diagnosis_carries_the_gateways_side_when_there_is_one() {
        use std::sync::Arc;
        use tunnelwatch_monitor::diagnose::Diagnosis;
        use tunnelwatch_monitor::diagnose::gateway::{GatewayEvidence, GatewayVerdict, Side};
        let mut d = Diagnosis {
            cause: "psk-mismatch",
            title: "Pre-shared key mismatch",
            tunnel_ip: Arc::from("192.0.2.10"),
            from_ms: 0,
            until_ms: None,
            tunnel_down: true,
            confidence: 0.95,
            episodes: 1,
            recurs_after_ms: None,
            evidence: Vec::new(),
            remedy: "r",
            gateway: None,
        };
        assert!(diagnosis_json(&d).get("FixOn").is_none());
        d.gateway = Some(GatewayVerdict {
            side: Side::CustomerGateway,
            verdict: "the keys differ".into(),
            evidence: vec![GatewayEvidence {
                daemon: Arc::from("strongswan"),
                gateway_kind: "auth_failed",
                count: 2,
                first_ms: 0,
                last_ms: 1,
                example: Arc::from("received AUTHENTICATION_FAILED notify error"),
            }],
            proposals: Vec::new(),
        });
        let v = diagnosis_json(&d);
        assert_eq!(v["FixOn"], "customer_gateway");
        assert_eq!(v["FixOnText"], "customer gateway");
        assert_eq!(v["GatewayVerdict"], "the keys differ");
        assert_eq!(v["GatewayEvidence"], json!(["strongswan auth_failed x2"]));
    }
}
