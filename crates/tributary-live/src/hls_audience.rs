//! Room membership for HLS players. HLS has no connection to hold: a player is a set of
//! playlist and segment fetches. A player that names a room and user (with a token
//! bound to them) is a member from its first playlist fetch until it stops fetching for
//! `idle` (a heartbeat timeout, `room_logout` reason 1) or the API removes it (its next
//! fetch is refused).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use tributary_core::{AppId, CloseReason};

use crate::auth::Attendance;

/// Who one HLS member is: the same user watching two streams is two players.
type Key = (AppId, String, String, String);

pub struct HlsAudience {
    idle: Duration,
    /// Bounded by the players themselves: each entry is a member that fetched within
    /// `idle`, and each fetch passed the token check.
    members: Mutex<HashMap<Key, (Attendance, Instant)>>,
}

/// What a playlist fetch finds.
#[derive(Debug, PartialEq, Eq)]
pub enum Presence {
    /// A member already: its heartbeat was renewed.
    Renewed,
    /// Not a member yet: the caller joins it and calls [`HlsAudience::admit`].
    New,
    /// The API took it out of its room: refuse the fetch.
    Removed,
}

impl HlsAudience {
    pub fn new(idle: Duration) -> Self {
        HlsAudience {
            idle,
            members: Mutex::new(HashMap::new()),
        }
    }

    fn key(app_id: AppId, stream: &str, room: &str, user: &str) -> Key {
        (app_id, stream.into(), room.into(), user.into())
    }

    /// Renews a member's heartbeat at `now`, or tells why it cannot.
    pub fn touch(
        &self,
        app_id: AppId,
        stream: &str,
        room: &str,
        user: &str,
        now: Instant,
    ) -> Presence {
        let mut m = self.members.lock().unwrap_or_else(|e| e.into_inner());
        let key = Self::key(app_id, stream, room, user);
        match m.get_mut(&key) {
            Some((a, _)) if a.ended().is_cancelled() => {
                m.remove(&key);
                Presence::Removed
            }
            Some((_, seen)) => {
                *seen = now;
                Presence::Renewed
            }
            None => Presence::New,
        }
    }

    /// Records a member that just joined.
    pub fn admit(
        &self,
        app_id: AppId,
        stream: &str,
        room: &str,
        user: &str,
        a: Attendance,
        now: Instant,
    ) {
        let mut m = self.members.lock().unwrap_or_else(|e| e.into_inner());
        // Two first fetches racing: the second attendance replaces (and so leaves with)
        // the first, which keeps the member counted once.
        m.insert(Self::key(app_id, stream, room, user), (a, now));
    }

    /// Lets go of the members idle since before `now - idle`; how many left.
    pub fn sweep(&self, now: Instant) -> usize {
        let mut m = self.members.lock().unwrap_or_else(|e| e.into_inner());
        let before = m.len();
        let idle = self.idle;
        m.retain(|_, (a, seen)| {
            let stale = now.saturating_duration_since(*seen) >= idle;
            if stale {
                a.set_reason(CloseReason::Timeout);
            }
            !stale && !a.ended().is_cancelled()
        });
        before - m.len()
    }

    pub fn len(&self) -> usize {
        self.members.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sweeps every half `idle`, for ever (spawn it beside the HTTP server).
    pub async fn run(self: std::sync::Arc<Self>) {
        let mut tick = tokio::time::interval(self.idle / 2);
        loop {
            tick.tick().await;
            self.sweep(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use tokio_util::sync::CancellationToken;

    fn attendance(
        left: &Arc<AtomicU32>,
        reason_seen: &Arc<Mutex<Option<CloseReason>>>,
    ) -> (Attendance, CancellationToken) {
        let (left, seen) = (left.clone(), reason_seen.clone());
        let t = CancellationToken::new();
        let a = Attendance::new(
            t.clone(),
            Box::new(move |r| {
                left.fetch_add(1, Ordering::SeqCst);
                *seen.lock().unwrap() = Some(r);
            }),
        );
        (a, t)
    }

    #[test]
    fn members_stay_while_they_fetch_and_leave_when_idle_or_removed() {
        let audience = HlsAudience::new(Duration::from_secs(10));
        let left = Arc::new(AtomicU32::new(0));
        let reason = Arc::new(Mutex::new(None));
        let t0 = Instant::now();
        assert_eq!(audience.touch(1, "s", "r", "u", t0), Presence::New);
        let (a, _) = attendance(&left, &reason);
        audience.admit(1, "s", "r", "u", a, t0);
        // Fetching every 6 s keeps the member in.
        for i in 1..=3 {
            let now = t0 + Duration::from_secs(6 * i);
            assert_eq!(audience.touch(1, "s", "r", "u", now), Presence::Renewed);
            assert_eq!(audience.sweep(now), 0);
        }
        // Ten silent seconds: a heartbeat timeout.
        assert_eq!(audience.sweep(t0 + Duration::from_secs(28)), 1);
        assert_eq!(left.load(Ordering::SeqCst), 1);
        assert_eq!(*reason.lock().unwrap(), Some(CloseReason::Timeout));
        assert!(audience.is_empty());

        // Removed by the API: the next fetch is refused, and the member is gone.
        let (a, kicked) = attendance(&left, &reason);
        audience.admit(1, "s", "r", "v", a, t0);
        kicked.cancel();
        assert_eq!(audience.touch(1, "s", "r", "v", t0), Presence::Removed);
        assert_eq!(left.load(Ordering::SeqCst), 2);
        assert_eq!(audience.touch(1, "s", "r", "v", t0), Presence::New);
    }
}
