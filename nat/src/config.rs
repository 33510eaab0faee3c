//! NAT configuration: serde types, defaults at or above the RFC minima, and
//! [`NatConfig::validate`], whose errors name the field path and the problem.
//!
//! Timeouts below the RFC minima (UDP 120 s — RFC 4787 REQ-5; TCP established
//! 2 h 4 min and transitory 4 min — RFC 5382 REQ-5; ICMP query 60 s — RFC 5508
//! REQ-1) are rejected unless `timeouts.allow_below_rfc_minimum = true` is set
//! explicitly (for lab setups and tests that want fast churn).
//!
//! Example (TOML):
//! ```toml
//! inside = ["10.0.0.0/8"]
//! [[pools]]
//! addresses = ["203.0.113.1", "198.51.100.0/30"]
//! ports = "1024-65535"
//! [[port_forwards]]
//! protocol = "tcp"
//! external = "203.0.113.1"
//! external_ports = "8080"
//! inside = "10.0.0.5"
//! inside_ports = "80"
//! ```

use core::fmt;
use core::net::Ipv4Addr;
use core::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// An IPv4 prefix `a.b.c.d/len` (a bare address means `/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Ipv4Prefix {
    pub addr: Ipv4Addr,
    pub len: u8,
}

impl Ipv4Prefix {
    /// The network mask of this prefix as a host-order `u32`.
    #[must_use]
    pub fn mask(&self) -> u32 {
        if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.len.min(32)))
        }
    }

    /// Whether `ip` lies inside this prefix. O(1).
    #[must_use]
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (u32::from(ip) & self.mask()) == (u32::from(self.addr) & self.mask())
    }

    /// Number of addresses covered (2^(32-len)).
    #[must_use]
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.len.min(32)))
    }

    /// Whether host bits are set (e.g. `10.0.0.1/8`).
    #[must_use]
    pub fn has_host_bits(&self) -> bool {
        u32::from(self.addr) & !self.mask() != 0
    }
}

impl fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Ipv4Prefix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: Ipv4Addr = a
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not an IPv4 address or prefix"))?;
        let len = match l {
            None => 32,
            Some(l) => match l.trim().parse::<u8>() {
                Ok(n) if n <= 32 => n,
                _ => return Err(format!("`{s}`: prefix length must be 0..=32")),
            },
        };
        Ok(Self { addr, len })
    }
}

impl<'de> Deserialize<'de> for Ipv4Prefix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An inclusive port range, written `"1024-65535"`, `"80"` or `80`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    #[must_use]
    pub const fn new(first: u16, last: u16) -> Self {
        Self { first, last }
    }
    /// Number of ports in the range (0 if `first > last`).
    #[must_use]
    pub fn len(&self) -> u32 {
        if self.first > self.last {
            0
        } else {
            u32::from(self.last - self.first) + 1
        }
    }
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    #[must_use]
    pub fn contains(&self, p: u16) -> bool {
        self.first <= p && p <= self.last
    }
    #[must_use]
    pub fn overlaps(&self, o: &PortRange) -> bool {
        self.first <= o.last && o.first <= self.last
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(u16),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(n) => Ok(PortRange::new(n, n)),
            Raw::Str(s) => {
                let parse = |x: &str| {
                    x.trim().parse::<u16>().map_err(|_| {
                        serde::de::Error::custom(format!("`{s}` is not a port or port range"))
                    })
                };
                match s.split_once('-') {
                    Some((a, b)) => Ok(PortRange::new(parse(a)?, parse(b)?)),
                    None => {
                        let p = parse(&s)?;
                        Ok(PortRange::new(p, p))
                    }
                }
            }
        }
    }
}

/// Mapping behaviour (RFC 4787 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MappingBehavior {
    /// Same inside ip:port → same external ip:port for every destination (REQ-1).
    #[default]
    EndpointIndependent,
    /// A new external port per (inside ip:port, remote ip:port).
    AddressAndPortDependent,
}

/// Filtering behaviour (RFC 4787 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FilteringBehavior {
    /// Only the remote ip:port a session was opened to may send in.
    #[default]
    AddressAndPortDependent,
    /// Any remote may send to a mapped external ip:port (creates a session).
    EndpointIndependent,
    /// A remote *address* the mapping has a live session with may send to
    /// it from any port (creates a session); RFC 4787 REQ-8's stricter
    /// recommendation.
    AddressDependent,
}

/// What happens to an unsolicited inbound TCP SYN: one to a NAT address
/// that no session, mapping or rule admits (RFC 5382 REQ-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnsolicitedSyn {
    /// Dropped silently at once (counted as `NoSession` / `Filtered`): the
    /// REQ-4a choice, a NAT that never answers unsolicited traffic.
    #[default]
    Drop,
    /// Dropped, and a copy held for 6 s: if the inside host sends the SYN
    /// of the same connection in that time (TCP simultaneous open), the
    /// copy is discarded silently; otherwise the remote gets ICMP port
    /// unreachable (type 3, code 3) from the NAT address it tried (REQ-4's
    /// SHOULD). At most 1024 SYNs are held at once (more are only dropped,
    /// counted as `syn_hold_full`).
    Hold,
}

/// L4 protocol of a port-forward rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ForwardProtocol {
    Tcp,
    Udp,
}

impl ForwardProtocol {
    /// IP protocol number.
    #[must_use]
    pub fn number(self) -> u8 {
        match self {
            ForwardProtocol::Tcp => 6,
            ForwardProtocol::Udp => 17,
        }
    }
}

/// One pool of public addresses (non-contiguous allowed) and its port ranges.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Addresses and/or prefixes (every address of a prefix is used).
    pub addresses: Vec<Ipv4Prefix>,
    /// Ports for inside source ports 1024..=65535 (and for ICMP identifiers).
    #[serde(default = "default_ports")]
    pub ports: PortRange,
    /// Ports for inside source ports 0..=1023 (RFC 4787 REQ-3: kept apart).
    /// `None`: inside sources below 1024 are mapped into `ports`.
    #[serde(default = "default_low_ports")]
    pub low_ports: Option<PortRange>,
}

fn default_ports() -> PortRange {
    PortRange::new(1024, 65535)
}
#[allow(clippy::unnecessary_wraps)]
fn default_low_ports() -> Option<PortRange> {
    Some(PortRange::new(1, 1023))
}

/// Session timeouts, in seconds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// UDP idle timeout (RFC 4787 REQ-5: ≥ 120 s; default 300 s).
    pub udp: u64,
    /// Whether inbound UDP packets refresh the session (RFC 4787 REQ-6).
    pub udp_inbound_refresh: bool,
    /// TCP established idle timeout (RFC 5382 REQ-5: ≥ 7440 s).
    pub tcp_established: u64,
    /// TCP partially open / partially closed (RFC 5382 REQ-5: ≥ 240 s).
    pub tcp_transitory: u64,
    /// TCP TIME_WAIT hold after both FINs or an RST (RFC 7857 REQ-2; 240 s).
    pub tcp_time_wait: u64,
    /// ICMP query (echo) timeout (RFC 5508 REQ-1: ≥ 60 s).
    pub icmp: u64,
    /// Accept values below the RFC minima (labs and tests only).
    pub allow_below_rfc_minimum: bool,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            udp: 300,
            udp_inbound_refresh: true,
            tcp_established: 7440,
            tcp_transitory: 240,
            tcp_time_wait: 240,
            icmp: 60,
            allow_below_rfc_minimum: false,
        }
    }
}

/// Fragment-tracking limits (RFC 4787 REQ-13/14).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FragmentConfig {
    /// How long a fragment-tracking entry lives after its creation, in ms.
    pub timeout_ms: u64,
    /// Maximum tracked datagrams (entries) at once.
    pub max_entries: usize,
    /// Memory budget for out-of-order fragments held until their first fragment, bytes.
    pub max_held_bytes: usize,
}

impl Default for FragmentConfig {
    fn default() -> Self {
        Self {
            timeout_ms: 5_000,
            max_entries: 4096,
            max_held_bytes: 1 << 20,
        }
    }
}

/// A destination-NAT rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PortForward {
    pub protocol: ForwardProtocol,
    pub external: Ipv4Addr,
    pub external_ports: PortRange,
    pub inside: Ipv4Addr,
    /// A single port (every external port maps to it) or a range of the same length.
    pub inside_ports: PortRange,
    /// If set, only these remote sources may use the rule.
    #[serde(default)]
    pub allowed_sources: Option<Vec<Ipv4Prefix>>,
}

impl PortForward {
    /// Inside port for external port `p` (which must be in `external_ports`).
    #[must_use]
    pub fn inside_port_for(&self, p: u16) -> u16 {
        if self.inside_ports.len() == 1 {
            self.inside_ports.first
        } else {
            self.inside_ports
                .first
                .wrapping_add(p.wrapping_sub(self.external_ports.first))
        }
    }
    /// Whether `src` may use this rule (`allowed_sources`).
    #[must_use]
    pub fn source_allowed(&self, src: Ipv4Addr) -> bool {
        self.allowed_sources
            .as_ref()
            .is_none_or(|v| v.iter().any(|p| p.contains(src)))
    }
}

/// The whole NAT configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NatConfig {
    /// Inside prefixes: sources here are masqueraded.
    pub inside: Vec<Ipv4Prefix>,
    pub pools: Vec<PoolConfig>,
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Maximum external ports (mappings) one inside host may hold, all
    /// protocols together (RFC 6888 REQ-4). 0 = unlimited.
    #[serde(default = "default_quota")]
    pub per_host_port_quota: u32,
    #[serde(default)]
    pub mapping: MappingBehavior,
    #[serde(default)]
    pub filtering: FilteringBehavior,
    /// RFC 4787 REQ-9 / RFC 5382 REQ-8.
    #[serde(default = "yes")]
    pub hairpinning: bool,
    /// Unsolicited inbound TCP SYNs (RFC 5382 REQ-4): `drop` (default) or
    /// `hold` (6 s, then ICMP port unreachable unless the inside host
    /// opened the same connection meanwhile).
    #[serde(default)]
    pub unsolicited_syn: UnsolicitedSyn,
    /// Hold a freed external port this many seconds before reuse (RFC 6888 REQ-8).
    #[serde(default)]
    pub port_reuse_hold_down: Option<u64>,
    /// With several workers: seconds a port block (64 external ports a
    /// worker owns) stays with its worker after its last port is freed,
    /// before it goes back to the pool for any worker (`nat::blocks`).
    #[serde(default = "default_block_hold_down")]
    pub port_block_hold_down: u64,
    /// When set, the dataplane should answer a quota-exceeded drop with
    /// ICMP type 3 code 13 (RFC 5508 REQ-8). NAT itself only reports it.
    #[serde(default)]
    pub icmp_on_quota_exceeded: bool,
    /// Record every dynamic mapping's creation and release (inside and
    /// external endpoint, protocol, time) for the operator's translation
    /// log: [`crate::Nat::take_mapping_events`]. Off by default.
    #[serde(default)]
    pub log_mappings: bool,
    #[serde(default)]
    pub port_forwards: Vec<PortForward>,
    #[serde(default)]
    pub fragments: FragmentConfig,
    /// Seed for address pairing and port choice; fixed default so replays
    /// are byte-for-byte reproducible. Set a secret per deployment.
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn default_quota() -> u32 {
    4096
}
fn default_block_hold_down() -> u64 {
    60
}
fn yes() -> bool {
    true
}
fn default_seed() -> u64 {
    0x6e61_745f_7365_6564
}

/// The inside prefixes as (network, mask) pairs ([`NatConfig::inside_set`]).
#[derive(Debug, Clone, Default)]
pub struct InsideSet(Box<[(u32, u32)]>);

impl InsideSet {
    /// Whether `ip` is in one of the prefixes: [`NatConfig::is_inside`]
    /// without recomputing masks. O(prefixes).
    #[inline]
    #[must_use]
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let a = u32::from(ip);
        self.0.iter().any(|&(net, mask)| a & mask == net)
    }
}

impl NatConfig {
    /// A minimal valid configuration: `inside` prefixes masqueraded to `pool`
    /// addresses with every default.
    #[must_use]
    pub fn masquerade(inside: Vec<Ipv4Prefix>, pool: Vec<Ipv4Prefix>) -> Self {
        Self {
            inside,
            pools: vec![PoolConfig {
                addresses: pool,
                ports: default_ports(),
                low_ports: default_low_ports(),
            }],
            timeouts: Timeouts::default(),
            per_host_port_quota: default_quota(),
            mapping: MappingBehavior::default(),
            filtering: FilteringBehavior::default(),
            hairpinning: true,
            unsolicited_syn: UnsolicitedSyn::default(),
            port_reuse_hold_down: None,
            port_block_hold_down: default_block_hold_down(),
            icmp_on_quota_exceeded: false,
            log_mappings: false,
            port_forwards: Vec::new(),
            fragments: FragmentConfig::default(),
            seed: default_seed(),
        }
    }

    /// The inside prefixes with their masks computed once, for the packet
    /// path ([`InsideSet::contains`]).
    #[must_use]
    pub fn inside_set(&self) -> InsideSet {
        InsideSet(
            self.inside
                .iter()
                .map(|p| (u32::from(p.addr) & p.mask(), p.mask()))
                .collect(),
        )
    }

    /// Whether `ip` is in one of the inside prefixes. O(prefixes).
    #[must_use]
    pub fn is_inside(&self, ip: Ipv4Addr) -> bool {
        self.inside.iter().any(|p| p.contains(ip))
    }

    /// Check every field.
    ///
    /// # Errors
    /// The first problem found, with its field path (e.g. `pools[1].ports`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |path: String, problem: ConfigProblem| Err(ConfigError { path, problem });
        if self.inside.is_empty() {
            return err("inside".into(), ConfigProblem::Empty);
        }
        for (i, p) in self.inside.iter().enumerate() {
            if p.has_host_bits() {
                return err(
                    format!("inside[{i}]"),
                    ConfigProblem::HostBitsSet(p.to_string()),
                );
            }
        }
        if self.pools.is_empty() {
            return err("pools".into(), ConfigProblem::Empty);
        }
        let mut all: Vec<(u32, u32, String)> = Vec::new();
        let mut total: u64 = 0;
        for (i, pool) in self.pools.iter().enumerate() {
            if pool.addresses.is_empty() {
                return err(format!("pools[{i}].addresses"), ConfigProblem::Empty);
            }
            for (j, a) in pool.addresses.iter().enumerate() {
                let path = format!("pools[{i}].addresses[{j}]");
                if a.has_host_bits() {
                    return err(path, ConfigProblem::HostBitsSet(a.to_string()));
                }
                if a.len < 16 {
                    return err(path, ConfigProblem::PoolTooLarge(a.to_string()));
                }
                if self.is_inside(a.addr) {
                    return err(path, ConfigProblem::PoolInsideInside(a.to_string()));
                }
                let lo = u32::from(a.addr);
                let hi = lo + (a.size() as u32 - 1);
                if let Some((_, _, other)) = all.iter().find(|(l, h, _)| lo <= *h && *l <= hi) {
                    return err(path, ConfigProblem::Overlaps(other.clone()));
                }
                all.push((lo, hi, path));
                total += a.size();
            }
            if total > 65_536 {
                return err(
                    format!("pools[{i}].addresses"),
                    ConfigProblem::PoolTooLarge(format!("{total} addresses")),
                );
            }
            if pool.ports.is_empty() {
                return err(
                    format!("pools[{i}].ports"),
                    ConfigProblem::EmptyRange(pool.ports.to_string()),
                );
            }
            if pool.ports.first < 1024 {
                return err(
                    format!("pools[{i}].ports"),
                    ConfigProblem::LowPortsMixed(pool.ports.to_string()),
                );
            }
            if let Some(lp) = pool.low_ports {
                if lp.is_empty() {
                    return err(
                        format!("pools[{i}].low_ports"),
                        ConfigProblem::EmptyRange(lp.to_string()),
                    );
                }
                if lp.last > 1023 {
                    return err(
                        format!("pools[{i}].low_ports"),
                        ConfigProblem::LowPortsMixed(lp.to_string()),
                    );
                }
            }
        }
        if self.filtering != FilteringBehavior::AddressAndPortDependent
            && self.mapping == MappingBehavior::AddressAndPortDependent
        {
            return err("filtering".into(), ConfigProblem::FilteringNeedsEim);
        }
        let t = &self.timeouts;
        if !t.allow_below_rfc_minimum {
            for (name, v, min) in [
                ("udp", t.udp, 120),
                ("tcp_established", t.tcp_established, 7440),
                ("tcp_transitory", t.tcp_transitory, 240),
                ("tcp_time_wait", t.tcp_time_wait, 240),
                ("icmp", t.icmp, 60),
            ] {
                if v < min {
                    return err(
                        format!("timeouts.{name}"),
                        ConfigProblem::BelowRfcMinimum {
                            value: v,
                            minimum: min,
                        },
                    );
                }
            }
        }
        for (name, v) in [
            ("udp", t.udp),
            ("tcp_established", t.tcp_established),
            ("tcp_transitory", t.tcp_transitory),
            ("tcp_time_wait", t.tcp_time_wait),
            ("icmp", t.icmp),
        ] {
            if v == 0 || v > 86_400 * 7 {
                return err(
                    format!("timeouts.{name}"),
                    ConfigProblem::OutOfRange(v.to_string()),
                );
            }
        }
        if let Some(h) = self.port_reuse_hold_down
            && h > 3600
        {
            return err(
                "port_reuse_hold_down".into(),
                ConfigProblem::OutOfRange(h.to_string()),
            );
        }
        if self.port_block_hold_down > 3600 {
            return err(
                "port_block_hold_down".into(),
                ConfigProblem::OutOfRange(self.port_block_hold_down.to_string()),
            );
        }
        let f = &self.fragments;
        if f.timeout_ms == 0 || f.timeout_ms > 120_000 {
            return err(
                "fragments.timeout_ms".into(),
                ConfigProblem::OutOfRange(f.timeout_ms.to_string()),
            );
        }
        if f.max_entries == 0 {
            return err(
                "fragments.max_entries".into(),
                ConfigProblem::OutOfRange("0".into()),
            );
        }
        for (i, r) in self.port_forwards.iter().enumerate() {
            let path = |f: &str| format!("port_forwards[{i}].{f}");
            if r.external_ports.is_empty() {
                return err(
                    path("external_ports"),
                    ConfigProblem::EmptyRange(r.external_ports.to_string()),
                );
            }
            if r.external_ports.first == 0 {
                return err(
                    path("external_ports"),
                    ConfigProblem::OutOfRange("port 0".into()),
                );
            }
            if r.inside_ports.is_empty() {
                return err(
                    path("inside_ports"),
                    ConfigProblem::EmptyRange(r.inside_ports.to_string()),
                );
            }
            if r.inside_ports.len() != 1 && r.inside_ports.len() != r.external_ports.len() {
                return err(
                    path("inside_ports"),
                    ConfigProblem::RangeLengthMismatch {
                        external: r.external_ports.len(),
                        inside: r.inside_ports.len(),
                    },
                );
            }
            if !self.is_inside(r.inside) {
                return err(
                    path("inside"),
                    ConfigProblem::NotInside(r.inside.to_string()),
                );
            }
            if self.is_inside(r.external) {
                return err(
                    path("external"),
                    ConfigProblem::PoolInsideInside(r.external.to_string()),
                );
            }
            for (j, o) in self.port_forwards[..i].iter().enumerate() {
                if o.protocol == r.protocol
                    && o.external == r.external
                    && o.external_ports.overlaps(&r.external_ports)
                {
                    return err(
                        path("external_ports"),
                        ConfigProblem::Overlaps(format!("port_forwards[{j}]")),
                    );
                }
            }
        }
        Ok(())
    }
}

/// A configuration error: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct ConfigError {
    /// Field path, e.g. `pools[1].ports`.
    pub path: String,
    pub problem: ConfigProblem,
}

/// What is wrong with a configuration field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigProblem {
    #[error("must not be empty")]
    Empty,
    #[error("prefix {0} has host bits set")]
    HostBitsSet(String),
    #[error("pool too large ({0}); at most 65536 addresses, prefixes /16 or longer")]
    PoolTooLarge(String),
    #[error("{0} lies inside an inside prefix")]
    PoolInsideInside(String),
    #[error("overlaps {0}")]
    Overlaps(String),
    #[error("empty port range {0}")]
    EmptyRange(String),
    #[error("range {0} mixes 0-1023 with 1024-65535 (RFC 4787 REQ-3 keeps them apart)")]
    LowPortsMixed(String),
    #[error(
        "{value} s is below the RFC minimum of {minimum} s (set timeouts.allow_below_rfc_minimum = true to accept)"
    )]
    BelowRfcMinimum { value: u64, minimum: u64 },
    #[error("value {0} out of range")]
    OutOfRange(String),
    #[error(
        "inside range has {inside} ports but external range has {external} (must be 1 or equal)"
    )]
    RangeLengthMismatch { external: u32, inside: u32 },
    #[error("{0} is not in an inside prefix")]
    NotInside(String),
    #[error(
        "endpoint_independent and address_dependent filtering need endpoint_independent mapping (an address-and-port-dependent mapping admits only its own remote)"
    )]
    FilteringNeedsEim,
    #[error("flow table: {0}")]
    Table(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pfx(s: &str) -> Ipv4Prefix {
        s.parse().unwrap()
    }

    #[test]
    fn parses_toml_with_defaults() {
        let c: NatConfig = toml::from_str(
            r#"
            inside = ["10.0.0.0/8"]
            [[pools]]
            addresses = ["203.0.113.1", "198.51.100.0/30"]
            [[port_forwards]]
            protocol = "tcp"
            external = "203.0.113.1"
            external_ports = "8080-8081"
            inside = "10.0.0.5"
            inside_ports = 80
            allowed_sources = ["192.0.2.0/24"]
            "#,
        )
        .unwrap();
        assert_eq!(c.pools[0].ports, PortRange::new(1024, 65535));
        assert_eq!(c.pools[0].addresses[1].len, 30);
        assert_eq!(c.timeouts.udp, 300);
        assert_eq!(c.timeouts.tcp_established, 7440);
        assert_eq!(c.mapping, MappingBehavior::EndpointIndependent);
        assert_eq!(c.filtering, FilteringBehavior::AddressAndPortDependent);
        assert!(c.hairpinning);
        assert_eq!(c.port_forwards[0].inside_port_for(8081), 80);
        assert!(c.port_forwards[0].source_allowed("192.0.2.9".parse().unwrap()));
        assert!(!c.port_forwards[0].source_allowed("192.0.3.9".parse().unwrap()));
        c.validate().unwrap();
    }

    #[test]
    fn unknown_field_rejected() {
        let r: Result<NatConfig, _> = toml::from_str(
            r#"
            inside = ["10.0.0.0/8"]
            bogus = 1
            [[pools]]
            addresses = ["203.0.113.1"]
            "#,
        );
        assert!(r.unwrap_err().to_string().contains("bogus"));
    }

    #[test]
    fn errors_name_the_field() {
        let mut c = NatConfig::masquerade(vec![pfx("10.0.0.0/8")], vec![pfx("203.0.113.1")]);
        c.pools.push(PoolConfig {
            addresses: vec![pfx("198.51.100.1")],
            ports: PortRange::new(500, 2000),
            low_ports: None,
        });
        let e = c.validate().unwrap_err();
        assert_eq!(e.path, "pools[1].ports");
        assert!(matches!(e.problem, ConfigProblem::LowPortsMixed(_)));

        let mut c = NatConfig::masquerade(vec![pfx("10.0.0.0/8")], vec![pfx("203.0.113.1")]);
        c.timeouts.udp = 119;
        let e = c.validate().unwrap_err();
        assert_eq!(e.path, "timeouts.udp");
        assert!(e.to_string().contains("below the RFC minimum"));
        c.timeouts.allow_below_rfc_minimum = true;
        c.validate().unwrap();

        let mut c = NatConfig::masquerade(
            vec![pfx("10.0.0.0/8")],
            vec![pfx("203.0.113.0/30"), pfx("203.0.113.2")],
        );
        assert_eq!(c.validate().unwrap_err().path, "pools[0].addresses[1]");
        c.pools[0].addresses.pop();
        c.pools[0].addresses.push(pfx("10.1.1.1"));
        assert!(matches!(
            c.validate().unwrap_err().problem,
            ConfigProblem::PoolInsideInside(_)
        ));

        let mut c = NatConfig::masquerade(vec![pfx("10.0.0.0/8")], vec![pfx("203.0.113.1")]);
        c.port_forwards.push(PortForward {
            protocol: ForwardProtocol::Udp,
            external: "203.0.113.1".parse().unwrap(),
            external_ports: PortRange::new(100, 110),
            inside: "10.0.0.2".parse().unwrap(),
            inside_ports: PortRange::new(200, 205),
            allowed_sources: None,
        });
        let e = c.validate().unwrap_err();
        assert_eq!(e.path, "port_forwards[0].inside_ports");
        for bad in ["10.0.0.0/33", "10.0.0", "x/8"] {
            assert!(bad.parse::<Ipv4Prefix>().is_err(), "{bad}");
        }
    }
}
