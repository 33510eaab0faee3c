//! Glue between the pipeline and the `nat` crate.
//!
//! WORKAROUND: while `nat::NatConfig`/`nat::Nat` are not exported yet, the
//! `[nat]` table is kept as raw TOML and [`NatStage::process`] forwards
//! every packet untranslated. This module is the only place that changes
//! when the `nat` crate lands.

use core::net::Ipv4Addr;

use net::Classified;
use serde::Serialize;

use crate::Timestamp;
use crate::config::{Config, Role};
use crate::pipeline::{BuildError, Disposition};

/// The `[nat]` section.
pub type NatConfig = toml::Table;

/// Validate the `[nat]` section: `Err((field path below nat, reason))`.
pub fn validate(_cfg: &NatConfig) -> Result<(), (String, String)> {
    Ok(())
}

/// Pool addresses (answered for ARP on outside ports).
pub fn pool_addresses(_cfg: &NatConfig) -> Vec<Ipv4Addr> {
    Vec::new()
}

/// NAT figures for the summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NatSummary {
    pub sessions_active: u64,
    pub ports_in_use: u64,
    pub created: u64,
    pub expired: u64,
    pub evicted: u64,
    pub drops: std::collections::BTreeMap<String, u64>,
}

/// The NAT stage of the pipeline.
pub struct NatStage {
    pools: Vec<Ipv4Addr>,
}

impl NatStage {
    /// # Errors
    /// [`BuildError::Nat`] when the NAT refuses the configuration.
    pub fn new(cfg: &NatConfig, _config: &Config) -> Result<NatStage, BuildError> {
        Ok(NatStage {
            pools: pool_addresses(cfg),
        })
    }

    /// Whether `a` is a pool address.
    pub fn is_pool(&self, a: Ipv4Addr) -> bool {
        self.pools.contains(&a)
    }

    /// Whether an outside → inside packet to `dst` that NAT left untouched
    /// may still be forwarded.
    pub fn passes_untranslated(&self, _dst: Ipv4Addr) -> bool {
        false
    }

    /// Translate in place.
    ///
    /// # Errors
    /// The disposition for a dropped packet.
    pub fn process(
        &self,
        _frame: &mut [u8],
        _cls: &Classified,
        _ingress: Role,
        _now: Timestamp,
    ) -> Result<(), Disposition> {
        Ok(())
    }

    /// Expire sessions, at most `budget`.
    pub fn poll(&self, _now: Timestamp, _budget: usize) -> usize {
        0
    }

    pub fn summary(&self) -> NatSummary {
        NatSummary::default()
    }
}
