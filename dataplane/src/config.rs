//! The dataplane configuration: one TOML file (see `docs/example.toml` and
//! `docs/config.md`). Unknown fields are rejected everywhere; every error
//! names the field path (`ports[1].mac`, `routes[0].via`, …) and the reason.
//!
//! Loading is `Config::from_toml_str` (parse + [`Config::validate`]); the
//! demo uses [`DEFAULT_CONFIG`], which is the same file as `docs/example.toml`.

use core::net::{IpAddr, Ipv6Addr};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;

mod addr;
mod memory;

pub use addr::{Cidr, MacAddr};
pub use memory::{MemoryEstimate, human_bytes, machine_memory, shard_bytes};

/// The embedded default configuration (identical to `docs/example.toml`).
pub const DEFAULT_CONFIG: &str = include_str!("../../docs/example.toml");

/// DPDK EAL arguments used when `[dpdk] eal_args` is absent or every port is
/// a virtual device.
pub const DEFAULT_EAL_ARGS: &[&str] = &[
    "--no-huge",
    "--no-pci",
    "--no-shconf",
    "--no-telemetry",
    "-m",
    "256",
];

/// `workers`: at most this many.
pub const MAX_WORKERS: usize = 128;
/// `flow_table.shards`: a power of two up to this (the flow table's own
/// limit, `flow_entry::MAX_SHARDS`).
pub const MAX_SHARDS: usize = flow_entry::MAX_SHARDS;
/// `flow_table.capacity`: at most this many entries (the single-writer
/// shard's limit, `flow_entry::Shard::MAX_CAPACITY`, 2^28), and no more
/// than the machine's memory holds ([`Config::memory_estimate`]).
pub const MAX_CAPACITY: usize = flow_entry::Shard::<u128, nat::Session>::MAX_CAPACITY;
/// `flow_table.tick_ms`: 1..= this.
pub const MAX_TICK_MS: u64 = 60_000;
/// `neighbor.hold_queue`: at most this many frames per next hop.
pub const MAX_HOLD_QUEUE: usize = 1024;
/// `neighbor.max_entries` at most.
pub const MAX_NEIGHBOR_ENTRIES: usize = 1 << 20;
/// `neighbor.*_ms` at most (and `*_secs` at most this / 1000): one day.
pub const MAX_NEIGHBOR_MS: u64 = 86_400_000;
/// `neighbor.*_probes` at most.
pub const MAX_NEIGHBOR_PROBES: u64 = 255;
/// `dpdk.burst`: 1..= this.
pub const MAX_DPDK_BURST: u16 = 512;
/// `dpdk.mempool_size`: at least this many mbufs.
pub const MIN_MEMPOOL_SIZE: u32 = 512;
/// `ports[].mtu`: the IPv4 minimum (RFC 791: every link carries 68 bytes).
pub const MIN_MTU: u16 = 68;
/// `ports[].mtu` of a port with IPv6 addresses: the IPv6 minimum (RFC 8200 §5).
pub const MIN_MTU_IPV6: u16 = 1280;
/// `ports[].mtu`: at most this (a common jumbo-frame limit of NICs).
pub const MAX_MTU: u16 = 9216;
/// `ports[].mtu` when absent: Ethernet's.
pub const DEFAULT_MTU: u16 = 1500;
/// `ports[].vlan`: the 802.1Q VLAN ids a port may have (0 means
/// priority-tagged, 4095 is reserved: IEEE 802.1Q §9.6).
pub const VLAN_IDS: core::ops::RangeInclusive<u16> = 1..=4094;

/// A configuration error: the field path and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{field}: {reason}")]
    Parse { field: String, reason: String },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}

impl ConfigError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The field path the error is about (empty for I/O errors).
    pub fn field(&self) -> &str {
        match self {
            ConfigError::Io { .. } => "",
            ConfigError::Parse { field, .. } | ConfigError::Invalid { field, .. } => field,
        }
    }
}

/// Which side of the NAT a port is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Inside,
    Outside,
}

/// One port (NIC or virtual device).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// The port's name, used by `replay --in NAME=FILE` and in counters.
    pub name: String,
    pub mac: MacAddr,
    /// Interface addresses with their on-link prefix length, e.g. `"192.168.1.1/24"`.
    #[serde(default)]
    pub ipv4: Vec<Cidr>,
    #[serde(default)]
    pub ipv6: Vec<Cidr>,
    pub role: Role,
    /// DPDK device: a PCI address (`0000:01:00.0`) or a vdev string
    /// (`net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap`, `net_tap0`, …).
    /// Not needed by replay.
    #[serde(default)]
    pub device: Option<String>,
    /// Largest IP packet (header included, link header excluded) the port
    /// sends: IPv4 beyond it is fragmented (DF clear) or answered with ICMP
    /// fragmentation needed (DF set), IPv6 with Packet Too Big.
    /// [`MIN_MTU`]..=[`MAX_MTU`], at least [`MIN_MTU_IPV6`] on a port with
    /// IPv6 addresses. On DPDK it is set on the device.
    #[serde(default = "default_mtu")]
    pub mtu: u16,
    /// This port's ICMP error bucket, when it differs from the top-level
    /// `[icmp_rate]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_rate: Option<IcmpRateSection>,
    /// The port's 802.1Q VLAN ([`VLAN_IDS`]): received frames must carry
    /// exactly one tag with this id (it is removed), sent frames get it
    /// (priority 0). Absent: the port is untagged and a tagged frame is a
    /// counted drop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
}

fn default_mtu() -> u16 {
    DEFAULT_MTU
}

impl PortConfig {
    /// The ICMP error bucket of this port: its own `icmp_rate`, else the
    /// configuration's.
    pub fn icmp_rate<'a>(&'a self, config: &'a Config) -> &'a IcmpRateSection {
        self.icmp_rate.as_ref().unwrap_or(&config.icmp_rate)
    }

    /// Whether `device` names a DPDK virtual device rather than a PCI address.
    pub fn is_vdev(&self) -> bool {
        self.device.as_deref().is_none_or(|d| d.starts_with("net_"))
    }
}

/// A static route. `via` absent: the prefix is on-link on `port`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub prefix: Cidr,
    #[serde(default)]
    pub via: Option<IpAddr>,
    pub port: String,
}

/// A static neighbour (next hop MAC); learned neighbours need none.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeighborConfig {
    pub ip: IpAddr,
    pub mac: MacAddr,
    pub port: String,
}

/// Neighbour resolution behaviour.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NeighborSection {
    /// Frames held per unresolved next hop while ARP/ND resolves it; more are
    /// counted drops (`neighbor_queue_full`).
    pub hold_queue: usize,
    /// How long a held frame may wait before it is dropped (`neighbor_unresolved`).
    pub hold_timeout_ms: u64,
    /// Interval between solicitations of an `INCOMPLETE` or `PROBE` entry
    /// (Linux `retrans_time_ms`, 1 000).
    pub retry_ms: u64,
    /// A confirmed entry is `REACHABLE` this long, then `STALE` (still used;
    /// Linux `base_reachable_time_ms`, 30 000, unrandomised).
    pub reachable_secs: u64,
    /// A `STALE` entry used moves to `DELAY`; unconfirmed this long, it is
    /// probed (Linux `delay_first_probe_time`, 5).
    pub delay_first_probe_secs: u64,
    /// Unicast probes of a `PROBE` entry (Linux `ucast_solicit`, 3).
    pub ucast_probes: u32,
    /// Broadcast (ARP) / multicast (NS) solicitations of an `INCOMPLETE`
    /// entry (Linux `mcast_solicit`, 3).
    pub mcast_probes: u32,
    /// Broadcast probes of a `PROBE` entry after its unicast ones (Linux
    /// `mcast_resolicit`, 0).
    pub mcast_reprobes: u32,
    /// Learned and incomplete entries at most (Linux `gc_thresh3`, 1 024);
    /// static entries are not counted.
    pub max_entries: usize,
    /// `INCOMPLETE` entries at most (each holds up to `hold_queue` frames).
    pub max_incomplete: usize,
}

impl Default for NeighborSection {
    fn default() -> Self {
        NeighborSection {
            hold_queue: 8,
            hold_timeout_ms: 3000,
            retry_ms: 1000,
            reachable_secs: 30,
            delay_first_probe_secs: 5,
            ucast_probes: 3,
            mcast_probes: 3,
            mcast_reprobes: 0,
            max_entries: 1024,
            max_incomplete: 256,
        }
    }
}

/// Flow table sizing (shared by NAT sessions; IPv6 flows get their own table
/// of the same shape).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowTableSection {
    /// Number of shards (power of two).
    pub shards: usize,
    /// Maximum number of flows.
    pub capacity: usize,
    /// Occupancy fraction that starts draining.
    pub high_watermark: f64,
    /// Occupancy fraction that stops draining.
    pub low_watermark: f64,
    /// Timer wheel tick in milliseconds.
    pub tick_ms: u64,
    /// Obsolete, ignored: sized the workers' established-flow cache, which
    /// is gone (a session hit in the NAT's single-writer table costs what
    /// the cache did). Still accepted so existing configs load; loading a
    /// config that sets it logs a warning ([`Config::warnings`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_cache_entries: Option<usize>,
}

impl Default for FlowTableSection {
    fn default() -> Self {
        FlowTableSection {
            shards: 16,
            capacity: 1 << 20,
            high_watermark: 0.9,
            low_watermark: 0.8,
            tick_ms: 1000,
            worker_cache_entries: None,
        }
    }
}

/// IPv6 stateful forwarding (no translation).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ipv6Section {
    /// Idle timeout of a tracked IPv6 flow.
    pub flow_timeout_secs: u64,
    /// Allow outside → inside IPv6 packets that match no flow opened from
    /// inside (default false: counted drop `unsolicited_inbound`).
    pub allow_inbound: bool,
}

impl Default for Ipv6Section {
    fn default() -> Self {
        Ipv6Section {
            flow_timeout_secs: 300,
            allow_inbound: false,
        }
    }
}

/// The rate limit on the ICMP errors the dataplane generates (RFC 1812
/// §4.3.2.8): one token bucket per port, charged for every error sent on
/// that port (time exceeded, destination unreachable including
/// fragmentation needed, Packet Too Big; not echo replies). An error
/// without a token is not sent (counted: `icmp_rate_limited`). The
/// defaults are Linux's `icmp_msgs_per_sec` and `icmp_msgs_burst`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IcmpRateSection {
    /// Tokens added per second (≥ 1).
    pub per_sec: u32,
    /// Bucket size: errors that may go out back to back (≥ 1).
    pub burst: u32,
}

impl IcmpRateSection {
    /// Both fields at least 1; errors name `path.per_sec` / `path.burst`.
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        if self.per_sec == 0 {
            return Err(ConfigError::invalid(
                format!("{path}.per_sec"),
                "must be at least 1",
            ));
        }
        if self.burst == 0 {
            return Err(ConfigError::invalid(
                format!("{path}.burst"),
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

impl Default for IcmpRateSection {
    fn default() -> Self {
        IcmpRateSection {
            per_sec: 1000,
            burst: 50,
        }
    }
}

/// The DPDK driver's settings (read only by `dataplane run`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DpdkConfig {
    /// EAL arguments; absent → [`DEFAULT_EAL_ARGS`].
    pub eal_args: Option<Vec<String>>,
    pub mempool_size: u32,
    pub burst: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
}

impl Default for DpdkConfig {
    fn default() -> Self {
        DpdkConfig {
            eal_args: None,
            mempool_size: 8191,
            burst: 32,
            rx_desc: 1024,
            tx_desc: 1024,
        }
    }
}

/// Control plane: Prometheus exposition and the `ctl` socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    /// `host:port` for Prometheus text exposition (`GET /metrics`); absent = off.
    pub metrics_addr: Option<String>,
    /// Unix socket path for `dataplane ctl`; absent = off.
    pub socket: Option<String>,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            metrics_addr: None,
            socket: Some("/tmp/dataplane.sock".into()),
        }
    }
}

fn default_handoff_queue() -> usize {
    1024
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Worker (pipeline) count for `run`; replay runs one unless
    /// `--workers N` asks for more.
    #[serde(default = "one")]
    pub workers: usize,
    /// Frames one worker may have queued for another (the bounded queue
    /// per worker pair that hands a frame to the worker owning its NAT
    /// session); a full queue is a counted drop (`handoff_queue_full`).
    #[serde(default = "default_handoff_queue")]
    pub handoff_queue: usize,
    pub ports: Vec<PortConfig>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    #[serde(default)]
    pub neighbors: Vec<NeighborConfig>,
    #[serde(default)]
    pub neighbor: NeighborSection,
    #[serde(default)]
    pub flow_table: FlowTableSection,
    #[serde(default)]
    pub ipv6: Ipv6Section,
    /// Generated ICMP errors, per port.
    #[serde(default)]
    pub icmp_rate: IcmpRateSection,
    #[serde(default)]
    pub dpdk: DpdkConfig,
    #[serde(default)]
    pub control: ControlConfig,
    /// NAT (masquerade, port forwarding): the `nat` crate's configuration.
    #[serde(default)]
    pub nat: Option<crate::natglue::NatConfig>,
}

fn one() -> usize {
    1
}

impl Config {
    /// Parse and validate.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] (syntax, unknown field, bad value: with the
    /// field path) or [`ConfigError::Invalid`] (semantic check).
    pub fn from_toml_str(s: &str) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::parse(s).map_err(|e| ConfigError::Parse {
            field: String::new(),
            reason: e.to_string(),
        })?;
        let cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            let reason = inner.message().to_string();
            ConfigError::Parse {
                field: if field == "." { String::new() } else { field },
                reason,
            }
        })?;
        cfg.validate()?;
        for w in cfg.warnings() {
            tracing::warn!("configuration: {w}");
        }
        Ok(cfg)
    }

    /// What a valid configuration sets that has no effect (obsolete
    /// fields), one message each; [`Config::from_toml_str`] logs them as
    /// warnings.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.flow_table.worker_cache_entries.is_some() {
            w.push(
                "flow_table.worker_cache_entries is obsolete and ignored \
                 (the per-worker established-flow cache was removed); delete it"
                    .to_string(),
            );
        }
        w
    }

    /// Read, parse and validate a file.
    ///
    /// # Errors
    /// As [`Config::from_toml_str`], plus [`ConfigError::Io`].
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let s = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Config::from_toml_str(&s)
    }

    /// The embedded default (the demo's configuration).
    pub fn default_demo() -> Config {
        Config::from_toml_str(DEFAULT_CONFIG).expect("embedded default config is valid (tested)")
    }

    /// Index of the port named `name`.
    pub fn port_index(&self, name: &str) -> Option<usize> {
        self.ports.iter().position(|p| p.name == name)
    }

    /// The EAL arguments the DPDK driver passes (see [`DEFAULT_EAL_ARGS`]).
    pub fn eal_args(&self) -> Vec<String> {
        match &self.dpdk.eal_args {
            Some(a) if !self.ports.iter().all(PortConfig::is_vdev) => a.clone(),
            Some(a) if !a.is_empty() => a.clone(),
            _ => DEFAULT_EAL_ARGS.iter().map(|s| (*s).to_string()).collect(),
        }
    }

    /// What the tables this configuration builds will take: the NAT's
    /// session shard (`flow_entry::Shard<u128, nat::Session>`) and the IPv6
    /// flow tracker's (`flow_entry::Shard<FlowKey, ()>`), each of
    /// `flow_table.capacity` entries ([`shard_bytes`]). Other allocations
    /// (the NAT's mapping maps, fragments, hold queues) are not counted.
    pub fn memory_estimate(&self) -> MemoryEstimate {
        let tc = crate::natglue::table_config(self);
        let ticks = tc.range.as_nanos() / tc.tick.as_nanos().max(1);
        let levels =
            flow_entry::wheel::Wheel::levels_for_range(u64::try_from(ticks).unwrap_or(u64::MAX));
        let cap = self.flow_table.capacity;
        MemoryEstimate {
            nat_sessions: if self.nat.is_some() {
                shard_bytes::<u128, nat::Session>(cap, levels)
            } else {
                0
            },
            ipv6_flows: shard_bytes::<flow_entry::FlowKey, ()>(cap, levels),
        }
    }

    /// Every check `check-config`, `replay` and `run` make (they all load
    /// through [`Config::from_toml_str`], which calls this): the semantic
    /// checks ([`Config::validate_with_memory`]) against this machine's
    /// memory ([`machine_memory`]).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_with_memory(machine_memory())
    }

    /// Semantic checks; the first problem found is returned. `memory`: the
    /// machine's memory in bytes (`None`: not checked); a configuration
    /// whose tables ([`Config::memory_estimate`]) would take more is
    /// refused, naming `flow_table.capacity`.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the field.
    pub fn validate_with_memory(&self, memory: Option<u64>) -> Result<(), ConfigError> {
        if self.workers == 0 || self.workers > MAX_WORKERS {
            return Err(ConfigError::invalid(
                "workers",
                format!("{} is not in 1..={MAX_WORKERS}", self.workers),
            ));
        }
        if !(1..=65_536).contains(&self.handoff_queue) {
            return Err(ConfigError::invalid(
                "handoff_queue",
                format!("{} is not in 1..=65536", self.handoff_queue),
            ));
        }
        if self.ports.is_empty() {
            return Err(ConfigError::invalid(
                "ports",
                "at least one port is required",
            ));
        }
        if self.ports.len() > usize::from(u16::MAX) {
            return Err(ConfigError::invalid("ports", "too many ports"));
        }
        let mut names = BTreeSet::new();
        for (i, p) in self.ports.iter().enumerate() {
            if p.name.is_empty() || p.name.contains(['=', '/', ' ']) {
                return Err(ConfigError::invalid(
                    format!("ports[{i}].name"),
                    format!(
                        "`{}` is not a valid port name (non-empty, no '=', '/' or space)",
                        p.name
                    ),
                ));
            }
            if !names.insert(p.name.as_str()) {
                return Err(ConfigError::invalid(
                    format!("ports[{i}].name"),
                    format!("duplicate port name `{}`", p.name),
                ));
            }
            if p.mac.0[0] & 1 != 0 || p.mac.0 == [0; 6] {
                return Err(ConfigError::invalid(
                    format!("ports[{i}].mac"),
                    format!("{} is not a unicast MAC", p.mac),
                ));
            }
            for (j, a) in p.ipv4.iter().enumerate() {
                if !a.is_v4() {
                    return Err(ConfigError::invalid(
                        format!("ports[{i}].ipv4[{j}]"),
                        format!("{a} is not IPv4"),
                    ));
                }
            }
            for (j, a) in p.ipv6.iter().enumerate() {
                if a.is_v4() {
                    return Err(ConfigError::invalid(
                        format!("ports[{i}].ipv6[{j}]"),
                        format!("{a} is not IPv6"),
                    ));
                }
            }
            if !(MIN_MTU..=MAX_MTU).contains(&p.mtu) {
                return Err(ConfigError::invalid(
                    format!("ports[{i}].mtu"),
                    format!("{} is not in {MIN_MTU}..={MAX_MTU}", p.mtu),
                ));
            }
            if !p.ipv6.is_empty() && p.mtu < MIN_MTU_IPV6 {
                return Err(ConfigError::invalid(
                    format!("ports[{i}].mtu"),
                    format!(
                        "{} is below {MIN_MTU_IPV6}, the IPv6 minimum, on a port with IPv6 addresses",
                        p.mtu
                    ),
                ));
            }
            if let Some(v) = p.vlan
                && !VLAN_IDS.contains(&v)
            {
                return Err(ConfigError::invalid(
                    format!("ports[{i}].vlan"),
                    format!(
                        "{v} is not a VLAN id ({}..={})",
                        VLAN_IDS.start(),
                        VLAN_IDS.end()
                    ),
                ));
            }
            if let Some(d) = &p.device
                && d.is_empty()
            {
                return Err(ConfigError::invalid(
                    format!("ports[{i}].device"),
                    "empty device string",
                ));
            }
        }
        for (i, r) in self.routes.iter().enumerate() {
            let Some(pi) = self.port_index(&r.port) else {
                return Err(ConfigError::invalid(
                    format!("routes[{i}].port"),
                    format!("no port named `{}`", r.port),
                ));
            };
            if let Some(v) = r.via {
                if v.is_ipv4() != r.prefix.is_v4() {
                    return Err(ConfigError::invalid(
                        format!("routes[{i}].via"),
                        format!("{v} is not the same family as {}", r.prefix),
                    ));
                }
                let p = &self.ports[pi];
                let onlink = p.ipv4.iter().chain(&p.ipv6).any(|c| c.contains(v));
                if !onlink {
                    return Err(ConfigError::invalid(
                        format!("routes[{i}].via"),
                        format!("next hop {v} is not on any subnet of port `{}`", r.port),
                    ));
                }
            }
        }
        for (i, n) in self.neighbors.iter().enumerate() {
            if self.port_index(&n.port).is_none() {
                return Err(ConfigError::invalid(
                    format!("neighbors[{i}].port"),
                    format!("no port named `{}`", n.port),
                ));
            }
        }
        let ft = &self.flow_table;
        if !ft.shards.is_power_of_two() || ft.shards > MAX_SHARDS {
            return Err(ConfigError::invalid(
                "flow_table.shards",
                format!("{} is not a power of two in 1..={MAX_SHARDS}", ft.shards),
            ));
        }
        if ft.capacity == 0 || ft.capacity > MAX_CAPACITY {
            return Err(ConfigError::invalid(
                "flow_table.capacity",
                format!(
                    "{} is not in 1..={MAX_CAPACITY} (2^{})",
                    ft.capacity,
                    MAX_CAPACITY.trailing_zeros()
                ),
            ));
        }
        if !(ft.high_watermark > 0.0 && ft.high_watermark <= 1.0) {
            return Err(ConfigError::invalid(
                "flow_table.high_watermark",
                "must be in (0, 1]",
            ));
        }
        if !(ft.low_watermark > 0.0 && ft.low_watermark < ft.high_watermark) {
            return Err(ConfigError::invalid(
                "flow_table.low_watermark",
                "must be in (0, high_watermark)",
            ));
        }
        if ft.tick_ms == 0 || ft.tick_ms > MAX_TICK_MS {
            return Err(ConfigError::invalid(
                "flow_table.tick_ms",
                format!("{} is not in 1..={MAX_TICK_MS}", ft.tick_ms),
            ));
        }
        // The flow table's own checks (what building the tables runs), so
        // a limit added there is caught here, naming the field.
        crate::natglue::table_config(self).validate().map_err(|e| {
            use flow_entry::ConfigError as E;
            let field = match e {
                E::Shards(_) => "flow_table.shards",
                E::Capacity { .. } => "flow_table.capacity",
                E::Watermarks { .. } => "flow_table.high_watermark",
                E::Tick(_) | E::Range(_) => "flow_table.tick_ms",
                E::EvictScan => "flow_table",
            };
            ConfigError::invalid(field, e.to_string())
        })?;
        if self.ipv6.flow_timeout_secs == 0 {
            return Err(ConfigError::invalid(
                "ipv6.flow_timeout_secs",
                "must be at least 1",
            ));
        }
        if self.neighbor.hold_queue > MAX_HOLD_QUEUE {
            return Err(ConfigError::invalid(
                "neighbor.hold_queue",
                format!(
                    "{} is over the maximum {MAX_HOLD_QUEUE}",
                    self.neighbor.hold_queue
                ),
            ));
        }
        let n = &self.neighbor;
        let bounded = [
            ("neighbor.retry_ms", n.retry_ms, 1, MAX_NEIGHBOR_MS),
            (
                "neighbor.hold_timeout_ms",
                n.hold_timeout_ms,
                0,
                MAX_NEIGHBOR_MS,
            ),
            (
                "neighbor.reachable_secs",
                n.reachable_secs,
                1,
                MAX_NEIGHBOR_MS / 1000,
            ),
            (
                "neighbor.delay_first_probe_secs",
                n.delay_first_probe_secs,
                0,
                MAX_NEIGHBOR_MS / 1000,
            ),
            (
                "neighbor.ucast_probes",
                u64::from(n.ucast_probes),
                0,
                MAX_NEIGHBOR_PROBES,
            ),
            (
                "neighbor.mcast_probes",
                u64::from(n.mcast_probes),
                1,
                MAX_NEIGHBOR_PROBES,
            ),
            (
                "neighbor.mcast_reprobes",
                u64::from(n.mcast_reprobes),
                0,
                MAX_NEIGHBOR_PROBES,
            ),
            (
                "neighbor.max_entries",
                n.max_entries as u64,
                1,
                MAX_NEIGHBOR_ENTRIES as u64,
            ),
            (
                "neighbor.max_incomplete",
                n.max_incomplete as u64,
                1,
                n.max_entries as u64,
            ),
        ];
        for (field, v, lo, hi) in bounded {
            if !(lo..=hi).contains(&v) {
                return Err(ConfigError::invalid(
                    field,
                    format!("{v} is not in {lo}..={hi}"),
                ));
            }
        }
        self.icmp_rate.validate("icmp_rate")?;
        for (i, p) in self.ports.iter().enumerate() {
            if let Some(r) = &p.icmp_rate {
                r.validate(&format!("ports[{i}].icmp_rate"))?;
            }
        }
        if self.dpdk.burst == 0 || self.dpdk.burst > MAX_DPDK_BURST {
            return Err(ConfigError::invalid(
                "dpdk.burst",
                format!("{} is not in 1..={MAX_DPDK_BURST}", self.dpdk.burst),
            ));
        }
        if self.dpdk.mempool_size < MIN_MEMPOOL_SIZE {
            return Err(ConfigError::invalid(
                "dpdk.mempool_size",
                format!(
                    "{} is below the minimum {MIN_MEMPOOL_SIZE}",
                    self.dpdk.mempool_size
                ),
            ));
        }
        if let Some(a) = &self.control.metrics_addr
            && a.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(ConfigError::invalid(
                "control.metrics_addr",
                format!("`{a}` is not host:port"),
            ));
        }
        if let Some(nat) = &self.nat {
            if !self.ports.iter().any(|p| p.role == Role::Inside)
                || !self.ports.iter().any(|p| p.role == Role::Outside)
            {
                return Err(ConfigError::invalid(
                    "ports",
                    "NAT needs at least one inside and one outside port",
                ));
            }
            crate::natglue::validate(nat)
                .map_err(|(f, r)| ConfigError::invalid(format!("nat.{f}"), r))?;
        }
        if let Some(have) = memory {
            let m = self.memory_estimate();
            if m.total() > have {
                return Err(ConfigError::invalid(
                    "flow_table.capacity",
                    format!(
                        "{} entries: the tables would take {} (NAT sessions {} + IPv6 flows {}), \
                         more than the machine's memory, {} (MemTotal in /proc/meminfo)",
                        ft.capacity,
                        human_bytes(m.total()),
                        human_bytes(m.nat_sessions),
                        human_bytes(m.ipv6_flows),
                        human_bytes(have)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The IPv6 addresses of `port`.
    pub fn ipv6_addresses(&self, port: usize) -> Vec<Ipv6Addr> {
        self.ports[port]
            .ipv6
            .iter()
            .filter_map(|c| match c.addr {
                IpAddr::V6(a) => Some(a),
                IpAddr::V4(_) => None,
            })
            .collect()
    }
}
