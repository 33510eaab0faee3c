//! The established-session setup both NAT benches measure: `n` outbound UDP
//! sessions through a masquerading `Nat`, and beside it a plain session `Shard`
//! of the same shape holding the same forward keys (the lookup-alone
//! baseline).

#![allow(dead_code)]

use core::net::Ipv4Addr;

use etherparse::PacketBuilder;
use flow_entry::{FlowTableConfig, Shard, Timestamp};
use nat::{Nat, NatConfig, Side, Verdict};

pub fn udp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src.octets(), dst.octets(), 64)
        .udp(sport, dport);
    let mut v = Vec::new();
    b.write(&mut v, &[0u8; 18]).unwrap();
    v
}

/// Masquerade of 10/8 to 203.0.113.0/24, no per-host quota.
pub fn config() -> NatConfig {
    let mut c = NatConfig::masquerade(
        vec!["10.0.0.0/8".parse().unwrap()],
        vec!["203.0.113.0/24".parse().unwrap()],
    );
    c.per_host_port_quota = 0;
    c
}

pub fn table_cfg(capacity: usize) -> FlowTableConfig {
    FlowTableConfig {
        shards: 16,
        capacity,
        ..FlowTableConfig::default()
    }
}

pub struct Established {
    pub nat: Nat,
    /// One frame per session, as sent by the inside host (untranslated).
    pub frames: Vec<Vec<u8>>,
    pub cls: Vec<net::Classified>,
    /// The same forward and reply keys ([`key`]) in a shard of the same
    /// configuration, valued by the session's index.
    pub table: Shard<u128, u64>,
    pub now: Timestamp,
}

/// `n` established sessions (the slow path run once for each).
pub fn established(n: usize) -> Established {
    let mut nat = Nat::new(config(), table_cfg((2 * n).next_power_of_two())).unwrap();
    let now = Timestamp::from_secs(1);
    let frames: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            udp(
                Ipv4Addr::from(0x0a00_0000 + i as u32),
                1024 + (i % 60000) as u16,
                Ipv4Addr::new(192, 0, 2, (i % 250) as u8),
                53,
            )
        })
        .collect();
    let cls: Vec<_> = frames.iter().map(|f| net::classify(f).unwrap()).collect();
    for (f, cl) in frames.iter().zip(&cls) {
        let mut g = f.clone();
        assert_eq!(nat.process(&mut g, cl, Side::Inside, now), Verdict::Forward);
    }
    let mut table: Shard<u128, u64> = Shard::new(
        (2 * n).next_power_of_two(),
        &table_cfg((2 * n).next_power_of_two()),
        Timestamp::ZERO,
    )
    .unwrap();
    for (i, cl) in cls.iter().enumerate() {
        let t = cl.tuple.unwrap();
        let k = key(&t);
        let r = key(&net::classify::FiveTuple {
            src: Ipv4Addr::new(192, 0, 2, (i % 250) as u8).into(),
            dst: Ipv4Addr::new(203, 0, 113, (i / 65536) as u8).into(),
            proto: 17,
            src_port: 53,
            dst_port: (i % 65536) as u16,
        });
        table
            .insert(
                k,
                Some(r),
                i as u64,
                Timestamp::from_secs(1000),
                now,
                &mut |_, _| {},
            )
            .unwrap();
    }
    Established {
        nat,
        frames,
        cls,
        table,
        now,
    }
}

/// A tuple packed into a shard key (the NAT's own packing is private; this
/// one has the same shape: 104 bits of a `u128`).
pub fn key(t: &net::classify::FiveTuple) -> u128 {
    let a = |ip: core::net::IpAddr| match ip {
        core::net::IpAddr::V4(v) => u128::from(u32::from(v)),
        core::net::IpAddr::V6(_) => 0,
    };
    (a(t.src) << 72)
        | (a(t.dst) << 40)
        | (u128::from(t.src_port) << 24)
        | (u128::from(t.dst_port) << 8)
        | u128::from(t.proto)
}

/// Look every frame's key up in `table` (the lookup-alone baseline).
pub fn lookup_all(table: &mut Shard<u128, u64>, cls: &[net::Classified], now: Timestamp) -> u64 {
    let mut s = 0u64;
    for cl in cls {
        let k = key(&cl.tuple.unwrap());
        let h = table.hash(&k);
        if let Some((id, _)) = table.lookup(&k, h, now, &mut |_, _| {}) {
            s += table.get(id).copied().unwrap_or(0);
        }
    }
    s
}
