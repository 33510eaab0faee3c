//! The replay summary: what went in and out, drops, flows, and whether the
//! replay was stopped by a signal before the end of its inputs.

use std::collections::BTreeMap;

use serde::Serialize;

use super::SkipReason;
use crate::pipeline::Shared;

/// Per-port packet counts.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PortCounts {
    pub packets_in: u64,
    pub packets_out: u64,
}

/// What a replay did. `packets_per_second` is the only wall-clock figure.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub packets_in: u64,
    pub packets_out: u64,
    pub ports: BTreeMap<String, PortCounts>,
    /// Pipeline drops by reason (every reason listed, zero or not).
    pub drops: BTreeMap<String, u64>,
    /// NAT drops by the NAT's own reason (the `nat` drop bucket, detailed).
    pub nat_drops: BTreeMap<String, u64>,
    /// Capture records not fed to the pipeline, by reason.
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
    /// First to last capture timestamp, seconds.
    pub capture_seconds: f64,
    pub wall_seconds: f64,
    pub packets_per_second: f64,
    /// The signal (`"SIGINT"`, `"SIGTERM"`) that stopped the reading before
    /// the end of the inputs: the figures are those of the packets read.
    pub interrupted: Option<String>,
}

impl Summary {
    /// Build from the shared state's counters after a run.
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
        s.capture_seconds = capture_ns as f64 / 1e9;
        s.wall_seconds = wall_s;
        s.packets_per_second = if wall_s > 0.0 {
            s.packets_in as f64 / wall_s
        } else {
            0.0
        };
        s
    }

    /// A readable table.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        if let Some(sig) = &self.interrupted {
            let _ = writeln!(
                o,
                "interrupted by {sig}: the figures cover the packets read before it\n"
            );
        }
        let _ = writeln!(
            o,
            "{:<24} {:>14} {:>14}",
            "port", "packets in", "packets out"
        );
        for (n, p) in &self.ports {
            let _ = writeln!(o, "{:<24} {:>14} {:>14}", n, p.packets_in, p.packets_out);
        }
        let _ = writeln!(
            o,
            "{:<24} {:>14} {:>14}",
            "total", self.packets_in, self.packets_out
        );
        let _ = writeln!(o);
        let _ = writeln!(o, "{:<32} {:>14}", "drops by reason", "packets");
        let mut any = false;
        for (r, n) in &self.drops {
            if *n > 0 {
                any = true;
                let _ = writeln!(o, "  {:<30} {:>14}", r, n);
            }
        }
        for (r, n) in &self.nat_drops {
            if *n > 0 {
                let _ = writeln!(o, "    nat: {:<25} {:>14}", r, n);
            }
        }
        if !any {
            let _ = writeln!(o, "  (none)");
        }
        for (r, n) in &self.skipped {
            let _ = writeln!(o, "  skipped {:<22} {:>14}", format!("{r:?}"), n);
        }
        let _ = writeln!(o);
        let rows: [(&str, String); 11] = [
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
            ("capture span", format!("{:.3} s", self.capture_seconds)),
            ("wall time", format!("{:.3} s", self.wall_seconds)),
            ("packets/s", format!("{:.0}", self.packets_per_second)),
        ];
        for (k, v) in rows {
            let _ = writeln!(o, "{:<32} {:>14}", k, v);
        }
        o
    }
}
