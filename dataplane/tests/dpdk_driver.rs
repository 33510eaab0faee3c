//! DPDK driver tests on virtual devices (`net_ring`, `net_null`): EAL really
//! initialises (no hugepages) and frames really move through PMD queues.
//! Run with `cargo nextest run -p dataplane --features dpdk -E 'test(/dpdk/)'`.
#![cfg(feature = "dpdk")]

use std::sync::OnceLock;

use dataplane::config::DEFAULT_EAL_ARGS;
use dataplane::dpdk::{DpdkError, Eal, Mbuf, Mempool, Port, PortSetup, Ring, ring_port};

/// EAL initialises once per process; nextest runs each test in its own
/// process, `cargo test` shares one, so every test goes through this.
fn eal() -> &'static Eal {
    static EAL: OnceLock<Eal> = OnceLock::new();
    EAL.get_or_init(|| {
        Eal::init(DEFAULT_EAL_ARGS).expect("EAL init with --no-huge (need root or CAP_SYS_ADMIN)")
    })
}

fn setup(queues: u16) -> PortSetup {
    PortSetup {
        queues,
        rx_desc: 256,
        tx_desc: 256,
        promiscuous: true,
        mac: None,
        mtu: None,
    }
}

/// A recognisable 60..=1514-byte frame for index i.
fn frame(i: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    f[12..14].copy_from_slice(&[0x88, 0xb5]); // local experimental ethertype
    f[14..18].copy_from_slice(&i.to_be_bytes());
    for (k, b) in f[18..].iter_mut().enumerate() {
        *b = (k as u32).wrapping_mul(31).wrapping_add(i) as u8;
    }
    f
}

#[test]
fn dpdk_net_ring_roundtrip() {
    let eal = eal();
    let pool = Mempool::new(eal, "t_ring_pool", 1023, -1).expect("pool");
    let rx_ring = Ring::new(eal, "t_ring_rx", 1024).expect("rx ring");
    let tx_ring = Ring::new(eal, "t_ring_tx", 1024).expect("tx ring");
    let mut port = ring_port(eal, "t_ring_port", &rx_ring, &tx_ring).expect("ring port");
    let info = port
        .configure(&setup(1), &[&pool])
        .expect("configure + start");
    assert_eq!(info.rx_queues, 1);

    // 300 frames of varying length into the port's RX ring.
    const N: u32 = 300;
    let mut feed: Vec<Mbuf> = (0..N)
        .map(|i| {
            pool.alloc_copy(&frame(i, 60 + (i as usize * 7) % 1455))
                .expect("mbuf")
        })
        .collect();
    assert_eq!(pool.in_use(), N);
    while !feed.is_empty() {
        assert!(rx_ring.enqueue(&mut feed) > 0, "rx ring full");
    }

    // Receive in bursts of 32, rewrite byte 18 in place (as the pipeline
    // does), transmit.
    let mut got = 0u32;
    let mut burst = Vec::new();
    let mut rounds = 0;
    while got < N {
        rounds += 1;
        assert!(rounds < 10_000, "frames stuck in the RX ring");
        let (n, dropped) = port.rx_burst(0, &mut burst, 32);
        assert_eq!(dropped, 0);
        assert!(n <= 32);
        for m in &mut burst {
            let i = u32::from_be_bytes(m.data()[14..18].try_into().unwrap());
            assert_eq!(m.data(), &frame(i, m.data().len())[..], "frame {i} intact");
            assert_eq!(i, got, "order kept");
            got += 1;
            m.data_mut()[18] ^= 0xff;
        }
        while !burst.is_empty() {
            assert!(port.tx_burst(0, &mut burst) > 0, "tx ring full");
        }
    }
    assert_eq!(tx_ring.len(), N as usize);

    let mut out = Vec::new();
    while tx_ring.dequeue(&mut out, 64) > 0 {}
    assert_eq!(out.len(), N as usize);
    for (k, m) in out.iter().enumerate() {
        let mut want = frame(k as u32, 60 + (k * 7) % 1455);
        want[18] ^= 0xff;
        assert_eq!(m.data(), &want[..], "frame {k} as rewritten");
    }
    let stats = port.stats().expect("stats");
    assert_eq!(stats.ipackets, u64::from(N));
    assert_eq!(stats.opackets, u64::from(N));
    drop(out);
    assert_eq!(pool.in_use(), 0, "every mbuf back in the pool");
    port.close().expect("close");
}

#[test]
fn dpdk_net_null_loop() {
    let eal = eal();
    let pool = Mempool::new(eal, "t_null_pool", 4095, -1).expect("pool");
    let mut port = Port::open(eal, "null", "net_null_t0,size=128").expect("net_null vdev");
    port.configure(&setup(1), &[&pool]).expect("configure");
    let mut burst = Vec::new();
    let mut moved = 0u64;
    for _ in 0..1000 {
        let (n, _) = port.rx_burst(0, &mut burst, 32);
        assert!(n <= 32);
        for m in &burst {
            assert_eq!(m.data().len(), 128);
        }
        while !burst.is_empty() {
            moved += port.tx_burst(0, &mut burst) as u64;
        }
    }
    assert_eq!(
        moved, 32_000,
        "net_null always fills a burst and always sends"
    );
    let s = port.stats().expect("stats");
    assert_eq!((s.ipackets, s.opackets), (32_000, 32_000));
    assert_eq!(pool.in_use(), 0);
    port.close().expect("close");
    port.close().expect("close is idempotent");
}

#[test]
fn dpdk_errors_are_typed() {
    let eal = eal();
    // A second EAL init in the same process is refused, not undefined.
    assert!(matches!(
        Eal::init(DEFAULT_EAL_ARGS),
        Err(DpdkError::EalAlreadyInitialised)
    ));
    // Unknown vdev driver.
    match Port::open(eal, "x", "net_nosuchdriver0") {
        Err(DpdkError::Vdev { device, err }) => {
            assert_eq!(device, "net_nosuchdriver0");
            assert!(err.code > 0, "{err}");
        }
        other => panic!("want Vdev error, got {other:?}"),
    }
    // A PCI address that is not probed (--no-pci).
    match Port::open(eal, "x", "0000:42:00.0") {
        Err(DpdkError::DeviceNotFound { err, .. }) => {
            assert!(err.code > 0 && !err.message.is_empty())
        }
        other => panic!("want DeviceNotFound, got {other:?}"),
    }
    // NUL in a device string.
    assert!(matches!(
        Port::open(eal, "x", "net_null\0"),
        Err(DpdkError::NulInArgument(_))
    ));
    // More queues than a net_ring port has.
    let pool = Mempool::new(eal, "t_err_pool", 1023, -1).expect("pool");
    let (a, b) = (
        Ring::new(eal, "t_err_a", 64).unwrap(),
        Ring::new(eal, "t_err_b", 64).unwrap(),
    );
    let mut p = ring_port(eal, "t_err_port", &a, &b).expect("ring port");
    match p.configure(&setup(4), &[&pool, &pool, &pool, &pool]) {
        Err(DpdkError::TooFewQueues {
            workers: 4,
            max_rx: 1,
            ..
        }) => {}
        other => panic!("want TooFewQueues, got {other:?}"),
    }
    // Duplicate pool name: rte_errno EEXIST.
    match Mempool::new(eal, "t_err_pool", 1023, -1) {
        Err(DpdkError::Mempool { err, .. }) => assert_eq!(err.code, 17, "EEXIST: {err}"),
        other => panic!("want Mempool error, got {other:?}"),
    }
    p.close().unwrap();
}

#[test]
fn dpdk_port_mtu_is_set_and_one_outside_the_device_range_names_the_port() {
    let eal = eal();
    let pool = Mempool::new(eal, "t_mtu_pool", 1023, -1).expect("pool");
    let mut port = Port::open(eal, "mtu_port", "net_null_t1,size=64").expect("net_null vdev");
    let with = |mtu| PortSetup {
        mtu: Some(mtu),
        ..setup(1)
    };
    // Below IPv4's minimum, 68 (net_null reports no minimum of its own).
    match port.configure(&with(60), &[&pool]) {
        Err(e @ DpdkError::Mtu { mtu: 60, .. }) => {
            assert!(e.to_string().contains("`mtu_port`"), "{e}")
        }
        other => panic!("want an Mtu error, got {other:?}"),
    }
    let info = port
        .configure(&with(1400), &[&pool])
        .expect("1400 is in range");
    assert_eq!(info.mtu, 1400, "net_null takes an MTU");
    port.close().unwrap();
}

/// Two workers: worker 1 is launched on an EAL worker lcore, each worker
/// polls its own queue on every port, and the run stops on its duration
/// limit with every mbuf back in the pools. `net_null` frames are zero-filled
/// (not valid Ethernet), so the pipeline drops every one with a reason.
#[test]
fn dpdk_two_workers_run_on_net_null() {
    use dataplane::dpdk::{RunLimits, run_on};
    let eal = eal();
    if eal.worker_lcores().is_empty() {
        eprintln!("*** SKIPPED dpdk_two_workers_run_on_net_null: EAL has one lcore (one CPU) ***");
        return;
    }
    let cfg = dataplane::config::Config::from_toml_str(
        r#"
workers = 2
[[ports]]
name = "lan"
mac = "02:00:00:00:01:01"
ipv4 = ["10.1.0.1/24"]
role = "inside"
device = "net_null_w0,size=64"
[[ports]]
name = "wan"
mac = "02:00:00:00:02:01"
ipv4 = ["198.18.0.2/24"]
role = "outside"
device = "net_null_w1,size=64"
[dpdk]
mempool_size = 2047
rx_desc = 256
tx_desc = 256
"#,
    )
    .expect("config");
    let limits = RunLimits {
        duration: Some(std::time::Duration::from_millis(300)),
        ..RunLimits::default()
    };
    let report = run_on(eal, &cfg, &limits).expect("run");
    assert_eq!(report.stop_reason, "duration");
    assert_eq!(report.workers.len(), 2);
    for (i, w) in report.workers.iter().enumerate() {
        assert!(w.rx > 0, "worker {i} received nothing: {w:?}");
        assert_eq!(
            w.freed, w.rx,
            "worker {i}: every garbage frame is dropped: {w:?}"
        );
        assert_eq!(w.tx, 0);
    }
    assert_ne!(
        report.workers[0].lcore, report.workers[1].lcore,
        "workers on distinct lcores"
    );
    for p in &report.ports {
        assert_eq!(p.info.rx_queues, 2, "{}: one queue per worker", p.name);
        assert!(p.stats.ipackets > 0);
    }
    let rx: u64 = report.workers.iter().map(|w| w.rx).sum();
    let dropped: u64 = report.counters.drops.values().sum();
    assert_eq!(
        dropped, rx,
        "pipeline counted a drop reason for each frame: {:?}",
        report.counters.drops
    );
}

/// One HTTP GET of `/metrics`; `None` while the endpoint is not up yet.
fn try_scrape(addr: std::net::SocketAddr) -> Option<String> {
    use std::io::{Read, Write};
    let mut s =
        std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.starts_with("HTTP/1.1 200").then_some(body)
}

/// The value of the sample line `name{port="port"}` in Prometheus text.
fn sample(text: &str, name: &str, port: &str) -> Option<u64> {
    let prefix = format!("{name}{{port=\"{port}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.trim().parse().ok())
}

/// While `dataplane run` runs on `net_pcap` vdevs, the Prometheus endpoint
/// (served by the control thread) carries each port's link status and
/// `rte_eth_stats`, sampled by the main lcore: the frames read from the
/// inside capture and the translated frames written to the outside one are
/// counted there (packets and bytes), consistent with the capture files,
/// the pipeline's own counters and the end-of-run report.
#[test]
fn dpdk_run_serves_port_stats_on_metrics() {
    use dataplane::dpdk::{RunLimits, run_on};
    use etherparse::PacketBuilder;
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    let eal = eal();
    let dir = std::env::temp_dir().join(format!("dp-portstats-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, frames: &[Vec<u8>]| {
        let path = dir.join(name);
        let f = std::fs::File::create(&path).unwrap();
        let mut w = PcapWriter::with_header(
            f,
            PcapHeader {
                snaplen: 65535,
                ..PcapHeader::default()
            },
        )
        .unwrap();
        for (i, fr) in frames.iter().enumerate() {
            let ts = Duration::from_secs(1_700_000_000) + Duration::from_micros(i as u64);
            w.write_packet(&PcapPacket::new(ts, fr.len() as u32, fr))
                .unwrap();
        }
        path
    };
    // 150 UDP datagrams of varying size from 6 inside hosts to the outside.
    const N: u64 = 150;
    let lan_mac = [0x02, 0, 0, 0, 0x01, 0x01];
    let frames: Vec<Vec<u8>> = (0..N as u16)
        .map(|i| {
            let host = (i % 6) as u8;
            let mut f = Vec::new();
            PacketBuilder::ethernet2([0x02, 0, 0, 0, 0x11, host], lan_mac)
                .ipv4([10, 1, 0, 10 + host], [198, 19, 0, 1 + (i % 50) as u8], 64)
                .udp(20_000 + i, 53)
                .write(&mut f, &vec![0xab; usize::from(i % 200)])
                .unwrap();
            f
        })
        .collect();
    let bytes: u64 = frames.iter().map(|f| f.len() as u64).sum();
    let lan_in = write("lan_in.pcap", &frames);
    let wan_in = write("wan_in.pcap", &[]);
    let (lan_out, wan_out) = (dir.join("lan_out.pcap"), dir.join("wan_out.pcap"));

    // A free loopback port for the metrics endpoint (run_on binds it itself).
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cfg = dataplane::config::Config::from_toml_str(&format!(
        r#"
workers = 1
[control]
metrics_addr = "{addr}"
[[ports]]
name = "lan"
mac = "02:00:00:00:01:01"
ipv4 = ["10.1.0.1/24"]
role = "inside"
device = "net_pcap_ps0,rx_pcap={},tx_pcap={}"
[[ports]]
name = "wan"
mac = "02:00:00:00:02:01"
ipv4 = ["198.18.0.2/24"]
role = "outside"
device = "net_pcap_ps1,rx_pcap={},tx_pcap={}"
[[routes]]
prefix = "0.0.0.0/0"
via = "198.18.0.1"
port = "wan"
[[neighbors]]
ip = "198.18.0.1"
mac = "02:00:00:00:02:fe"
port = "wan"
[dpdk]
mempool_size = 2047
rx_desc = 256
tx_desc = 256
[nat]
inside = ["10.1.0.0/24"]
[[nat.pools]]
addresses = ["198.18.0.2"]
ports = "1024-65535"
"#,
        lan_in.display(),
        lan_out.display(),
        wan_in.display(),
        wan_out.display(),
    ))
    .expect("config");

    // Scrape while the run is going (run_on keeps this thread: it is the
    // main lcore), until the device counters show every frame, then stop it.
    let stop = Arc::new(AtomicBool::new(false));
    let scraper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut last = None;
            let mut scrapes = 0u32;
            while Instant::now() < deadline {
                if let Some(t) = try_scrape(addr) {
                    scrapes += 1;
                    let done = sample(&t, "dataplane_port_rx_packets_total", "lan") == Some(N)
                        && sample(&t, "dataplane_port_tx_packets_total", "wan") == Some(N);
                    last = Some(t);
                    if done {
                        break;
                    }
                }
                std::thread::sleep(Duration::from_millis(50)); // poll interval only
            }
            stop.store(true, Ordering::Relaxed);
            (last, scrapes)
        })
    };
    let limits = RunLimits {
        duration: Some(Duration::from_secs(90)), // backstop; the scraper stops the run
        stop: Some(stop.clone()),
        ..RunLimits::default()
    };
    let report = run_on(eal, &cfg, &limits);
    stop.store(true, Ordering::Relaxed);
    let (text, scrapes) = scraper.join().expect("scraper thread");
    let report = report.expect("run");
    let text = text.unwrap_or_else(|| panic!("no successful scrape of {addr} during the run"));
    assert_eq!(report.stop_reason, "stop flag", "{text}");
    assert!(scrapes >= 1);

    // Every metric with HELP and TYPE lines and one sample per port.
    for m in [
        "dataplane_port_link_up",
        "dataplane_port_link_speed_mbps",
        "dataplane_port_rx_packets_total",
        "dataplane_port_tx_packets_total",
        "dataplane_port_rx_bytes_total",
        "dataplane_port_tx_bytes_total",
        "dataplane_port_rx_missed_total",
        "dataplane_port_rx_errors_total",
        "dataplane_port_tx_errors_total",
        "dataplane_port_rx_nombuf_total",
    ] {
        assert!(text.contains(&format!("\n# HELP {m} ")), "{m}: {text}");
        assert!(text.contains(&format!("\n# TYPE {m} ")), "{m}: {text}");
        for p in ["lan", "wan"] {
            assert!(sample(&text, m, p).is_some(), "{m}{{port={p}}}: {text}");
        }
    }
    // Device counters consistent with what was sent and what came out.
    let s = |m: &str, p: &str| sample(&text, m, p).unwrap();
    assert_eq!(s("dataplane_port_rx_packets_total", "lan"), N, "{text}");
    assert_eq!(s("dataplane_port_rx_bytes_total", "lan"), bytes, "{text}");
    assert_eq!(s("dataplane_port_rx_packets_total", "wan"), 0);
    assert_eq!(s("dataplane_port_tx_packets_total", "wan"), N);
    assert_eq!(
        s("dataplane_port_tx_bytes_total", "wan"),
        bytes,
        "NAT keeps frame sizes"
    );
    assert_eq!(s("dataplane_port_tx_packets_total", "lan"), 0);
    for p in ["lan", "wan"] {
        assert_eq!(s("dataplane_port_link_up", p), 1, "{p}: started pcap port");
        for m in ["rx_missed", "rx_errors", "tx_errors", "rx_nombuf"] {
            assert_eq!(s(&format!("dataplane_port_{m}_total"), p), 0, "{m} {p}");
        }
    }
    // ... with the pipeline's counters in the same scrape ...
    assert_eq!(sample(&text, "dataplane_rx_packets_total", "lan"), Some(N));
    assert_eq!(sample(&text, "dataplane_tx_packets_total", "wan"), Some(N));
    // ... with the end-of-run report ...
    let (lan, wan) = (&report.ports[0].stats, &report.ports[1].stats);
    assert_eq!((lan.ipackets, lan.ibytes), (N, bytes));
    assert_eq!((wan.opackets, wan.obytes), (N, bytes));
    assert!(lan.link_up && wan.link_up);
    assert_eq!(
        u64::from(lan.link_speed_mbps),
        s("dataplane_port_link_speed_mbps", "lan")
    );
    // ... and with the capture the outside port wrote (flushed on close).
    let f = std::fs::File::open(&wan_out).expect("wan tx_pcap");
    let mut r = PcapReader::new(f).expect("pcap header");
    let mut out = 0u64;
    while let Some(p) = r.next_packet() {
        let p = p.expect("packet");
        assert_eq!(
            &p.data[..6],
            &[0x02, 0, 0, 0, 0x02, 0xfe],
            "to the next hop"
        );
        out += 1;
    }
    assert_eq!(out, N);
    let _ = std::fs::remove_dir_all(&dir);
}
