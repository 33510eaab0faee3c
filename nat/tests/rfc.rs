//! One test per RFC requirement (RFC 4787, 5382, 5508, 6888, 7857), on
//! packets built with etherparse and a virtual clock.

mod common;

use common::*;
use etherparse::{Icmpv4Type, icmpv4::DestUnreachableHeader, icmpv4::TimeExceededCode};
use nat::{
    DropReason, FilteringBehavior, ForwardProtocol, MappingBehavior, PortForward, PortRange,
    SessionFilter, Side, Verdict,
};

use nat::ForwardProtocol as _FP;

fn out_udp(
    n: &mut nat::Nat,
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
    t: u64,
) -> (Verdict, Vec<u8>) {
    let mut f = udp(src, sport, dst, dport, b"payload");
    let v = run(n, &mut f, Side::Inside, secs(t));
    (v, f)
}

fn in_udp(
    n: &mut nat::Nat,
    src: &str,
    sport: u16,
    dst: core::net::Ipv4Addr,
    dport: u16,
    t: u64,
) -> (Verdict, Vec<u8>) {
    let mut f = udp(src, sport, &dst.to_string(), dport, b"reply");
    let v = run(n, &mut f, Side::Outside, secs(t));
    (v, f)
}

#[test]
fn rfc4787_req1_endpoint_independent_mapping() {
    let mut n = nat(base_config());
    let (v1, f1) = out_udp(&mut n, "10.0.0.1", 5000, "192.0.2.1", 53, 0);
    let (v2, f2) = out_udp(&mut n, "10.0.0.1", 5000, "198.51.100.9", 123, 1);
    assert_eq!((v1, v2), (Verdict::Forward, Verdict::Forward));
    let (s1, p1, d1, _) = addrs(&f1);
    let (s2, p2, d2, _) = addrs(&f2);
    assert_eq!(
        (s1, p1),
        (s2, p2),
        "same external endpoint to every destination"
    );
    assert_ne!(d1, d2);
    assert!(s1.octets()[..3] == [203, 0, 113]);
    verify_checksums(&f1);
    verify_checksums(&f2);
    let st = n.stats();
    assert_eq!(
        (st.sessions_active, st.mappings, st.ports_in_use),
        (2, 1, 1)
    );
}

#[test]
fn rfc4787_req1_address_and_port_dependent_mapping_configurable() {
    let mut c = base_config();
    c.mapping = MappingBehavior::AddressAndPortDependent;
    let mut n = nat(c);
    let (_, f1) = out_udp(&mut n, "10.0.0.1", 5000, "192.0.2.1", 53, 0);
    let (_, f2) = out_udp(&mut n, "10.0.0.1", 5000, "192.0.2.1", 54, 0);
    let (s1, p1, ..) = addrs(&f1);
    let (s2, p2, ..) = addrs(&f2);
    assert_eq!(s1, s2, "paired pooling still applies");
    assert_ne!(p1, p2, "one external port per destination");
    assert_eq!(n.stats().ports_in_use, 2);
}

#[test]
fn rfc4787_req2_paired_pooling() {
    let mut n = nat(base_config());
    let mut seen = std::collections::HashSet::new();
    for h in 1..=40 {
        let host = format!("10.0.1.{h}");
        let mut ext = None;
        for (k, port) in [1111u16, 2222, 3333].iter().enumerate() {
            let (v, f) = out_udp(&mut n, &host, *port, "192.0.2.1", 9, k as u64);
            assert_eq!(v, Verdict::Forward);
            let (s, ..) = addrs(&f);
            assert!(
                ext.is_none_or(|e| e == s),
                "host {host} kept one external address"
            );
            ext = Some(s);
        }
        let mut f = tcp(&host, 4444, "192.0.2.1", 80, SYN);
        assert_eq!(run(&mut n, &mut f, Side::Inside, secs(5)), Verdict::Forward);
        assert_eq!(addrs(&f).0, ext.unwrap(), "TCP shares the pairing");
        seen.insert(ext.unwrap());
    }
    assert!(seen.len() >= 3, "hosts spread over the pool: {seen:?}");
}

#[test]
fn rfc4787_req3_port_preservation() {
    let mut n = nat(base_config());
    let (_, f) = out_udp(&mut n, "10.0.0.1", 40000, "192.0.2.1", 53, 0);
    assert_eq!(addrs(&f).1, 40000, "source port kept");
    // Many hosts with the same source port: no port overloading — each
    // external (address, port) is used by one mapping only.
    let mut ext = std::collections::HashSet::new();
    for h in 1..=20 {
        let (v, f) = out_udp(&mut n, &format!("10.0.2.{h}"), 40000, "192.0.2.1", 53, 0);
        assert_eq!(v, Verdict::Forward);
        let (s, p, ..) = addrs(&f);
        assert!(ext.insert((s, p)), "external endpoint reused");
        assert!(p >= 1024);
    }
    // Low source ports stay below 1024, high ones never go below 1024.
    for h in 1..=10 {
        let (_, f) = out_udp(&mut n, &format!("10.0.3.{h}"), 123, "192.0.2.1", 123, 0);
        let p = addrs(&f).1;
        assert!((1..1024).contains(&p), "low port {p}");
    }
    assert!(n.stats().alloc.preserved >= 5);
}

#[test]
fn rfc4787_req4_port_parity() {
    let mut c = base_config();
    c.mapping = MappingBehavior::AddressAndPortDependent;
    let mut n = nat(c);
    for k in 0..200u16 {
        let (_, f) = out_udp(&mut n, "10.0.0.1", 5001, "192.0.2.2", 1000 + k, 0);
        assert_eq!(addrs(&f).1 % 2, 1, "odd stays odd");
        let (_, f) = out_udp(&mut n, "10.0.0.1", 6000, "192.0.2.2", 1000 + k, 0);
        assert_eq!(addrs(&f).1 % 2, 0, "even stays even");
    }
    let a = n.stats().alloc;
    assert_eq!(a.preserved, 2);
    assert_eq!(a.parity_kept, 398);
}

#[test]
fn rfc4787_req5_udp_timeout_119s_keeps_mapping() {
    let mut n = nat(base_config());
    let (_, f) = out_udp(&mut n, "10.0.0.1", 5000, "192.0.2.1", 53, 0);
    let (ext, eport, ..) = addrs(&f);
    n.poll(secs(119), usize::MAX);
    let (v, back) = in_udp(&mut n, "192.0.2.1", 53, ext, eport, 119);
    assert_eq!(v, Verdict::Forward, "idle 119 s keeps the mapping");
    assert_eq!(addrs(&back).2, ip("10.0.0.1"));
    assert_eq!(addrs(&back).3, 5000);
    verify_checksums(&back);
    // The default is 300 s: idle 299 s after the last packet still alive.
    n.poll(secs(119 + 299), usize::MAX);
    assert_eq!(n.stats().sessions_active, 1);
    n.poll(secs(119 + 301), usize::MAX);
    let st = n.stats();
    assert_eq!((st.sessions_active, st.ports_in_use, st.expired), (0, 0, 1));
    let (v, _) = in_udp(&mut n, "192.0.2.1", 53, ext, eport, 421);
    assert_eq!(v, Verdict::Drop(DropReason::NoSession));
}

#[test]
fn rfc4787_req5_udp_timeout_below_120s_rejected() {
    let mut c = base_config();
    c.timeouts.udp = 60;
    assert_eq!(c.validate().unwrap_err().path, "timeouts.udp");
    c.timeouts.allow_below_rfc_minimum = true;
    assert!(c.validate().is_ok());
}

#[test]
fn rfc4787_req6_inbound_refresh_configurable() {
    for refresh in [true, false] {
        let mut c = base_config();
        c.timeouts.udp_inbound_refresh = refresh;
        let mut n = nat(c);
        let (_, f) = out_udp(&mut n, "10.0.0.1", 5000, "192.0.2.1", 53, 0);
        let (ext, eport, ..) = addrs(&f);
        let (v, _) = in_udp(&mut n, "192.0.2.1", 53, ext, eport, 200);
        assert_eq!(v, Verdict::Forward);
        n.poll(secs(301), usize::MAX);
        assert_eq!(
            n.stats().sessions_active,
            u64::from(refresh),
            "inbound refresh = {refresh}"
        );
    }
}

#[test]
fn rfc4787_req8_filtering_address_and_port_dependent_default() {
    let mut n = nat(base_config());
    let (_, f) = out_udp(&mut n, "10.0.0.1", 5000, "192.0.2.1", 53, 0);
    let (ext, eport, ..) = addrs(&f);
    let (v, _) = in_udp(&mut n, "192.0.2.1", 54, ext, eport, 1);
    assert_eq!(
        v,
        Verdict::Drop(DropReason::Filtered),
        "other port of the same remote"
    );
    let (v, _) = in_udp(&mut n, "192.0.2.99", 53, ext, eport, 1);
    assert_eq!(v, Verdict::Drop(DropReason::Filtered), "other remote");
    let (v, _) = in_udp(&mut n, "192.0.2.1", 53, ext, eport, 1);
    assert_eq!(v, Verdict::Forward);
    assert_eq!(n.drops(DropReason::Filtered), 2);
}

#[test]
fn rfc4787_req8_filtering_endpoint_independent_configurable() {
    let mut c = base_config();
    c.filtering = FilteringBehavior::EndpointIndependent;
    let mut n = nat(c);
    let (_, f) = out_udp(&mut n, "10.0.0.1", 5000, "192.0.2.1", 53, 0);
    let (ext, eport, ..) = addrs(&f);
    let (v, back) = in_udp(&mut n, "198.51.100.7", 7777, ext, eport, 1);
    assert_eq!(v, Verdict::Forward, "any remote may reach the mapping");
    let (s, sp, d, dp) = addrs(&back);
    assert_eq!(
        (s, sp, d, dp),
        (ip("198.51.100.7"), 7777, ip("10.0.0.1"), 5000)
    );
    verify_checksums(&back);
    // The new session translates the inside host's reply with the same mapping.
    let (v, f) = out_udp(&mut n, "10.0.0.1", 5000, "198.51.100.7", 7777, 2);
    assert_eq!(v, Verdict::Forward);
    assert_eq!((addrs(&f).0, addrs(&f).1), (ext, eport));
    let st = n.stats();
    assert_eq!((st.sessions_active, st.mappings), (2, 1));
    // Unmapped port: still dropped.
    let (v, _) = in_udp(&mut n, "198.51.100.7", 7777, ext, eport.wrapping_add(1), 3);
    assert_eq!(v, Verdict::Drop(DropReason::NoSession));
}

/// RFC 4787 REQ-8, the stricter recommended option: address-dependent
/// filtering admits any port of a remote address the mapping has a live
/// session with, nothing from other addresses, and stops admitting once
/// the last session with that address is gone; TCP needs a SYN.
#[test]
fn rfc4787_req8_filtering_address_dependent_configurable() {
    let mut c = base_config();
    c.filtering = FilteringBehavior::AddressDependent;
    let udp_t = c.timeouts.udp;
    let mut n = nat(c);
    let (_, f) = out_udp(&mut n, "10.0.0.1", 5000, "192.0.2.1", 53, 0);
    let (ext, eport, ..) = addrs(&f);
    let (v, _) = in_udp(&mut n, "192.0.2.99", 53, ext, eport, 1);
    assert_eq!(
        v,
        Verdict::Drop(DropReason::Filtered),
        "other remote address"
    );
    let (v, back) = in_udp(&mut n, "192.0.2.1", 7777, ext, eport, 1);
    assert_eq!(v, Verdict::Forward, "same address, other port");
    assert_eq!(addrs(&back), (ip("192.0.2.1"), 7777, ip("10.0.0.1"), 5000));
    verify_checksums(&back);
    let mut syn = tcp("192.0.2.1", 8888, &ext.to_string(), eport, 0x02);
    assert_eq!(
        run(&mut n, &mut syn, Side::Outside, secs(1)),
        Verdict::Drop(DropReason::NoSession),
        "no TCP mapping on that port"
    );
    let st = n.stats();
    assert_eq!((st.sessions_active, st.mappings), (2, 1));
    // Both sessions with 192.0.2.1 expire: the address is no longer admitted.
    assert_eq!(n.poll(secs(2 + udp_t), usize::MAX), 2);
    // A new session (and mapping) to another address.
    let (_, f) = out_udp(&mut n, "10.0.0.1", 5000, "192.0.2.50", 53, 3 + udp_t);
    let (ext, eport, ..) = addrs(&f);
    let (v, _) = in_udp(&mut n, "192.0.2.1", 7777, ext, eport, 4 + udp_t);
    assert_eq!(
        v,
        Verdict::Drop(DropReason::Filtered),
        "no live session with it any more"
    );
    let (v, _) = in_udp(&mut n, "192.0.2.50", 9, ext, eport, 4 + udp_t);
    assert_eq!(v, Verdict::Forward);
    // Address-dependent filtering needs endpoint-independent mapping.
    let mut bad = base_config();
    bad.filtering = FilteringBehavior::AddressDependent;
    bad.mapping = MappingBehavior::AddressAndPortDependent;
    let e = bad.validate().unwrap_err();
    assert!(e.to_string().contains("filtering"), "{e}");
}

#[test]
fn rfc4787_req9_hairpinning() {
    let mut c = base_config();
    c.filtering = FilteringBehavior::EndpointIndependent;
    let mut n = nat(c);
    // B opens a mapping (e.g. to a rendezvous server).
    let (_, f) = out_udp(&mut n, "10.0.0.2", 6000, "192.0.2.1", 3478, 0);
    let (b_ext, b_port, ..) = addrs(&f);
    // A (inside) learns B's external endpoint and sends to it.
    let (_, f) = out_udp(&mut n, "10.0.0.1", 5000, "192.0.2.1", 3478, 0);
    let (a_ext, a_port, ..) = addrs(&f);
    let mut f = udp("10.0.0.1", 5000, &b_ext.to_string(), b_port, b"hi B");
    assert_eq!(run(&mut n, &mut f, Side::Inside, secs(1)), Verdict::Forward);
    assert_eq!(
        addrs(&f),
        (a_ext, a_port, ip("10.0.0.2"), 6000),
        "B sees A's external endpoint"
    );
    verify_checksums(&f);
    // B answers A's external endpoint.
    let mut f = udp("10.0.0.2", 6000, &a_ext.to_string(), a_port, b"hi A");
    assert_eq!(run(&mut n, &mut f, Side::Inside, secs(2)), Verdict::Forward);
    assert_eq!(
        addrs(&f),
        (b_ext, b_port, ip("10.0.0.1"), 5000),
        "A sees B's external endpoint"
    );
    verify_checksums(&f);
    assert_eq!(n.stats().hairpinned, 2);
}

#[test]
fn rfc4787_req9_hairpinning_disabled_is_not_translated_back() {
    let mut c = base_config();
    c.hairpinning = false;
    c.filtering = FilteringBehavior::EndpointIndependent;
    let mut n = nat(c);
    let (_, f) = out_udp(&mut n, "10.0.0.2", 6000, "192.0.2.1", 3478, 0);
    let (b_ext, b_port, ..) = addrs(&f);
    let mut f = udp("10.0.0.1", 5000, &b_ext.to_string(), b_port, b"x");
    assert_eq!(run(&mut n, &mut f, Side::Inside, secs(1)), Verdict::Forward);
    assert_eq!(
        addrs(&f).2,
        b_ext,
        "sent out untranslated towards the pool address"
    );
}

#[test]
fn rfc5382_req1_tcp_endpoint_independent_mapping() {
    let mut n = nat(base_config());
    let mut a = tcp("10.0.0.1", 40001, "192.0.2.1", 80, SYN);
    let mut b = tcp("10.0.0.1", 40001, "192.0.2.2", 443, SYN);
    run(&mut n, &mut a, Side::Inside, secs(0));
    run(&mut n, &mut b, Side::Inside, secs(0));
    assert_eq!((addrs(&a).0, addrs(&a).1), (addrs(&b).0, addrs(&b).1));
    verify_checksums(&a);
}

fn handshake(n: &mut nat::Nat, t: u64) -> (core::net::Ipv4Addr, u16) {
    let mut f = tcp("10.0.0.1", 40000, "192.0.2.1", 80, SYN);
    assert_eq!(run(n, &mut f, Side::Inside, secs(t)), Verdict::Forward);
    let (ext, eport, ..) = addrs(&f);
    let mut f = tcp("192.0.2.1", 80, &ext.to_string(), eport, SYN | ACK);
    assert_eq!(run(n, &mut f, Side::Outside, secs(t)), Verdict::Forward);
    assert_eq!(addrs(&f).2, ip("10.0.0.1"));
    verify_checksums(&f);
    let mut f = tcp("10.0.0.1", 40000, "192.0.2.1", 80, ACK);
    assert_eq!(run(n, &mut f, Side::Inside, secs(t)), Verdict::Forward);
    (ext, eport)
}

#[test]
fn rfc5382_req5_established_2h3m_kept() {
    let mut n = nat(base_config());
    let (ext, eport) = handshake(&mut n, 0);
    let t = 2 * 3600 + 3 * 60;
    n.poll(secs(t), usize::MAX);
    let mut f = tcp("192.0.2.1", 80, &ext.to_string(), eport, ACK);
    assert_eq!(
        run(&mut n, &mut f, Side::Outside, secs(t)),
        Verdict::Forward,
        "idle 2 h 3 min kept"
    );
    n.poll(secs(t + 7440 + 1), usize::MAX);
    assert_eq!(n.stats().sessions_active, 0);
    assert_eq!(n.stats().ports_in_use, 0);
}

#[test]
fn rfc5382_req5_transitory_4min() {
    let mut n = nat(base_config());
    let mut f = tcp("10.0.0.1", 40000, "192.0.2.1", 80, SYN);
    run(&mut n, &mut f, Side::Inside, secs(0));
    n.poll(secs(239), usize::MAX);
    assert_eq!(n.stats().sessions_active, 1, "partially open kept 239 s");
    n.poll(secs(241), usize::MAX);
    assert_eq!(
        n.stats().sessions_active,
        0,
        "partially open gone after 4 min"
    );
}

#[test]
fn rfc5382_tcp_only_syn_creates() {
    let mut n = nat(base_config());
    let mut f = tcp("10.0.0.1", 40000, "192.0.2.1", 80, ACK);
    assert_eq!(
        run(&mut n, &mut f, Side::Inside, secs(0)),
        Verdict::Drop(DropReason::TcpNotSyn)
    );
    let mut f = tcp("10.0.0.1", 40000, "192.0.2.1", 80, SYN | ACK);
    assert_eq!(
        run(&mut n, &mut f, Side::Inside, secs(0)),
        Verdict::Drop(DropReason::TcpNotSyn)
    );
    assert_eq!(n.stats().sessions_active, 0);
}

fn originated(n: &mut nat::Nat) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    n.take_originated(&mut v);
    v
}

/// RFC 5382 REQ-4 with `unsolicited_syn = "hold"`: an unsolicited SYN is
/// not answered for 6 s, then gets ICMP port unreachable from the NAT
/// address it was sent to, quoting it; a retransmission is not answered
/// twice; the default (`drop`) never answers.
#[test]
fn rfc5382_req4_unsolicited_syn_answered_after_6s() {
    let mut c = base_config();
    c.unsolicited_syn = nat::UnsolicitedSyn::Hold;
    let mut n = nat(c);
    let mut syn = tcp("192.0.2.1", 5555, "203.0.113.2", 40000, SYN);
    let orig = syn.clone();
    assert_eq!(
        run(&mut n, &mut syn, Side::Outside, secs(10)),
        Verdict::Drop(DropReason::NoSession)
    );
    // The client retransmits 1 s later.
    let mut again = orig.clone();
    run(&mut n, &mut again, Side::Outside, secs(11));
    n.poll(
        nat::Timestamp::from_nanos(16 * 1_000_000_000 - 1),
        usize::MAX,
    );
    assert!(originated(&mut n).is_empty(), "nothing within 6 s");
    n.poll(secs(16), usize::MAX);
    let out = originated(&mut n);
    assert_eq!(out.len(), 1, "one answer for the held SYN");
    let e = &out[0];
    verify_checksums(e);
    assert_eq!(addrs(e).0, ip("203.0.113.2"), "from the NAT address tried");
    assert_eq!(addrs(e).2, ip("192.0.2.1"), "to the remote");
    assert_eq!((e[34], e[35]), (3, 3), "ICMP port unreachable");
    let emb = verify_embedded(e);
    assert_eq!(
        emb[..],
        orig[14..14 + 28],
        "quotes the SYN's header + 8 bytes"
    );
    n.poll(secs(30), usize::MAX);
    assert!(
        originated(&mut n).is_empty(),
        "the retransmission is not answered"
    );
    let h = n.stats().syn_hold;
    assert_eq!((h.held, h.answered, h.not_held, h.holding), (1, 1, 1, 0));

    let mut n = nat(base_config());
    let mut syn = orig.clone();
    run(&mut n, &mut syn, Side::Outside, secs(10));
    n.poll(secs(30), usize::MAX);
    assert!(
        originated(&mut n).is_empty(),
        "default: dropped, never answered"
    );
    assert_eq!(n.stats().syn_hold.held, 0);
}

/// RFC 5382 REQ-4, simultaneous open: when the inside host sends the SYN
/// of the connection a held SYN belongs to within the 6 s, the held SYN is
/// dropped silently and never answered; the connection works.
#[test]
fn rfc5382_req4_simultaneous_open_cancels_the_answer() {
    let mut c = base_config();
    c.unsolicited_syn = nat::UnsolicitedSyn::Hold;
    // Where the inside host's SYN will be mapped (same seed, same config).
    let mut probe = nat(c.clone());
    let mut f = tcp("10.0.0.1", 40000, "192.0.2.1", 5555, SYN);
    run(&mut probe, &mut f, Side::Inside, secs(0));
    let (ext, eport, ..) = addrs(&f);
    let mut n = nat(c);
    let mut syn = tcp("192.0.2.1", 5555, &ext.to_string(), eport, SYN);
    assert_eq!(
        run(&mut n, &mut syn, Side::Outside, secs(10)),
        Verdict::Drop(DropReason::NoSession)
    );
    let mut out = tcp("10.0.0.1", 40000, "192.0.2.1", 5555, SYN);
    assert_eq!(
        run(&mut n, &mut out, Side::Inside, secs(12)),
        Verdict::Forward
    );
    assert_eq!((addrs(&out).0, addrs(&out).1), (ext, eport));
    // The remote's next SYN (its retransmission) now gets through.
    let mut syn = tcp("192.0.2.1", 5555, &ext.to_string(), eport, SYN);
    assert_eq!(
        run(&mut n, &mut syn, Side::Outside, secs(13)),
        Verdict::Forward
    );
    assert_eq!(addrs(&syn).2, ip("10.0.0.1"));
    n.poll(secs(30), usize::MAX);
    assert!(originated(&mut n).is_empty(), "cancelled: never answered");
    let h = n.stats().syn_hold;
    assert_eq!((h.held, h.cancelled, h.answered), (1, 1, 0));
}

#[test]
fn rfc7857_req2_time_wait_after_both_fins() {
    let mut n = nat(base_config());
    let (ext, eport) = handshake(&mut n, 0);
    let mut f = tcp("10.0.0.1", 40000, "192.0.2.1", 80, FIN | ACK);
    run(&mut n, &mut f, Side::Inside, secs(10));
    let mut f = tcp("192.0.2.1", 80, &ext.to_string(), eport, FIN | ACK);
    run(&mut n, &mut f, Side::Outside, secs(10));
    n.poll(secs(10 + 239), usize::MAX);
    assert_eq!(n.stats().sessions_active, 1, "TIME_WAIT hold 4 min");
    n.poll(secs(10 + 241), usize::MAX);
    assert_eq!(
        n.stats().sessions_active,
        0,
        "closed after TIME_WAIT, not after 2 h"
    );
    assert_eq!(n.stats().ports_in_use, 0);
}

#[test]
fn rfc7857_req2_rst_shortens_to_time_wait() {
    let mut n = nat(base_config());
    let (ext, eport) = handshake(&mut n, 0);
    let mut f = tcp("192.0.2.1", 80, &ext.to_string(), eport, RST);
    assert_eq!(
        run(&mut n, &mut f, Side::Outside, secs(100)),
        Verdict::Forward
    );
    n.poll(secs(100 + 241), usize::MAX);
    assert_eq!(
        n.stats().sessions_active,
        0,
        "RST: eager re-arm to the short deadline"
    );
}

#[test]
fn rfc5508_req1_icmp_echo_translated_by_identifier() {
    let mut n = nat(base_config());
    let mut f = echo("10.0.0.1", "192.0.2.1", 0x1234, true, b"ping data");
    assert_eq!(run(&mut n, &mut f, Side::Inside, secs(0)), Verdict::Forward);
    verify_checksums(&f);
    let (ext, eid, ..) = addrs(&f);
    assert_eq!(eid, 0x1234, "identifier preserved when free");
    // A second host with the same identifier gets another one.
    let mut g = echo("10.0.0.9", "192.0.2.1", 0x1234, true, b"ping data");
    run(&mut n, &mut g, Side::Inside, secs(0));
    assert!(addrs(&g).0 != ext || addrs(&g).1 != eid);
    let mut r = echo("192.0.2.1", &ext.to_string(), eid, false, b"ping data");
    assert_eq!(
        run(&mut n, &mut r, Side::Outside, secs(1)),
        Verdict::Forward
    );
    assert_eq!(addrs(&r), (ip("192.0.2.1"), 0x1234, ip("10.0.0.1"), 0x1234));
    verify_checksums(&r);
}

/// RFC 5508 REQ-1 for the other query with an identifier: ICMP timestamp
/// requests are translated by identifier like echo (two hosts with the
/// same identifier get distinct external ones), replies go back, an ICMP
/// error quoting a translated request is un-NATed; deprecated queries
/// (address mask, RFC 6918) are dropped as unsupported.
#[test]
fn rfc5508_req1_icmp_timestamp_translated_by_identifier() {
    let mut n = nat(base_config());
    let mut f = timestamp("10.0.0.1", "192.0.2.1", 0x55, true);
    assert_eq!(run(&mut n, &mut f, Side::Inside, secs(0)), Verdict::Forward);
    verify_checksums(&f);
    let (ext, eid, ..) = addrs(&f);
    assert_eq!(f[34], 13, "still a timestamp request");
    let mut g = timestamp("10.0.0.9", "192.0.2.1", 0x55, true);
    assert_eq!(run(&mut n, &mut g, Side::Inside, secs(0)), Verdict::Forward);
    verify_checksums(&g);
    assert!(addrs(&g).0 != ext || addrs(&g).1 != eid);
    let mut r = timestamp("192.0.2.1", &ext.to_string(), eid, false);
    assert_eq!(
        run(&mut n, &mut r, Side::Outside, secs(1)),
        Verdict::Forward
    );
    assert_eq!(addrs(&r), (ip("192.0.2.1"), 0x55, ip("10.0.0.1"), 0x55));
    assert_eq!(r[34], 14);
    verify_checksums(&r);
    // Time exceeded on the way out, quoting the translated request.
    let mut e = icmp_error(
        "198.51.100.1",
        &ext.to_string(),
        Icmpv4Type::TimeExceeded(TimeExceededCode::TtlExceededInTransit),
        &f,
        1000,
    );
    assert_eq!(
        run(&mut n, &mut e, Side::Outside, secs(2)),
        Verdict::Forward
    );
    verify_checksums(&e);
    let emb = verify_embedded(&e);
    assert_eq!(emb[12..16], [10, 0, 0, 1]);
    assert_eq!(u16::from_be_bytes([emb[24], emb[25]]), 0x55);
    // A reply without a session from inside creates nothing.
    let mut r = timestamp("10.0.0.1", "192.0.2.1", 0x77, false);
    assert_eq!(
        run(&mut n, &mut r, Side::Inside, secs(3)),
        Verdict::Drop(DropReason::NoSession)
    );
    // Address mask request (type 17): deprecated, not translated.
    let mut m = echo("10.0.0.1", "192.0.2.1", 9, true, b"mask");
    m[34] = 17;
    m[36] = 0;
    m[37] = 0;
    let c = net::checksum::checksum(&m[34..]);
    m[36..38].copy_from_slice(&c.to_be_bytes());
    assert_eq!(
        run(&mut n, &mut m, Side::Inside, secs(3)),
        Verdict::Drop(DropReason::UnsupportedIcmp)
    );
    assert_eq!(n.stats().sessions_active, 2);
}

#[test]
fn rfc5508_req1_icmp_query_timeout_60s() {
    let mut n = nat(base_config());
    let mut f = echo("10.0.0.1", "192.0.2.1", 7, true, b"x");
    run(&mut n, &mut f, Side::Inside, secs(0));
    n.poll(secs(59), usize::MAX);
    assert_eq!(n.stats().sessions_active, 1);
    n.poll(secs(61), usize::MAX);
    assert_eq!(n.stats().sessions_active, 0);
    let mut c = base_config();
    c.timeouts.icmp = 59;
    assert_eq!(c.validate().unwrap_err().path, "timeouts.icmp");
}

#[test]
fn rfc5508_req3_icmp_error_translated() {
    let mut n = nat(base_config());
    // UDP: quoted whole, so the embedded UDP checksum is verifiable.
    let (_, out) = out_udp(&mut n, "10.0.0.1", 5000, "192.0.2.1", 53, 0);
    let ext = addrs(&out).0;
    let mut e = icmp_error(
        "198.51.100.1",
        &ext.to_string(),
        Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port),
        &out,
        1000,
    );
    assert_eq!(
        run(&mut n, &mut e, Side::Outside, secs(1)),
        Verdict::Forward
    );
    verify_checksums(&e);
    let emb = verify_embedded(&e);
    assert_eq!(e[30..34], [10, 0, 0, 1], "outer destination translated");
    assert_eq!(emb[12..16], [10, 0, 0, 1], "embedded source translated");
    assert_eq!(
        u16::from_be_bytes([emb[20], emb[21]]),
        5000,
        "embedded source port"
    );
    // Fragmentation needed (PMTUD) for TCP, quoting only IP header + 8 bytes.
    let mut s = tcp("10.0.0.1", 40000, "192.0.2.1", 80, SYN);
    run(&mut n, &mut s, Side::Inside, secs(1));
    let (ext, ep, ..) = addrs(&s);
    let ty = Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded {
        next_hop_mtu: 1400,
    });
    let mut e = icmp_error("198.51.100.1", &ext.to_string(), ty, &s, 28);
    assert_eq!(
        run(&mut n, &mut e, Side::Outside, secs(2)),
        Verdict::Forward
    );
    verify_checksums(&e);
    let emb = verify_embedded(&e);
    assert_eq!(emb[12..16], [10, 0, 0, 1]);
    assert_eq!(u16::from_be_bytes([emb[20], emb[21]]), 40000);
    let _ = ep;
    // Time exceeded for a ping (traceroute).
    let mut p = echo("10.0.0.1", "192.0.2.1", 0x4242, true, b"trace");
    run(&mut n, &mut p, Side::Inside, secs(2));
    let ext = addrs(&p).0;
    let mut e = icmp_error(
        "198.51.100.1",
        &ext.to_string(),
        Icmpv4Type::TimeExceeded(TimeExceededCode::TtlExceededInTransit),
        &p,
        1000,
    );
    assert_eq!(
        run(&mut n, &mut e, Side::Outside, secs(3)),
        Verdict::Forward
    );
    verify_checksums(&e);
    let emb = verify_embedded(&e);
    assert_eq!(
        u16::from_be_bytes([emb[24], emb[25]]),
        0x4242,
        "embedded identifier translated"
    );
    assert_eq!(n.stats().icmp_errors_translated, 3);
}

/// RFC 5508 REQ-3: an ICMP error whose ICMP checksum, or whose quoted IPv4
/// header checksum, is wrong is dropped (counted under its own reason),
/// not translated; the same error intact is translated.
#[test]
fn rfc5508_req3_icmp_error_with_bad_checksums_dropped() {
    let mut n = nat(base_config());
    let (_, out) = out_udp(&mut n, "10.0.0.1", 5000, "192.0.2.1", 53, 0);
    let ext = addrs(&out).0;
    let error = || {
        icmp_error(
            "198.51.100.1",
            &ext.to_string(),
            Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port),
            &out,
            28,
        )
    };
    let (icmp, emb) = (14 + 20, 14 + 20 + 8);
    // Wrong ICMP checksum.
    let mut e = error();
    e[icmp + 2] ^= 0x40;
    let before = e.clone();
    assert_eq!(
        run(&mut n, &mut e, Side::Outside, secs(1)),
        Verdict::Drop(DropReason::BadIcmpChecksum)
    );
    assert_eq!(e, before, "nothing rewritten");
    // Wrong embedded IPv4 header checksum, with an ICMP checksum that is
    // right for the bytes as sent.
    let mut e = error();
    e[emb + 10] ^= 0x11;
    e[icmp + 2] = 0;
    e[icmp + 3] = 0;
    let c = net::checksum::checksum(&e[icmp..]);
    e[icmp + 2..icmp + 4].copy_from_slice(&c.to_be_bytes());
    let before = e.clone();
    assert_eq!(
        run(&mut n, &mut e, Side::Outside, secs(1)),
        Verdict::Drop(DropReason::BadEmbeddedChecksum)
    );
    assert_eq!(e, before, "nothing rewritten");
    assert_eq!(n.drops(DropReason::BadIcmpChecksum), 1);
    assert_eq!(n.drops(DropReason::BadEmbeddedChecksum), 1);
    assert_eq!(n.stats().icmp_errors_translated, 0);
    // Intact: translated.
    let mut e = error();
    assert_eq!(
        run(&mut n, &mut e, Side::Outside, secs(1)),
        Verdict::Forward
    );
    verify_checksums(&e);
    assert_eq!(e[30..34], [10, 0, 0, 1]);
    assert_eq!(n.stats().icmp_errors_translated, 1);
    assert_eq!(DropReason::BadIcmpChecksum.name(), "bad_icmp_checksum");
    assert_eq!(
        DropReason::BadEmbeddedChecksum.name(),
        "bad_embedded_checksum"
    );
}

#[test]
fn rfc5508_req6_icmp_errors_never_create_or_refresh() {
    let mut n = nat(base_config());
    // No session: dropped, nothing created.
    let probe = udp("203.0.113.1", 5000, "192.0.2.1", 53, b"x");
    let mut e = icmp_error(
        "198.51.100.1",
        "203.0.113.1",
        Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Host),
        &probe,
        1000,
    );
    assert_eq!(
        run(&mut n, &mut e, Side::Outside, secs(0)),
        Verdict::Drop(DropReason::IcmpErrorNoSession)
    );
    assert_eq!(n.stats().sessions_active, 0);
    // An error does not refresh: the session still expires 300 s after its last packet.
    let (_, out) = out_udp(&mut n, "10.0.0.1", 5000, "192.0.2.1", 53, 0);
    let ext = addrs(&out).0;
    let mut e = icmp_error(
        "198.51.100.1",
        &ext.to_string(),
        Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port),
        &out,
        1000,
    );
    assert_eq!(
        run(&mut n, &mut e, Side::Outside, secs(299)),
        Verdict::Forward
    );
    n.poll(secs(301), usize::MAX);
    assert_eq!(n.stats().sessions_active, 0);
}

fn forward_rule() -> PortForward {
    PortForward {
        protocol: ForwardProtocol::Tcp,
        external: ip("203.0.113.1"),
        external_ports: PortRange::new(8080, 8081),
        inside: ip("10.0.0.80"),
        inside_ports: PortRange::new(80, 81),
        allowed_sources: None,
    }
}

#[test]
fn port_forward_dnat_and_reply() {
    let mut c = base_config();
    c.port_forwards.push(forward_rule());
    let mut n = nat(c);
    let mut f = tcp("192.0.2.50", 33333, "203.0.113.1", 8081, SYN);
    assert_eq!(
        run(&mut n, &mut f, Side::Outside, secs(0)),
        Verdict::Forward
    );
    assert_eq!(addrs(&f), (ip("192.0.2.50"), 33333, ip("10.0.0.80"), 81));
    verify_checksums(&f);
    let mut r = tcp("10.0.0.80", 81, "192.0.2.50", 33333, SYN | ACK);
    assert_eq!(run(&mut n, &mut r, Side::Inside, secs(0)), Verdict::Forward);
    assert_eq!(
        addrs(&r),
        (ip("203.0.113.1"), 8081, ip("192.0.2.50"), 33333)
    );
    verify_checksums(&r);
    // Non-SYN unsolicited and unmatched ports are counted drops.
    let mut f = tcp("192.0.2.51", 1, "203.0.113.1", 8080, ACK);
    assert_eq!(
        run(&mut n, &mut f, Side::Outside, secs(0)),
        Verdict::Drop(DropReason::TcpNotSyn)
    );
    let mut f = tcp("192.0.2.51", 1, "203.0.113.1", 9999, SYN);
    assert_eq!(
        run(&mut n, &mut f, Side::Outside, secs(0)),
        Verdict::Drop(DropReason::NoSession)
    );
    // The forwarded port is never handed out by masquerade.
    let mut c = base_config();
    c.port_forwards.push(forward_rule());
    c.pools[0].addresses = vec!["203.0.113.1".parse().unwrap()];
    let mut n = nat(c);
    let mut f = tcp("10.0.0.7", 8080, "192.0.2.1", 80, SYN);
    run(&mut n, &mut f, Side::Inside, secs(0));
    assert_ne!(addrs(&f).1, 8080);
    let s = n.sessions_scan(&SessionFilter::default(), 10);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].inside, (ip("10.0.0.7"), 8080));
}

#[test]
fn port_forward_allowed_sources() {
    let mut c = base_config();
    let mut r = forward_rule();
    r.protocol = _FP::Udp;
    r.allowed_sources = Some(vec!["192.0.2.0/24".parse().unwrap()]);
    c.port_forwards.push(r);
    let mut n = nat(c);
    let (v, _) = in_udp(&mut n, "198.51.100.1", 1, ip("203.0.113.1"), 8080, 0);
    assert_eq!(v, Verdict::Drop(DropReason::SourceNotAllowed));
    let (v, f) = in_udp(&mut n, "192.0.2.1", 1, ip("203.0.113.1"), 8080, 0);
    assert_eq!(v, Verdict::Forward);
    assert_eq!(addrs(&f).2, ip("10.0.0.80"));
}

#[test]
fn rfc5508_icmp_error_from_inside_about_port_forward() {
    let mut c = base_config();
    let mut r = forward_rule();
    r.protocol = _FP::Udp;
    c.port_forwards.push(r);
    let mut n = nat(c);
    let (v, inb) = in_udp(&mut n, "192.0.2.50", 4444, ip("203.0.113.1"), 8080, 0);
    assert_eq!(v, Verdict::Forward);
    // The inside server answers with port unreachable about that datagram.
    let mut e = icmp_error(
        "10.0.0.80",
        "192.0.2.50",
        Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port),
        &inb,
        1000,
    );
    assert_eq!(run(&mut n, &mut e, Side::Inside, secs(1)), Verdict::Forward);
    verify_checksums(&e);
    let emb = verify_embedded(&e);
    assert_eq!(
        e[26..30],
        [203, 0, 113, 1],
        "outer source is the public address"
    );
    assert_eq!(
        emb[16..20],
        [203, 0, 113, 1],
        "embedded destination translated back"
    );
    assert_eq!(u16::from_be_bytes([emb[22], emb[23]]), 8080);
}

#[test]
fn unsolicited_inbound_dropped_and_other_traffic_untouched() {
    let mut n = nat(base_config());
    let (v, _) = in_udp(&mut n, "192.0.2.1", 53, ip("203.0.113.2"), 5000, 0);
    assert_eq!(v, Verdict::Drop(DropReason::NoSession));
    // Inside-to-inside: untouched.
    let (v, f) = out_udp(&mut n, "10.0.0.1", 1, "10.0.0.2", 2, 0);
    assert_eq!(v, Verdict::Forward);
    assert_eq!(f, udp("10.0.0.1", 1, "10.0.0.2", 2, b"payload"));
    assert_eq!(n.stats().untouched, 1);
    assert_eq!(n.stats().sessions_active, 0);
}

#[test]
fn rfc6888_req4_quota() {
    let mut c = base_config();
    c.per_host_port_quota = 3;
    c.icmp_on_quota_exceeded = true;
    let mut n = nat(c);
    for p in 0..3 {
        let (v, _) = out_udp(&mut n, "10.0.0.1", 5000 + p, "192.0.2.1", 53, 0);
        assert_eq!(v, Verdict::Forward);
    }
    let (v, _) = out_udp(&mut n, "10.0.0.1", 6000, "192.0.2.1", 53, 0);
    assert_eq!(v, Verdict::Drop(DropReason::QuotaExceeded));
    assert!(
        n.config().icmp_on_quota_exceeded,
        "dataplane reads this to send ICMP 3/13"
    );
    // Existing mapping reuse is not a new port: allowed.
    let (v, _) = out_udp(&mut n, "10.0.0.1", 5000, "192.0.2.7", 53, 0);
    assert_eq!(v, Verdict::Forward);
    // Another host is unaffected.
    let (v, _) = out_udp(&mut n, "10.0.0.2", 6000, "192.0.2.1", 53, 0);
    assert_eq!(v, Verdict::Forward);
    let st = n.stats();
    assert_eq!(st.drops["quota_exceeded"], 1);
    assert_eq!(st.alloc.quota_exceeded, 1);
    // After expiry the host can allocate again.
    n.poll(secs(400), usize::MAX);
    let (v, _) = out_udp(&mut n, "10.0.0.1", 6000, "192.0.2.1", 53, 400);
    assert_eq!(v, Verdict::Forward);
}

#[test]
fn rfc6888_req8_port_hold_down() {
    let mut c = base_config();
    c.pools[0].addresses = vec!["203.0.113.1".parse().unwrap()];
    c.pools[0].ports = PortRange::new(2000, 2001);
    c.pools[0].low_ports = None;
    c.port_reuse_hold_down = Some(60);
    c.per_host_port_quota = 0;
    let mut n = nat(c);
    out_udp(&mut n, "10.0.0.1", 2000, "192.0.2.1", 53, 0);
    out_udp(&mut n, "10.0.0.2", 2001, "192.0.2.1", 53, 0);
    let (v, _) = out_udp(&mut n, "10.0.0.3", 2000, "192.0.2.1", 53, 0);
    assert_eq!(v, Verdict::Drop(DropReason::PoolExhausted));
    n.poll(secs(301), usize::MAX);
    let (v, _) = out_udp(&mut n, "10.0.0.3", 2000, "192.0.2.1", 53, 330);
    assert_eq!(
        v,
        Verdict::Drop(DropReason::PoolExhausted),
        "freed ports held down 60 s"
    );
    let (v, f) = out_udp(&mut n, "10.0.0.3", 2000, "192.0.2.1", 53, 362);
    assert_eq!(v, Verdict::Forward);
    assert_eq!(addrs(&f).1, 2000);
    assert_eq!(n.stats().alloc.held_down, 2);
}

#[test]
fn exactly_once_release_on_eviction() {
    let mut c = base_config();
    c.per_host_port_quota = 0;
    let mut n = nat::Nat::new(
        c,
        nat::FlowTableConfig {
            shards: 1,
            capacity: 16,
            ..Default::default()
        },
    )
    .unwrap();
    for p in 0..100u16 {
        let (v, _) = out_udp(&mut n, "10.0.0.1", 10000 + p, "192.0.2.1", 53, u64::from(p));
        assert_eq!(v, Verdict::Forward);
    }
    let st = n.stats();
    // The table sheds (drains above its high watermark, evicts when full)
    // unconfirmed sessions; each one shed returned its port.
    assert!(st.sessions_active <= 16 && st.sessions_active > 0);
    assert_eq!(st.evicted + st.drained, 100 - st.sessions_active);
    assert_eq!(
        st.ports_in_use, st.sessions_active,
        "every shed session returned its port"
    );
    n.poll(secs(10_000), usize::MAX);
    let st = n.stats();
    assert_eq!(
        (st.sessions_active, st.ports_in_use, st.alloc.double_free),
        (0, 0, 0)
    );
}

#[test]
fn lazy_expiry_on_lookup_releases_port() {
    let mut n = nat(base_config());
    let (_, f) = out_udp(&mut n, "10.0.0.1", 5000, "192.0.2.1", 53, 0);
    let (ext, ep, ..) = addrs(&f);
    // No poll: the lookup itself finds it expired.
    let (v, _) = in_udp(&mut n, "192.0.2.1", 53, ext, ep, 400);
    assert_eq!(v, Verdict::Drop(DropReason::NoSession));
    let st = n.stats();
    assert_eq!(
        (st.lazily_expired, st.sessions_active, st.ports_in_use),
        (1, 0, 0)
    );
}

#[test]
fn stats_serialize_and_ipv6_untouched() {
    let mut n = nat(base_config());
    out_udp(&mut n, "10.0.0.1", 5000, "192.0.2.1", 53, 0);
    let js = serde_json::to_string(&n.stats()).unwrap();
    assert!(js.contains("\"sessions_active\":1"), "{js}");
    assert!(js.contains("\"quota_exceeded\":0"));
    let mut f = udp("10.0.0.1", 1, "192.0.2.1", 2, b"x");
    let mut c = classify(&f);
    c.l3 = net::L3Kind::Ipv6;
    let before = f.clone();
    assert_eq!(
        n.process(&mut f, &c, Side::Inside, secs(0)),
        Verdict::Forward
    );
    assert_eq!(f, before);
}

#[test]
fn garbage_never_panics() {
    let mut n = nat(base_config());
    let seeds = [
        udp("10.0.0.1", 5000, "192.0.2.1", 53, b"abc"),
        tcp("10.0.0.1", 5000, "192.0.2.1", 53, SYN),
        echo("10.0.0.1", "192.0.2.1", 1, true, b"x"),
        icmp_error(
            "198.51.100.1",
            "203.0.113.1",
            Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port),
            &udp("203.0.113.1", 1, "192.0.2.1", 2, b""),
            28,
        ),
    ];
    let mut r = 12345u64;
    for i in 0..20_000u64 {
        let base = &seeds[(i % 4) as usize];
        let cls = classify(base);
        let mut f = base.clone();
        let cut = (nat::alloc::splitmix64(&mut r) as usize) % (f.len() + 1);
        f.truncate(cut);
        for _ in 0..3 {
            if !f.is_empty() {
                let k = (nat::alloc::splitmix64(&mut r) as usize) % f.len();
                f[k] = nat::alloc::splitmix64(&mut r) as u8;
            }
        }
        let side = if i % 2 == 0 {
            Side::Inside
        } else {
            Side::Outside
        };
        let _ = n.process(&mut f, &cls, side, secs(i / 100));
    }
}

#[test]
fn spoofed_inside_source_from_outside_not_translated() {
    let mut n = nat(base_config());
    out_udp(&mut n, "10.0.0.1", 5000, "192.0.2.1", 53, 0);
    // Same tuple as the inside flow, but arriving on the outside port.
    let mut f = udp("10.0.0.1", 5000, "192.0.2.1", 53, b"spoof");
    assert_eq!(
        run(&mut n, &mut f, Side::Outside, secs(1)),
        Verdict::Drop(DropReason::WrongSide)
    );
    assert_eq!(
        f,
        udp("10.0.0.1", 5000, "192.0.2.1", 53, b"spoof"),
        "untouched"
    );
}

#[test]
fn rfc5382_req8_hairpinning_to_a_port_forward() {
    let mut c = base_config();
    let mut r = forward_rule();
    r.external = ip("198.51.100.10"); // not a pool address
    c.port_forwards.push(r);
    let mut n = nat(c);
    let mut f = tcp("10.0.0.1", 40000, "198.51.100.10", 8080, SYN);
    assert_eq!(run(&mut n, &mut f, Side::Inside, secs(0)), Verdict::Forward);
    let (a_ext, a_port, d, dp) = addrs(&f);
    assert_eq!(
        (d, dp),
        (ip("10.0.0.80"), 80),
        "reaches the forwarded server"
    );
    assert!(
        a_ext.octets()[..3] == [203, 0, 113],
        "with the client's external address"
    );
    verify_checksums(&f);
    let mut r = tcp("10.0.0.80", 80, &a_ext.to_string(), a_port, SYN | ACK);
    assert_eq!(run(&mut n, &mut r, Side::Inside, secs(0)), Verdict::Forward);
    assert_eq!(
        addrs(&r),
        (ip("198.51.100.10"), 8080, ip("10.0.0.1"), 40000),
        "reply looks like it came from the forward"
    );
    verify_checksums(&r);
    assert_eq!(n.stats().hairpinned, 2);
}

#[test]
fn rfc5508_icmp_error_from_inside_about_masqueraded_flow() {
    let mut n = nat(base_config());
    let (_, out) = out_udp(&mut n, "10.0.0.1", 5000, "192.0.2.1", 53, 0);
    let (ext, eport, ..) = addrs(&out);
    let (v, inb) = in_udp(&mut n, "192.0.2.1", 53, ext, eport, 1);
    assert_eq!(v, Verdict::Forward);
    // The inside host's port is closed: it answers with port unreachable.
    let mut e = icmp_error(
        "10.0.0.1",
        "192.0.2.1",
        Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port),
        &inb,
        1000,
    );
    assert_eq!(run(&mut n, &mut e, Side::Inside, secs(2)), Verdict::Forward);
    verify_checksums(&e);
    let emb = verify_embedded(&e);
    assert_eq!(
        e[26..30],
        ext.octets(),
        "outer source is the external address"
    );
    assert_eq!(e[30..34], [192, 0, 2, 1]);
    assert_eq!(
        emb[16..20],
        ext.octets(),
        "embedded destination is the mapping"
    );
    assert_eq!(u16::from_be_bytes([emb[22], emb[23]]), eport);
}

#[test]
fn rfc5382_endpoint_independent_filtering_tcp_needs_syn() {
    let mut c = base_config();
    c.filtering = FilteringBehavior::EndpointIndependent;
    let mut n = nat(c);
    let mut f = tcp("10.0.0.1", 40000, "192.0.2.1", 80, SYN);
    run(&mut n, &mut f, Side::Inside, secs(0));
    let (ext, eport, ..) = addrs(&f);
    let mut g = tcp("198.51.100.5", 7000, &ext.to_string(), eport, ACK);
    assert_eq!(
        run(&mut n, &mut g, Side::Outside, secs(1)),
        Verdict::Drop(DropReason::TcpNotSyn)
    );
    let mut g = tcp("198.51.100.5", 7000, &ext.to_string(), eport, SYN);
    assert_eq!(
        run(&mut n, &mut g, Side::Outside, secs(1)),
        Verdict::Forward
    );
    assert_eq!(addrs(&g), (ip("198.51.100.5"), 7000, ip("10.0.0.1"), 40000));
    verify_checksums(&g);
    // The inside host's SYN-ACK goes out through the same mapping.
    let mut h = tcp("10.0.0.1", 40000, "198.51.100.5", 7000, SYN | ACK);
    assert_eq!(run(&mut n, &mut h, Side::Inside, secs(1)), Verdict::Forward);
    assert_eq!((addrs(&h).0, addrs(&h).1), (ext, eport));
    // EIF with address-and-port-dependent mapping is rejected by validate().
    let mut c = base_config();
    c.filtering = FilteringBehavior::EndpointIndependent;
    c.mapping = MappingBehavior::AddressAndPortDependent;
    assert_eq!(c.validate().unwrap_err().path, "filtering");
}

/// Not an RFC requirement: a clock near the end of time (a corrupt capture,
/// a driver clock bug) must not overflow a deadline. `now + timeout`
/// saturates; in a debug build an unchecked add would panic here.
#[test]
fn deadline_near_end_of_time_saturates() {
    let mut n = nat(base_config());
    let late = flow_entry::Timestamp::from_nanos(u64::MAX - 1_000);
    for (flags, sport) in [(0x02u8, 4000u16), (0x10, 4000)] {
        let mut f = tcp("10.0.0.1", sport, "192.0.2.1", 80, flags);
        let _ = run(&mut n, &mut f, Side::Inside, late);
    }
    let mut f = udp("10.0.0.1", 5000, "192.0.2.1", 53, b"x");
    assert_eq!(run(&mut n, &mut f, Side::Inside, late), Verdict::Forward);
    let mut f = echo("10.0.0.1", "192.0.2.1", 7, true, b"x");
    assert_eq!(run(&mut n, &mut f, Side::Inside, late), Verdict::Forward);
    assert_eq!(n.stats().sessions_active, 3);
}

/// Clearing sessions by filter (an operator's "clear translations"):
/// exactly the matching sessions go, through the release path (ports
/// returned, counted as removed); replies to them are no longer admitted;
/// the others keep working.
#[test]
fn sessions_clear_by_inside_host_and_protocol() {
    let mut c = base_config();
    c.port_forwards.push(forward_rule());
    let mut n = nat(c);
    let (_, a1) = out_udp(&mut n, "10.0.0.1", 5000, "192.0.2.1", 53, 0);
    let (_, a2) = out_udp(&mut n, "10.0.0.1", 5001, "192.0.2.2", 53, 0);
    let (ext, eport) = handshake(&mut n, 0);
    let (_, b) = out_udp(&mut n, "10.0.0.2", 5000, "192.0.2.1", 53, 0);
    let mut pf = tcp("192.0.2.9", 4444, "203.0.113.1", 8080, SYN);
    assert_eq!(
        run(&mut n, &mut pf, Side::Outside, secs(0)),
        Verdict::Forward
    );
    assert_eq!(n.stats().sessions_active, 5);
    let ports = n.stats().ports_in_use;

    let udp_of_a = SessionFilter {
        inside: Some(ip("10.0.0.1")),
        proto: Some(17),
    };
    assert_eq!(n.sessions_clear(&udp_of_a), 2);
    let st = n.stats();
    assert_eq!((st.sessions_active, st.removed), (3, 2));
    assert_eq!(st.ports_in_use, ports - 2, "their ports are free again");
    for f in [&a1, &a2] {
        let (ext, ep, ..) = addrs(f);
        let (v, _) = in_udp(&mut n, &addrs(f).2.to_string(), 53, ext, ep, 1);
        assert!(
            matches!(v, Verdict::Drop(_)),
            "reply to a cleared session: {v:?}"
        );
    }
    // The TCP session of the same host and the other host's UDP stay.
    let mut r = tcp("192.0.2.1", 80, &ext.to_string(), eport, ACK);
    assert_eq!(
        run(&mut n, &mut r, Side::Outside, secs(1)),
        Verdict::Forward
    );
    let (bx, bp, ..) = addrs(&b);
    assert_eq!(
        in_udp(&mut n, "192.0.2.1", 53, bx, bp, 1).0,
        Verdict::Forward
    );
    // A port-forward session is cleared by its inside server's address.
    let pf_filter = SessionFilter {
        inside: Some(ip("10.0.0.80")),
        proto: None,
    };
    assert_eq!(n.sessions_clear(&pf_filter), 1);
    // Everything else.
    assert_eq!(n.sessions_clear(&SessionFilter::default()), 2);
    let st = n.stats();
    assert_eq!((st.sessions_active, st.ports_in_use, st.removed), (0, 0, 5));
}

/// With `log_mappings`, every dynamic mapping's creation and release is
/// recorded once, with its endpoints and the virtual time, oldest first;
/// a mapping shared by two sessions is released once, when the last goes.
/// Off (the default), nothing is recorded.
#[test]
fn mapping_log_records_creation_and_release() {
    use nat::{MappingEvent, MappingEventKind};
    let mut c = base_config();
    c.log_mappings = true;
    let mut n = nat(c);
    let (_, a) = out_udp(&mut n, "10.0.0.1", 5000, "192.0.2.1", 53, 10);
    let (_, b) = out_udp(&mut n, "10.0.0.1", 5000, "192.0.2.2", 53, 20);
    assert_eq!((addrs(&a).0, addrs(&a).1), (addrs(&b).0, addrs(&b).1));
    let ext = (addrs(&a).0, addrs(&a).1);
    let mut ev = Vec::new();
    assert_eq!(n.take_mapping_events(&mut ev, 100), 1);
    assert_eq!(
        ev[0],
        MappingEvent {
            kind: MappingEventKind::Created,
            proto: 17,
            inside: (ip("10.0.0.1"), 5000),
            external: ext,
            remote: None,
            at_ns: 10 * 1_000_000_000,
        }
    );
    // The first session expires (UDP 300 s): the mapping stays.
    n.poll(secs(315), usize::MAX);
    assert_eq!(n.take_mapping_events(&mut ev, 100), 0);
    n.poll(secs(325), usize::MAX);
    assert_eq!(n.take_mapping_events(&mut ev, 100), 1);
    assert_eq!(ev[1].kind, MappingEventKind::Released);
    assert_eq!((ev[1].inside, ev[1].external), (ev[0].inside, ext));
    assert_eq!(ev[1].at_ns, 325 * 1_000_000_000);
    assert_eq!(n.stats().mapping_events_dropped, 0);

    let mut n = nat(base_config());
    out_udp(&mut n, "10.0.0.1", 5000, "192.0.2.1", 53, 10);
    assert_eq!(n.take_mapping_events(&mut ev, 100), 0, "off by default");
}

/// `teardown` releases every session through the release path: all ports
/// returned, each counted once as `teardown`, the table empty.
#[test]
fn teardown_releases_every_session_once() {
    let mut n = nat(base_config());
    for p in 0..5 {
        out_udp(&mut n, "10.0.0.1", 5000 + p, "192.0.2.1", 53, 0);
    }
    assert_eq!(n.stats().ports_in_use, 5);
    assert_eq!(n.teardown(secs(1)), 5);
    let st = n.stats();
    assert_eq!(
        (
            st.sessions_active,
            st.ports_in_use,
            st.mappings,
            st.teardown
        ),
        (0, 0, 0, 5)
    );
    assert_eq!(n.teardown(secs(2)), 0, "nothing left to release");
}
