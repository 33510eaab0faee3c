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
