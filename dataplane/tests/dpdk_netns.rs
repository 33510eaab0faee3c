//! Real kernel clients through the dataplane: `scripts/netns-check dataplane`
//! builds the namespace topology (scripts/netns-topology), runs this crate's
//! `dataplane run` on `net_af_xdp` ports where the kernel allows it (else
//! `net_tap`: `DP_PORTS=auto`; set `DP_PORTS=af_xdp|tap|af_packet` to choose),
//! and asserts ping v4/v6, curl through masquerade, port forwarding,
//! traceroute, UDP port unreachable, path-MTU discovery, a 4000-byte ping
//! (IPv4 fragments both ways), the inside link's MTU (1778) above the outside
//! one (1500): a jumbo ping fragmented by the dataplane, a DF one answered
//! with frag-needed, curl completing by path-MTU discovery (not on net_tap
//! or net_af_packet, which carry at most 1500); a quiet host whose neighbour entry went STALE
//! receiving without a hold; two hosts on the same source port, iperf3 and a
//! clean SIGTERM shutdown. Prints which port kind ran. Skips (loudly) without
//! CAP_NET_ADMIN.
#![cfg(feature = "dpdk")]

use std::path::Path;
use std::process::Command;

#[test]
fn dpdk_netns_kernel_clients() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let ports = std::env::var("DP_PORTS").unwrap_or_else(|_| "auto".to_owned());
    let out = Command::new(root.join("scripts/netns-check"))
        .args(["dataplane", "--iperf-secs", "1"])
        .env("DATAPLANE_BIN", env!("CARGO_BIN_EXE_dataplane"))
        .env("DP_PORTS", &ports)
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
    // Which port kind ran (and why, for auto): on stderr too, so it shows
    // next to the test's name in a failure and with --no-capture.
    let kind = stdout
        .lines()
        .find(|l| l.starts_with("PORTS "))
        .unwrap_or("PORTS unknown (no PORTS line)");
    eprintln!("dpdk_netns_kernel_clients (DP_PORTS={ports}): {kind}");
    assert!(
        kind.starts_with("PORTS ") && !kind.starts_with("PORTS unknown"),
        "netns-check printed no PORTS line:\n{stdout}\n{stderr}"
    );
    if ports != "auto" {
        assert!(
            kind.starts_with(&format!("PORTS {ports}")),
            "asked for {ports} ports, ran {kind}"
        );
    }
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
        "quiet_host",
    ];
    // The inside links' MTU is above the outside 1500 except on net_tap and
    // net_af_packet ports (which carry at most 1500): there netns-check
    // skips these.
    let mtu_checks = ["ping_jumbo", "ping_df_frag_needed", "curl_pmtu"];
    let at_1500 = stdout
        .lines()
        .any(|l| l.starts_with("PORTS tap") || l.starts_with("PORTS af_packet"));
    let mtu_required: &[&str] = if at_1500 { &[] } else { &mtu_checks };
    for name in required.iter().chain(mtu_required) {
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
