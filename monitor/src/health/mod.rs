//! Health-style notifications derived from the metrics, and AWS Health events as input.
//!
//! - [`single_tunnel`]: `AWS_VPN_SINGLE_TUNNEL_NOTIFICATION` (monthly, from the time a day with
//!   exactly one tunnel up).
//! - [`redundancy`]: `AWS_VPN_REDUNDANCY_LOSS`, *inferred* from a tunnel's short complete down
//!   episode while the other tunnel stayed up (an endpoint replacement, as AWS describes it).
//! - [`aws`]: AWS Health events as input (the parsers read them; they are stored in
//!   `health_events`): which inferred endpoint replacements an AWS event confirms.
//!
//! Must not: fetch anything from AWS; callers hand in the events.

pub mod aws;
pub mod redundancy;
pub mod single_tunnel;

use std::sync::Arc;

use crate::{Datapoint, MetricName, PERIOD_MS};

/// One minute of one tunnel: (vpn, tunnel ip, minute start, up fraction).
type UpMinute<'a> = (&'a Arc<str>, &'a Arc<str>, i64, f64);

/// The tunnel-level TunnelState minutes of `points` as up fractions (sum / sample_count); other
/// metrics, connection-level points and empty minutes are skipped. Both rules read this.
fn tunnel_up_minutes<'a>(
    points: impl IntoIterator<Item = &'a Datapoint>,
) -> impl Iterator<Item = UpMinute<'a>> {
    points.into_iter().filter_map(|p| {
        let (MetricName::TunnelState, Some(ip)) = (p.metric, &p.tunnel_ip) else {
            return None;
        };
        (p.sample_count > 0.0).then(|| {
            (
                &p.vpn_id,
                ip,
                p.ts - p.ts.rem_euclid(PERIOD_MS),
                p.sum / p.sample_count,
            )
        })
    })
}

/// A tunnel-level TunnelState minute `up` (0..=1) of the time up, for the rules' tests.
#[cfg(test)]
fn tunnel_minute(vpn: &str, ip: &str, ts: i64, up: f64) -> Datapoint {
    Datapoint {
        ts,
        metric: MetricName::TunnelState,
        vpn_id: Arc::from(vpn),
        tunnel_ip: Some(Arc::from(ip)),
        concentrator_id: None,
        sample_count: 60.0,
        sum: 60.0 * up,
        minimum: up,
        maximum: up,
    }
}

pub use aws::{AwsEvent, CONFIRM_MARGIN_MS, pair};
pub use redundancy::{MAX_DOWN_MS, REDUNDANCY_LOSS, RedundancyLoss, redundancy_loss_events};
pub use single_tunnel::{HealthEvent, SINGLE_TUNNEL, single_tunnel_events};
