//! Real kernel clients through the dataplane: `scripts/netns-check dataplane`
//! builds the namespace topology (scripts/netns-topology), runs this crate's
//! `dataplane run` on `net_tap` ports, and asserts ping v4/v6, curl through
//! masquerade, port forwarding, traceroute, UDP port unreachable, path-MTU
//! discovery, a 4000-byte ping, two hosts on the same source port, iperf3 and
//! a clean SIGTERM shutdown. Skips (loudly) without CAP_NET_ADMIN.
#![cfg(feature = "dpdk")]

use std::path::Path;
use std::process::Command;

#[test]
fn dpdk_netns_kernel_clients() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let out = Command::new(root.join("scripts/netns-check"))
        .args(["dataplane", "--iperf-secs", "1"])
        .env("DATAPLANE_BIN", env!("CARGO_BIN_EXE_dataplane"))
        .env("DP_PORTS", "tap")
        .current_dir(root)
        .output()
        .expect("run scripts/netns-check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(77) {
        eprintln!("\n*** SKIPPED dpdk_netns_kernel_clients: {stderr} ***\n");
        return;
    }
    println!("{stdout}");
    let required = [
        "ping4",
        "ping6",
        "curl_masquerade",
        "port_forward",
        "traceroute",
        "udp_port_unreachable",
        "path_mtu",
        "ping_4000",
        "same_source_port",
        "iperf3_tcp",
        "iperf3_udp",
        "clean_shutdown",
    ];
    for name in required {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("PASS {name}"))),
            "check {name} did not pass:\n{stdout}\n{stderr}"
        );
    }
    assert!(
        out.status.success(),
        "netns-check failed:\n{stdout}\n{stderr}"
    );
}
