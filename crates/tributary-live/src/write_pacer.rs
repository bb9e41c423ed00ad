//! Merged writes for players: a player is written at most once per interval, and what
//! arrived meanwhile goes out in that one send. The send (a system call, and on loopback
//! the receiver's wake-up) is most of a player's cost, so merging 100 ms of packets cuts
//! it by more than half, for at most that much latency on a path players buffer seconds
//! of anyway. Shared by RTMP and HTTP-FLV players; the rule is pure (time passed in).
//!
//! The writes fall on one process-wide grid (multiples of the interval from one epoch),
//! not on each player's own phase: the players of a server are then woken together, in
//! one pass of the runtime's timer wheel, instead of one by one all through the interval,
//! each wake-up of a parked worker thread being a context switch. A player waits for its
//! slot without listening to its queue, so the packets that arrive meanwhile do not wake
//! it either: one wake-up per interval per player.

use std::sync::LazyLock;
use std::time::Duration;

use tokio::time::Instant;

/// The grid's origin, shared by every pacer of the process.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

pub struct WritePacer {
    every: Duration,
    epoch: Instant,
    /// The last write; `None` before the first, which goes at once.
    last: Option<Instant>,
}

impl WritePacer {
    /// At most one write per `every` (zero: every write at once), on the process's grid.
    pub fn new(every: Duration) -> Self {
        Self::on_grid(every, *EPOCH)
    }

    /// On the grid of `epoch` + multiples of `every`.
    pub fn on_grid(every: Duration, epoch: Instant) -> Self {
        WritePacer {
            every,
            epoch,
            last: None,
        }
    }

    /// When the next write may go, seen at `now`; `None`: at once. That is the first
    /// grid point after the last write: in a steady stream one write per interval, and
    /// never more than one interval after the last.
    pub fn next_at(&self, now: Instant) -> Option<Instant> {
        let last = self.last?;
        let every = self.every.as_nanos();
        if every == 0 {
            return None;
        }
        let slot = last.saturating_duration_since(self.epoch).as_nanos() / every + 1;
        let at = self.epoch + Duration::from_nanos(u64::try_from(slot * every).ok()?);
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
    fn writes_fall_on_the_grid_and_the_first_goes_at_once() {
        let ms = Duration::from_millis;
        let t0 = Instant::now();
        let mut p = WritePacer::on_grid(ms(100), t0);
        assert_eq!(p.next_at(t0), None);
        p.wrote(t0);
        assert_eq!(p.next_at(t0 + ms(30)), Some(t0 + ms(100)));
        assert_eq!(p.next_at(t0 + ms(100)), None);
        // Woken a little late for its slot: the next slot is still the grid's.
        p.wrote(t0 + ms(101));
        assert_eq!(p.next_at(t0 + ms(150)), Some(t0 + ms(200)));
        // After a quiet spell the next packet goes at once, off the grid; the write
        // after it goes back to the grid (never more than an interval later).
        p.wrote(t0 + ms(100));
        assert_eq!(p.next_at(t0 + ms(450)), None);
        p.wrote(t0 + ms(470));
        assert_eq!(p.next_at(t0 + ms(471)), Some(t0 + ms(500)));
        // Two pacers with different phases share the slots.
        let mut q = WritePacer::on_grid(ms(100), t0);
        q.wrote(t0 + ms(437));
        assert_eq!(q.next_at(t0 + ms(438)), p.next_at(t0 + ms(438)));
        // Zero: never waits.
        let mut z = WritePacer::on_grid(Duration::ZERO, t0);
        z.wrote(t0);
        assert_eq!(z.next_at(t0), None);
    }
}
