//! Replay guard for signed requests: a nonce may be used once per app inside the
//! timestamp window.
//!
//! The vendor signs only `AppId + Nonce + Secret + Timestamp`, so a captured URL can be
//! replayed verbatim for as long as its timestamp stays in the window. Remembering nonces
//! for that long closes the hole. Memory is bounded two ways: entries live in two
//! generations that rotate every window-span (so each entry is kept between one and two
//! spans, long enough to outlive any timestamp that could still be accepted), and a cap on
//! the entries refuses new requests instead of growing (the rate limits keep honest
//! traffic far below it).

use std::collections::HashSet;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use crate::error::CoreError;

/// Whether a request's timestamp `ts` is within `±window` of `now` (all seconds). Never
/// overflows: `i64::MIN` or `i64::MAX` is simply far away.
pub fn within_window(now: i64, ts: i64, window: i64) -> bool {
    now.checked_sub(ts)
        .is_some_and(|d| d.unsigned_abs() <= window.unsigned_abs())
}

#[derive(Debug)]
pub struct ReplayGuard {
    /// How long an entry must be remembered, in seconds (twice the ± window).
    span_secs: u64,
    max_entries: usize,
    current: HashSet<u64>,
    previous: HashSet<u64>,
    generation_start: u64,
    hash_key: u64,
}

impl ReplayGuard {
    /// `window_secs` is the accepted clock skew (±); `hash_key` salts the nonce hashes so
    /// nobody can aim collisions at the guard.
    pub fn new(window_secs: u64, max_entries: usize, hash_key: u64, now_secs: u64) -> Self {
        ReplayGuard {
            span_secs: window_secs.saturating_mul(2).max(1),
            max_entries: max_entries.max(1),
            current: HashSet::new(),
            previous: HashSet::new(),
            generation_start: now_secs,
            hash_key,
        }
    }

    fn digest(&self, nonce: &str) -> u64 {
        let mut h = DefaultHasher::new();
        self.hash_key.hash(&mut h);
        nonce.hash(&mut h);
        h.finish()
    }

    /// Records `nonce`, or refuses it if it was seen within the span.
    pub fn check_and_insert(&mut self, nonce: &str, now_secs: u64) -> Result<(), CoreError> {
        let elapsed = now_secs.saturating_sub(self.generation_start);
        if elapsed >= self.span_secs.saturating_mul(2) {
            self.previous.clear();
            self.current.clear();
            self.generation_start = now_secs;
        } else if elapsed >= self.span_secs {
            self.previous = std::mem::take(&mut self.current);
            self.generation_start = now_secs;
        }
        let d = self.digest(nonce);
        if self.current.contains(&d) || self.previous.contains(&d) {
            return Err(CoreError::NonceReplayed);
        }
        if self.current.len() + self.previous.len() >= self.max_entries {
            return Err(CoreError::ReplayGuardFull {
                max: self.max_entries,
            });
        }
        self.current.insert(d);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_never_overflows() {
        assert!(within_window(1000, 1000, 600));
        assert!(within_window(1000, 400, 600));
        assert!(!within_window(1000, 399, 600));
        assert!(within_window(1000, 1600, 600));
        assert!(!within_window(1000, 1601, 600));
        assert!(!within_window(1000, i64::MIN, 600));
        assert!(!within_window(1000, i64::MAX, 600));
        assert!(!within_window(-5, i64::MAX, 600));
        assert!(!within_window(i64::MIN, i64::MAX, i64::MAX));
    }

    #[test]
    fn refuses_a_reused_nonce_within_the_window() {
        let mut g = ReplayGuard::new(600, 100, 7, 1_000);
        assert!(g.check_and_insert("abc", 1_000).is_ok());
        assert_eq!(
            g.check_and_insert("abc", 1_001),
            Err(CoreError::NonceReplayed)
        );
        assert!(g.check_and_insert("abd", 1_001).is_ok());
        // Still refused after one rotation (1200 s later)...
        assert_eq!(
            g.check_and_insert("abc", 2_300),
            Err(CoreError::NonceReplayed)
        );
        // ...and forgotten after two, when no timestamp from then can be valid any more.
        assert!(g.check_and_insert("abc", 4_700).is_ok());
    }

    #[test]
    fn is_bounded() {
        let mut g = ReplayGuard::new(600, 3, 7, 0);
        for n in ["a", "b", "c"] {
            assert!(g.check_and_insert(n, 0).is_ok());
        }
        assert_eq!(
            g.check_and_insert("d", 0),
            Err(CoreError::ReplayGuardFull { max: 3 })
        );
        assert_eq!(g.len(), 3);
        // After two spans everything is forgotten.
        assert!(g.check_and_insert("d", 2_400).is_ok());
        assert_eq!(g.len(), 1);
    }
}
