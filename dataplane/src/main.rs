//! `dataplane`: the binary. Config, per-core pipeline, pcap replay harness,
//! DPDK driver (feature `dpdk`), control and metrics.

fn main() {
    println!("dataplane: pipeline parse -> flow lookup -> port-forward -> masquerade -> L3 out");
    println!("(the built-in replay demo lands with the dataplane issue)");
}
