//! One JSON document to either a record's [`Fields`] or an envelope that carries records
//! (CLI `events[]`, subscription `logEvents[]`, Firehose `records[]`, a JSON array).
//!
//! A hand-written serde visitor reads the object in one pass, borrowing strings from the input
//! where they need no unescaping, so that the common NDJSON record costs no more than a
//! generic `serde_json::Value` parse (usually less: keys are never allocated).
//! Values are tolerated in the forms seen in the wild: numbers as strings, booleans as
//! `"True"`/`"False"`, `message` as object, text or `null`.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::{Fields, Key, RouteFields};
use crate::error::ParseError;

/// A CloudWatch Logs event, as `aws logs filter-log-events`/`get-log-events` print it and as a
/// subscription payload carries it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CwEvent<'a> {
    #[serde(borrow, default)]
    pub log_stream_name: Option<Cow<'a, str>>,
    #[serde(default)]
    pub timestamp: Option<i64>,
    #[serde(borrow, default)]
    pub message: Option<Cow<'a, str>>,
    #[serde(default)]
    pub ingestion_time: Option<i64>,
}

/// A Kinesis Data Firehose HTTP endpoint request record.
#[derive(Debug, Deserialize)]
pub(crate) struct FirehoseRecord<'a> {
    #[serde(borrow)]
    pub data: Cow<'a, str>,
}

/// What a JSON document turned out to be.
#[derive(Debug)]
pub(crate) enum JsonDoc<'a> {
    Record(Box<Fields<'a>>),
    /// `aws logs filter-log-events` / `get-log-events` output.
    CliEvents(Vec<CwEvent<'a>>),
    /// CloudWatch Logs subscription payload.
    Subscription {
        message_type: Option<Cow<'a, str>>,
        log_stream: Option<Cow<'a, str>>,
        events: Vec<CwEvent<'a>>,
    },
    /// Firehose HTTP endpoint request.
    Firehose {
        records: Vec<FirehoseRecord<'a>>,
    },
    /// A JSON array of records (or of anything: each element is judged on its own).
    Array(Vec<&'a RawValue>),
    /// A string, number, boolean or null: not a record.
    Scalar(&'static str),
}

pub(crate) fn parse(text: &str) -> Result<JsonDoc<'_>, ParseError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let doc = de
        .deserialize_any(DocVisitor)
        .map_err(|e| ParseError::InvalidJson(e.to_string()))?;
    de.end()
        .map_err(|e| ParseError::InvalidJson(e.to_string()))?;
    Ok(doc)
}

// ---------------------------------------------------------------------------------------------
// Borrowing scalar helpers

/// A string that borrows from the input when it has no escapes.
struct CowStr<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Any JSON scalar; objects and arrays are refused.
enum Scalar<'a> {
    Str(Cow<'a, str>),
    U64(u64),
    I64(i64),
    F64(f64),
    Bool(bool),
    Null,
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number, boolean or null")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Scalar::U64(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar::I64(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar::F64(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
        }
        d.deserialize_any(V)
    }
}

fn bad<E: de::Error>(key: &str, what: &str) -> E {
    E::custom(format_args!("field `{key}`: {what}"))
}

/// Stores a scalar under `key` in `fields`, converting as the key requires.
fn set_scalar<'a, E: de::Error>(
    fields: &mut Fields<'a>,
    key: Key,
    name: &str,
    value: Scalar<'a>,
) -> Result<(), E> {
    use Key::*;
    match value {
        Scalar::Null => {
            fields.saw(key);
            Ok(())
        }
        Scalar::Str(s) => {
            if fields.set_text(key, s) {
                Ok(())
            } else {
                Err(bad(name, "not a valid value"))
            }
        }
        Scalar::Bool(b) => {
            fields.saw(key);
            match key {
                DpdEnabled => fields.dpd_enabled = Some(b),
                NatTDetected => fields.nat_t_detected = Some(b),
                _ => return Err(bad(name, "unexpected boolean")),
            }
            Ok(())
        }
        Scalar::U64(n) => set_number(fields, key, name, n as f64, Some(n as i64), Some(n)),
        Scalar::I64(n) => set_number(fields, key, name, n as f64, Some(n), u64::try_from(n).ok()),
        Scalar::F64(n) => set_number(fields, key, name, n, None, None),
    }
}

fn set_number<E: de::Error>(
    fields: &mut Fields<'_>,
    key: Key,
    name: &str,
    as_f64: f64,
    as_i64: Option<i64>,
    as_u64: Option<u64>,
) -> Result<(), E> {
    use Key::*;
    fields.saw(key);
    match key {
        // A numeric `timestamp` is an epoch value like `event_timestamp`.
        EventTimestamp => fields.event_timestamp = Some(as_f64),
        Timestamp => {
            fields.event_timestamp.get_or_insert(as_f64);
        }
        LocalPref | Med | Weight => {
            let n = as_i64.ok_or_else(|| bad(name, "expected an integer"))?;
            match key {
                LocalPref => fields.route.local_pref = Some(n),
                Med => fields.route.med = Some(n),
                _ => fields.route.weight = Some(n),
            }
        }
        BytesIn | BytesOut | PacketsIn | PacketsOut => {
            let n = as_u64.ok_or_else(|| bad(name, "expected a non-negative integer"))?;
            fields.set_counter(key, n);
        }
        DpdEnabled | NatTDetected => {
            let b = match as_i64 {
                Some(0) => false,
                Some(1) => true,
                _ => return Err(bad(name, "expected a boolean")),
            };
            if key == DpdEnabled {
                fields.dpd_enabled = Some(b);
            } else {
                fields.nat_t_detected = Some(b);
            }
        }
        _ => return Err(bad(name, "expected a string, found a number")),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The BGP `message` object

#[derive(Default)]
struct BgpMessage<'a> {
    details: Option<Cow<'a, str>>,
    route: RouteFields<'a>,
    extra: Vec<(String, String)>,
}

impl<'de> Deserialize<'de> for BgpMessage<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BgpMessage<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a BGP message object, text or null")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(BgpMessage::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(BgpMessage::default())
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(BgpMessage {
                    details: Some(Cow::Borrowed(v)),
                    ..Default::default()
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(BgpMessage {
                    details: Some(Cow::Owned(v.to_owned())),
                    ..Default::default()
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Fields::default();
                let mut extra = Vec::new();
                while let Some(CowStr(key)) = map.next_key()? {
                    match Key::of(&key) {
                        Some(
                            k @ (Key::Details
                            | Key::Prefix
                            | Key::AsPath
                            | Key::LocalPref
                            | Key::Med
                            | Key::NextHopIp
                            | Key::Weight),
                        ) => {
                            let v: Scalar<'de> = map.next_value()?;
                            set_scalar(&mut fields, k, &key, v)?;
                        }
                        _ => {
                            let raw: &'de RawValue = map.next_value()?;
                            extra.push((format!("message.{key}"), raw.get().to_owned()));
                        }
                    }
                }
                Ok(BgpMessage {
                    details: fields.details,
                    route: fields.route,
                    extra,
                })
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------------------------
// The document

struct DocVisitor;

impl<'de> Visitor<'de> for DocVisitor {
    type Value = JsonDoc<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Fields::default();
        let mut events: Option<Vec<CwEvent<'de>>> = None;
        let mut log_events: Option<Vec<CwEvent<'de>>> = None;
        let mut message_type: Option<Cow<'de, str>> = None;
        let mut log_stream: Option<Cow<'de, str>> = None;
        let mut records: Option<Vec<FirehoseRecord<'de>>> = None;
        let mut request_id = false;
        while let Some(CowStr(key)) = map.next_key()? {
            if let Some(k) = Key::of(&key) {
                if k == Key::Message {
                    let m: BgpMessage<'de> = map.next_value()?;
                    fields.has_message = true;
                    fields.details = m.details;
                    fields.route = m.route;
                    fields.extra.extend(m.extra);
                } else {
                    let v: Scalar<'de> = map.next_value()?;
                    set_scalar(&mut fields, k, &key, v)?;
                }
                continue;
            }
            match &*key {
                "events" => events = Some(map.next_value()?),
                "logEvents" => log_events = Some(map.next_value()?),
                "messageType" => message_type = Some(map.next_value::<CowStr<'de>>()?.0),
                "logStream" => log_stream = Some(map.next_value::<CowStr<'de>>()?.0),
                "records" => records = Some(map.next_value()?),
                "requestId" => {
                    request_id = true;
                    map.next_value::<IgnoredAny>()?;
                }
                // Envelope bookkeeping that carries no record data.
                "logGroup"
                | "owner"
                | "subscriptionFilters"
                | "nextToken"
                | "nextForwardToken"
                | "nextBackwardToken"
                | "searchedLogStreams" => {
                    map.next_value::<IgnoredAny>()?;
                }
                _ => {
                    let raw: &'de RawValue = map.next_value()?;
                    fields.extra.push((key.into_owned(), raw.get().to_owned()));
                }
            }
        }
        if message_type.is_some() || log_events.is_some() {
            return Ok(JsonDoc::Subscription {
                message_type,
                log_stream,
                events: log_events.unwrap_or_default(),
            });
        }
        if let Some(events) = events {
            return Ok(JsonDoc::CliEvents(events));
        }
        if let Some(records) = records
            && (request_id || fields.kind.is_none())
        {
            return Ok(JsonDoc::Firehose { records });
        }
        Ok(JsonDoc::Record(Box::new(fields)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(raw) = seq.next_element::<&'de RawValue>()? {
            items.push(raw);
        }
        Ok(JsonDoc::Array(items))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(JsonDoc::Scalar("a string"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(JsonDoc::Scalar("a number"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(JsonDoc::Scalar("a number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(JsonDoc::Scalar("a number"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(JsonDoc::Scalar("a boolean"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(JsonDoc::Scalar("null"))
    }
}
