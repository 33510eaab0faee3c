//! One validation: `check-config` runs exactly the checks `replay` (and
//! `run`) run. For every limited field, a table of values at, inside and
//! past the limit: the CLI's `check-config` and `replay` both accept, or
//! both refuse with the same message naming the field. And the limits in
//! the messages are the ones the tables enforce (`flow_entry::MAX_SHARDS`,
//! `Shard::MAX_CAPACITY`), the memory check names `flow_table.capacity`,
//! and `check-config` prints the memory the config will take.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

use dataplane::config::{self, Config};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dataplane"))
}

/// The example config with `path` (dotted, e.g. `flow_table.shards`,
/// `ports.0.mac`) set to `value`.
fn config_with(path: &str, value: toml::Value) -> String {
    let mut v: toml::Value = toml::from_str(config::DEFAULT_CONFIG).unwrap();
    let mut cur = &mut v;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, p) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        cur = match cur {
            toml::Value::Table(t) => {
                if last {
                    t.insert((*p).to_string(), value);
                    return toml::to_string(&v).unwrap();
                }
                t.entry((*p).to_string())
                    .or_insert_with(|| toml::Value::Table(toml::map::Map::new()))
            }
            toml::Value::Array(a) => {
                let i: usize = p.parse().unwrap();
                if last {
                    a[i] = value;
                    return toml::to_string(&v).unwrap();
                }
                &mut a[i]
            }
            other => panic!("{path}: {other:?} is not a table"),
        };
    }
    unreachable!()
}

/// A one-packet capture for the LAN port.
fn capture(dir: &Path) -> PathBuf {
    let p = dir.join("lan-in.pcap");
    let f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    let mut w =
        pcap_file::pcap::PcapWriter::with_header(f, dataplane::replay::out_header()).unwrap();
    let frame = dataplane::wire::arp_request(HOST_MAC, HOST, GW);
    w.write_packet(&pcap_file::pcap::PcapPacket::new(
        core::time::Duration::from_secs(1),
        frame.len() as u32,
        &frame,
    ))
    .unwrap();
    p
}

/// `Ok(())` or the message after `invalid configuration: `, for a CLI run.
fn outcome(o: &std::process::Output) -> Result<(), String> {
    if o.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&o.stderr);
    let msg = err
        .lines()
        .find_map(|l| l.split_once("invalid configuration: ").map(|(_, m)| m))
        .unwrap_or_else(|| panic!("no configuration error in: {err}"));
    assert_eq!(o.status.code(), Some(2), "{err}");
    Err(msg.to_string())
}

#[test]
fn check_config_and_replay_agree_on_every_limited_field() {
    use toml::Value::{Float as F, Integer as I, String as S};
    let dir = temp_dir("config-limits");
    let cap = capture(&dir);
    // The 2^28 row needs more memory than this machine has to be refused
    // by the memory check (and must not be replayed if it is accepted).
    let big = {
        let mut c = Config::default_demo();
        c.flow_table.capacity = config::MAX_CAPACITY;
        c.memory_estimate().total()
    };
    let huge_refused = config::machine_memory().is_some_and(|m| m < big);
    let max_cap = config::MAX_CAPACITY as i64;
    // (field, value, None = accepted / Some(field the error names)).
    let mut rows: Vec<(&str, toml::Value, Option<&str>)> = vec![
        ("workers", I(0), Some("workers")),
        ("workers", I(128), None),
        ("workers", I(129), Some("workers")),
        ("flow_table.shards", I(1), None),
        ("flow_table.shards", I(3), Some("flow_table.shards")),
        ("flow_table.shards", I(1024), None),
        ("flow_table.shards", I(2048), Some("flow_table.shards")),
        ("flow_table.shards", I(4096), Some("flow_table.shards")),
        ("flow_table.capacity", I(0), Some("flow_table.capacity")),
        ("flow_table.capacity", I(1), None),
        (
            "flow_table.capacity",
            I(max_cap + 1),
            Some("flow_table.capacity"),
        ),
        ("flow_table.high_watermark", F(1.0), None),
        (
            "flow_table.high_watermark",
            F(1.5),
            Some("flow_table.high_watermark"),
        ),
        (
            "flow_table.high_watermark",
            F(0.0),
            Some("flow_table.high_watermark"),
        ),
        (
            "flow_table.low_watermark",
            F(0.95),
            Some("flow_table.low_watermark"),
        ),
        ("flow_table.tick_ms", I(0), Some("flow_table.tick_ms")),
        ("flow_table.tick_ms", I(60_000), None),
        ("flow_table.tick_ms", I(60_001), Some("flow_table.tick_ms")),
        (
            "ipv6.flow_timeout_secs",
            I(0),
            Some("ipv6.flow_timeout_secs"),
        ),
        ("neighbor.hold_queue", I(1024), None),
        ("neighbor.hold_queue", I(1025), Some("neighbor.hold_queue")),
        ("neighbor.retry_ms", I(0), Some("neighbor.retry_ms")),
        (
            "neighbor.retry_ms",
            I(86_400_001),
            Some("neighbor.retry_ms"),
        ),
        (
            "neighbor.reachable_secs",
            I(0),
            Some("neighbor.reachable_secs"),
        ),
        ("neighbor.reachable_secs", I(86_400), None),
        (
            "neighbor.delay_first_probe_secs",
            I(86_401),
            Some("neighbor.delay_first_probe_secs"),
        ),
        ("neighbor.ucast_probes", I(0), None),
        (
            "neighbor.ucast_probes",
            I(256),
            Some("neighbor.ucast_probes"),
        ),
        ("neighbor.mcast_probes", I(0), Some("neighbor.mcast_probes")),
        (
            "neighbor.mcast_reprobes",
            I(256),
            Some("neighbor.mcast_reprobes"),
        ),
        ("neighbor.max_entries", I(0), Some("neighbor.max_entries")),
        ("neighbor.max_entries", I(1 << 20), None),
        (
            "neighbor.max_entries",
            I((1 << 20) + 1),
            Some("neighbor.max_entries"),
        ),
        (
            "neighbor.max_incomplete",
            I(0),
            Some("neighbor.max_incomplete"),
        ),
        (
            "neighbor.max_incomplete",
            I(1025),
            Some("neighbor.max_incomplete"),
        ),
        ("dpdk.burst", I(0), Some("dpdk.burst")),
        ("dpdk.burst", I(512), None),
        ("dpdk.burst", I(513), Some("dpdk.burst")),
        ("dpdk.mempool_size", I(511), Some("dpdk.mempool_size")),
        ("dpdk.mempool_size", I(512), None),
        (
            "control.metrics_addr",
            S("nowhere".into()),
            Some("control.metrics_addr"),
        ),
        (
            "ports.0.mac",
            S("01:00:5e:00:00:01".into()),
            Some("ports[0].mac"),
        ),
        ("nat.timeouts.udp", I(30), Some("nat.timeouts.udp")),
    ];
    if huge_refused {
        rows.push((
            "flow_table.capacity",
            I(max_cap),
            Some("flow_table.capacity"),
        ));
    } else {
        println!("NOTICE: this machine has memory for 2^28 entries; that row is skipped");
    }
    let mut failures = Vec::new();
    for (i, (field, value, want)) in rows.iter().enumerate() {
        let cfg = dir.join(format!("c{i}.toml"));
        std::fs::write(&cfg, config_with(field, value.clone())).unwrap();
        let check = bin().arg("check-config").arg(&cfg).output().unwrap();
        let replay = bin()
            .args(["replay", "--config"])
            .arg(&cfg)
            .arg(format!("--in=lan={}", cap.display()))
            .arg("--out-dir")
            .arg(dir.join(format!("out{i}")))
            .arg("--json")
            .output()
            .unwrap();
        let (c, r) = (outcome(&check), outcome(&replay));
        let row = format!("{field} = {value}");
        if c != r {
            failures.push(format!("{row}: check-config {c:?} but replay {r:?}"));
            continue;
        }
        match (want, &c) {
            (None, Ok(())) => {}
            (Some(f), Err(m)) if m.starts_with(&format!("{f}: ")) => {}
            _ => failures.push(format!("{row}: want {want:?}, both gave {c:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The limits in the messages are the tables' own: the shard limit is
/// `flow_entry::MAX_SHARDS`, the capacity limit the shard's.
#[test]
fn limits_are_the_tables_own() {
    assert_eq!(config::MAX_SHARDS, flow_entry::MAX_SHARDS);
    assert_eq!(
        config::MAX_CAPACITY,
        flow_entry::Shard::<u128, nat::Session>::MAX_CAPACITY
    );
    let mut c = Config::default_demo();
    c.flow_table.shards = flow_entry::MAX_SHARDS * 2;
    let e = c.validate_with_memory(None).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "flow_table.shards: {} is not a power of two in 1..={}",
            flow_entry::MAX_SHARDS * 2,
            flow_entry::MAX_SHARDS
        )
    );
    c.flow_table.shards = flow_entry::MAX_SHARDS;
    // What the config accepts, the tables build (the same table config).
    dataplane::natglue::table_config(&c).validate().unwrap();
    c.flow_table.capacity = config::MAX_CAPACITY;
    c.validate_with_memory(None).unwrap();
    dataplane::natglue::table_config(&c).validate().unwrap();
    c.flow_table.capacity = config::MAX_CAPACITY + 1;
    let e = c.validate_with_memory(None).unwrap_err().to_string();
    assert!(
        e.starts_with("flow_table.capacity: ") && e.contains(&config::MAX_CAPACITY.to_string()),
        "{e}"
    );
}

/// The memory estimate is what the tables report they allocate, and a
/// config that needs more than the machine has is refused naming
/// `flow_table.capacity`.
#[test]
fn memory_estimate_matches_the_tables_and_is_checked() {
    let mut c = Config::default_demo();
    c.flow_table.capacity = 1 << 12;
    let m = c.memory_estimate();
    let shared = dataplane::pipeline::Shared::new(c.clone(), 1).unwrap();
    let nat_bytes = shared.nat.as_ref().unwrap().lock(0).stats().table_bytes;
    assert_eq!(m.nat_sessions, nat_bytes, "NAT session shard");
    assert!(m.ipv6_flows > m.nat_sessions / 2, "{m:?}");
    // Grows with the capacity.
    c.flow_table.capacity = 1 << 20;
    let m20 = c.memory_estimate();
    assert!(m20.total() > 200 * m.total(), "{m20:?} vs {m:?}");
    // Refused when the machine has less; accepted when it has enough.
    let e = c.validate_with_memory(Some(m20.total() - 1)).unwrap_err();
    assert_eq!(e.field(), "flow_table.capacity");
    assert!(
        e.to_string().contains("more than the machine's memory"),
        "{e}"
    );
    c.validate_with_memory(Some(m20.total())).unwrap();
    // Without NAT only the IPv6 flows count.
    c.nat = None;
    assert_eq!(c.memory_estimate().nat_sessions, 0);
}

#[test]
fn check_config_prints_the_memory_the_config_takes() {
    let dir = temp_dir("check-config-memory");
    let cfg = dir.join("c.toml");
    std::fs::write(&cfg, config::DEFAULT_CONFIG).unwrap();
    let o = bin().arg("check-config").arg(&cfg).output().unwrap();
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    let m = Config::default_demo().memory_estimate();
    let want = format!(
        "memory: {} for the tables of 262144 entries",
        config::human_bytes(m.total())
    );
    assert!(out.contains(&want), "want `{want}` in:\n{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Resident memory of this process (kB), from /proc.
fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The tables grow with use: a configuration sized for 4 M sessions (about
/// 1 GiB of tables by the estimate) replaying a few packets stays small in
/// resident memory, because the slabs are reserved, not written, and the
/// indexes are zeroed pages the kernel maps on first write. (What the
/// estimate and the memory check count is the most the tables can take.)
#[test]
fn tables_grow_with_use() {
    let mut c = Config::default_demo();
    c.flow_table.capacity = 1 << 22;
    let estimate = c.memory_estimate().total();
    assert!(estimate > 512 << 20, "{estimate}");
    let before = rss_kb();
    let shared = dataplane::pipeline::Shared::new(c, 1).unwrap();
    let mut p = dataplane::pipeline::Pipeline::new(std::sync::Arc::clone(&shared), 0);
    let mut out = dataplane::pipeline::Output::default();
    for sp in 0..14u16 {
        let mut f = vec![common::udp_out(40000 + sp)];
        p.process(common::LAN, &mut f, common::ts(1.0), &mut out);
    }
    assert_eq!(shared.nat.as_ref().unwrap().summary().sessions_active, 14);
    let grown = rss_kb().saturating_sub(before);
    assert!(
        grown < 64 << 10,
        "{grown} kB resident for 14 sessions of a {estimate}-byte table"
    );
}
