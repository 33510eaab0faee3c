//! `dataplane`: the binary. No arguments: the built-in demo. Subcommands:
//! `replay`, `check-config`, `run` (DPDK, feature `dpdk`), `ctl`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dataplane::config::Config;

#[derive(Parser)]
#[command(
    name = "dataplane",
    version,
    about = "DPDK NAT dataplane: replay, demo, DPDK run, control"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the built-in demo (the default with no subcommand).
    Demo {
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
        /// Also write what the simulated network sent into each port as
        /// DIR/PORT-in.pcap (replaying them reproduces the run).
        #[arg(long, value_name = "DIR")]
        write_captures: Option<PathBuf>,
    },
    /// Replay pcap/pcapng captures through the pipeline, one per input port.
    ///
    /// Link types: Ethernet, Linux cooked (SLL, SLL2), raw IPv4/IPv6,
    /// BSD loopback (NULL, LOOP). SIGINT/SIGTERM stop the reading, finish the
    /// outputs and print the partial summary (exit status 128 + signal); a
    /// second signal exits at once.
    Replay {
        /// The configuration file (docs/config.md).
        #[arg(long)]
        config: PathBuf,
        /// PORT=FILE, PORT being a port name from the config (repeatable).
        #[arg(long = "in", value_name = "PORT=FILE", required = true)]
        inputs: Vec<String>,
        /// Output directory: one DIR/PORT.pcap per port (written to
        /// temporary files there and renamed at the end; an output that is
        /// one of the inputs is refused).
        #[arg(long)]
        out_dir: PathBuf,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
        /// Packets per pipeline call (consecutive packets of one port), like
        /// a DPDK rx burst. 1 (default) gives every packet its own timestamp
        /// as the clock; larger bursts are faster but expire sessions only to
        /// within a burst's time span. 1..=1024.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
        burst: u16,
        /// Write one JSON line per input frame to FILE: port, frame number
        /// in its input file (as Wireshark counts), capture time, verdict
        /// (forwarded to PORT with the 5-tuple as it left / dropped with the
        /// reason / generated / consumed). Written to a temporary file and
        /// renamed at the end; never over an input.
        #[arg(long, value_name = "FILE")]
        verdicts: Option<PathBuf>,
        /// Write the dropped frames (as they came in) to FILE, pcapng, one
        /// interface per port, the reason as each packet's comment
        /// (`tshark -r FILE -T fields -e frame.comment`).
        #[arg(long, value_name = "FILE.pcapng")]
        drops: Option<PathBuf>,
        /// Worker pipelines, run in one thread in a fixed order with the
        /// hand-off between them (each owns its NAT sessions; docs/replay.md
        /// says in which order frames come out). 1..=128.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=128))]
        workers: u16,
        /// Write the NAT sessions alive at the end of the replay (or at
        /// `--sessions-at`) to FILE, one per line as `conntrack -L` prints
        /// them (JSON lines with `--json`). Written to a temporary file and
        /// renamed at the end; never over an input.
        #[arg(long, value_name = "FILE")]
        sessions: Option<PathBuf>,
        /// Capture time of the `--sessions` snapshot: seconds since the
        /// Unix epoch (fractions allowed) or +SECONDS after the first packet.
        #[arg(long, value_name = "T", requires = "sessions", value_parser = dataplane::replay::sessions::SessionsAt::parse)]
        sessions_at: Option<dataplane::replay::sessions::SessionsAt>,
    },
    /// Validate a configuration file; explains the first error with its field.
    CheckConfig { file: PathBuf },
    /// Run on DPDK ports (needs `--features dpdk`).
    Run {
        #[arg(long)]
        config: PathBuf,
    },
    /// Query a running dataplane over its Unix control socket.
    Ctl {
        /// Socket path (default: the config's `control.socket` default).
        #[arg(long, default_value = "/tmp/dataplane.sock")]
        socket: PathBuf,
        /// counters | nat | occupancy | sessions [inside=IP] [proto=N] [limit=N] [format=json|text] | neighbors | metrics
        #[arg(required = true)]
        command: Vec<String>,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    match cli.cmd.unwrap_or(Cmd::Demo {
        json: false,
        write_captures: None,
    }) {
        Cmd::CheckConfig { file } => match Config::load(&file) {
            Ok(cfg) => {
                use dataplane::config::human_bytes;
                println!(
                    "{}: OK ({} ports, {} routes, NAT {})",
                    file.display(),
                    cfg.ports.len(),
                    cfg.routes.len(),
                    if cfg.nat.is_some() { "on" } else { "off" }
                );
                let m = cfg.memory_estimate();
                let machine = dataplane::config::machine_memory()
                    .map_or_else(|| "unknown".to_string(), human_bytes);
                println!(
                    "memory: {} for the tables of {} entries (NAT sessions {} + IPv6 flows {}); machine memory {}",
                    human_bytes(m.total()),
                    cfg.flow_table.capacity,
                    human_bytes(m.nat_sessions),
                    human_bytes(m.ipv6_flows),
                    machine
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}: invalid configuration: {e}", file.display());
                ExitCode::from(2)
            }
        },
        Cmd::Run { config } => run(&config),
        Cmd::Demo {
            json,
            write_captures,
        } => demo(json, write_captures.as_deref()),
        Cmd::Replay {
            config,
            inputs,
            out_dir,
            json,
            burst,
            verdicts,
            drops,
            workers,
            sessions,
            sessions_at,
        } => replay(
            &config,
            &inputs,
            &out_dir,
            json,
            &dataplane::replay::ReplayOptions {
                burst: usize::from(burst),
                verdicts,
                drops,
                workers: usize::from(workers),
                sessions,
                sessions_at: sessions_at.unwrap_or(dataplane::replay::sessions::SessionsAt::End),
                sessions_json: json,
            },
        ),
        Cmd::Ctl { socket, command } => {
            match dataplane::control::ctl(&socket, &command.join(" ")) {
                Ok(answer) => {
                    print!("{answer}");
                    if answer.starts_with("error:") {
                        ExitCode::from(2)
                    } else {
                        ExitCode::SUCCESS
                    }
                }
                Err(e) => {
                    eprintln!("dataplane ctl: {}: {e}", socket.display());
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn print_summary(s: &dataplane::replay::Summary, json: bool) {
    if json {
        match serde_json::to_string(s) {
            Ok(j) => println!("{j}"),
            Err(e) => eprintln!("cannot serialise the summary: {e}"),
        }
    } else {
        print!("{}", s.table());
    }
}

fn demo(json: bool, write_captures: Option<&std::path::Path>) -> ExitCode {
    let params = dataplane::demo::DemoParams::default();
    tracing::info!(?params, "demo starting");
    if !json {
        println!("{}", dataplane::demo::banner(&params));
    }
    let cfg = Config::default_demo();
    match dataplane::demo::run_recording(cfg.clone(), &params) {
        Ok((s, _, rec)) => {
            print_summary(&s, json);
            if let Some(dir) = write_captures {
                match dataplane::demo::write_recording(&cfg, &rec, dir) {
                    Ok(paths) => {
                        for p in paths {
                            eprintln!("wrote {}", p.display());
                        }
                    }
                    Err(e) => {
                        eprintln!("demo: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn replay(
    config: &std::path::Path,
    inputs: &[String],
    out_dir: &std::path::Path,
    json: bool,
    opts: &dataplane::replay::ReplayOptions,
) -> ExitCode {
    let cfg = match Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}: invalid configuration: {e}", config.display());
            return ExitCode::from(2);
        }
    };
    let ins = match dataplane::replay::parse_inputs(&cfg, inputs) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("dataplane replay: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = dataplane::replay::stop::install() {
        tracing::warn!("cannot install the SIGINT/SIGTERM handlers: {e}");
    }
    match dataplane::replay::replay_files_with(cfg, &ins, out_dir, opts) {
        Ok(s) => {
            print_summary(&s, json);
            match dataplane::replay::stop::requested() {
                Some(sig) => {
                    eprintln!(
                        "dataplane replay: interrupted by {}: outputs in {} hold the packets read before it",
                        dataplane::replay::stop::signal_name(sig),
                        out_dir.display()
                    );
                    ExitCode::from(u8::try_from(128 + sig).unwrap_or(130))
                }
                None => ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            eprintln!("dataplane replay: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "dpdk")]
fn run(path: &std::path::Path) -> ExitCode {
    let cfg = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}: invalid configuration: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    match dataplane::dpdk::run(&cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dataplane run: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(feature = "dpdk"))]
fn run(_path: &std::path::Path) -> ExitCode {
    eprintln!(
        "built without the `dpdk` feature: cargo run --release --features dpdk -- run --config FILE"
    );
    ExitCode::from(2)
}
