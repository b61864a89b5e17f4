//! Why a record was rejected. Every variant says what was wrong in words a user can act on; the
//! position (line, byte offset, event index) travels beside it in [`crate::Reject`].

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("JSON value is {0}, expected an object")]
    NotAnObject(&'static str),
    #[error("JSON object is not a VPN log record (none of the keys {0})")]
    NotAVpnRecord(&'static str),
    #[error("invalid UTF-8 after byte {valid_up_to} of the record")]
    InvalidUtf8 { valid_up_to: usize },
    #[error("binary data (NUL or control bytes) where a log record was expected")]
    Binary,
    #[error("no usable timestamp (event_timestamp, timestamp or envelope time)")]
    MissingTimestamp,
    #[error("field `{field}`: {reason}")]
    BadField { field: &'static str, reason: String },
    #[error("truncated {0}: input ended inside it")]
    Truncated(&'static str),
    #[error("gzip: {0}")]
    Gzip(String),
    #[error("base64: {0}")]
    Base64(String),
    #[error("syslog: {0}")]
    Syslog(String),
    #[error("{0} envelope: {1}")]
    Envelope(&'static str, String),
    #[error(
        "text record: nothing recognisable (no timestamp, state, BGP field or catalogue message)"
    )]
    UnrecognisedText,
    #[error("record of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("expected {expected} (forced by --format), found {found}")]
    WrongFormat {
        expected: &'static str,
        found: &'static str,
    },
    #[error("envelopes nested deeper than {0} levels")]
    TooDeep(usize),
}
