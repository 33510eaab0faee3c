//! IPv4 fragments through NAT (RFC 4787 REQ-13/14, RFC 5508 §… large pings):
//! in order, out of order, both directions, budget and expiry.

mod common;

use common::*;
use nat::{DropReason, Side, Verdict};

fn big(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

/// Send fragments through `n` in the given order; return forwarded + released frames.
fn pass(n: &mut nat::Nat, frags: &[Vec<u8>], order: &[usize], side: Side, t: u64) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for &i in order {
        let mut f = frags[i].clone();
        match run(n, &mut f, side, secs(t)) {
            Verdict::Forward => out.push(f),
            Verdict::Drop(DropReason::FragmentHeld) => {}
            v => panic!("fragment {i}: {v:?}"),
        }
        n.take_released(&mut out);
    }
    out
}

#[test]
fn rfc4787_req14_fragmented_udp_in_order_both_directions() {
    let mut n = nat(base_config());
    let d = udp("10.0.0.1", 5000, "192.0.2.1", 9000, &big(3000));
    let frags = fragment(&d, 1480);
    assert_eq!(frags.len(), 3);
    let out = pass(&mut n, &frags, &[0, 1, 2], Side::Inside, 0);
    assert_eq!(out.len(), 3);
    let whole = reassemble(&out);
    verify_checksums(&whole);
    let (ext, eport, dst, dport) = addrs(&whole);
    assert_eq!((dst, dport), (ip("192.0.2.1"), 9000));
    assert!(ext.octets()[..3] == [203, 0, 113]);
    // Reply, fragmented, from outside.
    let r = udp("192.0.2.1", 9000, &ext.to_string(), eport, &big(2500));
    let out = pass(&mut n, &fragment(&r, 1000), &[0, 1, 2], Side::Outside, 1);
    let whole = reassemble(&out);
    verify_checksums(&whole);
    assert_eq!(addrs(&whole), (ip("192.0.2.1"), 9000, ip("10.0.0.1"), 5000));
    assert_eq!(n.stats().fragments_translated, 4);
}

#[test]
fn rfc4787_req14_fragmented_udp_out_of_order() {
    let mut n = nat(base_config());
    let d = udp("10.0.0.1", 5000, "192.0.2.1", 9000, &big(4000));
    let frags = fragment(&d, 1480);
    let out = pass(&mut n, &frags, &[2, 1, 0], Side::Inside, 0);
    assert_eq!(out.len(), 3, "held fragments released after the first");
    let whole = reassemble(&out);
    verify_checksums(&whole);
    assert_eq!(addrs(&whole).1, 5000);
    let st = n.stats();
    assert_eq!(st.drops["fragment_held"], 2);
    assert_eq!(
        (
            st.fragments.held,
            st.fragments.released,
            st.fragments.held_bytes
        ),
        (2, 2, 0)
    );
}

#[test]
fn large_ping_4000_bytes_both_directions() {
    let mut n = nat(base_config());
    let p = echo("10.0.0.1", "192.0.2.1", 0x77, true, &big(4000));
    let out = pass(&mut n, &fragment(&p, 1480), &[0, 1, 2], Side::Inside, 0);
    let whole = reassemble(&out);
    verify_checksums(&whole);
    let (ext, id, ..) = addrs(&whole);
    // The reply comes back out of order.
    let r = echo("192.0.2.1", &ext.to_string(), id, false, &big(4000));
    let out = pass(&mut n, &fragment(&r, 1480), &[1, 2, 0], Side::Outside, 1);
    let whole = reassemble(&out);
    verify_checksums(&whole);
    assert_eq!(addrs(&whole), (ip("192.0.2.1"), 0x77, ip("10.0.0.1"), 0x77));
}

#[test]
fn fragment_budget_and_expiry_are_counted_drops() {
    let mut c = base_config();
    c.fragments.max_held_bytes = 2000;
    c.fragments.timeout_ms = 1000;
    let mut n = nat(c);
    let d = udp("10.0.0.1", 5000, "192.0.2.1", 9000, &big(6000));
    let frags = fragment(&d, 1480);
    let mut f = frags[1].clone();
    assert_eq!(
        run(&mut n, &mut f, Side::Inside, secs(0)),
        Verdict::Drop(DropReason::FragmentHeld)
    );
    let mut f = frags[2].clone();
    assert_eq!(
        run(&mut n, &mut f, Side::Inside, secs(0)),
        Verdict::Drop(DropReason::FragmentBudget)
    );
    // The first fragment arrives too late: the held one expired (counted).
    let mut f = frags[0].clone();
    assert_eq!(run(&mut n, &mut f, Side::Inside, secs(5)), Verdict::Forward);
    let mut rel = Vec::new();
    n.take_released(&mut rel);
    assert!(rel.is_empty());
    let st = n.stats();
    assert_eq!(
        (st.fragments.dropped_budget, st.fragments.dropped_expired),
        (1, 1)
    );
    // Unrelated transit fragments (not NAT's) pass untouched.
    let t = udp("192.0.2.1", 1, "192.0.2.2", 2, &big(3000));
    let fr = fragment(&t, 1480);
    let mut f = fr[1].clone();
    assert_eq!(
        run(&mut n, &mut f, Side::Outside, secs(6)),
        Verdict::Forward
    );
    assert_eq!(f, fr[1]);
}
