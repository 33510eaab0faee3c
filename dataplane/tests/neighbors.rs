//! Neighbour states (RFC 4861 §7.3, Linux's defaults as the model): every
//! transition driven by frames and the virtual clock (`poll_timers(now)`
//! with the frames' timestamps, as replay does with capture timestamps),
//! the caps as counted drops, the bounded timer pass and `ctl neighbors`.

mod common;

use common::*;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use dataplane::config::Config;
use dataplane::neighbor::{NEIGHBOR_POLL_BUDGET, State};
use dataplane::pipeline::{Disposition, DropReason, Pipeline, single};
use dataplane::traffic;
use dataplane::wire::{self, BROADCAST, Mac, PROTO_ICMPV6, PROTO_UDP};

const NEW_MAC: Mac = [0x02, 0, 0, 0, 0x10, 0xee];

/// The router config with Linux's neighbour defaults spelled out, so the
/// times below are the ones under test.
fn config() -> Config {
    let mut c = router_config();
    let n = &mut c.neighbor;
    n.reachable_secs = 30;
    n.delay_first_probe_secs = 5;
    n.retry_ms = 1000;
    n.hold_timeout_ms = 3000;
    n.ucast_probes = 3;
    n.mcast_probes = 3;
    n.mcast_reprobes = 0;
    c
}

fn drops(p: &Pipeline, r: DropReason) -> u64 {
    let s = p.shared().counters.snapshot(&p.shared().port_names());
    s.drops.get(r.name()).copied().unwrap_or(0)
}

fn state(p: &Pipeline, port: u16, ip: impl Into<IpAddr>) -> Option<(State, Option<Mac>)> {
    p.shared().neighbors.get(port, ip.into())
}

/// UDP from the remote server to `dst` (an inside host), arriving on WAN.
fn to_lan(dst: Ipv4Addr) -> Vec<u8> {
    let d = traffic::udp_dgram(53, 5000, b"x");
    traffic::ipv4(ROUTER_MAC, WAN_MAC, REMOTE, dst, 60, 1, PROTO_UDP, &d)
}

/// The ARP reply HOST2 sends to the router's request.
fn reply_from_host2(mac: Mac) -> Vec<u8> {
    wire::arp_reply(mac, HOST2, LAN_MAC, GW)
}

/// Poll the timers at `secs`, return (work, frames the timers produced).
fn poll(p: &mut Pipeline, secs: f64) -> (usize, Generated) {
    let work = p.poll_timers(ts(secs));
    let mut g = Vec::new();
    p.take_generated(&mut g);
    (work, g)
}

/// An ARP request in `f`: (destination MAC, target address).
fn arp_request(f: &[u8]) -> (Mac, Ipv4Addr) {
    assert_eq!(wire::be16(f, 12), Some(wire::ETHERTYPE_ARP));
    assert_eq!(wire::be16(f, 20), Some(1), "op = request");
    (f[0..6].try_into().unwrap(), wire::ipv4_at(f, 38).unwrap())
}

/// HOST2 learned REACHABLE at `t` (a reply to our request).
fn host2_reachable(p: &mut Pipeline, t: f64) {
    let (d, _, _) = one(p, LAN, reply_from_host2(HOST2_MAC), ts(t));
    assert_eq!(d, Disposition::Consumed);
    assert_eq!(
        state(p, LAN, HOST2),
        Some((State::Reachable, Some(HOST2_MAC)))
    );
}

#[test]
fn incomplete_becomes_reachable_on_reply_and_releases_held_frames() {
    let mut p = single(config()).unwrap();
    let (d, _, g) = one(&mut p, WAN, to_lan(HOST2), ts(1.0));
    assert_eq!(d, Disposition::Consumed, "held");
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].0, LAN);
    assert_eq!(arp_request(&g[0].1), (BROADCAST, HOST2));
    assert_eq!(state(&p, LAN, HOST2), Some((State::Incomplete, None)));
    let (d, _, g) = one(&mut p, LAN, reply_from_host2(HOST2_MAC), ts(1.2));
    assert_eq!(d, Disposition::Consumed);
    assert_eq!(g.len(), 1, "the held frame goes out");
    assert_eq!(view(&g[0].1).dst_mac, HOST2_MAC);
    assert_eq!(
        state(&p, LAN, HOST2),
        Some((State::Reachable, Some(HOST2_MAC)))
    );
}

#[test]
fn incomplete_broadcasts_mcast_probes_then_is_removed_and_its_frames_dropped() {
    let mut c = config();
    c.neighbor.hold_timeout_ms = 60_000;
    let mut p = single(c).unwrap();
    let (_, _, g) = one(&mut p, WAN, to_lan(HOST2), ts(1.0));
    assert_eq!(g.len(), 1, "first broadcast");
    for t in [2.0, 3.0] {
        let (_, g) = poll(&mut p, t);
        assert_eq!(g.len(), 1, "retry at {t}");
        assert_eq!(arp_request(&g[0].1), (BROADCAST, HOST2));
    }
    let (_, g) = poll(&mut p, 3.99);
    assert!(g.is_empty());
    assert_eq!(state(&p, LAN, HOST2), Some((State::Incomplete, None)));
    assert_eq!(drops(&p, DropReason::NeighborUnresolved), 0);
    let (_, g) = poll(&mut p, 4.0);
    assert!(g.is_empty(), "three broadcasts (mcast_probes), no fourth");
    assert_eq!(state(&p, LAN, HOST2), None, "removed");
    assert_eq!(drops(&p, DropReason::NeighborUnresolved), 1);
    assert_eq!(p.shared().neighbors.stats().failed, 1);
}

/// An idle neighbour is not forgotten: REACHABLE turns STALE after the
/// reachable time, and a frame after a long quiet time goes out at once.
#[test]
fn reachable_turns_stale_and_stale_is_used_at_once_then_delay() {
    let mut p = single(config()).unwrap();
    host2_reachable(&mut p, 1.0);
    let (_, g) = poll(&mut p, 30.99);
    assert!(g.is_empty());
    assert_eq!(state(&p, LAN, HOST2).unwrap().0, State::Reachable);
    let (work, g) = poll(&mut p, 31.0);
    assert_eq!(work, 1);
    assert!(g.is_empty(), "no probe for an idle entry");
    assert_eq!(state(&p, LAN, HOST2), Some((State::Stale, Some(HOST2_MAC))));
    // Two hours later: still there, still no traffic.
    let (_, g) = poll(&mut p, 7200.0);
    assert!(g.is_empty());
    let (d, f, g) = one(&mut p, WAN, to_lan(HOST2), ts(7201.0));
    assert_eq!(d, Disposition::Tx(LAN), "sent at once, not held");
    assert_eq!(view(&f).dst_mac, HOST2_MAC);
    assert!(g.is_empty(), "no ARP before sending");
    assert_eq!(state(&p, LAN, HOST2).unwrap().0, State::Delay);
}

/// A frame forwarded through a worker's next-hop cache still moves a STALE
/// entry to DELAY (the cache is dropped when the entry turns STALE).
#[test]
fn stale_entry_reaches_delay_even_after_the_worker_cached_it() {
    let mut p = single(config()).unwrap();
    host2_reachable(&mut p, 1.0);
    assert_eq!(
        one(&mut p, WAN, to_lan(HOST2), ts(2.0)).0,
        Disposition::Tx(LAN)
    );
    poll(&mut p, 31.0);
    assert_eq!(state(&p, LAN, HOST2).unwrap().0, State::Stale);
    assert_eq!(
        one(&mut p, WAN, to_lan(HOST2), ts(40.0)).0,
        Disposition::Tx(LAN)
    );
    assert_eq!(state(&p, LAN, HOST2).unwrap().0, State::Delay);
}

/// STALE used at 40 → DELAY; no confirmation for delay_first_probe_secs →
/// PROBE: ucast_probes unicast requests retry_ms apart, then removed.
#[test]
fn delay_turns_probe_with_unicast_probes_then_removal() {
    let mut p = single(config()).unwrap();
    host2_reachable(&mut p, 1.0);
    poll(&mut p, 31.0);
    one(&mut p, WAN, to_lan(HOST2), ts(40.0));
    let (_, g) = poll(&mut p, 44.99);
    assert!(g.is_empty());
    assert_eq!(state(&p, LAN, HOST2).unwrap().0, State::Delay);
    for (i, t) in [45.0, 46.0, 47.0].into_iter().enumerate() {
        let (_, g) = poll(&mut p, t);
        assert_eq!(g.len(), 1, "probe {i}");
        assert_eq!(g[0].0, LAN);
        assert_eq!(arp_request(&g[0].1), (HOST2_MAC, HOST2), "unicast");
        assert_eq!(state(&p, LAN, HOST2), Some((State::Probe, Some(HOST2_MAC))));
        // The MAC is still used while probing.
        let (d, f, _) = one(&mut p, WAN, to_lan(HOST2), ts(t + 0.5));
        assert_eq!(d, Disposition::Tx(LAN));
        assert_eq!(view(&f).dst_mac, HOST2_MAC);
    }
    let (_, g) = poll(&mut p, 47.99);
    assert!(g.is_empty());
    let (_, g) = poll(&mut p, 48.0);
    assert!(g.is_empty(), "mcast_reprobes = 0: no broadcast");
    assert_eq!(
        state(&p, LAN, HOST2),
        None,
        "removed after unanswered probes"
    );
    assert_eq!(p.shared().neighbors.stats().failed, 1);
    // The next frame starts over: held, broadcast request.
    let (d, _, g) = one(&mut p, WAN, to_lan(HOST2), ts(49.0));
    assert_eq!(d, Disposition::Consumed);
    assert_eq!(arp_request(&g[0].1), (BROADCAST, HOST2));
}

#[test]
fn probe_sends_unicast_probes_then_broadcast_reprobes() {
    let mut c = config();
    c.neighbor.mcast_reprobes = 2;
    let mut p = single(c).unwrap();
    host2_reachable(&mut p, 1.0);
    poll(&mut p, 31.0);
    one(&mut p, WAN, to_lan(HOST2), ts(40.0));
    let mut dsts = Vec::new();
    for t in [45.0, 46.0, 47.0, 48.0, 49.0, 50.0] {
        let (_, g) = poll(&mut p, t);
        dsts.extend(g.iter().map(|(_, f)| arp_request(f)));
    }
    assert_eq!(
        dsts,
        vec![
            (HOST2_MAC, HOST2),
            (HOST2_MAC, HOST2),
            (HOST2_MAC, HOST2),
            (BROADCAST, HOST2),
            (BROADCAST, HOST2),
        ]
    );
    assert_eq!(state(&p, LAN, HOST2), None);
}

#[test]
fn probe_turns_reachable_on_reply() {
    let mut p = single(config()).unwrap();
    host2_reachable(&mut p, 1.0);
    poll(&mut p, 31.0);
    one(&mut p, WAN, to_lan(HOST2), ts(40.0));
    let (_, g) = poll(&mut p, 45.0);
    assert_eq!(g.len(), 1);
    assert_eq!(state(&p, LAN, HOST2).unwrap().0, State::Probe);
    host2_reachable(&mut p, 45.1);
    let (_, g) = poll(&mut p, 46.0);
    assert!(g.is_empty(), "no more probes");
    let (_, g) = poll(&mut p, 75.0);
    assert!(g.is_empty());
    assert_eq!(state(&p, LAN, HOST2).unwrap().0, State::Reachable);
    poll(&mut p, 75.1);
    assert_eq!(
        state(&p, LAN, HOST2).unwrap().0,
        State::Stale,
        "reachable_secs after the new confirmation"
    );
}

#[test]
fn delay_turns_reachable_on_reply_without_probing() {
    let mut p = single(config()).unwrap();
    host2_reachable(&mut p, 1.0);
    poll(&mut p, 31.0);
    one(&mut p, WAN, to_lan(HOST2), ts(40.0));
    assert_eq!(state(&p, LAN, HOST2).unwrap().0, State::Delay);
    host2_reachable(&mut p, 42.0);
    let (_, g) = poll(&mut p, 45.0);
    assert!(g.is_empty(), "confirmed during DELAY: no probe");
    assert_eq!(state(&p, LAN, HOST2).unwrap().0, State::Reachable);
}

/// An ARP request for our address creates a STALE entry (a solicitation
/// does not confirm reachability: RFC 4861 §7.2.3, Linux `neigh_event_ns`).
#[test]
fn request_from_a_host_creates_a_stale_entry() {
    let mut p = single(config()).unwrap();
    let (d, _, _) = one(&mut p, LAN, wire::arp_request(HOST_MAC, HOST, GW), ts(1.0));
    assert_eq!(d, Disposition::Tx(LAN));
    assert_eq!(state(&p, LAN, HOST), Some((State::Stale, Some(HOST_MAC))));
}

#[test]
fn gratuitous_arp_updates_a_known_entry_only() {
    let mut p = single(config()).unwrap();
    host2_reachable(&mut p, 1.0);
    let (_, f, _) = one(&mut p, WAN, to_lan(HOST2), ts(2.0));
    assert_eq!(view(&f).dst_mac, HOST2_MAC, "cached by the worker");
    // HOST2 moved to another NIC and announces it.
    let garp = wire::arp_request(NEW_MAC, HOST2, HOST2);
    let (d, _, _) = one(&mut p, LAN, garp, ts(3.0));
    assert_eq!(d, Disposition::Consumed);
    assert_eq!(state(&p, LAN, HOST2), Some((State::Stale, Some(NEW_MAC))));
    let (d, f, _) = one(&mut p, WAN, to_lan(HOST2), ts(4.0));
    assert_eq!(d, Disposition::Tx(LAN));
    assert_eq!(view(&f).dst_mac, NEW_MAC, "the worker's cache was dropped");
    // The same announcement again leaves the state alone.
    one(
        &mut p,
        LAN,
        wire::arp_request(NEW_MAC, HOST2, HOST2),
        ts(5.0),
    );
    assert_eq!(state(&p, LAN, HOST2), Some((State::Delay, Some(NEW_MAC))));
    // An unknown host's announcement creates nothing.
    let (d, _, _) = one(
        &mut p,
        LAN,
        wire::arp_request(HOST_MAC, HOST, HOST),
        ts(6.0),
    );
    assert_eq!(d, Disposition::Drop(DropReason::ArpNotForUs));
    assert_eq!(state(&p, LAN, HOST), None);
}

/// A neighbour advertisement with flags (RFC 4861 §4.4: 0x40 S, 0x20 O)
/// from ROUTER6 at `mac`, to `dst`.
fn advert(flags: u8, mac: Mac, dst: Ipv6Addr) -> Vec<u8> {
    let mut na = vec![136, 0, 0, 0, flags, 0, 0, 0];
    na.extend_from_slice(&ROUTER6.octets());
    na.extend_from_slice(&[2, 1]);
    na.extend_from_slice(&mac);
    traffic::ipv6(mac, WAN_MAC, ROUTER6, dst, 255, PROTO_ICMPV6, &na)
}

fn out6() -> Vec<u8> {
    let d = traffic::udp_dgram(7, 53, b"q");
    traffic::ipv6(HOST_MAC, LAN_MAC, HOST6, REMOTE6, 64, PROTO_UDP, &d)
}

#[test]
fn unsolicited_advert_updates_a_known_entry_only_and_nd_probes_unicast() {
    let mut p = single(config()).unwrap();
    let all_nodes: Ipv6Addr = "ff02::1".parse().unwrap();
    let wan6: Ipv6Addr = "2001:db8:2::2".parse().unwrap();
    // No entry: an unsolicited advert creates none (RFC 4861 §7.2.5).
    one(&mut p, WAN, advert(0x20, ROUTER_MAC, all_nodes), ts(0.5));
    assert_eq!(state(&p, WAN, ROUTER6), None);
    // Resolve: INCOMPLETE, then a solicited advert → REACHABLE.
    assert_eq!(one(&mut p, LAN, out6(), ts(1.0)).0, Disposition::Consumed);
    assert_eq!(state(&p, WAN, ROUTER6), Some((State::Incomplete, None)));
    one(&mut p, WAN, advert(0x60, ROUTER_MAC, wan6), ts(1.1));
    assert_eq!(
        state(&p, WAN, ROUTER6),
        Some((State::Reachable, Some(ROUTER_MAC)))
    );
    // Override clear, another MAC: REACHABLE → STALE, the MAC stays.
    one(&mut p, WAN, advert(0x00, NEW_MAC, all_nodes), ts(2.0));
    assert_eq!(
        state(&p, WAN, ROUTER6),
        Some((State::Stale, Some(ROUTER_MAC)))
    );
    // Unsolicited with override: the new MAC, STALE, used at once.
    one(&mut p, WAN, advert(0x20, NEW_MAC, all_nodes), ts(3.0));
    assert_eq!(state(&p, WAN, ROUTER6), Some((State::Stale, Some(NEW_MAC))));
    let (d, f, _) = one(&mut p, LAN, out6(), ts(4.0));
    assert_eq!(d, Disposition::Tx(WAN));
    assert_eq!(view(&f).dst_mac, NEW_MAC);
    // DELAY → PROBE: a unicast NS to the neighbour itself.
    let (_, g) = poll(&mut p, 9.0);
    assert_eq!(g.len(), 1);
    let ns = &g[0].1;
    let v = view(ns);
    assert_eq!(v.icmp, Some((135, 0)));
    assert_eq!((v.dst_mac, v.dst), (NEW_MAC, IpAddr::V6(ROUTER6)));
    assert_eq!(wire::ipv6_at(ns, 62), Some(ROUTER6), "target");
    assert!(traffic::checksums_ok(ns));
}

#[test]
fn static_entries_are_untouched() {
    let mut p = single(config()).unwrap();
    let permanent = Some((State::Permanent, Some(ROUTER_MAC)));
    assert_eq!(state(&p, WAN, ROUTER), permanent);
    one(
        &mut p,
        WAN,
        wire::arp_request(NEW_MAC, ROUTER, ROUTER),
        ts(1.0),
    );
    one(
        &mut p,
        WAN,
        wire::arp_reply(NEW_MAC, ROUTER, WAN_MAC, WAN_IP),
        ts(1.5),
    );
    one(
        &mut p,
        WAN,
        wire::arp_request(NEW_MAC, ROUTER, WAN_IP),
        ts(2.0),
    );
    assert_eq!(state(&p, WAN, ROUTER), permanent);
    let (_, g) = poll(&mut p, 100_000.0);
    assert!(g.is_empty(), "never probed");
    assert_eq!(state(&p, WAN, ROUTER), permanent);
    let f = udp_out(5000);
    let (d, f, _) = one(&mut p, LAN, f, ts(100_001.0));
    assert_eq!(d, Disposition::Tx(WAN));
    assert_eq!(view(&f).dst_mac, ROUTER_MAC);
}

#[test]
fn incomplete_cap_is_a_counted_drop() {
    let mut c = config();
    c.neighbor.max_incomplete = 2;
    let mut p = single(c).unwrap();
    for h in [10, 11] {
        let (d, _, g) = one(&mut p, WAN, to_lan(Ipv4Addr::new(192, 168, 1, h)), ts(1.0));
        assert_eq!((d, g.len()), (Disposition::Consumed, 1));
    }
    let (d, _, g) = one(&mut p, WAN, to_lan(SERVER), ts(1.0));
    assert_eq!(d, Disposition::Drop(DropReason::NeighborIncompleteFull));
    assert!(g.is_empty(), "not asked");
    assert_eq!(drops(&p, DropReason::NeighborIncompleteFull), 1);
    assert_eq!(state(&p, LAN, SERVER), None);
    // A resolved one frees a place.
    one(&mut p, LAN, reply_from_host2(HOST2_MAC), ts(1.1));
    assert_eq!(
        one(&mut p, WAN, to_lan(SERVER), ts(1.2)).0,
        Disposition::Consumed
    );
}

#[test]
fn table_cap_evicts_the_longest_stale_entry_else_is_a_counted_drop() {
    let mut c = config();
    c.neighbor.max_entries = 2;
    c.neighbor.max_incomplete = 2;
    let mut p = single(c).unwrap();
    one(
        &mut p,
        LAN,
        wire::arp_reply(HOST_MAC, HOST, LAN_MAC, GW),
        ts(1.0),
    );
    host2_reachable(&mut p, 2.0);
    // Both REACHABLE: nothing may be evicted.
    let (d, _, g) = one(&mut p, WAN, to_lan(SERVER), ts(3.0));
    assert_eq!(d, Disposition::Drop(DropReason::NeighborTableFull));
    assert!(g.is_empty());
    assert_eq!(drops(&p, DropReason::NeighborTableFull), 1);
    assert_eq!(p.shared().neighbors.stats().refused, 1);
    // Static entries do not count: ROUTER is still there, 3 entries.
    assert_eq!(p.shared().neighbors.len(), 3);
    poll(&mut p, 31.5);
    poll(&mut p, 32.5);
    assert_eq!(state(&p, LAN, HOST).unwrap().0, State::Stale);
    assert_eq!(state(&p, LAN, HOST2).unwrap().0, State::Stale);
    let (d, _, _) = one(&mut p, WAN, to_lan(SERVER), ts(33.0));
    assert_eq!(d, Disposition::Consumed);
    assert_eq!(state(&p, LAN, HOST), None, "stale longest: evicted");
    assert!(state(&p, LAN, HOST2).is_some());
    assert_eq!(p.shared().neighbors.stats().evicted, 1);
}

#[test]
fn poll_work_is_bounded_per_call() {
    let mut p = single(config()).unwrap();
    let n = NEIGHBOR_POLL_BUDGET + 36;
    for h in 0..n {
        let ip = Ipv4Addr::new(192, 168, 1, 20 + h as u8);
        assert_eq!(
            one(&mut p, WAN, to_lan(ip), ts(1.0)).0,
            Disposition::Consumed
        );
    }
    // Nothing due yet: no work.
    assert_eq!(poll(&mut p, 1.5).0, 0);
    let (work, g) = poll(&mut p, 2.0);
    assert_eq!(
        (work, g.len()),
        (NEIGHBOR_POLL_BUDGET, NEIGHBOR_POLL_BUDGET)
    );
    let (work, g) = poll(&mut p, 2.0);
    assert_eq!((work, g.len()), (36, 36), "the rest on the next call");
    assert_eq!(poll(&mut p, 2.0).0, 0);
}

#[test]
fn ctl_neighbors_lists_state_and_age() {
    let mut p = single(config()).unwrap();
    host2_reachable(&mut p, 1.0);
    one(&mut p, WAN, to_lan(SERVER), ts(2.0));
    poll(&mut p, 11.0);
    let j: serde_json::Value = serde_json::from_str(&dataplane::control::answer_with(
        p.shared(),
        None,
        "neighbors",
    ))
    .unwrap();
    let rows = j.as_array().unwrap();
    let row = |ip: &str| {
        rows.iter()
            .find(|r| r["ip"] == ip)
            .unwrap_or_else(|| panic!("{ip} in {j}"))
    };
    let h2 = row("192.168.1.11");
    assert_eq!(h2["port"], "lan");
    assert_eq!(h2["mac"], "02:00:00:00:10:0b");
    assert_eq!(h2["state"], "REACHABLE");
    assert_eq!(h2["confirmed_secs_ago"], 10.0);
    let s = row("192.168.1.100");
    assert_eq!(s["state"], "INCOMPLETE");
    assert!(s["mac"].is_null() && s["confirmed_secs_ago"].is_null());
    let m = dataplane::control::metrics_text(p.shared());
    assert!(m.contains("dataplane_neighbor_entries 3\n"), "{m}");
    assert!(m.contains("dataplane_neighbor_incomplete 1\n"), "{m}");
    let r = row("203.0.113.1");
    assert_eq!(
        (r["port"].as_str(), r["state"].as_str()),
        (Some("wan"), Some("PERMANENT"))
    );
}

/// The same transitions through the replay harness, the capture's
/// timestamps as the only clock: a host learned STALE from its ARP request
/// gets frames at once (DELAY), is probed by unicast ARP when the next
/// capture packet arrives after the delay, answers (REACHABLE), and after a
/// quiet time longer than the reachable time still gets frames at once.
#[test]
fn replay_drives_the_states_with_the_capture_clock() {
    use dataplane::replay::{MemSink, Packet, replay_packets};
    let pkt = |t: f64, data: Vec<u8>| Packet {
        ts_ns: (t * 1e9) as u64,
        data,
    };
    let lan = vec![
        pkt(1.0, wire::arp_request(HOST2_MAC, HOST2, GW)),
        pkt(8.5, reply_from_host2(HOST2_MAC)),
    ];
    let wan = vec![
        pkt(2.0, to_lan(HOST2)),
        pkt(8.0, to_lan(HOST2)),
        pkt(600.0, to_lan(HOST2)),
    ];
    let mut sink = MemSink::default();
    let (s, shared) =
        replay_packets(config(), vec![(LAN, lan), (WAN, wan)], &mut sink).expect("replay");
    let out: Vec<(u64, String)> = sink.ports[&LAN]
        .iter()
        .map(|p| {
            let what = match wire::be16(&p.data, 12) {
                Some(wire::ETHERTYPE_ARP) if wire::be16(&p.data, 20) == Some(2) => {
                    "arp reply".to_string()
                }
                Some(wire::ETHERTYPE_ARP) => {
                    let (dst, target) = arp_request(&p.data);
                    assert_eq!((dst, target), (HOST2_MAC, HOST2), "a unicast probe");
                    "probe".to_string()
                }
                _ => {
                    assert_eq!(view(&p.data).dst_mac, HOST2_MAC);
                    "udp".to_string()
                }
            };
            (p.ts_ns / 1_000_000, what)
        })
        .filter(|(_, w)| w != "arp reply")
        .collect();
    let expect: Vec<(u64, String)> = vec![
        (2_000, "udp".into()),
        (8_000, "probe".into()),
        (8_000, "udp".into()),
        (600_000, "udp".into()),
    ];
    assert_eq!(out, expect);
    assert_eq!(s.drops.values().sum::<u64>(), 0, "{:?}", s.drops);
    assert_eq!(
        shared.neighbors.get(LAN, IpAddr::V4(HOST2)),
        Some((State::Delay, Some(HOST2_MAC)))
    );
}
