//! The replay summary: what went in and out (packets, bytes, rates), drops
//! (the pipeline's and the NAT's own reasons) apart from skipped capture
//! records, flows, the capture's first and last time, and whether the
//! replay was stopped by a signal before the end of its inputs.
//!
//! Every name in the JSON and the table is snake_case (the NAT's reasons
//! by `nat::DropReason::name`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::SkipReason;
use crate::pipeline::Shared;

/// Per-port packet and byte counts (bytes: the Ethernet frames as the
/// pipeline saw them in and as they were written out).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PortCounts {
    pub packets_in: u64,
    pub packets_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// What the driver measured itself (beside the pipeline's counters): skipped
/// records, capture times, bytes per port. [`super::drive_full`] returns it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriveStats {
    /// Capture records not fed to the pipeline, by reason.
    pub skipped: BTreeMap<SkipReason, u64>,
    /// Capture time of the first packet (ns since the epoch).
    pub first_ns: Option<u64>,
    /// Latest capture time seen (ns since the epoch).
    pub last_ns: Option<u64>,
    /// Bytes fed to the pipeline, by port id.
    pub bytes_in: Vec<u64>,
    /// Bytes written out, by port id.
    pub bytes_out: Vec<u64>,
}

impl DriveStats {
    /// First to last capture time, ns.
    pub fn span_ns(&self) -> u64 {
        match (self.first_ns, self.last_ns) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => 0,
        }
    }
}

/// What a replay did. `wall_seconds` and `packets_per_second` are the only
/// wall-clock figures; the Mbit/s are over the capture's time span.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub packets_in: u64,
    pub packets_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// `bytes_in` over the capture span, Mbit/s (0 for a span of 0).
    pub mbit_per_second_in: f64,
    /// `bytes_out` over the capture span, Mbit/s.
    pub mbit_per_second_out: f64,
    pub ports: BTreeMap<String, PortCounts>,
    /// Pipeline drops by reason (every reason listed, zero or not).
    pub drops: BTreeMap<String, u64>,
    /// NAT drops by the NAT's own reason, snake_case (the `nat` drop
    /// bucket, detailed; non-zero only).
    pub nat_drops: BTreeMap<String, u64>,
    /// Capture records not fed to the pipeline, by reason (not drops: the
    /// pipeline never saw them).
    pub skipped: BTreeMap<SkipReason, u64>,
    pub flows_created: u64,
    pub flows_expired: u64,
    pub flows_evicted: u64,
    pub nat_sessions_active: u64,
    pub nat_ports_in_use: u64,
    pub ipv6_flows_active: u64,
    pub generated: u64,
    pub arp_replies: u64,
    pub echo_replies: u64,
    pub neighbors_learned: u64,
    /// IPv4 frames fragmented to fit their egress MTU.
    pub fragmented: u64,
    /// Fragments made from them.
    pub fragments: u64,
    /// `--workers N`: frames the receiving worker handed to the worker
    /// owning their session (0 with one worker).
    pub handed_off: u64,
    /// Capture time of the first packet, UTC, RFC 3339 (`null`: no packet).
    pub first_capture_time: Option<String>,
    /// Latest capture time seen, UTC, RFC 3339.
    pub last_capture_time: Option<String>,
    /// First to last capture timestamp, seconds.
    pub capture_seconds: f64,
    pub wall_seconds: f64,
    pub packets_per_second: f64,
    /// The signal (`"SIGINT"`, `"SIGTERM"`) that stopped the reading before
    /// the end of the inputs: the figures are those of the packets read.
    pub interrupted: Option<String>,
}

/// `ns` since the Unix epoch as RFC 3339 UTC with nanoseconds,
/// e.g. `2026-12-07T22:22:44.123456789Z`.
pub fn rfc3339(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let frac = ns % 1_000_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Mbit/s of `bytes` over `seconds` (0 when the span is 0).
fn mbit_per_second(bytes: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        bytes as f64 * 8.0 / seconds / 1e6
    } else {
        0.0
    }
}

impl Summary {
    /// Build from the shared state's counters after a run (no byte counts
    /// or capture times: see [`Summary::from_drive`]).
    pub fn collect(
        shared: &Shared,
        skipped: BTreeMap<SkipReason, u64>,
        capture_ns: u64,
        wall_s: f64,
    ) -> Summary {
        let names = shared.port_names();
        let c = shared.counters.snapshot(&names);
        let mut s = Summary {
            skipped,
            ..Summary::default()
        };
        for n in &names {
            let pi = c.rx.get(n).copied().unwrap_or(0);
            let po = c.tx.get(n).copied().unwrap_or(0);
            s.packets_in += pi;
            s.packets_out += po;
            s.ports.insert(
                n.clone(),
                PortCounts {
                    packets_in: pi,
                    packets_out: po,
                    ..PortCounts::default()
                },
            );
        }
        for r in crate::pipeline::DropReason::ALL {
            s.drops.insert(
                r.name().to_string(),
                c.drops.get(r.name()).copied().unwrap_or(0),
            );
        }
        let (v6_active, v6_created, v6_expired) = shared.v6flows.stats();
        s.ipv6_flows_active = v6_active as u64;
        s.flows_created = v6_created;
        s.flows_expired = v6_expired;
        if let Some(nat) = &shared.nat {
            let n = nat.summary();
            s.flows_created += n.created;
            s.flows_expired += n.expired;
            s.flows_evicted += n.evicted;
            s.nat_sessions_active = n.sessions_active;
            s.nat_ports_in_use = n.ports_in_use;
            s.nat_drops = n.drops;
        }
        s.generated = c.generated;
        s.arp_replies = c.arp_replies;
        s.echo_replies = c.echo_replies;
        s.neighbors_learned = c.neighbors_learned;
        s.fragmented = c.fragmented;
        s.fragments = c.fragments;
        s.handed_off = c.handed_off;
        s.capture_seconds = capture_ns as f64 / 1e9;
        s.wall_seconds = wall_s;
        s.packets_per_second = if wall_s > 0.0 {
            s.packets_in as f64 / wall_s
        } else {
            0.0
        };
        s
    }

    /// [`Summary::collect`] plus what the driver measured: bytes per port,
    /// rates, first and last capture time.
    pub fn from_drive(shared: &Shared, d: DriveStats, wall_s: f64) -> Summary {
        let span = d.span_ns();
        let mut s = Summary::collect(shared, d.skipped.clone(), span, wall_s);
        for (i, n) in shared.port_names().iter().enumerate() {
            let bi = d.bytes_in.get(i).copied().unwrap_or(0);
            let bo = d.bytes_out.get(i).copied().unwrap_or(0);
            s.bytes_in += bi;
            s.bytes_out += bo;
            if let Some(p) = s.ports.get_mut(n) {
                p.bytes_in = bi;
                p.bytes_out = bo;
            }
        }
        s.mbit_per_second_in = mbit_per_second(s.bytes_in, s.capture_seconds);
        s.mbit_per_second_out = mbit_per_second(s.bytes_out, s.capture_seconds);
        s.first_capture_time = d.first_ns.map(rfc3339);
        s.last_capture_time = d.last_ns.map(rfc3339);
        s
    }

    /// A readable table: columns aligned, drops (pipeline, then the NAT's
    /// detail) apart from skipped records, snake_case reason names.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        // Label column, then right-aligned figures.
        const L: usize = 32;
        // Figures' column (wide enough for an RFC 3339 time).
        const W: usize = 30;
        let mut o = String::new();
        if let Some(sig) = &self.interrupted {
            let _ = writeln!(
                o,
                "interrupted by {sig}: the figures cover the packets read before it\n"
            );
        }
        let span = self.capture_seconds;
        let _ = writeln!(
            o,
            "{:<16} {:>12} {:>14} {:>10} {:>12} {:>14} {:>10}",
            "port", "packets in", "bytes in", "Mbit/s in", "packets out", "bytes out", "Mbit/s out"
        );
        let row = |o: &mut String, n: &str, pi: u64, bi: u64, po: u64, bo: u64| {
            let _ = writeln!(
                o,
                "{:<16} {:>12} {:>14} {:>10.3} {:>12} {:>14} {:>10.3}",
                n,
                pi,
                bi,
                mbit_per_second(bi, span),
                po,
                bo,
                mbit_per_second(bo, span)
            );
        };
        for (n, p) in &self.ports {
            row(
                &mut o,
                n,
                p.packets_in,
                p.bytes_in,
                p.packets_out,
                p.bytes_out,
            );
        }
        row(
            &mut o,
            "total",
            self.packets_in,
            self.bytes_in,
            self.packets_out,
            self.bytes_out,
        );
        let _ = writeln!(o);
        let _ = writeln!(o, "{:<L$} {:>W$}", "drops by reason", "packets");
        let mut any = false;
        for (r, n) in &self.drops {
            if *n > 0 {
                any = true;
                let _ = writeln!(o, "  {:<w$} {:>W$}", r, n, w = L - 2);
            }
        }
        let nat_any = self.nat_drops.values().any(|n| *n > 0);
        if nat_any {
            let _ = writeln!(o, "  {:<w$}", "of which, by the NAT's reason:", w = L - 2);
            for (r, n) in &self.nat_drops {
                if *n > 0 {
                    let _ = writeln!(o, "    nat.{:<w$} {:>W$}", r, n, w = L - 8);
                }
            }
        }
        if !any {
            let _ = writeln!(o, "  (none)");
        }
        if self.skipped.values().any(|n| *n > 0) {
            let _ = writeln!(o);
            let _ = writeln!(
                o,
                "{:<L$} {:>W$}",
                "skipped records (not replayed)", "records"
            );
            for (r, n) in &self.skipped {
                let _ = writeln!(o, "  {:<w$} {:>W$}", r.name(), n, w = L - 2);
            }
        }
        let _ = writeln!(o);
        let dash = || "-".to_string();
        let rows: [(&str, String); 15] = [
            ("flows created", self.flows_created.to_string()),
            ("flows expired", self.flows_expired.to_string()),
            ("flows evicted", self.flows_evicted.to_string()),
            ("NAT sessions active", self.nat_sessions_active.to_string()),
            ("NAT ports in use", self.nat_ports_in_use.to_string()),
            ("IPv6 flows active", self.ipv6_flows_active.to_string()),
            ("frames generated", self.generated.to_string()),
            (
                "ARP replies / echo replies",
                format!("{} / {}", self.arp_replies, self.echo_replies),
            ),
            (
                "frames fragmented / fragments",
                format!("{} / {}", self.fragmented, self.fragments),
            ),
            (
                "frames handed to another worker",
                self.handed_off.to_string(),
            ),
            (
                "first capture time (UTC)",
                self.first_capture_time.clone().unwrap_or_else(dash),
            ),
            (
                "last capture time (UTC)",
                self.last_capture_time.clone().unwrap_or_else(dash),
            ),
            ("capture span", format!("{:.3} s", self.capture_seconds)),
            ("wall time", format!("{:.3} s", self.wall_seconds)),
            (
                "packets/s (wall)",
                format!("{:.0}", self.packets_per_second),
            ),
        ];
        for (k, v) in rows {
            let _ = writeln!(o, "{:<L$} {:>W$}", k, v);
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_names() {
        for r in nat::DropReason::ALL {
            let n = r.name();
            assert!(
                n.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{n} is not snake_case"
            );
            assert_eq!(
                serde_json::to_value(r).unwrap(),
                n,
                "serde and name() agree"
            );
        }
    }

    #[test]
    fn rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        // 2000-02-29 12:34:56.5 UTC = 951827696.5 s.
        assert_eq!(
            rfc3339(951_827_696_500_000_000),
            "2000-02-29T12:34:56.500000000Z"
        );
        // 2026-12-07 22:22:44 UTC.
        assert_eq!(
            rfc3339(1_796_682_164_000_000_001),
            "2026-12-07T22:22:44.000000001Z"
        );
    }
}
