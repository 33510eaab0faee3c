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

/// Split the IPv4 packet of Ethernet frame `f` (no VLAN, no options
/// needed) into fragments of `chunk` payload bytes (a multiple of 8), in
/// order; each with its own header checksum.
pub fn fragment(f: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    assert_eq!(chunk % 8, 0);
    let l3 = 14;
    let ihl = usize::from(f[l3] & 0xf) * 4;
    let total = usize::from(u16::from_be_bytes([f[l3 + 2], f[l3 + 3]]));
    let payload = &f[l3 + ihl..l3 + total];
    let mut out = Vec::new();
    let mut off = 0;
    while off < payload.len() {
        let end = (off + chunk).min(payload.len());
        let mut fr = f[..l3 + ihl].to_vec();
        fr.extend_from_slice(&payload[off..end]);
        let len = (ihl + end - off) as u16;
        fr[l3 + 2..l3 + 4].copy_from_slice(&len.to_be_bytes());
        let mf = if end < payload.len() { 0x2000 } else { 0 };
        fr[l3 + 6..l3 + 8].copy_from_slice(&(((off / 8) as u16) | mf).to_be_bytes());
        fr[l3 + 10..l3 + 12].fill(0);
        let ck = net::checksum::checksum(&fr[l3..l3 + ihl]);
        fr[l3 + 10..l3 + 12].copy_from_slice(&ck.to_be_bytes());
        out.push(fr);
        off = end;
    }
    out
}
