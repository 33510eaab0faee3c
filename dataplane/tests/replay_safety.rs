//! `dataplane replay` never destroys what it reads and always leaves valid
//! outputs: an output that names an input is refused before anything is
//! written; outputs go through temporary files; SIGINT/SIGTERM (sent by the
//! test to the child process, blocked reading a FIFO) finish the outputs and
//! print the partial summary. And the CLI's argument errors name what is
//! wrong.

mod common;

use common::*;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dataplane::replay::{self, ReplayError, replay_files};
use dataplane::wire::{self, PROTO_UDP};
use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dataplane"))
}

fn config_file(dir: &Path) -> PathBuf {
    let p = dir.join("config.toml");
    std::fs::write(&p, dataplane::config::DEFAULT_CONFIG).unwrap();
    p
}

/// A capture's bytes: an ARP request from the host, then `n` outbound UDP
/// flows (one reply on the LAN, `n` translated frames on the WAN).
fn capture_bytes(n: u16) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = PcapWriter::with_header(&mut buf, replay::out_header()).unwrap();
    let mut frames = vec![wire::arp_request(HOST_MAC, HOST, GW)];
    for k in 0..n {
        frames.push(dataplane::traffic::ipv4(
            HOST_MAC,
            LAN_MAC,
            HOST,
            REMOTE,
            64,
            k,
            PROTO_UDP,
            &dataplane::traffic::udp_dgram(20000 + k, 53, b"q"),
        ));
    }
    for (i, f) in frames.iter().enumerate() {
        let ts = Duration::from_millis(1000 + i as u64);
        w.write_packet(&PcapPacket::new(ts, f.len() as u32, f))
            .unwrap();
    }
    w.into_writer();
    buf
}

/// (size, hash, bytes, modification time) of a file.
fn fingerprint(p: &Path) -> (u64, u64, Vec<u8>, std::time::SystemTime) {
    let b = std::fs::read(p).unwrap();
    let mut h = std::hash::DefaultHasher::new();
    b.hash(&mut h);
    let m = std::fs::metadata(p).unwrap();
    (m.len(), h.finish(), b, m.modified().unwrap())
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Every record of an output, read to the end with the crate (panics on a
/// header-less or cut file).
fn records(p: &Path) -> usize {
    let mut r = PcapReader::new(File::open(p).unwrap()).expect("a pcap header");
    let mut n = 0;
    while let Some(x) = r.next_packet() {
        x.expect("a whole record");
        n += 1;
    }
    n
}

/// An output path naming an input (directly, through a symlinked directory,
/// or as a hard link under the other port's name) is refused before
/// anything is written: the input keeps its size, hash, bytes and mtime and
/// no other file appears.
#[test]
fn output_naming_an_input_is_refused_and_the_input_untouched() {
    let dir = temp_dir("in-is-out");
    let cfg = config_file(&dir);
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let input = out.join("lan.pcap");
    std::fs::write(&input, capture_bytes(50)).unwrap();
    std::os::unix::fs::symlink(&out, dir.join("alias")).unwrap();
    let other = dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::hard_link(&input, other.join("wan.pcap")).unwrap();
    let before = fingerprint(&input);
    for (in_arg, out_dir) in [
        (input.clone(), out.clone()),
        (dir.join("alias/lan.pcap"), out.clone()),
        (input.clone(), dir.join("alias")),
        (input.clone(), other.clone()),
    ] {
        let o = bin()
            .args(["replay", "--config"])
            .arg(&cfg)
            .arg("--in")
            .arg(format!("lan={}", in_arg.display()))
            .arg("--out-dir")
            .arg(&out_dir)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{}: {err}", out_dir.display());
        assert!(err.contains("refusing to overwrite"), "{err}");
        assert!(o.stdout.is_empty(), "no summary");
        assert!(fingerprint(&input) == before, "the input was modified");
        assert_eq!(listing(&out), vec!["lan.pcap"], "nothing written");
        assert_eq!(listing(&other), vec!["wan.pcap"], "nothing written");
    }
    // The library refuses it too, with a typed error.
    let e = replay_files(nat_config(), &[(LAN, input.clone())], &out).unwrap_err();
    assert!(matches!(e, ReplayError::OutputIsInput { .. }), "{e}");
    assert!(fingerprint(&input) == before);
    // An input in the output directory under another name is fine.
    let renamed = out.join("capture.pcap");
    std::fs::rename(&input, &renamed).unwrap();
    let s = replay_files(nat_config(), &[(LAN, renamed.clone())], &out).unwrap();
    assert_eq!(s.packets_in, 51);
    assert_eq!(
        listing(&out),
        vec!["capture.pcap", "lan.pcap", "wan.pcap"],
        "outputs renamed into place, no temporary file left"
    );
    assert_eq!(records(&out.join("wan.pcap")), 50);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A capture cut inside a record: the error names it; the outputs are
/// valid files holding what was processed before it; no temporary file
/// remains.
#[test]
fn input_error_leaves_valid_outputs_and_no_temporaries() {
    let dir = temp_dir("cut-outputs");
    let b = capture_bytes(10);
    let input = dir.join("cut.pcap");
    std::fs::write(&input, &b[..b.len() - 5]).unwrap();
    let out = dir.join("out");
    let e = replay_files(nat_config(), &[(LAN, input)], &out).unwrap_err();
    assert!(matches!(e, ReplayError::Corrupt { index: 11, .. }), "{e}");
    assert_eq!(listing(&out), vec!["lan.pcap", "wan.pcap"]);
    assert_eq!(records(&out.join("lan.pcap")), 1, "the ARP reply");
    assert_eq!(records(&out.join("wan.pcap")), 9);
    let _ = std::fs::remove_dir_all(&dir);
}

fn mkfifo(p: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// Open the FIFO's write end once the child has opened its read end.
fn open_writer(fifo: &Path, child: &mut Child) -> File {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(fifo)
        {
            Ok(f) => {
                // Back to blocking writes.
                // SAFETY: fcntl on an open descriptor.
                assert_eq!(unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETFL, 0) }, 0);
                return f;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                if let Some(st) = child.try_wait().unwrap() {
                    panic!("replay exited before opening its input: {st}");
                }
                assert!(Instant::now() < deadline, "replay never opened its input");
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("open fifo: {e}"),
        }
    }
}

/// Wait until the child has read everything written to the FIFO and is
/// blocked reading for more.
fn wait_blocked_reading(w: &File, pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut pending: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int.
        let rc = unsafe { libc::ioctl(w.as_raw_fd(), libc::FIONREAD, &raw mut pending) };
        assert_eq!(rc, 0);
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let state = stat[stat.rfind(')').unwrap() + 1..]
            .trim_start()
            .chars()
            .next();
        if pending == 0 && state == Some('S') {
            return;
        }
        assert!(Instant::now() < deadline, "replay did not drain its input");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("replay did not stop after the signal");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `dataplane replay` of `input` on port lan into `out`, stdout and
/// stderr piped (`--json` if `json`).
fn replay_from(cfg: &Path, input: &Path, out: &Path, json: bool) -> std::process::Child {
    let mut cmd = bin();
    cmd.args(["replay", "--config"])
        .arg(cfg)
        .arg("--in")
        .arg(format!("lan={}", input.display()))
        .arg("--out-dir")
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if json {
        cmd.arg("--json");
    }
    cmd.spawn().unwrap()
}

/// SIGINT and SIGTERM sent to `dataplane replay` while it waits for more
/// input on a FIFO: it stops reading, processes what it read, finishes
/// both outputs (valid pcaps the crate reads to the end, renamed into
/// place), prints the partial summary and exits with 128 + the signal.
#[test]
fn signal_stops_the_replay_with_valid_outputs_and_a_summary() {
    for (sig, name, json) in [
        (libc::SIGINT, "SIGINT", true),
        (libc::SIGTERM, "SIGTERM", false),
    ] {
        let dir = temp_dir(&format!("signal-{name}"));
        let cfg = config_file(&dir);
        let fifo = dir.join("in.pcap");
        mkfifo(&fifo);
        let out = dir.join("out");
        let mut child = replay_from(&cfg, &fifo, &out, json);
        let mut w = open_writer(&fifo, &mut child);
        // 40 flows: more than the read-ahead, so some were processed and
        // some only read when the signal comes.
        w.write_all(&capture_bytes(40)).unwrap();
        w.flush().unwrap();
        wait_blocked_reading(&w, child.id());
        // SAFETY: signalling our own child.
        assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, sig) }, 0);
        let st = wait_exit(&mut child);
        let o = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(st.code(), Some(128 + sig), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("interrupted by {name}")),
            "{stderr}"
        );
        drop(w);
        assert_eq!(listing(&out), vec!["lan.pcap", "wan.pcap"], "{name}");
        let (lan, wan) = (
            records(&out.join("lan.pcap")),
            records(&out.join("wan.pcap")),
        );
        assert_eq!(
            (lan, wan),
            (1, 40),
            "{name}: every packet read was processed"
        );
        if json {
            let j: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object");
            assert_eq!(j["interrupted"], name, "{j}");
            assert_eq!(j["packets_in"], 41, "{j}");
            assert_eq!(j["ports"]["wan"]["packets_out"], 40, "{j}");
        } else {
            assert!(
                stdout.contains(&format!("interrupted by {name}")),
                "{stdout}"
            );
            assert!(stdout.contains("NAT sessions active"), "{stdout}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A signal while `dataplane replay` is still opening its inputs (here: a
/// FIFO nobody writes to) finds nothing to finish: it exits at once with
/// 128 + the signal, without creating any output. (The same `_exit` path
/// serves a second signal during a replay.)
#[test]
fn signal_before_outputs_exist_exits_at_once() {
    let dir = temp_dir("signal-early");
    let cfg = config_file(&dir);
    let fifo = dir.join("in.pcap");
    mkfifo(&fifo);
    let out = dir.join("out");
    let mut child = replay_from(&cfg, &fifo, &out, false);
    // Wait until it is blocked opening the FIFO (handlers installed by then).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sc = std::fs::read_to_string(format!("/proc/{}/syscall", child.id())).unwrap();
        let nr = sc
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<i64>().ok());
        // `wait_for_partner`: a FIFO open waiting for its writer (kernels
        // that hide the wait channel show "0": the syscall alone decides).
        let wchan =
            std::fs::read_to_string(format!("/proc/{}/wchan", child.id())).unwrap_or_default();
        let in_fifo_open = wchan == "wait_for_partner" || wchan == "0" || wchan.is_empty();
        if nr == Some(libc::SYS_openat) && in_fifo_open {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "replay exited early");
        assert!(
            Instant::now() < deadline,
            "replay never blocked opening its input"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: signalling our own child.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let st = wait_exit(&mut child);
    assert_eq!(st.code(), Some(130));
    let o = child.wait_with_output().unwrap();
    assert!(o.stdout.is_empty(), "no summary: nothing was replayed");
    assert!(!out.exists(), "no output created");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--in` with an unknown port lists the configured ports; out-of-range
/// `--burst` values are refused naming the flag; both before any output.
#[test]
fn cli_argument_errors_name_the_flag_and_the_ports() {
    let dir = temp_dir("cli-args");
    let cfg = config_file(&dir);
    let input = dir.join("in.pcap");
    std::fs::write(&input, capture_bytes(1)).unwrap();
    let run = |args: &[String]| {
        let o = bin()
            .args(["replay", "--config"])
            .arg(&cfg)
            .args(args)
            .arg("--out-dir")
            .arg(dir.join("out"))
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let lan = format!("lan={}", input.display());
    let (code, err) = run(&["--in".into(), "dmz=x.pcap".into()]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("no port named `dmz`") && err.contains("lan, wan"),
        "{err}"
    );
    for bad in ["0", "1025", "-1", "many"] {
        let (code, err) = run(&["--in".into(), lan.clone(), format!("--burst={bad}")]);
        assert_eq!(code, Some(2), "--burst {bad}");
        assert!(err.contains("--burst") && err.contains(bad), "{err}");
    }
    assert!(!dir.join("out").exists(), "nothing written");
    let (code, err) = run(&["--in".into(), lan, "--burst".into(), "1024".into()]);
    assert_eq!(code, Some(0), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
