//! Business rules over the event stream: per-tunnel state machines (IKE phases, BGP session),
//! the CloudWatch `AWS/VPN` metric datapoints (TunnelState, TunnelDataIn/Out,
//! ConcentratorBandwidthUsage), CloudWatch-style alarms, AWS-Health-style notifications and
//! the root-cause diagnosis of a connection's trouble.
//! Must not: talk HTTP or know about exposition formats (that is `tunnelwatch-exporters`).
//!
//! Status: not built yet (issue "The AWS/VPN metrics engine").
