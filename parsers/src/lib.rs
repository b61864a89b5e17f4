//! Bytes in, typed AWS Site-to-Site VPN log events out.
//!
//! This crate owns the envelopes (NDJSON, pretty JSON, `aws logs` CLI output in JSON and as
//! text, CloudWatch export-to-S3 lines, subscription payloads, Firehose requests, syslog), the
//! records (tunnel activity, tunnel BGP, traffic samples, in JSON and text renderings), the
//! message catalogue (`docs/message-kinds.md`) and the customer-gateway lines of strongSwan,
//! Libreswan, FRR and BIRD with their catalogue (`docs/gateway-kinds.md`). It does no I/O, spawns nothing and knows
//! nothing of storage: callers hand it bytes and receive [`Parsed`] values in input order.
//!
//! ```
//! use tunnelwatch_parsers::{Decoder, DecoderOptions, Parsed, MessageKind};
//!
//! let line = br#"{"resource_id":"vpn-1234abcd_1.2.3.4","event_timestamp":1762580429641,"type":"BGPStatus","status":"UP","message":{"details":"AWS-side peer BGP session state has changed from OpenConfirm to Established with neighbor 169.254.50.85"}}"#;
//! let mut decoder = Decoder::new("example", DecoderOptions::default());
//! let mut out = Vec::new();
//! decoder.decode_all(line, &mut |p| out.push(p));
//! let Parsed::Event(event) = &out[0] else { panic!() };
//! assert_eq!(event.message().unwrap().kind, MessageKind::BgpStateChange);
//! assert_eq!(event.vpn_id(), Some("vpn-1234abcd"));
//! ```

pub mod catalogue;
mod envelope;
mod error;
mod event;
pub mod gateway;
pub mod identity;
mod record;
mod render;
pub mod time;

pub use catalogue::{Captures, Direction, Message, MessageKind};
pub use envelope::{DEFAULT_MAX_RECORD_BYTES, Decoder, DecoderOptions, InputFormat, MAX_DEPTH};
pub use error::ParseError;
pub use event::{
    Activity, AwsHealth, Bgp, BgpType, Envelope, Event, EventBody, ParseQuality, Parsed,
    PhaseState, Position, RecordFormat, Reject, Route, Severity, Table, Traffic, TunnelId,
};
pub use gateway::{Daemon, Gateway, GatewayCaptures, GatewayKind};

/// Decodes a whole input held in memory and collects the results (a convenience for tests and
/// small inputs; streaming callers use [`Decoder::decode`]).
pub fn parse_all(source: &str, input: &[u8], opts: DecoderOptions) -> Vec<Parsed> {
    let mut decoder = Decoder::new(source, opts);
    let mut out = Vec::new();
    decoder.decode_all(input, &mut |p| out.push(p));
    out
}
