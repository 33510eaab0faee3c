//! `check-config`: the example is valid; bad configs are rejected with a
//! message naming the field.

mod common;

use common::config_text_with;
use dataplane::config::{Config, DEFAULT_CONFIG, DEFAULT_EAL_ARGS};
use std::process::Command;

fn err(text: &str) -> (String, String) {
    let e = Config::from_toml_str(text).expect_err("config should be rejected");
    (e.field().to_string(), e.to_string())
}

#[test]
fn example_config_is_valid_and_complete() {
    let c = Config::from_toml_str(DEFAULT_CONFIG).unwrap();
    assert_eq!(c.ports.len(), 2);
    assert!(c.nat.is_some());
    assert_eq!(
        c.eal_args(),
        DEFAULT_EAL_ARGS
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    );
    assert_eq!(c.dpdk.mempool_size, 8191);
    assert_eq!(c.dpdk.burst, 32);
}

#[test]
fn unknown_fields_are_rejected_with_their_path() {
    let (f, m) = err(&config_text_with(
        "workers = 1",
        "workers = 1\ncolour = \"blue\"",
    ));
    assert!(m.contains("colour"), "{m}");
    assert!(f.is_empty() || f == "colour", "{f}");
    let (f, m) = err(&config_text_with(
        "role = \"inside\"",
        "role = \"inside\"\nspeed = 10",
    ));
    assert!(m.contains("speed"), "{m}");
    assert!(f.starts_with("ports"), "{f}");
    let (f, m) = err(&config_text_with(
        "hairpinning = true",
        "hairpinning = true\nhairpining = true",
    ));
    assert!(m.contains("hairpining"), "{m}");
    assert!(f.starts_with("nat"), "{f}");
}

#[test]
fn bad_values_name_the_field() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "mac = \"02:00:00:00:02:01\"",
            "mac = \"02:00:zz:00:02:01\"",
            "ports[1].mac",
        ),
        (
            "mac = \"02:00:00:00:01:01\"",
            "mac = \"01:00:5e:00:00:01\"",
            "ports[0].mac",
        ),
        (
            "ipv4 = [\"203.0.113.2/24\"]",
            "ipv4 = [\"203.0.113.2/40\"]",
            "ports[1].ipv4",
        ),
        ("role = \"outside\"", "role = \"sideways\"", "ports[1].role"),
        (
            "port = \"wan\"\n\n[[routes]]",
            "port = \"dmz\"\n\n[[routes]]",
            "routes[0].port",
        ),
        (
            "via = \"203.0.113.1\"",
            "via = \"10.9.9.9\"",
            "routes[0].via",
        ),
        ("shards = 16", "shards = 12", "flow_table.shards"),
        (
            "low_watermark = 0.8",
            "low_watermark = 0.95",
            "flow_table.low_watermark",
        ),
        ("burst = 32", "burst = 0", "dpdk.burst"),
        ("name = \"wan\"", "name = \"lan\"", "ports[1].name"),
        ("workers = 1", "workers = 0", "workers"),
        ("udp = 300", "udp = 30", "nat.timeouts.udp"),
        ("inside = [\"192.168.1.0/24\"]", "inside = []", "nat.inside"),
    ];
    for (from, to, field) in cases {
        let (f, m) = err(&config_text_with(from, to));
        assert!(
            f.starts_with(field) || m.contains(field),
            "`{to}`: want field {field}, got field `{f}`, message `{m}`"
        );
    }
}

#[test]
fn nat_needs_both_sides() {
    let t = DEFAULT_CONFIG.replace("role = \"outside\"", "role = \"inside\"");
    let (f, m) = err(&t);
    assert_eq!(f, "ports", "{m}");
}

/// `flow_table.worker_cache_entries` (the removed established-flow cache)
/// is still accepted, with any value, and ignored with a warning.
#[test]
fn obsolete_worker_cache_entries_is_accepted_with_a_warning() {
    let without: String = DEFAULT_CONFIG
        .lines()
        .filter(|l| !l.trim_start().starts_with("worker_cache_entries"))
        .map(|l| format!("{l}\n"))
        .collect();
    let c = Config::from_toml_str(&without).unwrap();
    assert_eq!(c.flow_table.worker_cache_entries, None);
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    for v in ["0", "32768", "2000000"] {
        let text = without.replace(
            "[flow_table]\n",
            &format!("[flow_table]\nworker_cache_entries = {v}\n"),
        );
        let c = Config::from_toml_str(&text).unwrap();
        let w = c.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("flow_table.worker_cache_entries") && w[0].contains("obsolete"),
            "{w:?}"
        );
    }
    // check-config says so, and still accepts the file.
    let dir = common::temp_dir("check-config-obsolete");
    let path = dir.join("old.toml");
    std::fs::write(
        &path,
        without.replace(
            "[flow_table]\n",
            "[flow_table]\nworker_cache_entries = 32768\n",
        ),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_dataplane"))
        .env_remove("RUST_LOG")
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("worker_cache_entries") && e.contains("obsolete"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_config_cli_exit_codes_and_messages() {
    let dir = common::temp_dir("check-config");
    let good = dir.join("good.toml");
    std::fs::write(&good, DEFAULT_CONFIG).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_dataplane"))
        .arg("check-config")
        .arg(&good)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("OK"));
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, config_text_with("shards = 16", "shards = 3")).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_dataplane"))
        .arg("check-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("flow_table.shards") && e.contains("power of two"),
        "{e}"
    );
    let o = Command::new(env!("CARGO_BIN_EXE_dataplane"))
        .arg("check-config")
        .arg(dir.join("missing.toml"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn address_dependent_filtering_is_accepted_and_needs_eim() {
    let c = Config::from_toml_str(&config_text_with(
        "filtering = \"address_and_port_dependent\"",
        "filtering = \"address_dependent\"",
    ))
    .unwrap();
    assert_eq!(
        c.nat.unwrap().filtering,
        nat::FilteringBehavior::AddressDependent
    );
    let text = config_text_with(
        "filtering = \"address_and_port_dependent\"",
        "filtering = \"address_dependent\"",
    )
    .replace(
        "mapping = \"endpoint_independent\"",
        "mapping = \"address_and_port_dependent\"",
    );
    let (f, m) = err(&text);
    assert!(f.contains("filtering"), "{f}: {m}");
    assert!(m.contains("endpoint_independent mapping"), "{m}");
}

#[test]
fn unsolicited_syn_policy_is_parsed_and_checked() {
    let c = Config::from_toml_str(&config_text_with(
        "unsolicited_syn = \"drop\"",
        "unsolicited_syn = \"hold\"",
    ))
    .unwrap();
    assert_eq!(c.nat.unwrap().unsolicited_syn, nat::UnsolicitedSyn::Hold);
    let (f, m) = err(&config_text_with(
        "unsolicited_syn = \"drop\"",
        "unsolicited_syn = \"answer\"",
    ));
    assert!(f.contains("unsolicited_syn"), "{f}: {m}");
}
