//! The DPDK floors: what the least per-packet work reaches on the same
//! vdevs and core as `dataplane run` and `dpdk-testpmd` (issue #6's bench).
//!
//! ```sh
//! cargo run --release -p dataplane --features dpdk --example dpdkfloor -- \
//!     --config bench.toml --secs 5 --mode floor [--flows N]
//! ```
//!
//! The config is a `dataplane run` config (scripts/bench writes one): EAL
//! arguments, the first port (inside) is received from, the second
//! (outside) is sent to, one queue, the main lcore only, bursts of 32.
//! Modes, each adding work to the one before:
//! - `io`: receive, send unchanged — our ethdev wrapper (`Port`, `Mbuf`)
//!   against testpmd's io forwarding;
//! - `touch`: also decrement the IPv4 TTL (checksum update) and rewrite both
//!   MACs: the least a router writes;
//! - `floor`: also classify (`net::classify`), look the flow up in a flat
//!   open-addressing table (insert on a miss; slots of the whole burst
//!   prefetched first) and rewrite the source to the pool address with
//!   incremental checksums (`net::rewrite`): a minimal lookup-and-rewrite
//!   NAT loop, single-threaded, no locks, expiry, state or counters — what
//!   a lean design could reach, not a NAT.
//!
//! Prints one JSON object: mode, seconds, rx and tx Mpps.

#[path = "common/flat.rs"]
mod flat;

fn main() {
    if let Err(e) = dpdk_floor::main() {
        eprintln!("dpdkfloor: {e}");
        std::process::exit(1);
    }
}

mod dpdk_floor {
    use super::flat::{self, FlatTable};
    use core::net::{IpAddr, Ipv4Addr};
    use dataplane::config::Config;
    use dataplane::dpdk::{Eal, Mbuf, Mempool, Port, PortSetup};
    use dataplane::wire;
    use std::time::{Duration, Instant};

    const BURST: u16 = 32;
    /// The pool address outbound flows are rewritten to.
    const POOL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x02, 0x01];
    const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x02, 0xfe];

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Mode {
        Io,
        Touch,
        Floor,
    }

    impl Mode {
        fn name(self) -> &'static str {
            match self {
                Mode::Io => "io",
                Mode::Touch => "touch",
                Mode::Floor => "floor",
            }
        }
    }

    struct Args {
        config: String,
        secs: f64,
        mode: Mode,
        /// Flows the floor's table is sized for (`--flows`, at least 32 768).
        flows: usize,
    }

    fn args() -> Result<Args, String> {
        let mut a = Args {
            config: String::new(),
            secs: 5.0,
            mode: Mode::Floor,
            flows: 1 << 15,
        };
        let mut it = std::env::args().skip(1);
        while let Some(k) = it.next() {
            let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
            match k.as_str() {
                "--config" => a.config = v,
                "--secs" => a.secs = v.parse().map_err(|e| format!("--secs: {e}"))?,
                "--flows" => a.flows = v.parse().map_err(|e| format!("--flows: {e}"))?,
                "--mode" => {
                    a.mode = match v.as_str() {
                        "io" => Mode::Io,
                        "touch" => Mode::Touch,
                        "floor" => Mode::Floor,
                        _ => {
                            return Err(format!("--mode: {v}: expected io, touch or floor"));
                        }
                    }
                }
                _ => return Err(format!("unknown argument {k}")),
            }
        }
        if a.config.is_empty() {
            return Err("--config FILE is required".into());
        }
        Ok(a)
    }

    /// TTL decrement (with the header checksum) and both MACs.
    fn touch(f: &mut [u8]) {
        wire::ipv4_dec_ttl(f, 14);
        wire::set_macs(f, SRC_MAC, DST_MAC);
    }

    /// A frame's flow position in `t` (prefetched), or `None` for a frame
    /// that is not IPv4 with ports.
    fn locate(t: &FlatTable, f: &[u8]) -> Option<(net::Classified, (u64, u64), usize)> {
        let c = wire::classify(f).ok()?;
        let tu = c.tuple?;
        let (IpAddr::V4(s), IpAddr::V4(d)) = (tu.src, tu.dst) else {
            return None;
        };
        let k = flat::key(s, d, tu.proto, tu.src_port, tu.dst_port);
        let i = t.index(k);
        t.prefetch(i);
        Some((c, k, i))
    }

    pub fn main() -> Result<(), String> {
        let a = args()?;
        let text = std::fs::read_to_string(&a.config).map_err(|e| format!("{}: {e}", a.config))?;
        let cfg = Config::from_toml_str(&text).map_err(|e| e.to_string())?;
        if cfg.ports.len() < 2 {
            return Err("the config needs two ports (inside first, outside second)".into());
        }
        let eal = Eal::init(&cfg.eal_args()).map_err(|e| e.to_string())?;
        let pool = Mempool::new(&eal, "floor_pool", cfg.dpdk.mempool_size, -1)
            .map_err(|e| e.to_string())?;
        let mut ports = Vec::new();
        for p in &cfg.ports[..2] {
            let dev = p.device.as_deref().ok_or("every port needs a device")?;
            let mut port = Port::open(&eal, &p.name, dev).map_err(|e| e.to_string())?;
            let setup = PortSetup {
                queues: 1,
                rx_desc: cfg.dpdk.rx_desc,
                tx_desc: cfg.dpdk.tx_desc,
                promiscuous: true,
                mac: None,
                mtu: None,
            };
            port.configure(&setup, &[&pool])
                .map_err(|e| e.to_string())?;
            ports.push(port);
        }
        let (rx_port, tx_port) = (&ports[0], &ports[1]);
        let mut table = FlatTable::new(a.flows.max(1 << 15));
        let mut rx: Vec<Mbuf> = Vec::with_capacity(usize::from(BURST));
        let mut pos = Vec::with_capacity(usize::from(BURST));
        let (mut nrx, mut ntx) = (0u64, 0u64);
        let limit = Duration::from_secs_f64(a.secs);
        let start = Instant::now();
        let mut iter = 0u32;
        loop {
            iter = iter.wrapping_add(1);
            if iter.is_multiple_of(1024) && start.elapsed() >= limit {
                break;
            }
            let (n, _) = rx_port.rx_burst(0, &mut rx, BURST);
            if n == 0 {
                continue;
            }
            nrx += n as u64;
            match a.mode {
                Mode::Io => {}
                Mode::Touch => rx.iter_mut().for_each(|m| touch(m.data_mut())),
                Mode::Floor => {
                    pos.clear();
                    pos.extend(rx.iter().map(|m| locate(&table, m.data())));
                    for (m, p) in rx.iter_mut().zip(pos.drain(..)) {
                        let Some((c, k, i)) = p else { continue };
                        let f = m.data_mut();
                        if table.get(k, i).is_none() {
                            table.insert(k, 1, i);
                        }
                        let sport = c.tuple.map_or(0, |t| t.src_port);
                        let _ = net::rewrite::rewrite_ipv4_src(f, &c, POOL, sport);
                        wire::ipv4_dec_ttl(f, usize::from(c.l3_offset));
                        wire::set_macs(f, SRC_MAC, DST_MAC);
                    }
                }
            }
            ntx += tx_port.tx_burst(0, &mut rx) as u64;
            rx.clear(); // frees what the queue did not take
        }
        let secs = start.elapsed().as_secs_f64();
        for p in &mut ports {
            let _ = p.close();
        }
        println!(
            "{{\"mode\":\"{}\",\"secs\":{secs:.3},\"rx_mpps\":{:.3},\"tx_mpps\":{:.3}}}",
            a.mode.name(),
            nrx as f64 / secs / 1e6,
            ntx as f64 / secs / 1e6
        );
        Ok(())
    }
}
