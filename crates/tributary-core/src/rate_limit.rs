//! Token buckets for per-app and per-room request limits, with the clock passed in.

use std::collections::HashMap;
use std::hash::Hash;

/// A classic token bucket: `burst` tokens at most, refilled at `rate` tokens per second.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate_per_ms: f64,
    burst: f64,
    tokens: f64,
    last_ms: u64,
}

impl TokenBucket {
    /// A full bucket. A rate of one per ten seconds is `rate = 0.1, burst = 1`.
    pub fn new(rate_per_sec: f64, burst: f64, now_ms: u64) -> Self {
        let burst = burst.max(1.0);
        TokenBucket {
            rate_per_ms: rate_per_sec.max(0.0) / 1000.0,
            burst,
            tokens: burst,
            last_ms: now_ms,
        }
    }

    fn refill(&mut self, now_ms: u64) {
        // A clock that steps back never adds or removes tokens.
        let elapsed = now_ms.saturating_sub(self.last_ms) as f64;
        self.tokens = (self.tokens + elapsed * self.rate_per_ms).min(self.burst);
        self.last_ms = self.last_ms.max(now_ms);
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now_ms: u64) -> bool {
        self.refill(now_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// True when the bucket has refilled completely: forgetting it changes nothing.
    pub fn is_full(&mut self, now_ms: u64) -> bool {
        self.refill(now_ms);
        self.tokens >= self.burst
    }
}

/// One bucket per key (a room, an action), created full on first use. The map is bounded:
/// when it reaches `max_keys`, full buckets are forgotten (they carry no state), and if
/// every bucket is still busy the request is refused rather than memory grown.
#[derive(Debug)]
pub struct KeyedLimiter<K> {
    buckets: HashMap<K, TokenBucket>,
    max_keys: usize,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    pub fn new(max_keys: usize) -> Self {
        KeyedLimiter {
            buckets: HashMap::new(),
            max_keys: max_keys.max(1),
        }
    }

    /// Takes a token from `key`'s bucket (rate per second, burst).
    pub fn try_take(&mut self, key: &K, rate_per_sec: f64, burst: f64, now_ms: u64) -> bool {
        if let Some(bucket) = self.buckets.get_mut(key) {
            return bucket.try_take(now_ms);
        }
        if self.buckets.len() >= self.max_keys {
            self.buckets.retain(|_, b| !b.is_full(now_ms));
            if self.buckets.len() >= self.max_keys {
                return false;
            }
        }
        let mut bucket = TokenBucket::new(rate_per_sec, burst, now_ms);
        let ok = bucket.try_take(now_ms);
        self.buckets.insert(key.clone(), bucket);
        ok
    }

    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_refills() {
        let mut b = TokenBucket::new(10.0, 10.0, 0);
        for _ in 0..10 {
            assert!(b.try_take(0));
        }
        assert!(!b.try_take(0));
        assert!(!b.try_take(99));
        assert!(b.try_take(100));
        assert!(!b.try_take(100));
        assert!(b.is_full(10_000));
    }

    #[test]
    fn slow_bucket_one_per_ten_seconds() {
        let mut b = TokenBucket::new(0.1, 1.0, 5_000);
        assert!(b.try_take(5_000));
        assert!(!b.try_take(14_999));
        assert!(b.try_take(15_000));
    }

    #[test]
    fn clock_going_back_is_harmless() {
        let mut b = TokenBucket::new(1.0, 1.0, 10_000);
        assert!(b.try_take(10_000));
        assert!(!b.try_take(5_000));
        assert!(b.try_take(11_000));
    }

    #[test]
    fn keyed_limiter_is_bounded() {
        let mut l: KeyedLimiter<u32> = KeyedLimiter::new(2);
        assert!(l.try_take(&1, 0.1, 1.0, 0));
        assert!(l.try_take(&2, 0.1, 1.0, 0));
        // Both buckets are busy: a third key is refused, not stored.
        assert!(!l.try_take(&3, 0.1, 1.0, 0));
        assert_eq!(l.len(), 2);
        // Ten seconds later both are full again and get forgotten.
        assert!(l.try_take(&3, 0.1, 1.0, 10_000));
        assert_eq!(l.len(), 1);
        assert!(!l.try_take(&3, 0.1, 1.0, 10_001));
    }
}
