//! AWS Health events about VPN connections, as records: what tunnelwatch's own inferences are
//! checked against.
//!
//! Accepted shapes (each one JSON document, in any envelope the decoder reads):
//! - an AWS Health event as Amazon EventBridge delivers it (`"source": "aws.health"` or
//!   `"detail-type": "AWS Health Event"`, the event in `detail`: `eventArn`, `service`,
//!   `eventTypeCode`, `eventTypeCategory`, `startTime`, `endTime`, `lastUpdatedTime`,
//!   `statusCode`, `eventRegion`, `eventDescription[].latestDescription`,
//!   `affectedEntities[].entityValue`; `resources` when there are no entities);
//! - `aws health describe-events` output (`events[]` of `arn`, `eventTypeCode`, …);
//! - `aws health describe-event-details` output (`successfulSet[]` of `event` and
//!   `eventDescription`);
//! - `aws health describe-affected-entities` output (`entities[]` of `eventArn`, `entityValue`):
//!   these carry only the event and its entities, and are joined to the event by its ARN where
//!   the events are read back.
//!
//! Times may be RFC 1123 (`Sat, 11 Jun 2022 00:00:00 GMT`, as EventBridge's `detail` writes
//! them), RFC 3339 / ISO 8601 (the CLI v2) or epoch seconds (the CLI v1).
//!
//! Invariants: a document is recognised as Health only by the keys above; anything else is left
//! to the log-record path. An event without an ARN is an error, not a guess. Each event keeps the
//! JSON of the document it came from (`raw`), so nothing AWS said is lost.

use serde_json::Value;

use crate::error::ParseError;
use crate::event::AwsHealth;
use crate::time;

/// Whether `v` is one of the shapes above (cheap: looks at keys only).
pub(crate) fn is_health(v: &Value) -> bool {
    let Some(o) = v.as_object() else {
        return false;
    };
    let item_is = |key: &str, test: &dyn Fn(&Value) -> bool| {
        o.get(key)
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty() && a.iter().all(test))
    };
    o.get("source").and_then(Value::as_str) == Some("aws.health")
        || o.get("detail-type").and_then(Value::as_str) == Some("AWS Health Event")
        || (o.contains_key("arn") && o.contains_key("eventTypeCode"))
        || item_is("events", &|e| {
            e.get("arn").is_some() && e.get("eventTypeCode").is_some()
        })
        || item_is("successfulSet", &|e| e.get("event").is_some())
        || item_is("entities", &|e| {
            e.get("eventArn").is_some() && e.get("entityValue").is_some()
        })
}

/// The Health events of a document [`is_health`] accepted.
pub(crate) fn events(v: &Value) -> Result<Vec<AwsHealth>, ParseError> {
    let o = v.as_object().expect("is_health checked for an object");
    let list = |key: &str| o.get(key).and_then(Value::as_array);
    if let Some(detail) = o.get("detail").filter(|_| !o.contains_key("arn")) {
        let mut e = event(detail, "detail.eventArn", &v.to_string())?;
        if e.entities.is_empty() {
            e.entities = strings(o.get("resources"));
        }
        e.region = e.region.or_else(|| text(o.get("region")));
        return Ok(vec![e]);
    }
    if let Some(items) = list("events") {
        return items
            .iter()
            .map(|i| event(i, "events[].arn", &i.to_string()))
            .collect();
    }
    if let Some(items) = list("successfulSet") {
        return items
            .iter()
            .map(|i| {
                let mut e = event(&i["event"], "successfulSet[].event.arn", &i.to_string())?;
                e.description = text(
                    i.get("eventDescription")
                        .and_then(|d| d.get("latestDescription")),
                );
                Ok(e)
            })
            .collect();
    }
    if let Some(items) = list("entities") {
        return items
            .iter()
            .map(|i| {
                Ok(AwsHealth {
                    event_arn: required(i, "eventArn", "entities[].eventArn")?,
                    entities: strings(Some(&Value::Array(vec![i["entityValue"].clone()]))),
                    last_updated_time: time_of(i, "lastUpdatedTime")?,
                    raw: i.to_string(),
                    ..AwsHealth::default()
                })
            })
            .collect();
    }
    Ok(vec![event(v, "arn", &v.to_string())?])
}

/// One event object (EventBridge `detail`, or a CLI event).
fn event(v: &Value, arn_field: &'static str, raw: &str) -> Result<AwsHealth, ParseError> {
    let arn = text(v.get("eventArn")).or_else(|| text(v.get("arn")));
    let Some(event_arn) = arn else {
        return Err(ParseError::BadField {
            field: arn_field,
            reason: "an AWS Health event needs its ARN".into(),
        });
    };
    let entities = match v.get("affectedEntities").and_then(Value::as_array) {
        Some(list) => list
            .iter()
            .filter_map(|e| text(e.get("entityValue")))
            .collect(),
        None => Vec::new(),
    };
    let description = v
        .get("eventDescription")
        .and_then(|d| match d {
            Value::Array(a) => a.first().cloned(),
            other => Some(other.clone()),
        })
        .and_then(|d| text(d.get("latestDescription")));
    Ok(AwsHealth {
        event_arn,
        service: text(v.get("service")),
        event_type_code: text(v.get("eventTypeCode")),
        event_type_category: text(v.get("eventTypeCategory")),
        region: text(v.get("eventRegion")).or_else(|| text(v.get("region"))),
        start_time: time_of(v, "startTime")?,
        end_time: time_of(v, "endTime")?,
        last_updated_time: time_of(v, "lastUpdatedTime")?,
        status_code: text(v.get("statusCode")),
        entities,
        description,
        raw: raw.to_owned(),
    })
}

fn required(v: &Value, key: &str, field: &'static str) -> Result<String, ParseError> {
    text(v.get(key)).ok_or_else(|| ParseError::BadField {
        field,
        reason: "missing".into(),
    })
}

fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| text(Some(s))).collect())
        .unwrap_or_default()
}

/// A time in any of the forms AWS Health uses; `null` and absent are `None`, anything else that
/// does not read as a time is an error naming the field.
fn time_of(v: &Value, key: &'static str) -> Result<Option<i64>, ParseError> {
    let bad = |reason: String| ParseError::BadField { field: key, reason };
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .and_then(time::epoch_to_ms)
            .map(Some)
            .ok_or_else(|| bad(format!("{n} is not an epoch time"))),
        Some(Value::String(s)) => time::parse_health_time(s)
            .map(Some)
            .ok_or_else(|| bad(format!("{s:?} is not an RFC 1123 or ISO 8601 time"))),
        Some(other) => Err(bad(format!("{other} is not a time"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_aws_health_writes_them() {
        let june_11 = Some(1_654_905_600_000);
        for s in [
            "Sat, 11 Jun 2022 00:00:00 GMT",
            "2022-06-11T00:00:00Z",
            "2022-06-11T00:00:00.000000+00:00",
            "2022-06-11T02:00:00+02:00",
        ] {
            assert_eq!(time::parse_health_time(s), june_11, "{s}");
        }
        assert_eq!(time::parse_health_time("yesterday"), None);
    }
}
