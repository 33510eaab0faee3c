//! The pipeline's clock type: `flow_entry::Timestamp` (u64 nanoseconds since
//! an arbitrary epoch). Drivers own clocks: replay uses capture timestamps,
//! DPDK a monotonic clock.

pub use flow_entry::Timestamp;
