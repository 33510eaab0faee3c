//! NAT sessions as an operator reads them: one line per session in the
//! layout of `conntrack -L`, or one JSON object. Used by `replay
//! --sessions` and `ctl sessions format=text`.
//!
//! A text line:
//!
//! ```text
//! udp      17 299 src=192.168.1.10 dst=198.51.100.7 sport=40000 dport=53 src=198.51.100.7 dst=203.0.113.10 sport=53 dport=40000 kind=masquerade worker=0
//! tcp      6 7439 ESTABLISHED src=… dst=… sport=… dport=… src=… dst=… sport=… dport=… kind=port_forward worker=1
//! icmp     1 59 src=192.168.1.10 dst=198.51.100.7 id=7 src=198.51.100.7 dst=203.0.113.10 id=7 kind=masquerade worker=0
//! ```
//!
//! Protocol name and number, seconds until the session expires (rounded
//! up), the TCP state (`SYN_SENT`, `SYN_RECV`, `ESTABLISHED`, `FIN_WAIT`,
//! `TIME_WAIT`, `CLOSE`), the original direction (the first packet's
//! addresses and ports), the reply direction (a reply as it arrives: to
//! the external endpoint for masquerade), how the session was made and the
//! worker owning it. Packet and byte counts and the creation time are not
//! tracked per session (they would cost memory and a write per packet).
//! IPv6 flows (tracked, never translated) read the same way with
//! `kind=ipv6_flow`, the reply direction the original reversed, no worker:
//!
//! ```text
//! udp      17 55 src=fd00:1::10 dst=2001:db8:99::1 sport=1 dport=2 src=2001:db8:99::1 dst=fd00:1::10 sport=2 dport=1 kind=ipv6_flow
//! ```

use core::net::IpAddr;

use flow_entry::FlowKey;
use serde_json::{Value, json};

use nat::{SessionInfo, SessionKind};

/// conntrack's protocol name.
fn proto_name(p: u8) -> &'static str {
    match p {
        1 => "icmp",
        6 => "tcp",
        17 => "udp",
        _ => "unknown",
    }
}

fn kind_name(k: SessionKind) -> &'static str {
    match k {
        SessionKind::Masquerade => "masquerade",
        SessionKind::InboundFiltered => "inbound",
        SessionKind::PortForward => "port_forward",
    }
}

/// Seconds from `now_ns` until `s` expires, rounded up.
fn timeout_secs(s: &SessionInfo, now_ns: u64) -> u64 {
    s.expires_at_ns
        .saturating_sub(now_ns)
        .div_ceil(1_000_000_000)
}

/// One direction in conntrack's words.
fn dir_text(
    proto: u8,
    (src, sport, dst, dport): (core::net::Ipv4Addr, u16, core::net::Ipv4Addr, u16),
) -> String {
    if proto == 1 {
        format!("src={src} dst={dst} id={sport}")
    } else {
        format!("src={src} dst={dst} sport={sport} dport={dport}")
    }
}

/// `s` (owned by worker `worker`) at `now_ns` as a `conntrack -L` line
/// (without the newline).
#[must_use]
pub fn text_line(worker: usize, s: &SessionInfo, now_ns: u64) -> String {
    let state = s.state.map(|x| format!("{x} ")).unwrap_or_default();
    format!(
        "{:<8} {} {} {state}{} {} kind={} worker={worker}",
        proto_name(s.proto),
        s.proto,
        timeout_secs(s, now_ns),
        dir_text(s.proto, s.original),
        dir_text(s.proto, s.reply),
        kind_name(s.kind),
    )
}

fn dir_json(
    (src, sport, dst, dport): (core::net::Ipv4Addr, u16, core::net::Ipv4Addr, u16),
) -> Value {
    json!({ "src": src, "sport": sport, "dst": dst, "dport": dport })
}

/// `s` (owned by worker `worker`) at `now_ns` as one JSON object: the
/// fields of [`text_line`] by name, plus the inside, external and remote
/// endpoints and the deadline.
#[must_use]
pub fn json_object(worker: usize, s: &SessionInfo, now_ns: u64) -> Value {
    let ep = |(a, p): (core::net::Ipv4Addr, u16)| format!("{a}:{p}");
    json!({
        "proto": proto_name(s.proto),
        "proto_num": s.proto,
        "timeout_secs": timeout_secs(s, now_ns),
        "state": s.state,
        "original": dir_json(s.original),
        "reply": dir_json(s.reply),
        "inside": ep(s.inside),
        "external": ep(s.external),
        "remote": ep(s.remote),
        "kind": kind_name(s.kind),
        "worker": worker,
        "expires_at_ns": s.expires_at_ns,
    })
}

/// An IPv6 flow (`key`: its first packet; deadline `expires_at_ns`) at
/// `now_ns` as a `conntrack -L` line.
#[must_use]
pub fn flow_line(key: &FlowKey, expires_at_ns: u64, now_ns: u64) -> String {
    let secs = expires_at_ns.saturating_sub(now_ns).div_ceil(1_000_000_000);
    let dir = |s: IpAddr, sp: u16, d: IpAddr, dp: u16| {
        if key.proto() == 58 {
            format!("src={s} dst={d}")
        } else {
            format!("src={s} dst={d} sport={sp} dport={dp}")
        }
    };
    let name = match key.proto() {
        58 => "icmpv6",
        p => proto_name(p),
    };
    format!(
        "{:<8} {} {secs} {} {} kind=ipv6_flow",
        name,
        key.proto(),
        dir(key.src(), key.src_port(), key.dst(), key.dst_port()),
        dir(key.dst(), key.dst_port(), key.src(), key.src_port()),
    )
}

/// [`flow_line`] as one JSON object.
#[must_use]
pub fn flow_json(key: &FlowKey, expires_at_ns: u64, now_ns: u64) -> Value {
    json!({
        "proto": if key.proto() == 58 { "icmpv6" } else { proto_name(key.proto()) },
        "proto_num": key.proto(),
        "timeout_secs": expires_at_ns.saturating_sub(now_ns).div_ceil(1_000_000_000),
        "original": { "src": key.src(), "sport": key.src_port(), "dst": key.dst(), "dport": key.dst_port() },
        "reply": { "src": key.dst(), "sport": key.dst_port(), "dst": key.src(), "dport": key.src_port() },
        "kind": "ipv6_flow",
        "expires_at_ns": expires_at_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn s(proto: u8, state: Option<&'static str>) -> SessionInfo {
        let h = Ipv4Addr::new(192, 168, 1, 10);
        let r = Ipv4Addr::new(198, 51, 100, 7);
        let e = Ipv4Addr::new(203, 0, 113, 10);
        SessionInfo {
            kind: SessionKind::Masquerade,
            proto,
            inside: (h, 40000),
            external: (e, 40001),
            remote: (r, 53),
            expires_at_ns: 10_500_000_000,
            state,
            original: (h, 40000, r, 53),
            reply: (r, 53, e, 40001),
        }
    }

    #[test]
    fn lines_read_like_conntrack() {
        assert_eq!(
            text_line(2, &s(17, None), 1_000_000_000),
            "udp      17 10 src=192.168.1.10 dst=198.51.100.7 sport=40000 dport=53 \
             src=198.51.100.7 dst=203.0.113.10 sport=53 dport=40001 kind=masquerade worker=2"
        );
        assert!(
            text_line(0, &s(6, Some("ESTABLISHED")), 0)
                .starts_with("tcp      6 11 ESTABLISHED src=")
        );
        assert!(
            text_line(0, &s(1, None), 0).contains("src=192.168.1.10 dst=198.51.100.7 id=40000 ")
        );
        let j = json_object(1, &s(6, Some("SYN_SENT")), 10_500_000_000);
        assert_eq!(j["timeout_secs"], 0);
        assert_eq!(j["state"], "SYN_SENT");
        assert_eq!(j["reply"]["dport"], 40001);
        assert_eq!(j["external"], "203.0.113.10:40001");
    }
}
