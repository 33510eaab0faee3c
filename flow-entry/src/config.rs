//! [`FlowTableConfig`]: how a [`crate::Shard`] is built (watermarks, wheel
//! tick and range, drain and eviction limits).

use core::time::Duration;

/// Largest value [`FlowTableConfig::validate`] accepts for `shards` (a field
/// no table uses any more; the limit is kept so configurations that set it
/// are checked as before).
pub const MAX_SHARDS: usize = 1024;

/// How a [`crate::Shard`] is built. All fields are public; call
/// [`FlowTableConfig::validate`] ([`crate::Shard::new`] checks the fields
/// it uses). The name is historical (it configured the former sharded,
/// locked table); `shards` and `capacity` are no longer read by
/// [`crate::Shard::new`], which takes its capacity as an argument.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowTableConfig {
    /// Unused: no table is split into shards any more (the NAT and the
    /// IPv6 flow tracker each own one [`crate::Shard`]). Still validated
    /// (a power of two in `1..=`[`MAX_SHARDS`]) so configurations that set
    /// it keep the same checks.
    pub shards: usize,
    /// Hard capacity in entries (sessions). Not read by
    /// [`crate::Shard::new`] (it takes the capacity as an argument); the
    /// NAT and the IPv6 flow tracker pass this field there. Validated as
    /// non-zero with `ceil(capacity / shards)` below `2^(31 - log2 shards)`
    /// (the former sharded index's limit, kept so validation is unchanged);
    /// the shard's own, lower limit, [`crate::Shard::MAX_CAPACITY`], is
    /// checked by [`crate::Shard::new`].
    pub capacity: usize,
    /// Fraction of the shard's capacity above which it starts draining
    /// (`0 < low_watermark < high_watermark <= 1`).
    pub high_watermark: f64,
    /// Fraction of the shard's capacity below which a draining shard stops.
    pub low_watermark: f64,
    /// Timer wheel tick: the resolution of deadlines (rounded up to the
    /// tick grid from the shard's `base`; stored as 64-bit nanoseconds, so
    /// they never wrap). At least 1 µs.
    pub tick: Duration,
    /// Wheel range: deadlines further than this from the wheel's time are
    /// clamped into the top level and re-armed when that slot fires. It sets
    /// the number of wheel levels (1..=6). At least one tick.
    pub range: Duration,
    /// Entries a draining shard sheds per insert (bounded work per packet).
    pub drain_budget: usize,
    /// Armed entries examined per eviction search, in expiry order
    /// (at least 1; the shard caps it at 64).
    pub evict_scan: usize,
    /// While a shard drains, new entries in it live at most this long
    /// (deadline clamped to `now + draining_timeout`); `None` (default):
    /// deadlines are kept as given.
    pub draining_timeout: Option<Duration>,
    /// Hash seed; `None` draws a per-process random seed (the default).
    /// Fixed seeds are for tests and benchmarks: which entries a shard
    /// releases, and in which order, never depends on the seed.
    pub hash_seed: Option<u64>,
}

impl Default for FlowTableConfig {
    fn default() -> Self {
        Self {
            shards: 16,
            capacity: 1 << 20,
            high_watermark: 0.90,
            low_watermark: 0.75,
            tick: Duration::from_millis(100),
            range: Duration::from_secs(24 * 3600),
            drain_budget: 2,
            evict_scan: 16,
            draining_timeout: None,
            hash_seed: None,
        }
    }
}

impl FlowTableConfig {
    /// `ceil(capacity / shards)`, what [`FlowTableConfig::validate`]'s
    /// capacity limit applies to.
    fn shard_capacity(&self) -> usize {
        self.capacity.div_ceil(self.shards.max(1))
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`ConfigError`] naming the field and the problem.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.shards.is_power_of_two() || self.shards > MAX_SHARDS {
            return Err(ConfigError::Shards(self.shards));
        }
        let slot_bits = 31 - self.shards.trailing_zeros();
        let max_per_shard = (1usize << slot_bits) - 1;
        if self.capacity == 0 || self.shard_capacity() > max_per_shard {
            return Err(ConfigError::Capacity {
                capacity: self.capacity,
                max: max_per_shard.saturating_mul(self.shards),
            });
        }
        let (h, l) = (self.high_watermark, self.low_watermark);
        if !(h > 0.0 && h <= 1.0 && l > 0.0 && l < h) {
            return Err(ConfigError::Watermarks { high: h, low: l });
        }
        if self.tick < Duration::from_micros(1) {
            return Err(ConfigError::Tick(self.tick));
        }
        if self.range < self.tick {
            return Err(ConfigError::Range(self.range));
        }
        if self.evict_scan == 0 {
            return Err(ConfigError::EvictScan);
        }
        Ok(())
    }
}

/// A configuration field that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("shards: {0} is not a power of two in 1..=1024")]
    Shards(usize),
    #[error("capacity: {capacity} is zero or above the maximum {max} for this shard count")]
    Capacity { capacity: usize, max: usize },
    #[error("high_watermark/low_watermark: need 0 < low ({low}) < high ({high}) <= 1")]
    Watermarks { high: f64, low: f64 },
    #[error("tick: {0:?} is below 1 µs")]
    Tick(Duration),
    #[error("range: {0:?} is shorter than the tick")]
    Range(Duration),
    #[error("evict_scan: must be at least 1")]
    EvictScan,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_errors_name_fields() {
        assert_eq!(FlowTableConfig::default().validate(), Ok(()));
        let bad = FlowTableConfig {
            shards: 3,
            ..Default::default()
        };
        assert_eq!(bad.validate(), Err(ConfigError::Shards(3)));
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .starts_with("shards:")
        );
        let bad = FlowTableConfig {
            low_watermark: 0.95,
            ..Default::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(ConfigError::Watermarks { .. })
        ));
        let bad = FlowTableConfig {
            capacity: 0,
            ..Default::default()
        };
        assert!(matches!(bad.validate(), Err(ConfigError::Capacity { .. })));
        let bad = FlowTableConfig {
            shards: 1024,
            capacity: 1 << 32,
            ..Default::default()
        };
        assert!(matches!(bad.validate(), Err(ConfigError::Capacity { .. })));
        let bad = FlowTableConfig {
            tick: Duration::ZERO,
            ..Default::default()
        };
        assert!(matches!(bad.validate(), Err(ConfigError::Tick(_))));
        let two = FlowTableConfig {
            shards: 2,
            capacity: 25,
            ..Default::default()
        };
        assert_eq!(two.shard_capacity(), 13);
    }
}
