//! Control plane: Prometheus exposition over HTTP (loopback) and the ctl
//! Unix socket, on a pipeline that has translated some traffic.

mod common;

use common::*;
use dataplane::config::ControlConfig;
use dataplane::control;
use dataplane::pipeline::{Disposition, single};
use dataplane::traffic;
use dataplane::wire::PROTO_UDP;
use std::io::{Read, Write};

#[test]
fn metrics_and_ctl_socket_serve_live_counters() {
    let mut p = single(nat_config()).unwrap();
    learn_hosts(&mut p, ts(0.0));
    let f = traffic::ipv4(
        HOST_MAC,
        LAN_MAC,
        HOST,
        REMOTE,
        64,
        1,
        PROTO_UDP,
        &traffic::udp_dgram(5000, 53, b"q"),
    );
    assert_eq!(one(&mut p, LAN, f, ts(1.0)).0, Disposition::Tx(WAN));
    let dir = temp_dir("control");
    let sock = dir.join("ctl.sock");
    let cfg = ControlConfig {
        metrics_addr: Some("127.0.0.1:0".into()),
        socket: Some(sock.display().to_string()),
    };
    let h = control::spawn(p.shared().clone(), &cfg).unwrap();
    let addr = h.metrics_addr().unwrap();

    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(
        body.contains("dataplane_rx_packets_total{port=\"lan\"} 4"),
        "{body}"
    );
    assert!(body.contains("dataplane_nat_sessions_active 1"), "{body}");
    assert!(body.contains("dataplane_drops_total{reason=\"unsolicited_inbound\"} 0"));

    let c = control::ctl(&sock, "counters").unwrap();
    let j: serde_json::Value = serde_json::from_str(&c).unwrap();
    assert_eq!(j["tx"]["wan"], 1);
    let sessions = control::ctl(&sock, &format!("sessions inside={HOST} limit=10")).unwrap();
    let j: serde_json::Value = serde_json::from_str(&sessions).unwrap();
    assert_eq!(j.as_array().unwrap().len(), 1, "{j}");
    // The same session as a `conntrack -L` line.
    let text = control::ctl(&sock, &format!("sessions inside={HOST} format=text")).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with("udp      17 ")
            && text.contains(&format!("src={HOST} dst="))
            && text.trim_end().ends_with("kind=masquerade worker=0"),
        "{text}"
    );
    assert!(
        control::ctl(&sock, "sessions format=xml")
            .unwrap()
            .starts_with("error:")
    );
    let none = control::ctl(&sock, "sessions inside=192.168.1.99").unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&none)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let occ = control::ctl(&sock, "occupancy").unwrap();
    assert!(occ.contains("\"nat_sessions_active\": 1"), "{occ}");
    assert!(
        control::ctl(&sock, "frobnicate")
            .unwrap()
            .starts_with("error:")
    );
    assert!(
        control::ctl(&sock, "sessions inside=notanip")
            .unwrap()
            .starts_with("error:")
    );
    // Clearing: a bad filter is an error; another host's filter removes
    // nothing; the host's own removes its session and frees its port,
    // after which its next packet opens a new session.
    assert!(
        control::ctl(&sock, &format!("clear-sessions inside={HOST} limit=3"))
            .unwrap()
            .starts_with("error:")
    );
    let r = control::ctl(&sock, "clear-sessions inside=192.168.1.99").unwrap();
    assert!(r.contains("\"removed\": 0"), "{r}");
    let r = control::ctl(&sock, &format!("clear-sessions inside={HOST} proto=17")).unwrap();
    assert!(r.contains("\"removed\": 1"), "{r}");
    let occ = control::ctl(&sock, "occupancy").unwrap();
    assert!(occ.contains("\"nat_sessions_active\": 0"), "{occ}");
    assert!(occ.contains("\"nat_ports_in_use\": 0"), "{occ}");
    let nat = control::ctl(&sock, "nat").unwrap();
    assert!(nat.contains("\"removed\": 1"), "{nat}");
    drop(h);
    assert!(!sock.exists(), "socket removed on shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}

fn scrape(addr: std::net::SocketAddr) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    body
}

/// A registered port-statistics source shows up in `/metrics`, `ctl ports`
/// and `ctl counters`, and is re-read on every scrape; without one (replay,
/// demo) there is no `dataplane_port_` line and `ctl ports` is `[]`.
#[test]
fn port_stats_source_is_served_live() {
    use dataplane::metrics::{PortStats, PortStatsBoard, PortStatsSource};
    use std::sync::Arc;
    let p = single(nat_config()).unwrap();
    let dir = temp_dir("control-ports");
    let sock = dir.join("ctl.sock");
    let cfg = ControlConfig {
        metrics_addr: Some("127.0.0.1:0".into()),
        socket: Some(sock.display().to_string()),
    };
    let board = Arc::new(PortStatsBoard::new(&p.shared().port_names()));
    let st = PortStats {
        ipackets: 7,
        opackets: 5,
        ibytes: 700,
        obytes: 500,
        link_up: true,
        link_speed_mbps: 25_000,
        ..PortStats::default()
    };
    board.publish(0, &st);
    let src: Arc<dyn PortStatsSource> = board.clone();
    let h = control::spawn_with_ports(p.shared().clone(), &cfg, Some(src)).unwrap();
    let body = scrape(h.metrics_addr().unwrap());
    assert!(body.contains("# TYPE dataplane_port_rx_packets_total counter\n"));
    assert!(
        body.contains("\ndataplane_port_rx_packets_total{port=\"lan\"} 7\n"),
        "{body}"
    );
    assert!(body.contains("\ndataplane_port_tx_bytes_total{port=\"lan\"} 500\n"));
    assert!(body.contains("\ndataplane_port_link_up{port=\"lan\"} 1\n"));
    assert!(body.contains("\ndataplane_port_link_up{port=\"wan\"} 0\n"));
    assert!(body.contains("\ndataplane_port_link_speed_mbps{port=\"lan\"} 25000\n"));
    // The pipeline's own counters are still there.
    assert!(body.contains("dataplane_rx_packets_total{port=\"lan\"} 0"));

    // A new sample is what the next scrape shows.
    board.publish(0, &PortStats { ipackets: 9, ..st });
    let body = scrape(h.metrics_addr().unwrap());
    assert!(
        body.contains("\ndataplane_port_rx_packets_total{port=\"lan\"} 9\n"),
        "{body}"
    );

    let j: serde_json::Value =
        serde_json::from_str(&control::ctl(&sock, "ports").unwrap()).unwrap();
    assert_eq!(j[0]["port"], "lan");
    assert_eq!(j[0]["ipackets"], 9);
    assert_eq!(j[0]["link_up"], true);
    assert_eq!(j[1]["port"], "wan");
    assert_eq!(j[1]["ipackets"], 0);
    let j: serde_json::Value =
        serde_json::from_str(&control::ctl(&sock, "counters").unwrap()).unwrap();
    assert_eq!(j["port_stats"][0]["obytes"], 500, "{j}");
    assert_eq!(j["rx"]["lan"], 0);
    let m = control::ctl(&sock, "metrics").unwrap();
    assert!(
        m.contains("dataplane_port_rx_nombuf_total{port=\"wan\"} 0"),
        "{m}"
    );
    drop(h);

    // No source: nothing port-level, nothing broken.
    let cfg = ControlConfig {
        metrics_addr: Some("127.0.0.1:0".into()),
        socket: Some(sock.display().to_string()),
    };
    let h = control::spawn(p.shared().clone(), &cfg).unwrap();
    let body = scrape(h.metrics_addr().unwrap());
    assert!(!body.contains("dataplane_port_"), "{body}");
    assert!(body.contains("dataplane_rx_packets_total{port=\"lan\"}"));
    assert_eq!(control::ctl(&sock, "ports").unwrap().trim(), "[]");
    let c = control::ctl(&sock, "counters").unwrap();
    assert!(!c.contains("port_stats"), "{c}");
    drop(h);
    let _ = std::fs::remove_dir_all(&dir);
}
