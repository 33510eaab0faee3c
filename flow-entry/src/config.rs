//! [`FlowTableConfig`]: shards, capacity, watermarks, wheel tick and range.

use core::time::Duration;

/// Largest shard count (shard bits + slot bits must fit an index word).
pub const MAX_SHARDS: usize = 1024;

/// How a [`crate::FlowTable`] is built. All fields are public; call
/// [`FlowTableConfig::validate`] (the table's constructor does).
#[derive(Debug, Clone, PartialEq)]
pub struct FlowTableConfig {
    /// Number of shards: a power of two in `1..=1024`. More shards than
    /// worker threads (e.g. 4x) keeps lock contention low.
    pub shards: usize,
    /// Hard capacity in entries (sessions) for the whole table, split evenly:
    /// each shard holds at most `ceil(capacity / shards)` entries.
    pub capacity: usize,
    /// Fraction of a shard's capacity above which the shard starts draining
    /// (`0 < low_watermark < high_watermark <= 1`).
    pub high_watermark: f64,
    /// Fraction of a shard's capacity below which a draining shard stops.
    pub low_watermark: f64,
    /// Timer wheel tick: the resolution of deadlines (rounded up to a tick).
    /// Deadlines are stored as `u32` ticks from the table's first `now`, so
    /// the table's lifetime is limited to `tick * 2^32` (13.6 years at 100 ms).
    pub tick: Duration,
    /// Wheel range: deadlines further than this from the wheel's time are
    /// clamped into the top level and re-armed when that slot fires. It sets
    /// the number of wheel levels (1..=6).
    pub range: Duration,
    /// Entries a draining shard sheds per insert (bounded work per packet).
    pub drain_budget: usize,
    /// Armed entries examined per eviction search (embryonic first).
    pub evict_scan: usize,
    /// While a shard drains, new entries in it live at most this long
    /// (deadline clamped to `now + draining_timeout`); `None` (default):
    /// deadlines are kept as given.
    pub draining_timeout: Option<Duration>,
    /// Hash seed; `None` draws a per-process random seed (the default).
    /// Fixed seeds are for tests: nothing observable depends on the seed
    /// except per-shard draining decisions.
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
    /// A default configuration with `4 * workers` shards (rounded up to a
    /// power of two, at most 1024) and the given capacity.
    pub fn for_workers(workers: usize, capacity: usize) -> Self {
        let shards = workers
            .max(1)
            .saturating_mul(4)
            .next_power_of_two()
            .min(MAX_SHARDS);
        Self {
            shards,
            capacity,
            ..Self::default()
        }
    }

    /// Entries one shard may hold: `ceil(capacity / shards)`.
    pub fn shard_capacity(&self) -> usize {
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
        assert_eq!(FlowTableConfig::for_workers(3, 100).shards, 16);
        assert_eq!(FlowTableConfig::for_workers(1000, 100).shards, 1024);
        assert_eq!(FlowTableConfig::for_workers(2, 100).shard_capacity(), 13);
    }
}
