//! `replay --sessions FILE [--sessions-at T] [--json]`: the NAT sessions
//! alive at the end of a replay or at a capture time, as `conntrack -L`
//! lines or JSON lines; never over an input.

#[path = "common/captures.rs"]
mod captures;
mod common;

use captures::*;
use common::*;
use dataplane::replay::sessions::SessionsAt;
use dataplane::replay::{self, ReplayError, ReplayOptions};
use dataplane::traffic::{self, tcp};
use dataplane::wire::{PROTO_ICMP, PROTO_TCP};
use serde_json::Value;

const T0: u64 = 1_700_000_000_000_000_000;
const S: u64 = 1_000_000_000;

/// UDP 40000 at 0.1 s, TCP SYN 40001 at 0.2 s, echo id 7 at 0.3 s, UDP
/// 40002 at 10 s; all from HOST to REMOTE; an IPv6 UDP flow HOST6:1 →
/// REMOTE6:2 at 0.4 s.
fn capture(dir: &std::path::Path) -> std::path::PathBuf {
    let syn = traffic::ipv4(
        HOST_MAC,
        LAN_MAC,
        HOST,
        REMOTE,
        64,
        2,
        PROTO_TCP,
        &traffic::tcp_seg(40001, 443, 1, 0, tcp::SYN, &[]),
    );
    let echo = traffic::ipv4(
        HOST_MAC,
        LAN_MAC,
        HOST,
        REMOTE,
        64,
        3,
        PROTO_ICMP,
        &traffic::icmp_echo(8, 7, 1, b"ping"),
    );
    let v6 = traffic::ipv6(
        HOST_MAC,
        LAN_MAC,
        HOST6,
        REMOTE6,
        64,
        dataplane::wire::PROTO_UDP,
        &traffic::udp_dgram(1, 2, b"v6"),
    );
    let p = dir.join("lan.pcap");
    write_pcap(
        &p,
        1,
        true,
        &[
            (T0 + S / 10, udp_from_host(40000)),
            (T0 + 2 * S / 10, syn),
            (T0 + 3 * S / 10, echo),
            (T0 + 4 * S / 10, v6),
            (T0 + 10 * S, udp_from_host(40002)),
        ],
    );
    p
}

fn replay_with(
    name: &str,
    opts: ReplayOptions,
) -> (std::path::PathBuf, Result<replay::Summary, ReplayError>) {
    let dir = temp_dir(name);
    let lan = capture(&dir);
    let r = replay::replay_files_with(nat_config(), &[(LAN, lan)], &dir.join("out"), &opts);
    (dir, r)
}

fn opts(dir_name: &str, at: SessionsAt, json: bool, workers: usize) -> ReplayOptions {
    let dir =
        std::env::temp_dir().join(format!("dataplane-test-{}-{dir_name}", std::process::id()));
    ReplayOptions {
        sessions: Some(dir.join("sessions.txt")),
        sessions_at: at,
        sessions_json: json,
        workers,
        ..ReplayOptions::default()
    }
}

fn lines(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("sessions.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn sessions_at_the_end_read_like_conntrack() {
    let (dir, r) = replay_with(
        "sessions-end",
        opts("sessions-end", SessionsAt::End, false, 1),
    );
    r.unwrap();
    let mut l = lines(&dir);
    l.sort();
    assert_eq!(l.len(), 5, "{l:#?}");
    let v6 = l.remove(3);
    assert!(
        v6.starts_with("udp      17 ")
            && v6.ends_with("src=fd00:1::10 dst=2001:db8:99::1 sport=1 dport=2 src=2001:db8:99::1 dst=fd00:1::10 sport=2 dport=1 kind=ipv6_flow"),
        "{v6}"
    );
    // Seconds left at 10 s (rounded up; deadlines move by table ticks):
    // ICMP 60 s from 0.3 s, TCP transitory 240 s from 0.2 s, UDP 300 s
    // from 0.1 s and from 10 s.
    let left = |x: &str| x.split_whitespace().nth(2).unwrap().parse::<u64>().unwrap();
    for (x, want) in l.iter().zip([51, 231, 291, 300]) {
        assert!(
            (want..=want + 1).contains(&left(x)),
            "{x}: want {want} s left"
        );
    }
    let has = |i: usize, p: &str, mid: &str| {
        assert!(l[i].starts_with(p) && l[i].contains(mid), "{}", l[i]);
    };
    has(
        0,
        "icmp     1 ",
        " src=192.168.1.10 dst=198.51.100.7 id=7 src=198.51.100.7 dst=203.0.113.",
    );
    has(
        1,
        "tcp      6 ",
        " SYN_SENT src=192.168.1.10 dst=198.51.100.7 sport=40001 dport=443 src=198.51.100.7 dst=203.0.113.",
    );
    has(
        2,
        "udp      17 ",
        " src=192.168.1.10 dst=198.51.100.7 sport=40000 dport=53 ",
    );
    has(
        3,
        "udp      17 ",
        " src=192.168.1.10 dst=198.51.100.7 sport=40002 dport=53 ",
    );
    assert!(l.iter().all(|x| x.ends_with("kind=masquerade worker=0")));
}

#[test]
fn sessions_at_a_capture_time_and_as_json() {
    // 5 s after the first packet: the fourth flow does not exist yet.
    let (dir, r) = replay_with(
        "sessions-at",
        opts("sessions-at", SessionsAt::AfterFirst(5 * S), true, 1),
    );
    r.unwrap();
    let v: Vec<Value> = lines(&dir)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(v.len(), 4);
    assert_eq!(v.iter().filter(|x| x["kind"] == "ipv6_flow").count(), 1);
    let udp = v
        .iter()
        .find(|x| x["proto"] == "udp" && x["kind"] == "masquerade")
        .unwrap();
    let t = udp["timeout_secs"].as_u64().unwrap();
    assert!((295..=296).contains(&t), "{t}");
    assert_eq!(udp["original"]["sport"], 40000);
    assert_eq!(udp["inside"], "192.168.1.10:40000");
    assert_eq!(udp["kind"], "masquerade");
    assert_eq!(udp["state"], Value::Null);
    let tcp = v.iter().find(|x| x["proto"] == "tcp").unwrap();
    assert_eq!(tcp["state"], "SYN_SENT");
    // Past every deadline (an absolute time after the capture): none left,
    // whether or not a poll removed them.
    let late = (T0 + 400 * S) as f64 / 1e9;
    let (dir, r) = replay_with(
        "sessions-late",
        opts(
            "sessions-late",
            SessionsAt::parse(&late.to_string()).unwrap(),
            false,
            1,
        ),
    );
    r.unwrap();
    assert!(lines(&dir).is_empty());
}

#[test]
fn several_workers_list_every_workers_sessions() {
    let (dir, r) = replay_with("sessions-w3", opts("sessions-w3", SessionsAt::End, true, 3));
    r.unwrap();
    let v: Vec<Value> = lines(&dir)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(v.len(), 5);
    assert_eq!(v.iter().filter(|x| x["kind"] == "masquerade").count(), 4);
}

#[test]
fn sessions_file_over_an_input_is_refused_and_bad_times_named() {
    let dir = temp_dir("sessions-refuse");
    let lan = capture(&dir);
    let before = std::fs::read(&lan).unwrap();
    let o = ReplayOptions {
        sessions: Some(lan.clone()),
        ..ReplayOptions::default()
    };
    let r = replay::replay_files_with(nat_config(), &[(LAN, lan.clone())], &dir.join("out"), &o);
    assert!(matches!(r, Err(ReplayError::OutputIsInput { .. })), "{r:?}");
    assert_eq!(
        std::fs::read(&lan).unwrap(),
        before,
        "the input is untouched"
    );
    for bad in ["soon", "-1", "+x", "1e20"] {
        let e = SessionsAt::parse(bad).unwrap_err();
        assert!(e.contains("--sessions-at"), "{e}");
    }
    assert_eq!(
        SessionsAt::parse("+2.5"),
        Ok(SessionsAt::AfterFirst(2_500_000_000))
    );
}
