//! The built-in demo: the embedded default configuration (`docs/example.toml`)
//! plus traffic generated in memory, driven through the replay path
//! ([`crate::replay::drive`]) with a virtual clock.
//!
//! The traffic is closed-loop: a small simulated network sits on both ports.
//! Scripted events start flows (inside hosts opening TCP/UDP/ICMP/IPv6 flows,
//! outside clients opening port-forwarded connections, unsolicited inbound
//! probes, traceroute-style TTL probes); every frame the dataplane sends is
//! seen by the simulated peer it is addressed to, which answers (SYN-ACK,
//! data, echo replies, ARP/NDP answers, an upstream router's ICMP time
//! exceeded) a round-trip time later. Answers therefore go to the translated
//! addresses and ports the NAT chose, exactly as on a real network.
//! A late wave of flows at t = 330 s makes the clock pass the UDP (300 s),
//! ICMP (60 s) and closed-TCP timeouts of the early flows, so the summary
//! shows sessions expiring. Everything is deterministic (SplitMix64 with a
//! fixed seed; no wall clock except the packets/s figure).

use core::cell::RefCell;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;
use std::time::Instant;

use net::{L3Kind, L4Kind};

use crate::config::Config;
use crate::pipeline::{Pipeline, PortId, Shared};
use crate::replay::{self, Feed, Packet, PacketSink, ReplayError, SkipReason, Summary};
use crate::traffic::{self, Rng, tcp};
use crate::wire::{self, Mac, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};

/// Demo size.
#[derive(Debug, Clone)]
pub struct DemoParams {
    pub hosts: u32,
    pub tcp_flows: u32,
    pub udp_flows: u32,
    pub icmp_flows: u32,
    pub forwarded: u32,
    pub v6_flows: u32,
    pub unsolicited: u32,
    pub ttl_probes: u32,
    pub late_flows: u32,
    pub seed: u64,
}

impl Default for DemoParams {
    fn default() -> Self {
        DemoParams {
            hosts: 12,
            tcp_flows: 2000,
            udp_flows: 2000,
            icmp_flows: 500,
            forwarded: 200,
            v6_flows: 300,
            unsolicited: 100,
            ttl_probes: 20,
            late_flows: 100,
            seed: 0x5eed,
        }
    }
}

const LAN: PortId = 0;
const WAN: PortId = 1;
const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;
const ROUTER_MAC: Mac = [0x02, 0, 0, 0, 0x02, 0xfe];
const ROUTER_V4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const GW_V4: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
const GW_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 1);
const SERVER_V4: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 100);
const PF_EXTERNAL: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const OUTSIDE_RTT: u64 = 20 * MS;
const INSIDE_RTT: u64 = MS / 5;

fn host_v4(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 1, 10 + (i % 80) as u8)
}

fn host_v6(i: u32) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 0x10 + (i % 80) as u16)
}

/// MAC of an inside host from its last address octet.
fn inside_mac(last: u8) -> Mac {
    [0x02, 0, 0, 0, 0x10, last]
}

/// The simulated network around the dataplane.
/// (time ns, sequence, port, frame), earliest first.
type Event = Reverse<(u64, u64, PortId, Vec<u8>)>;

struct SimNet {
    events: BinaryHeap<Event>,
    seq: u64,
    lan_mac: Mac,
    wan_mac: Mac,
    /// Which inside host closes its TCP flows (by client port).
    reactions: u64,
}

impl SimNet {
    fn push(&mut self, ts: u64, port: PortId, f: Vec<u8>) {
        self.seq += 1;
        self.events.push(Reverse((ts, self.seq, port, f)));
    }

    /// React to a frame the dataplane sent on `port` at `ts`.
    fn observe(&mut self, port: PortId, ts: u64, f: &[u8]) {
        let Ok(c) = wire::classify(f) else { return };
        if c.l3 == L3Kind::Arp {
            let Some(Ok(a)) = f
                .get(usize::from(c.l3_offset)..)
                .map(|b| net::arp::Packet::new_checked(b).and_then(|p| net::arp::Repr::parse(&p)))
            else {
                return;
            };
            if a.operation != net::arp::operation::REQUEST {
                return;
            }
            let (sip, tip) = (a.source_protocol_addr, a.target_protocol_addr);
            let (mac, dp) = if port == WAN {
                if tip != ROUTER_V4 {
                    return;
                }
                (ROUTER_MAC, self.wan_mac)
            } else {
                (inside_mac(tip.octets()[3]), self.lan_mac)
            };
            let delay = if port == WAN { OUTSIDE_RTT } else { INSIDE_RTT };
            self.push(ts + delay, port, wire::arp_reply(mac, tip, dp, sip));
            return;
        }
        let Some(t) = c.tuple else { return };
        let l3 = usize::from(c.l3_offset);
        let l4 = usize::from(c.l4_offset);
        let end = usize::from(c.l3_end);
        let (my_mac, their_mac, delay) = if port == WAN {
            (ROUTER_MAC, self.wan_mac, OUTSIDE_RTT)
        } else {
            let last = match t.dst {
                IpAddr::V4(a) => a.octets()[3],
                IpAddr::V6(a) => a.octets()[15],
            };
            (inside_mac(last), self.lan_mac, INSIDE_RTT)
        };
        // Neighbour solicitation from the dataplane: answer for the target.
        if c.l4 == L4Kind::Icmpv6 && c.icmp_type_code == Some((135, 0)) {
            if let Some(target) = wire::icmpv6_view(f, l4, end).and_then(|m| m.target_addr())
                && let IpAddr::V6(src) = t.src
            {
                let mac = if port == WAN {
                    ROUTER_MAC
                } else {
                    inside_mac(target.octets()[15])
                };
                let na = wire::ndp_advert(mac, target, their_mac, src, true);
                self.push(ts + delay, port, na);
            }
            return;
        }
        // The upstream router: a packet arriving with TTL 1 dies there.
        if port == WAN
            && c.l3 == L3Kind::Ipv4
            && wire::ipv4_view(f, l3, end).is_some_and(|ip| ip.ttl() == 1)
        {
            if let Some(e) =
                wire::icmpv4_error(ROUTER_MAC, self.wan_mac, ROUTER_V4, f, l3, end, 11, 0)
            {
                self.push(ts + OUTSIDE_RTT / 2, WAN, e);
            }
            return;
        }
        let body = f.get(l4..end).unwrap_or(&[]);
        let ttl = 60;
        let reply =
            |proto: u8, l4b: &[u8]| traffic::ip(my_mac, their_mac, t.dst, t.src, ttl, proto, l4b);
        let out = match t.proto {
            PROTO_TCP => {
                // Classified TCP: the header view checks.
                let seg = net::tcp::Packet::new_checked(body).ok();
                let (flags, seq, ack, data) = seg.as_ref().map_or((0, 0, 0, &[][..]), |s| {
                    let fl = (s.flags() & 0xff) as u8;
                    (fl, s.seq_number(), s.ack_number(), s.payload())
                });
                let payload = data.len() as u32;
                let (sp, dp) = (t.dst_port, t.src_port);
                if flags & tcp::RST != 0 {
                    None
                } else if flags & tcp::SYN != 0 && flags & tcp::ACK == 0 {
                    reply(
                        PROTO_TCP,
                        &traffic::tcp_seg(
                            sp,
                            dp,
                            1000,
                            seq.wrapping_add(1),
                            tcp::SYN | tcp::ACK,
                            &[],
                        ),
                    )
                } else if flags & tcp::SYN != 0 {
                    // SYN-ACK seen by the client: ACK + request.
                    reply(
                        PROTO_TCP,
                        &traffic::tcp_seg(
                            sp,
                            dp,
                            ack,
                            seq.wrapping_add(1),
                            tcp::PSH | tcp::ACK,
                            b"GET / HTTP/1.1\r\n\r\n",
                        ),
                    )
                } else if flags & tcp::FIN != 0 {
                    let fl = if payload == 0 && flags & tcp::ACK != 0 && ack > 1 && port == LAN {
                        // FIN-ACK answering our FIN: final ACK.
                        tcp::ACK
                    } else {
                        tcp::FIN | tcp::ACK
                    };
                    reply(
                        PROTO_TCP,
                        &traffic::tcp_seg(sp, dp, ack, seq.wrapping_add(payload + 1), fl, &[]),
                    )
                } else if payload > 0 {
                    let next = seq.wrapping_add(payload);
                    let is_request = data.starts_with(b"GET");
                    if is_request {
                        reply(
                            PROTO_TCP,
                            &traffic::tcp_seg(
                                sp,
                                dp,
                                ack,
                                next,
                                tcp::PSH | tcp::ACK,
                                b"HTTP/1.1 200 OK\r\n\r\nhello",
                            ),
                        )
                    } else {
                        // Response received: most clients close, some stay idle.
                        self.reactions += 1;
                        if self.reactions % 10 < 7 {
                            reply(
                                PROTO_TCP,
                                &traffic::tcp_seg(sp, dp, ack, next, tcp::FIN | tcp::ACK, &[]),
                            )
                        } else {
                            None
                        }
                    }
                } else {
                    None
                }
            }
            PROTO_UDP => {
                let p = body.get(8..).unwrap_or(&[]);
                if port == WAN && t.dst_port != 9 {
                    reply(PROTO_UDP, &traffic::udp_dgram(t.dst_port, t.src_port, p))
                } else if port == LAN && p.first() == Some(&b'1') {
                    // A second request a second later.
                    let f2 = traffic::ip(
                        my_mac,
                        their_mac,
                        t.dst,
                        t.src,
                        64,
                        PROTO_UDP,
                        &traffic::udp_dgram(t.dst_port, t.src_port, b"2"),
                    );
                    if let Some(f2) = f2 {
                        self.push(ts + SEC, port, f2);
                    }
                    None
                } else {
                    None
                }
            }
            PROTO_ICMP if c.icmp_type_code == Some((8, 0)) => {
                let mut m = body.to_vec();
                if let Some(t) = m.first_mut() {
                    *t = 0;
                }
                reply(PROTO_ICMP, &m)
            }
            PROTO_ICMPV6 if c.icmp_type_code == Some((128, 0)) => {
                let mut m = body.to_vec();
                if let Some(t) = m.first_mut() {
                    *t = 129;
                }
                reply(PROTO_ICMPV6, &m)
            }
            _ => None,
        };
        if let Some(o) = out {
            self.push(ts + delay, port, o);
        }
    }
}

struct SimFeed<'a> {
    net: &'a RefCell<SimNet>,
    /// Every packet fed, per port, when recording.
    record: Option<BTreeMap<PortId, Vec<Packet>>>,
}
struct SimSink<'a> {
    net: &'a RefCell<SimNet>,
    out: BTreeMap<PortId, u64>,
}

impl Feed for SimFeed<'_> {
    fn next(
        &mut self,
        _: &mut BTreeMap<SkipReason, u64>,
    ) -> Result<Option<(PortId, Packet)>, ReplayError> {
        let next = self
            .net
            .borrow_mut()
            .events
            .pop()
            .map(|Reverse((ts_ns, _, port, data))| (port, Packet { ts_ns, data }));
        if let (Some(rec), Some((port, p))) = (&mut self.record, &next) {
            rec.entry(*port).or_default().push(p.clone());
        }
        Ok(next)
    }

    /// Replies are scheduled from the output: no packet may be read before
    /// the ones ahead of it are processed.
    fn may_read_ahead(&self) -> bool {
        false
    }
}

impl PacketSink for SimSink<'_> {
    fn write(&mut self, port: PortId, ts_ns: u64, data: &[u8]) -> Result<(), ReplayError> {
        *self.out.entry(port).or_default() += 1;
        self.net.borrow_mut().observe(port, ts_ns, data);
        Ok(())
    }
}

/// Build the scripted initial events.
fn script(p: &DemoParams, net: &mut SimNet) {
    let mut rng = Rng::new(p.seed);
    let gw = net.lan_mac;
    let wan = net.wan_mac;
    let hosts: Vec<u32> = (0..p.hosts).collect();
    // Every inside host (and the port-forwarded server) ARPs for the gateway
    // and solicits the gateway's IPv6 address.
    for &h in &hosts {
        let ip = host_v4(h);
        let mac = inside_mac(ip.octets()[3]);
        net.push(u64::from(h) * MS, LAN, wire::arp_request(mac, ip, GW_V4));
        let ns = wire::ndp_solicit(mac, host_v6(h), GW_V6);
        net.push(u64::from(h) * MS + MS / 2, LAN, ns);
    }
    net.push(
        50 * MS,
        LAN,
        wire::arp_request(inside_mac(100), SERVER_V4, GW_V4),
    );
    let start = |rng: &mut Rng| 100 * MS + rng.below(20 * SEC);
    for k in 0..p.tcp_flows {
        let h = k % p.hosts;
        let ip = host_v4(h);
        let dst = Ipv4Addr::new(198, 51, 100, 1 + (k % 250) as u8);
        let sport = 20000 + (k / p.hosts) as u16;
        let seg = traffic::tcp_seg(sport, 443, 7000 + k, 0, tcp::SYN, &[]);
        net.push(
            start(&mut rng),
            LAN,
            traffic::ipv4(
                inside_mac(ip.octets()[3]),
                gw,
                ip,
                dst,
                64,
                k as u16,
                PROTO_TCP,
                &seg,
            ),
        );
    }
    for k in 0..p.udp_flows {
        let h = k % p.hosts;
        let ip = host_v4(h);
        let dst = Ipv4Addr::new(192, 0, 2, 1 + (k % 200) as u8);
        let sport = 40000 + (k / p.hosts) as u16;
        let payload: &[u8] = if k % 3 == 0 { b"1query" } else { b"query" };
        let dport = if k % 10 == 9 { 9 } else { 53 };
        let d = traffic::udp_dgram(sport, dport, payload);
        net.push(
            start(&mut rng),
            LAN,
            traffic::ipv4(
                inside_mac(ip.octets()[3]),
                gw,
                ip,
                dst,
                64,
                k as u16,
                PROTO_UDP,
                &d,
            ),
        );
    }
    for k in 0..p.icmp_flows {
        let h = k % p.hosts;
        let ip = host_v4(h);
        let dst = Ipv4Addr::new(198, 51, 100, 1 + (k % 250) as u8);
        let e = traffic::icmp_echo(8, 1000 + k as u16, 1, b"ping");
        net.push(
            start(&mut rng),
            LAN,
            traffic::ipv4(
                inside_mac(ip.octets()[3]),
                gw,
                ip,
                dst,
                64,
                k as u16,
                PROTO_ICMP,
                &e,
            ),
        );
    }
    for k in 0..p.forwarded {
        let client = Ipv4Addr::new(198, 18, (k / 250) as u8, 1 + (k % 250) as u8);
        let seg = traffic::tcp_seg(30000 + k as u16, 8080, 9000 + k, 0, tcp::SYN, &[]);
        net.push(
            start(&mut rng),
            WAN,
            traffic::ipv4(
                ROUTER_MAC,
                wan,
                client,
                PF_EXTERNAL,
                50,
                k as u16,
                PROTO_TCP,
                &seg,
            ),
        );
    }
    for k in 0..p.v6_flows {
        let h = k % p.hosts;
        let src = host_v6(h);
        let dst = Ipv6Addr::new(0x2001, 0xdb8, 0x99, 0, 0, 0, 0, 1 + (k % 100) as u16);
        let mac = inside_mac(src.octets()[15]);
        let f = if k % 2 == 0 {
            traffic::ipv6(
                mac,
                gw,
                src,
                dst,
                64,
                PROTO_UDP,
                &traffic::udp_dgram(50000 + k as u16, 53, b"v6 query"),
            )
        } else {
            traffic::ipv6(
                mac,
                gw,
                src,
                dst,
                64,
                PROTO_ICMPV6,
                &traffic::icmp_echo(128, k as u16, 1, b"v6 ping"),
            )
        };
        net.push(start(&mut rng), LAN, f);
    }
    for k in 0..p.unsolicited {
        let src = Ipv4Addr::new(198, 18, 200, 1 + (k % 250) as u8);
        let d = traffic::udp_dgram(1234, 40000 + k as u16, b"probe");
        let dst = Ipv4Addr::new(203, 0, 113, 11);
        net.push(
            start(&mut rng),
            WAN,
            traffic::ipv4(ROUTER_MAC, wan, src, dst, 50, k as u16, PROTO_UDP, &d),
        );
    }
    for k in 0..p.ttl_probes {
        let ip = host_v4(k % p.hosts);
        let d = traffic::udp_dgram(33000 + k as u16, 33434 + k as u16, b"traceroute");
        let ttl = 1 + (k % 2) as u8;
        let dst = Ipv4Addr::new(192, 0, 2, 200);
        net.push(
            start(&mut rng),
            LAN,
            traffic::ipv4(
                inside_mac(ip.octets()[3]),
                gw,
                ip,
                dst,
                ttl,
                k as u16,
                PROTO_UDP,
                &d,
            ),
        );
    }
    // The late wave: by now the early UDP, ICMP and closed TCP sessions have
    // passed their timeouts.
    for k in 0..p.late_flows {
        let ip = host_v4(k % p.hosts);
        let d = traffic::udp_dgram(45000 + k as u16, 123, b"ntp");
        let t = 330 * SEC + rng.below(5 * SEC);
        net.push(
            t,
            LAN,
            traffic::ipv4(
                inside_mac(ip.octets()[3]),
                gw,
                ip,
                Ipv4Addr::new(192, 0, 2, 123),
                64,
                k as u16,
                PROTO_UDP,
                &d,
            ),
        );
    }
}

/// Run the demo; returns the summary and the shared state.
///
/// # Errors
/// Only if the embedded configuration were refused by the NAT.
pub fn run(cfg: Config, params: &DemoParams) -> Result<(Summary, Arc<Shared>), ReplayError> {
    run_inner(cfg, params, false).map(|(s, sh, _)| (s, sh))
}

/// Per-port input captures of a demo run (what the simulated network sent
/// into each port, with its timestamps).
pub type Recording = BTreeMap<PortId, Vec<Packet>>;

/// Run the demo and also return every packet it fed in, per port: replaying
/// those captures with `dataplane replay` reproduces the run.
///
/// # Errors
/// As [`run`].
pub fn run_recording(
    cfg: Config,
    params: &DemoParams,
) -> Result<(Summary, Arc<Shared>, Recording), ReplayError> {
    run_inner(cfg, params, true)
}

fn run_inner(
    cfg: Config,
    params: &DemoParams,
    record: bool,
) -> Result<(Summary, Arc<Shared>, Recording), ReplayError> {
    let lan_mac = cfg.ports[usize::from(LAN)].mac.0;
    let wan_mac = cfg.ports[usize::from(WAN)].mac.0;
    let shared = Shared::new(cfg, 1)?;
    let mut pipeline = Pipeline::new(Arc::clone(&shared), 0);
    let net = RefCell::new(SimNet {
        events: BinaryHeap::new(),
        seq: 0,
        lan_mac,
        wan_mac,
        reactions: 0,
    });
    script(params, &mut net.borrow_mut());
    let mut feed = SimFeed {
        net: &net,
        record: record.then(BTreeMap::new),
    };
    let mut sink = SimSink {
        net: &net,
        out: BTreeMap::new(),
    };
    let t0 = Instant::now();
    let d = replay::drive_full(
        core::slice::from_mut(&mut pipeline),
        &mut feed,
        &mut sink,
        1,
        None,
        None,
        |_| {},
    )?;
    let wall = t0.elapsed().as_secs_f64();
    let rec = feed.record.take().unwrap_or_default();
    Ok((Summary::from_drive(&shared, d, wall), shared, rec))
}

/// Write a recording as `DIR/PORT-in.pcap` (port names from `cfg`).
///
/// # Errors
/// I/O errors.
pub fn write_recording(
    cfg: &Config,
    rec: &Recording,
    dir: &std::path::Path,
) -> Result<Vec<std::path::PathBuf>, ReplayError> {
    use pcap_file::pcap::{PcapPacket, PcapWriter};
    std::fs::create_dir_all(dir).map_err(|source| ReplayError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let mut paths = Vec::new();
    for (port, pkts) in rec {
        let Some(pc) = cfg.ports.get(usize::from(*port)) else {
            continue;
        };
        let path = dir.join(format!("{}-in.pcap", pc.name));
        let io = |e: String| ReplayError::Io {
            path: path.display().to_string(),
            source: std::io::Error::other(e),
        };
        let f = std::fs::File::create(&path).map_err(|e| io(e.to_string()))?;
        let mut w = PcapWriter::with_header(std::io::BufWriter::new(f), replay::out_header())
            .map_err(|e| io(e.to_string()))?;
        for p in pkts {
            let ts = core::time::Duration::from_nanos(p.ts_ns);
            w.write_packet(&PcapPacket::new(ts, p.data.len() as u32, &p.data))
                .map_err(|e| io(e.to_string()))?;
        }
        std::io::Write::flush(&mut w.into_writer()).map_err(|e| io(e.to_string()))?;
        paths.push(path);
    }
    Ok(paths)
}

/// The demo's banner (what was simulated).
pub fn banner(p: &DemoParams) -> String {
    format!(
        "dataplane demo: embedded config (docs/example.toml), traffic generated in memory\n\
         {} inside hosts; {} TCP, {} UDP, {} ICMP flows out; {} port-forwarded connections in;\n\
         {} IPv6 flows; {} unsolicited inbound probes; {} traceroute probes; {} late flows at t=330s\n",
        p.hosts,
        p.tcp_flows,
        p.udp_flows,
        p.icmp_flows,
        p.forwarded,
        p.v6_flows,
        p.unsolicited,
        p.ttl_probes,
        p.late_flows
    )
}
