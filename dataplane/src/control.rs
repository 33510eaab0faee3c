//! Control plane: Prometheus text exposition over HTTP and the `dataplane
//! ctl` Unix socket, served by tokio on its own thread — never on a worker.
//! Everything it reads is O(1) counters or explicitly named scans. The NAT
//! is read under its lock (`NatStage::lock`), which the workers take once
//! per burst: while a NAT read, `sessions` or `clear-sessions` (scans,
//! O(sessions)) holds it, the workers' NAT passes wait.
//!
//! `ctl` protocol: the client sends one line, the server answers with one JSON
//! document (or an error line starting with `error:`) and closes:
//!
//! | command | answer |
//! |---|---|
//! | `counters` | summed pipeline counters (rx/tx per port, drops by reason, …) |
//! | `nat` | NAT statistics (`nat::NatStats`) |
//! | `occupancy` | NAT sessions / ports in use, IPv6 flows, neighbour entries |
//! | `sessions [inside=IP] [proto=N] [limit=N] [format=json\|text]` | NAT sessions of every worker, JSON or one `conntrack -L` line each (`crate::sessions`; a scan: O(sessions)) |
//! | `neighbors` | neighbour entries: port, ip, mac, state (`REACHABLE`, `STALE`, ...), seconds since confirmed (a scan) |
//! | `ports` | DPDK ports: link status, speed and `rte_eth_stats` as last sampled (`[]` without DPDK ports) |
//! | `metrics` | the Prometheus text |
//!
//! Device statistics come from a [`PortStatsSource`] registered with
//! [`spawn_with_ports`] (the DPDK driver does; replay and the demo do not, so
//! they show no `dataplane_port_*` lines). The control thread only reads what
//! the source already holds in memory: it never calls DPDK itself.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::oneshot;

use crate::config::ControlConfig;
use crate::metrics::PortStatsSource;
use crate::pipeline::Shared;

/// Control-plane start-up failures.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control runtime: {0}")]
    Runtime(std::io::Error),
    #[error("metrics address {addr}: {source}")]
    Metrics {
        addr: String,
        source: std::io::Error,
    },
    #[error("control socket {path}: {source}")]
    Socket {
        path: String,
        source: std::io::Error,
    },
}

/// A running control thread; dropping it stops the thread and removes the
/// socket file.
pub struct ControlHandle {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    metrics_addr: Option<SocketAddr>,
    socket: Option<String>,
}

impl ControlHandle {
    /// The bound metrics address (useful with port 0).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }
}

impl Drop for ControlHandle {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(p) = &self.socket {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Prometheus text for `shared`: pipeline counters plus gauges.
pub fn metrics_text(shared: &Shared) -> String {
    metrics_text_with(shared, None)
}

/// [`metrics_text`] plus, when `ports` is given, the per-port device metrics
/// (`dataplane_port_*`, see [`crate::metrics::PORT_METRICS`]).
pub fn metrics_text_with(shared: &Shared, ports: Option<&dyn PortStatsSource>) -> String {
    let snap = shared.counters.snapshot(&shared.port_names());
    let (v6_active, v6_created, v6_expired) = shared.v6flows.stats();
    let nb = shared.neighbors.stats();
    let mut gauges: Vec<(&str, &str, u64)> = vec![
        ("ipv6_flows_active", "Tracked IPv6 flows.", v6_active as u64),
        (
            "ipv6_flows_created",
            "IPv6 flows created (counter).",
            v6_created,
        ),
        (
            "ipv6_flows_expired",
            "IPv6 flows expired (counter).",
            v6_expired,
        ),
        ("neighbor_entries", "Neighbour table entries.", nb.entries),
        (
            "neighbor_incomplete",
            "Neighbour entries waiting for an answer (INCOMPLETE).",
            nb.incomplete,
        ),
        (
            "neighbor_evicted",
            "STALE neighbour entries evicted at neighbor.max_entries (counter).",
            nb.evicted,
        ),
        (
            "neighbor_failed",
            "Neighbour entries removed after unanswered solicitations (counter).",
            nb.failed,
        ),
        (
            "neighbor_refused",
            "Neighbour entries not created: table full, nothing evictable (counter).",
            nb.refused,
        ),
    ];
    if let Some(n) = &shared.nat {
        let s = n.summary();
        gauges.push((
            "nat_sessions_active",
            "Live NAT sessions.",
            s.sessions_active,
        ));
        gauges.push((
            "nat_ports_in_use",
            "External ports allocated.",
            s.ports_in_use,
        ));
        gauges.push((
            "nat_sessions_created",
            "NAT sessions created (counter).",
            s.created,
        ));
        gauges.push((
            "nat_sessions_expired",
            "NAT sessions expired (counter).",
            s.expired,
        ));
        gauges.push((
            "nat_sessions_evicted",
            "NAT sessions evicted (counter).",
            s.evicted,
        ));
    }
    let mut text = crate::metrics::prometheus_text(&snap, &gauges);
    if let Some(n) = &shared.nat {
        use std::fmt::Write;
        let _ = writeln!(
            text,
            "# HELP dataplane_nat_drops_total NAT drops by the NAT's reason."
        );
        let _ = writeln!(text, "# TYPE dataplane_nat_drops_total counter");
        let st = n.stats_json();
        if let Some(d) = st.get("drops").and_then(|d| d.as_object()) {
            for (r, v) in d {
                let _ = writeln!(text, "dataplane_nat_drops_total{{reason=\"{r}\"}} {v}");
            }
        }
        let hold = |k: &str| st["syn_hold"][k].as_u64().unwrap_or(0);
        let _ = writeln!(
            text,
            "# HELP dataplane_nat_syn_hold_total Unsolicited inbound TCP SYNs held 6 s (RFC 5382 REQ-4, unsolicited_syn = \"hold\"), by what ended the hold."
        );
        let _ = writeln!(text, "# TYPE dataplane_nat_syn_hold_total counter");
        for (what, v) in [
            ("held", hold("held")),
            ("answered", hold("answered")),
            ("cancelled", hold("cancelled")),
            ("not_held", hold("not_held")),
        ] {
            let _ = writeln!(text, "dataplane_nat_syn_hold_total{{event=\"{what}\"}} {v}");
        }
    }
    if let Some(src) = ports {
        crate::metrics::port_stats_text(&mut text, &src.port_stats());
    }
    text
}

/// Answer one `ctl` command line (no device statistics: `ports` is `[]`).
pub fn answer(shared: &Shared, line: &str) -> String {
    answer_with(shared, None, line)
}

/// Answer one `ctl` command line, with device statistics from `ports` when
/// given (`ports`, a `port_stats` member in `counters`, the metrics text).
pub fn answer_with(shared: &Shared, ports: Option<&dyn PortStatsSource>, line: &str) -> String {
    let mut words = line.split_whitespace();
    let cmd = words.next().unwrap_or("");
    let v = match cmd {
        "counters" => {
            let mut v = serde_json::to_value(shared.counters.snapshot(&shared.port_names())).unwrap_or_default();
            if let (Some(src), Some(obj)) = (ports, v.as_object_mut()) {
                obj.insert("port_stats".into(), serde_json::to_value(src.port_stats()).unwrap_or_default());
            }
            v
        }
        "ports" => serde_json::to_value(ports.map(|s| s.port_stats()).unwrap_or_default()).unwrap_or_default(),
        "nat" => match &shared.nat {
            Some(n) => n.stats_json(),
            None => return "error: NAT is not configured\n".into(),
        },
        "occupancy" => {
            let (v6, _, _) = shared.v6flows.stats();
            let nat = shared.nat.as_ref().map(|n| n.summary());
            json!({
                "nat_sessions_active": nat.as_ref().map(|s| s.sessions_active),
                "nat_ports_in_use": nat.as_ref().map(|s| s.ports_in_use),
                "ipv6_flows_active": v6,
                "neighbor_entries": shared.neighbors.len(),
                "flow_table_capacity": shared.config.flow_table.capacity,
            })
        }
        "sessions" | "flows" | "clear-sessions" => {
            let Some(n) = &shared.nat else { return "error: NAT is not configured\n".into() };
            let clear = cmd == "clear-sessions";
            let mut f = nat::SessionFilter::default();
            let mut limit = 100usize;
            let mut text = false;
            for w in words {
                let (k, val) = w.split_once('=').unwrap_or((w, ""));
                let ok = match k {
                    "inside" => val.parse().map(|a| f.inside = Some(a)).is_ok(),
                    "proto" => val.parse().map(|p| f.proto = Some(p)).is_ok(),
                    "limit" if !clear => val.parse().map(|l: usize| limit = l.min(100_000)).is_ok(),
                    "format" if !clear => match val {
                        "text" => { text = true; true }
                        "json" => { text = false; true }
                        _ => false,
                    },
                    _ => false,
                };
                if !ok {
                    let usage = if clear { "inside=IP proto=N" } else { "inside=IP proto=N limit=N format=json|text" };
                    return format!("error: bad filter `{w}` ({usage})\n");
                }
            }
            if clear {
                let removed = n.sessions_clear(&f);
                tracing::info!(removed, inside = ?f.inside, proto = ?f.proto, "NAT sessions cleared by ctl");
                json!({ "removed": removed })
            } else if text {
                // One `conntrack -L` line per session (crate::sessions).
                let now = n.clock_ns();
                let mut out = String::new();
                for (w, s) in n.sessions_by_worker(&f, limit) {
                    out.push_str(&crate::sessions::text_line(w, &s, now));
                    out.push('\n');
                }
                return out;
            } else {
                serde_json::to_value(n.sessions_scan(&f, limit)).unwrap_or_default()
            }
        }
        "neighbors" => {
            let rows: Vec<_> = shared
                .neighbors
                .scan()
                .into_iter()
                .map(|r| {
                    json!({
                        "port": shared.ports.get(usize::from(r.port)).map(|x| x.name.clone()),
                        "ip": r.ip,
                        "mac": r.mac.map(|m| crate::config::MacAddr(m).to_string()),
                        "state": r.state.name(),
                        "confirmed_secs_ago": r.confirmed_secs_ago,
                    })
                })
                .collect();
            serde_json::Value::Array(rows)
        }
        "metrics" => return metrics_text_with(shared, ports),
        _ => return "error: commands: counters | nat | occupancy | sessions [inside=IP] [proto=N] [limit=N] [format=json|text] | clear-sessions [inside=IP] [proto=N] | neighbors | ports | metrics\n".into(),
    };
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}

/// Start the control thread (if `cfg` enables anything).
///
/// # Errors
/// [`ControlError`] when the runtime cannot start or an address/socket
/// cannot be bound.
pub fn spawn(shared: Arc<Shared>, cfg: &ControlConfig) -> Result<ControlHandle, ControlError> {
    spawn_with_ports(shared, cfg, None)
}

/// [`spawn`] with a source of device statistics (the DPDK driver's
/// [`crate::metrics::PortStatsBoard`]), read on every scrape and `ctl`
/// command that shows ports.
///
/// # Errors
/// As [`spawn`].
pub fn spawn_with_ports(
    shared: Arc<Shared>,
    cfg: &ControlConfig,
    ports: Option<Arc<dyn PortStatsSource>>,
) -> Result<ControlHandle, ControlError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(ControlError::Runtime)?;
    let metrics = match &cfg.metrics_addr {
        Some(a) => {
            let std_l = std::net::TcpListener::bind(a).map_err(|source| ControlError::Metrics {
                addr: a.clone(),
                source,
            })?;
            std_l
                .set_nonblocking(true)
                .map_err(|source| ControlError::Metrics {
                    addr: a.clone(),
                    source,
                })?;
            Some(std_l)
        }
        None => None,
    };
    let metrics_addr = metrics.as_ref().and_then(|l| l.local_addr().ok());
    let unix = match &cfg.socket {
        Some(p) => {
            let _ = std::fs::remove_file(p);
            let l = std::os::unix::net::UnixListener::bind(p).map_err(|source| {
                ControlError::Socket {
                    path: p.clone(),
                    source,
                }
            })?;
            l.set_nonblocking(true)
                .map_err(|source| ControlError::Socket {
                    path: p.clone(),
                    source,
                })?;
            Some(l)
        }
        None => None,
    };
    let (tx, rx) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("dataplane-control".into())
        .spawn(move || {
            rt.block_on(async move {
                let metrics = metrics.and_then(|l| tokio::net::TcpListener::from_std(l).ok());
                let unix = unix.and_then(|l| tokio::net::UnixListener::from_std(l).ok());
                let sh_m = Arc::clone(&shared);
                let ports_m = ports.clone();
                let m_task = async move {
                    let Some(l) = metrics else { return std::future::pending::<()>().await };
                    loop {
                        let Ok((mut s, _)) = l.accept().await else { continue };
                        let sh = Arc::clone(&sh_m);
                        let src = ports_m.clone();
                        tokio::spawn(async move {
                            let mut buf = vec![0u8; 4096];
                            let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf)).await;
                            let n = match n {
                                Ok(Ok(n)) => n,
                                _ => return,
                            };
                            let req = String::from_utf8_lossy(&buf[..n]);
                            let resp = if req.starts_with("GET /metrics") {
                                let body = metrics_text_with(&sh, src.as_deref());
                                format!(
                                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                    body.len()
                                )
                            } else {
                                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
                            };
                            let _ = s.write_all(resp.as_bytes()).await;
                            let _ = s.shutdown().await;
                        });
                    }
                };
                let sh_u = Arc::clone(&shared);
                let ports_u = ports.clone();
                let u_task = async move {
                    let Some(l) = unix else { return std::future::pending::<()>().await };
                    loop {
                        let Ok((s, _)) = l.accept().await else { continue };
                        let sh = Arc::clone(&sh_u);
                        let src = ports_u.clone();
                        tokio::spawn(async move {
                            let (r, mut w) = s.into_split();
                            let mut line = String::new();
                            let mut r = BufReader::new(r);
                            let read = tokio::time::timeout(std::time::Duration::from_secs(5), r.read_line(&mut line)).await;
                            if !matches!(read, Ok(Ok(_))) {
                                return;
                            }
                            let out = answer_with(&sh, src.as_deref(), line.trim());
                            let _ = w.write_all(out.as_bytes()).await;
                            let _ = w.shutdown().await;
                        });
                    }
                };
                tokio::select! {
                    _ = rx => {}
                    () = m_task => {}
                    () = u_task => {}
                }
            });
        })
        .map_err(ControlError::Runtime)?;
    tracing::info!(?metrics_addr, socket = ?cfg.socket, "control thread started");
    Ok(ControlHandle {
        stop: Some(tx),
        thread: Some(thread),
        metrics_addr,
        socket: cfg.socket.clone(),
    })
}

/// `dataplane ctl`: send one command line, return the answer.
///
/// # Errors
/// I/O errors talking to the socket.
pub fn ctl(socket: &std::path::Path, command: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    s.write_all(command.as_bytes())?;
    s.write_all(b"\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}
