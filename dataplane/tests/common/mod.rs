//! Shared helpers for the dataplane integration tests: configs, addresses,
//! a one-call pipeline driver and a temp directory.
#![allow(dead_code)]

use core::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use dataplane::config::Config;
use dataplane::pipeline::{Disposition, Output, Pipeline, PortId};
use dataplane::wire::Mac;
use dataplane::{Timestamp, wire};

pub const LAN: PortId = 0;
pub const WAN: PortId = 1;
pub const LAN_MAC: Mac = [0x02, 0, 0, 0, 0x01, 0x01];
pub const WAN_MAC: Mac = [0x02, 0, 0, 0, 0x02, 0x01];
pub const ROUTER_MAC: Mac = [0x02, 0, 0, 0, 0x02, 0xfe];
pub const HOST_MAC: Mac = [0x02, 0, 0, 0, 0x10, 0x0a];
pub const HOST2_MAC: Mac = [0x02, 0, 0, 0, 0x10, 0x0b];
pub const SERVER_MAC: Mac = [0x02, 0, 0, 0, 0x10, 0x64];
pub const GW: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
pub const WAN_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
pub const ROUTER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
pub const HOST: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
pub const HOST2: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 11);
pub const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 100);
pub const POOL1: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
pub const POOL2: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 11);
pub const REMOTE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
pub const GW6: Ipv6Addr = Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 1);
pub const HOST6: Ipv6Addr = Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 0x10);
pub const REMOTE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x99, 0, 0, 0, 0, 1);
pub const ROUTER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1);

/// The documented example config (with NAT).
pub fn nat_config() -> Config {
    Config::default_demo()
}

/// The example config with the `[nat]` section removed: a plain router.
pub fn router_config() -> Config {
    let mut c = Config::default_demo();
    c.nat = None;
    c
}

/// The example config text with `extra` appended (for check-config tests).
pub fn config_text_with(replace: &str, with: &str) -> String {
    let s = dataplane::config::DEFAULT_CONFIG;
    assert!(s.contains(replace), "example config has no `{replace}`");
    s.replacen(replace, with, 1)
}

pub fn ts(secs: f64) -> Timestamp {
    Timestamp::from_nanos((secs * 1e9) as u64)
}

/// Frames a pipeline generated, with their port.
pub type Generated = Vec<(PortId, Vec<u8>)>;

/// Run one frame through `p` and return (disposition, frame after, generated).
pub fn one(
    p: &mut Pipeline,
    port: PortId,
    frame: Vec<u8>,
    now: Timestamp,
) -> (Disposition, Vec<u8>, Generated) {
    let mut out = Output::default();
    let mut frames = vec![frame];
    p.process(port, &mut frames, now, &mut out);
    assert_eq!(out.dispositions.len(), 1);
    (out.dispositions[0], frames.pop().unwrap(), out.generated)
}

/// Teach the pipeline where HOST and SERVER are (ARP requests for the gateway).
pub fn learn_hosts(p: &mut Pipeline, now: Timestamp) {
    for (mac, ip) in [(HOST_MAC, HOST), (HOST2_MAC, HOST2), (SERVER_MAC, SERVER)] {
        let (d, _, _) = one(p, LAN, wire::arp_request(mac, ip, GW), now);
        assert_eq!(d, Disposition::Tx(LAN));
    }
}

/// A fresh, empty temporary directory for this test.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dataplane-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Decoded L3/L4 view of a frame for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub src_mac: Mac,
    pub dst_mac: Mac,
    pub src: std::net::IpAddr,
    pub dst: std::net::IpAddr,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
    pub ttl: u8,
    pub icmp: Option<(u8, u8)>,
}

pub fn view(f: &[u8]) -> View {
    let c = wire::classify(f).expect("classifiable frame");
    let t = c.tuple.expect("frame has a tuple");
    let l3 = usize::from(c.l3_offset);
    let ttl = if c.l3 == net::L3Kind::Ipv4 {
        f[l3 + 8]
    } else {
        f[l3 + 7]
    };
    View {
        src_mac: f[6..12].try_into().unwrap(),
        dst_mac: f[0..6].try_into().unwrap(),
        src: t.src,
        dst: t.dst,
        proto: t.proto,
        sport: t.src_port,
        dport: t.dst_port,
        ttl,
        icmp: c.icmp_type_code,
    }
}

/// UDP from the inside host to the remote server, from source port `sp`
/// (to the router's LAN MAC, TTL 64).
pub fn udp_out(sp: u16) -> Vec<u8> {
    dataplane::traffic::ipv4(
        HOST_MAC,
        LAN_MAC,
        HOST,
        REMOTE,
        64,
        1,
        wire::PROTO_UDP,
        &dataplane::traffic::udp_dgram(sp, 53, b"q"),
    )
}

/// Offset of the IPv4/IPv6 header in the untagged frames the builders make.
pub const L3: usize = 14;

/// UDP from HOST:40000 to REMOTE:9000 with `len` payload bytes (a
/// pattern), IPv4 identification 0x4242, DF as given (oversized-frame tests).
pub fn udp_out_sized(len: usize, df: bool) -> Vec<u8> {
    let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
    let mut f = dataplane::traffic::ipv4(
        HOST_MAC,
        LAN_MAC,
        HOST,
        REMOTE,
        64,
        0x4242,
        wire::PROTO_UDP,
        &dataplane::traffic::udp_dgram(40000, 9000, &payload),
    );
    set_df(&mut f, df);
    f
}

/// Set or clear DF of the IPv4 frame `f` (checksum refilled).
pub fn set_df(f: &mut [u8], df: bool) {
    let mut ip = net::ipv4::Packet::new_checked(&mut f[L3..]).unwrap();
    ip.set_dont_frag(df);
    ip.fill_checksum();
}

/// The IPv4 view of an untagged frame.
pub fn ip_of(f: &[u8]) -> net::ipv4::Packet<&[u8]> {
    net::ipv4::Packet::new_checked(&f[L3..]).unwrap()
}

/// Reassemble IPv4 fragments (frames, IPv4 at [`L3`]): the payload in
/// offset order, after checking each fragment (≤ `mtu`, header checksum,
/// MF on all but the last, 8-byte multiples). Panics on a gap or overlap.
pub fn reassemble_ipv4(frags: &[Vec<u8>], mtu: usize) -> Vec<u8> {
    let mut parts: Vec<(usize, bool, Vec<u8>)> = frags
        .iter()
        .map(|f| {
            let p = ip_of(f);
            assert!(usize::from(p.total_len()) <= mtu, "fragment over the MTU");
            assert!(p.verify_checksum(), "fragment header checksum");
            (
                usize::from(p.frag_offset()),
                p.more_frags(),
                p.payload().to_vec(),
            )
        })
        .collect();
    parts.sort_by_key(|p| p.0);
    let mut out = Vec::new();
    for (i, (off, mf, data)) in parts.iter().enumerate() {
        assert_eq!(*off, out.len(), "fragment {i} starts where the last ended");
        assert_eq!(*mf, i + 1 < parts.len(), "MF on all but the last");
        if *mf {
            assert_eq!(data.len() % 8, 0);
        }
        out.extend_from_slice(data);
    }
    out
}

/// Split the IPv4 packet of Ethernet frame `f` (untagged) into fragments
/// whose IP packets are at most `mtu` bytes (`net`'s fragmenter), each
/// behind `f`'s Ethernet header, in order.
pub fn fragment(f: &[u8], mtu: usize) -> Vec<Vec<u8>> {
    net::build::ipv4_fragments(&f[L3..], mtu)
        .expect("fragmentable")
        .into_iter()
        .map(|ip| {
            let mut x = f[..L3].to_vec();
            x.extend_from_slice(&ip);
            x
        })
        .collect()
}

/// `f` with an 802.1Q tag (TPID `tpid`, priority `pcp`, id `vid`) inserted
/// after the MAC addresses.
pub fn tag_with(f: &[u8], tpid: u16, pcp: u8, vid: u16) -> Vec<u8> {
    let mut t = f[..12].to_vec();
    t.extend_from_slice(&tpid.to_be_bytes());
    t.extend_from_slice(&((u16::from(pcp) << 13) | vid).to_be_bytes());
    t.extend_from_slice(&f[12..]);
    t
}

pub fn tag(f: &[u8], vid: u16) -> Vec<u8> {
    tag_with(f, 0x8100, 0, vid)
}

/// The VLAN ids of `f`'s tags (outermost first) and `f` without them.
pub fn untag(f: &[u8]) -> (Vec<u16>, Vec<u8>) {
    let c = wire::classify(f).expect("classifiable frame");
    let ids = c.vlans[..usize::from(c.vlan_count)].to_vec();
    let mut u = f[..12].to_vec();
    u.extend_from_slice(&f[usize::from(c.l3_offset) - 2..]);
    (ids, u)
}
