//! The media-service `Sequence` rule: for one stream id, the Sequence of successive
//! moderation calls must strictly increase within any 10 seconds, so that a delayed
//! "forbid" can never overtake a later "resume".

use std::collections::HashMap;

use crate::error::CoreError;

/// How long a Sequence constrains the next one.
pub const SEQUENCE_WINDOW_MS: u64 = 10_000;

#[derive(Debug, Default)]
pub struct SequenceGuard {
    last: HashMap<String, (u64, u64)>,
    last_prune_ms: u64,
}

impl SequenceGuard {
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks `seq` against every id; accepts all or none.
    pub fn check<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str>,
        seq: u64,
        now_ms: u64,
    ) -> Result<(), CoreError> {
        for id in ids {
            if let Some(&(last, at)) = self.last.get(id) {
                let age_ms = now_ms.saturating_sub(at);
                if age_ms < SEQUENCE_WINDOW_MS && seq <= last {
                    return Err(CoreError::StaleSequence {
                        stream_id: id.to_string(),
                        got: seq,
                        last,
                        age_ms,
                    });
                }
            }
        }
        Ok(())
    }

    /// Records `seq` as the latest for every id. Entries older than the window carry no
    /// constraint and are dropped, at most once a second, so memory follows the request
    /// rate of the last ten seconds only.
    pub fn record<'a>(&mut self, ids: impl IntoIterator<Item = &'a str>, seq: u64, now_ms: u64) {
        if now_ms.saturating_sub(self.last_prune_ms) >= 1_000 {
            self.last
                .retain(|_, (_, at)| now_ms.saturating_sub(*at) < SEQUENCE_WINDOW_MS);
            self.last_prune_ms = now_ms;
        }
        for id in ids {
            self.last.insert(id.to_string(), (seq, now_ms));
        }
    }

    pub fn len(&self) -> usize {
        self.last.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strictly_increasing_within_ten_seconds() {
        let mut g = SequenceGuard::new();
        g.check(["a"], 5, 0).unwrap();
        g.record(["a"], 5, 0);
        assert!(matches!(
            g.check(["a"], 5, 1_000),
            Err(CoreError::StaleSequence {
                last: 5,
                got: 5,
                ..
            })
        ));
        assert!(g.check(["a"], 4, 9_999).is_err());
        assert!(g.check(["a"], 6, 1_000).is_ok());
        // After ten seconds any value is accepted again.
        assert!(g.check(["a"], 1, 10_000).is_ok());
        // Other ids are independent.
        assert!(g.check(["b"], 1, 1_000).is_ok());
    }

    #[test]
    fn batch_is_all_or_nothing_and_memory_is_pruned() {
        let mut g = SequenceGuard::new();
        g.record(["a"], 10, 0);
        assert!(g.check(["b", "a"], 3, 100).is_err());
        g.record(["c"], 1, 20_000);
        assert_eq!(g.len(), 1);
    }
}
