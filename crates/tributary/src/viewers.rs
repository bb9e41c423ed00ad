//! The live viewer sessions of room members — players and event feeds opened with a
//! user-bound token — so the server API can end them: KickoutUser and CloseRoom cancel
//! their tokens here, and each session stops within a moment. The control plane counts
//! the membership; this only holds what it takes to cut a session off.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;
use tracing::warn;

use tributary_api::{ControlError, ControlPlane};
use tributary_core::AppId;
use tributary_live::auth::Attendance;

type Member = (AppId, String, String);

pub struct Viewers {
    control: Arc<ControlPlane>,
    /// (app, room, user) → each live session's id and token. Bounded by the sessions
    /// themselves (connections, feeds, HLS heartbeats), which have their own limits.
    live: Mutex<HashMap<Member, Vec<(u64, CancellationToken)>>>,
}

impl Viewers {
    pub fn new(control: Arc<ControlPlane>) -> Arc<Self> {
        Arc::new(Viewers {
            control,
            live: Mutex::new(HashMap::new()),
        })
    }

    /// Puts a viewer session of `user` in `room` (writes its callbacks: blocking). The
    /// returned attendance takes it out again when dropped.
    pub fn join(
        self: &Arc<Self>,
        app_id: AppId,
        room: &str,
        user: &str,
    ) -> Result<Attendance, ControlError> {
        let session = self.control.join(app_id, room, user, user)?;
        let token = CancellationToken::new();
        let key: Member = (app_id, room.to_string(), user.to_string());
        self.lock()
            .entry(key.clone())
            .or_default()
            .push((session, token.clone()));
        let this = self.clone();
        Ok(Attendance::new(
            token,
            Box::new(move |reason| {
                {
                    let mut live = this.lock();
                    if let Some(list) = live.get_mut(&key) {
                        list.retain(|(id, _)| *id != session);
                        if list.is_empty() {
                            live.remove(&key);
                        }
                    }
                }
                let (app_id, room, user) = &key;
                if let Err(e) = this.control.leave(*app_id, room, user, session, reason) {
                    warn!(app_id, room_id = %room, user_id = %user, error = %e, "viewer could not leave its room cleanly");
                }
            }),
        ))
    }

    /// Ends the sessions of `users` in `room` (every user's when `None`); how many.
    pub fn end(&self, app_id: AppId, room: &str, users: Option<&[String]>) -> usize {
        let live = self.lock();
        let mut n = 0;
        for ((app, r, user), sessions) in live.iter() {
            if *app == app_id && r == room && users.is_none_or(|u| u.contains(user)) {
                for (_, t) in sessions {
                    t.cancel();
                    n += 1;
                }
            }
        }
        n
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Member, Vec<(u64, CancellationToken)>>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}
