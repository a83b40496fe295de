//! Random numbers for `$rand`, `$sample` and `$sampleRate`: keyed hashes of a counter, so no
//! dependency is needed and every thread draws from one sequence. Not for cryptography.

use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// A random 64-bit number.
pub(crate) fn random_u64() -> u64 {
    static KEYS: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = KEYS.get_or_init(std::collections::hash_map::RandomState::new).build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

/// A random double in [0, 1).
pub(crate) fn random_unit() -> f64 {
    // The top 53 bits fit a double's mantissa exactly.
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A random index below `n` (0 when `n` is 0).
pub(crate) fn random_below(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    usize::try_from(random_u64() % n as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_stay_in_range_and_vary() {
        let draws: Vec<f64> = (0..1000).map(|_| random_unit()).collect();
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
        assert!(draws.iter().any(|d| *d < 0.5) && draws.iter().any(|d| *d >= 0.5));
        assert!((0..1000).all(|_| random_below(7) < 7));
    }
}
