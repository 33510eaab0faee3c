//! Packets/s of `net::classify` beside `etherparse::SlicedPacket::from_ethernet`
//! on the same realistic mix, in the same run.
//!
//! The mix (384 distinct frames, deterministic): 70 % IPv4 / 30 % IPv6;
//! 60 % TCP, 30 % UDP, 10 % ICMP echo; 60 % untagged, 30 % one VLAN tag,
//! 10 % QinQ; payloads from 0 to 1400 bytes; a few ARP frames.
//!
//! Run: `cargo bench -p net --bench classify -- --measurement-time 3`

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use net::build::{self, L2, L4};
use net::{MacAddr, arp, icmpv4, icmpv6, ip_protocol, ipv4, ipv6, tcp, udp};

/// A small deterministic generator (64-bit LCG, Knuth's constants).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn mix(n: usize) -> Vec<Vec<u8>> {
    let mut r = Lcg(0x5eed);
    let payload = vec![0xabu8; 1400];
    let sizes = [0usize, 6, 64, 200, 512, 1024, 1400];
    (0..n)
        .map(|i| {
            let vlans: &[u16] = match r.below(10) {
                0..=5 => &[],
                6..=8 => &[100],
                _ => &[300, 42],
            };
            let l2 = L2 {
                vlans,
                ..L2::default()
            };
            if i % 97 == 0 {
                let a = arp::Repr {
                    operation: arp::operation::REQUEST,
                    source_hardware_addr: MacAddr([2, 0, 0, 0, 0, 1]),
                    source_protocol_addr: Ipv4Addr::new(10, 0, 0, 1),
                    target_hardware_addr: MacAddr::ZERO,
                    target_protocol_addr: Ipv4Addr::new(10, 0, 0, (i % 250) as u8),
                };
                return build::arp_frame(&l2, &a);
            }
            let pl = &payload[..sizes[r.below(sizes.len() as u64) as usize]];
            let (sp, dp) = (
                1024 + r.below(60000) as u16,
                [80u16, 443, 53, 123, 8080][r.below(5) as usize],
            );
            let proto = match r.below(10) {
                0..=5 => ip_protocol::TCP,
                6..=8 => ip_protocol::UDP,
                _ => ip_protocol::ICMP,
            };
            if r.below(10) < 7 {
                let src = Ipv4Addr::from(0x0a00_0000 | r.below(1 << 24) as u32);
                let dst = Ipv4Addr::from(0xc633_6400 | r.below(256) as u32);
                let l4 = match proto {
                    ip_protocol::TCP => L4::Tcp(tcp::Repr::new(sp, dp, tcp::flags::ACK, pl)),
                    ip_protocol::UDP => L4::Udp(udp::Repr {
                        src_port: sp,
                        dst_port: dp,
                        payload: pl,
                    }),
                    _ => L4::Icmpv4(icmpv4::Repr::EchoRequest {
                        ident: sp,
                        seq_no: i as u16,
                        data: &pl[..pl.len().min(56)],
                    }),
                };
                build::ipv4_frame(&l2, ipv4::Repr::new(src, dst, proto, 0), l4)
            } else {
                let src = Ipv6Addr::from(
                    0x2001_0db8_0000_0000_0000_0000_0000_0000u128 | u128::from(r.next()),
                );
                let dst = Ipv6Addr::from(
                    0x2001_0db8_ffff_0000_0000_0000_0000_0000u128 | u128::from(r.next()),
                );
                let l4 = match proto {
                    ip_protocol::TCP => L4::Tcp(tcp::Repr::new(sp, dp, tcp::flags::ACK, pl)),
                    ip_protocol::UDP => L4::Udp(udp::Repr {
                        src_port: sp,
                        dst_port: dp,
                        payload: pl,
                    }),
                    _ => L4::Icmpv6(icmpv6::Repr::EchoRequest {
                        ident: sp,
                        seq_no: i as u16,
                        data: &pl[..pl.len().min(56)],
                    }),
                };
                build::ipv6_frame(&l2, ipv6::Repr::new(src, dst, proto, 0), l4)
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let frames = mix(384);
    // Both parsers must accept every frame of the mix.
    assert!(frames.iter().all(|f| net::classify(f).is_ok()));
    assert!(
        frames
            .iter()
            .all(|f| etherparse::SlicedPacket::from_ethernet(f).is_ok())
    );

    let mut g = c.benchmark_group("classify");
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function("net::classify", |b| {
        b.iter(|| {
            for f in &frames {
                let _ = black_box(net::classify(black_box(f)));
            }
        })
    });
    g.bench_function("etherparse::SlicedPacket::from_ethernet", |b| {
        b.iter(|| {
            for f in &frames {
                let _ = black_box(etherparse::SlicedPacket::from_ethernet(black_box(f)));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
