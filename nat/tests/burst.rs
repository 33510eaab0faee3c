//! `Nat::process_burst` gives the same frames, verdicts and counters as
//! `Nat::process` frame by frame, on a mixed workload.

mod common;

use common::*;
use etherparse::{Icmpv4Type, icmpv4::DestUnreachableHeader};
use nat::{FilteringBehavior, Side, Verdict};

fn workload() -> Vec<(Vec<u8>, Side)> {
    let mut w = Vec::new();
    for round in 0..3u16 {
        for h in 1..=40u8 {
            let host = format!("10.0.0.{h}");
            w.push((
                udp(&host, 5000 + u16::from(h % 3), "192.0.2.1", 53, b"q"),
                Side::Inside,
            ));
            w.push((
                tcp(
                    &host,
                    40000,
                    "192.0.2.9",
                    443,
                    if round == 0 { SYN } else { ACK },
                ),
                Side::Inside,
            ));
            w.push((
                echo(&host, "192.0.2.1", u16::from(h), true, b"ping"),
                Side::Inside,
            ));
        }
        // Replies to the pool's first address (some hit, most miss: filtered).
        for p in 5000..5003u16 {
            w.push((udp("192.0.2.1", 53, "203.0.113.0", p, b"r"), Side::Outside));
        }
        // Hairpin to a mapping, unsolicited inbound, an ICMP error, garbage protocol.
        w.push((
            udp("10.0.0.1", 6000, "203.0.113.1", 5001, b"hp"),
            Side::Inside,
        ));
        w.push((
            udp("198.51.100.1", 1, "203.0.113.2", 9, b"x"),
            Side::Outside,
        ));
        let probe = udp("203.0.113.1", 5000, "192.0.2.1", 53, b"q");
        w.push((
            icmp_error(
                "198.51.100.1",
                "203.0.113.1",
                Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port),
                &probe,
                1000,
            ),
            Side::Outside,
        ));
        // A duplicate of a new flow inside one burst.
        w.push((udp("10.0.0.99", 7000, "192.0.2.5", 53, b"a"), Side::Inside));
        w.push((udp("10.0.0.99", 7000, "192.0.2.5", 53, b"b"), Side::Inside));
    }
    w
}

#[test]
fn process_burst_matches_process() {
    let mut c = base_config();
    c.filtering = FilteringBehavior::EndpointIndependent;
    let mut a = nat(c.clone());
    let mut b = nat(c);
    let w = workload();
    // Per frame.
    let mut fa: Vec<Vec<u8>> = w.iter().map(|x| x.0.clone()).collect();
    let mut va = Vec::new();
    for (f, (_, side)) in fa.iter_mut().zip(&w) {
        va.push(run(&mut a, f, *side, secs(1)));
    }
    // Bursts of consecutive frames from the same side.
    let mut fb: Vec<Vec<u8>> = w.iter().map(|x| x.0.clone()).collect();
    let mut vb = vec![Verdict::Forward; w.len()];
    let mut i = 0;
    while i < w.len() {
        let side = w[i].1;
        let mut j = i;
        while j < w.len() && w[j].1 == side && j - i < 100 {
            j += 1;
        }
        let cls: Vec<_> = fb[i..j].iter().map(|f| classify(f)).collect();
        let mut frames: Vec<&mut [u8]> = fb[i..j].iter_mut().map(|f| f.as_mut_slice()).collect();
        b.process_burst(&mut frames, &cls, side, secs(1), &mut vb[i..j]);
        i = j;
    }
    assert_eq!(va, vb, "verdicts");
    assert_eq!(fa, fb, "frames");
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!(
        (
            sa.sessions_active,
            sa.ports_in_use,
            sa.created,
            sa.hairpinned,
            &sa.drops
        ),
        (
            sb.sessions_active,
            sb.ports_in_use,
            sb.created,
            sb.hairpinned,
            &sb.drops
        )
    );
    assert!(sa.created > 100 && sa.hairpinned > 0, "{sa:?}");
    assert!(va.iter().any(|v| matches!(v, Verdict::Drop(_))));
}
