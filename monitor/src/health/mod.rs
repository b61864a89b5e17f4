//! Health-style notifications derived from the metrics, and AWS Health events as input.
//!
//! - [`single_tunnel`]: `AWS_VPN_SINGLE_TUNNEL_NOTIFICATION` (monthly, from the time a day with
//!   exactly one tunnel up).
//! - [`redundancy`]: `AWS_VPN_REDUNDANCY_LOSS`, *inferred* from a tunnel's short complete down
//!   episode while the other tunnel stayed up (an endpoint replacement, as AWS describes it).
//! - AWS Health input (parsing, confirmation) is not written yet.
//!
//! Must not: fetch anything from AWS; callers hand in the bytes.

pub mod redundancy;
pub mod single_tunnel;

pub use redundancy::{MAX_DOWN_MS, REDUNDANCY_LOSS, RedundancyLoss, redundancy_loss_events};
pub use single_tunnel::{HealthEvent, SINGLE_TUNNEL, single_tunnel_events};
