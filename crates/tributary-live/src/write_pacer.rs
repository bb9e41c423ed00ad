//! Merged writes for players: a player is written at most once per interval, and what
//! arrived meanwhile goes out in that one send. The send (a system call, and on loopback
//! the receiver's wake-up) is most of a player's cost, so merging 100 ms of packets cuts
//! it by more than half, for at most that much latency on a path players buffer seconds
//! of anyway. Shared by RTMP and HTTP-FLV players; the rule is pure (time passed in).

use std::time::Duration;

use tokio::time::Instant;

pub struct WritePacer {
    every: Duration,
    /// The last write; `None` before the first, which goes at once.
    last: Option<Instant>,
}

impl WritePacer {
    /// At most one write per `every` (zero: every write at once).
    pub fn new(every: Duration) -> Self {
        WritePacer { every, last: None }
    }

    /// When the next write may go, seen at `now`; `None`: at once.
    pub fn next_at(&self, now: Instant) -> Option<Instant> {
        let at = self.last? + self.every;
        (now < at).then_some(at)
    }

    /// Waits until the next write may go.
    pub async fn ready(&self) {
        if let Some(at) = self.next_at(Instant::now()) {
            tokio::time::sleep_until(at).await;
        }
    }

    /// A write went out at `now`.
    pub fn wrote(&mut self, now: Instant) {
        self.last = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_spaced_by_the_interval_and_the_first_goes_at_once() {
        let ms = Duration::from_millis;
        let t0 = Instant::now();
        let mut p = WritePacer::new(ms(100));
        assert_eq!(p.next_at(t0), None);
        p.wrote(t0);
        assert_eq!(p.next_at(t0 + ms(30)), Some(t0 + ms(100)));
        assert_eq!(p.next_at(t0 + ms(100)), None);
        // After a quiet spell the next packet goes at once.
        p.wrote(t0 + ms(100));
        assert_eq!(p.next_at(t0 + ms(450)), None);
        // Zero: never waits.
        let mut z = WritePacer::new(Duration::ZERO);
        z.wrote(t0);
        assert_eq!(z.next_at(t0), None);
    }
}
