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
    drop(h);
    assert!(!sock.exists(), "socket removed on shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}
