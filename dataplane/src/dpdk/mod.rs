//! The DPDK driver (feature `dpdk`): a safe wrapper over `dpdk-sys` and the
//! `dataplane run` loop.
//!
//! Layers, bottom up:
//! - [`Eal`] — EAL initialisation (once per process), lcores.
//! - [`Mempool`], [`Mbuf`] — packet buffers; `Mbuf` is the frame type the
//!   pipeline works on in place.
//! - [`Port`] — a device (PCI address or vdev string) configured with one RX
//!   and one TX queue per worker, RSS on the 5-tuple where supported; burst
//!   I/O, `rte_eth_stats` + link status, stop/close.
//! - [`Ring`] / [`ring_port`] — ring-backed ports fed in-process (tests, bench).
//! - [`lcore::launch`] — closures on worker lcores.
//!
//! Every DPDK failure is a typed [`DpdkError`] carrying the errno and its
//! `rte_strerror` text. All `unsafe` of the dataplane lives in this module
//! (lib.rs allows `unsafe_code` for it alone).

mod eal;
mod error;
pub mod lcore;
mod mbuf;
mod mempool;
mod port;
mod ring;

pub use eal::{Eal, current_lcore};
pub use error::{DpdkError, RteError};
pub use mbuf::Mbuf;
pub use mempool::Mempool;
pub use port::{Port, PortInfo, PortSetup, PortStats};
pub use ring::{Ring, ring_port};
mod run;

pub use run::{
    MAX_BURST, PortReport, RunLimits, RunReport, STATS_PERIOD, WorkerStats, run, run_on, run_with,
};
