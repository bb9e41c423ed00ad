//! The control plane: the one way rooms, streams and bans change.
//!
//! Every change follows the same steps under the app's lock: the core plans it (checks
//! the rules, changes nothing), the store writes the change together with the callbacks it
//! causes in one transaction, and only then the in-memory state moves and the event is
//! broadcast. A failed write therefore leaves memory, store and callbacks as they were,
//! and an acknowledged change is on disk with its callbacks queued: nothing is lost on a
//! crash.
//!
//! Store writes block (SQLite, fsync); async callers run these methods on a blocking
//! thread. Reads only take the app's lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, broadcast};
use tracing::info;

use tributary_core::ban::BanList;
use tributary_core::registry::{AddKind, NewStream, Rooms, StreamInfo, StreamOrigin, UserCount};
use tributary_core::sequence::SequenceGuard;
use tributary_core::store::{Store, StoreError, WriteBatch, WriteOp};
use tributary_core::{AppConfig, AppId, CloseReason, CoreError, CoreEvent};

use crate::callbacks::payload;
use crate::clock::Clock;

/// Capacity of the event broadcast: a subscriber that falls this far behind loses the
/// oldest events (and is told so by `broadcast`), the publishers never wait.
const EVENT_CAPACITY: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("unknown app {0}")]
    UnknownApp(AppId),
    #[error(transparent)]
    Rule(#[from] CoreError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Base addresses that play URLs in callbacks and responses are built from.
#[derive(Debug, Clone)]
pub struct PlayUrls {
    /// e.g. `rtmp://127.0.0.1:1935`
    pub rtmp_base: String,
    /// e.g. `http://127.0.0.1:8080`
    pub http_base: String,
}

impl PlayUrls {
    pub fn rtmp(&self, app_id: AppId, stream_id: &str) -> String {
        format!("{}/{}/{}", self.rtmp_base, app_id, stream_id)
    }
    pub fn flv(&self, app_id: AppId, stream_id: &str) -> String {
        format!("{}/{}/{}.flv", self.http_base, app_id, stream_id)
    }
    pub fn hls(&self, app_id: AppId, stream_id: &str) -> String {
        format!("{}/{}/{}/playlist.m3u8", self.http_base, app_id, stream_id)
    }
}

/// The mutable state of one app.
struct AppState {
    rooms: Rooms,
    bans: BanList,
    sequence: SequenceGuard,
}

/// One app: its settings and its state.
pub struct AppRuntime {
    pub config: AppConfig,
    state: Mutex<AppState>,
}

impl AppRuntime {
    fn lock(&self) -> MutexGuard<'_, AppState> {
        // A panic while holding the lock cannot leave a half-applied change (commits are
        // plain in-memory updates after the store write), so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct ControlPlane {
    apps: HashMap<AppId, Arc<AppRuntime>>,
    store: Arc<dyn Store>,
    outbox_wakeup: Arc<Notify>,
    events: broadcast::Sender<CoreEvent>,
    play_urls: PlayUrls,
    clock: Arc<dyn Clock>,
}

impl ControlPlane {
    /// Loads every app's registry and ban list from the store, on the system clock.
    pub fn load(
        apps: Vec<AppConfig>,
        store: Arc<dyn Store>,
        play_urls: PlayUrls,
    ) -> Result<Self, StoreError> {
        Self::load_with_clock(apps, store, play_urls, crate::clock::system())
    }

    /// The same, on a given clock.
    pub fn load_with_clock(
        apps: Vec<AppConfig>,
        store: Arc<dyn Store>,
        play_urls: PlayUrls,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let mut map = HashMap::new();
        for config in apps {
            let stored = store.registry(config.app_id)?;
            let rooms = Rooms::restore(
                config.limits.max_streams_per_room,
                config.limits.max_rooms,
                stored.rooms,
                stored.streams,
            );
            let bans = BanList::restore(config.limits.max_banned_streams, stored.bans);
            info!(
                app_id = config.app_id,
                rooms = rooms.room_count(),
                bans = bans.len(),
                "app loaded"
            );
            map.insert(
                config.app_id,
                Arc::new(AppRuntime {
                    config,
                    state: Mutex::new(AppState {
                        rooms,
                        bans,
                        sequence: SequenceGuard::new(),
                    }),
                }),
            );
        }
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        Ok(ControlPlane {
            apps: map,
            store,
            outbox_wakeup: Arc::new(Notify::new()),
            events,
            play_urls,
            clock,
        })
    }

    /// The control plane's time (ms since the epoch): every time rule reads it here.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn app(&self, app_id: AppId) -> Option<&Arc<AppRuntime>> {
        self.apps.get(&app_id)
    }

    pub fn apps(&self) -> impl Iterator<Item = &Arc<AppRuntime>> {
        self.apps.values()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn play_urls(&self) -> &PlayUrls {
        &self.play_urls
    }

    /// Woken whenever a callback is queued; the outbox dispatcher waits on it.
    pub fn outbox_wakeup(&self) -> Arc<Notify> {
        self.outbox_wakeup.clone()
    }

    /// Every change, as it is committed.
    pub fn subscribe(&self) -> broadcast::Receiver<CoreEvent> {
        self.events.subscribe()
    }

    fn runtime(&self, app_id: AppId) -> Result<&Arc<AppRuntime>, ControlError> {
        self.apps
            .get(&app_id)
            .ok_or(ControlError::UnknownApp(app_id))
    }

    /// Writes a batch; wakes the outbox if it queued callbacks.
    pub(crate) fn write(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        self.store.apply(batch)?;
        if batch
            .ops
            .iter()
            .any(|op| matches!(op, WriteOp::EnqueueCallback(_)))
        {
            self.outbox_wakeup.notify_one();
        }
        Ok(())
    }

    fn announce(&self, event: CoreEvent) {
        // No subscriber is fine: nobody needs to hear it.
        let _ = self.events.send(event);
    }

    /// Adds a stream to a room (creating the room if needed) and queues `stream_create`.
    /// Adding the same stream again as the same user refreshes its title and extra info.
    pub fn add_stream(&self, app_id: AppId, req: NewStream) -> Result<StreamInfo, ControlError> {
        let app = self.runtime(app_id)?;
        let now = self.now_ms();
        let mut state = app.lock();
        let plan = state
            .rooms
            .plan_add(req, now, rand::random::<u32>() as u64)?;
        let mut batch = WriteBatch {
            app_id,
            ops: vec![WriteOp::PutRoom(plan.room.clone())],
        };
        if plan.stream.origin == StreamOrigin::Added {
            batch.ops.push(WriteOp::PutStream(plan.stream.clone()));
        }
        let event = (plan.kind == AddKind::New).then(|| CoreEvent::StreamAdded {
            app_id,
            room: plan.room.clone(),
            stream: plan.stream.clone(),
        });
        if let Some(ev) = &event {
            batch.ops.extend(payload::callbacks_for(
                &app.config,
                ev,
                &self.play_urls,
                now,
            ));
        }
        self.write(&batch)?;
        let stream = plan.stream.clone();
        state.rooms.commit_add(plan);
        drop(state);
        if let Some(ev) = event {
            info!(app_id, stream_id = %stream.stream_id, room_id = %stream.room_id, "stream added");
            self.announce(ev);
        }
        Ok(stream)
    }

    /// Removes a stream from its room's list and queues `stream_close` with `reason`.
    pub fn remove_stream(
        &self,
        app_id: AppId,
        room_id: &str,
        stream_id: &str,
        reason: CloseReason,
    ) -> Result<StreamInfo, ControlError> {
        let app = self.runtime(app_id)?;
        let now = self.now_ms();
        let mut state = app.lock();
        let plan = state.rooms.plan_remove(room_id, stream_id)?;
        let mut batch = WriteBatch {
            app_id,
            ops: Vec::new(),
        };
        if plan.room_closes {
            batch.ops.push(WriteOp::DeleteRoom {
                room_id: plan.room.room_id.clone(),
            });
        } else {
            batch.ops.push(WriteOp::PutRoom(plan.room.clone()));
        }
        batch.ops.push(WriteOp::DeleteStream {
            stream_id: plan.stream.stream_id.clone(),
        });
        let event = CoreEvent::StreamRemoved {
            app_id,
            room: plan.room.clone(),
            stream: plan.stream.clone(),
            reason,
            at_ms: now,
        };
        batch.ops.extend(payload::callbacks_for(
            &app.config,
            &event,
            &self.play_urls,
            now,
        ));
        self.write(&batch)?;
        state.rooms.commit_remove(&plan);
        drop(state);
        info!(app_id, stream_id, room_id, ?reason, "stream removed");
        self.announce(event);
        Ok(plan.stream)
    }

    /// The room's streams in creation order (empty when the room does not exist).
    pub fn list_streams(
        &self,
        app_id: AppId,
        room_id: &str,
    ) -> Result<Vec<StreamInfo>, ControlError> {
        let app = self.runtime(app_id)?;
        let state = app.lock();
        Ok(state
            .rooms
            .list(room_id)
            .map(<[_]>::to_vec)
            .unwrap_or_default())
    }

    /// The room's users by login time (empty when the room does not exist).
    pub fn room_users(
        &self,
        app_id: AppId,
        room_id: &str,
    ) -> Result<Vec<tributary_core::registry::RoomUser>, ControlError> {
        let app = self.runtime(app_id)?;
        let state = app.lock();
        Ok(state.rooms.users(room_id))
    }

    /// Takes every stream of the room owned by one of `users` (every stream when `None`)
    /// out of its room with `reason` (`stream_close` for each) and cuts their live
    /// publishers off. The streams removed.
    pub fn clear_users(
        &self,
        app_id: AppId,
        room_id: &str,
        users: Option<&[String]>,
        reason: CloseReason,
    ) -> Result<Vec<StreamInfo>, ControlError> {
        let streams = self.list_streams(app_id, room_id)?;
        let mut removed = Vec::new();
        for s in streams
            .iter()
            .filter(|s| users.is_none_or(|u| u.contains(&s.user_id)))
        {
            match self.remove_stream(app_id, room_id, &s.stream_id, reason) {
                Ok(info) => {
                    self.announce(CoreEvent::PublisherKicked {
                        app_id,
                        stream_id: info.stream_id.clone(),
                    });
                    removed.push(info);
                }
                // Gone meanwhile (its publisher left): nothing to take out.
                Err(ControlError::Rule(CoreError::StreamNotFound { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }

    pub fn user_counts(
        &self,
        app_id: AppId,
        room_ids: &[String],
    ) -> Result<Vec<UserCount>, ControlError> {
        let app = self.runtime(app_id)?;
        let state = app.lock();
        Ok(room_ids.iter().map(|r| state.rooms.user_count(r)).collect())
    }

    /// Checks and records a media-service `Sequence` for these ids.
    fn sequence(state: &mut AppState, ids: &[String], seq: u64, now: u64) -> Result<(), CoreError> {
        state
            .sequence
            .check(ids.iter().map(String::as_str), seq, now)?;
        state
            .sequence
            .record(ids.iter().map(String::as_str), seq, now);
        Ok(())
    }

    /// Puts ids on the ban list (pre-emptively if they do not exist) and announces each,
    /// so the live plane cuts off any live publisher of them.
    pub fn forbid(&self, app_id: AppId, ids: &[String], seq: u64) -> Result<(), ControlError> {
        let app = self.runtime(app_id)?;
        let now = self.now_ms();
        let mut state = app.lock();
        state
            .sequence
            .check(ids.iter().map(String::as_str), seq, now)?;
        let new = state.bans.plan_ban(ids)?;
        let batch = WriteBatch {
            app_id,
            ops: new
                .iter()
                .map(|id| WriteOp::Ban {
                    stream_id: id.to_string(),
                    at_ms: now,
                })
                .collect(),
        };
        if !batch.ops.is_empty() {
            self.write(&batch)?;
        }
        state.bans.commit_ban(new, now);
        state
            .sequence
            .record(ids.iter().map(String::as_str), seq, now);
        let rooms: Vec<Option<String>> = ids
            .iter()
            .map(|id| state.rooms.stream(id).map(|s| s.room_id.clone()))
            .collect();
        drop(state);
        for (id, room_id) in ids.iter().zip(rooms) {
            info!(app_id, stream_id = %id, "stream forbidden");
            self.announce(CoreEvent::StreamForbidden {
                app_id,
                stream_id: id.clone(),
                room_id,
            });
        }
        Ok(())
    }

    /// Takes ids off the ban list; ids that were not banned are no change.
    pub fn resume(&self, app_id: AppId, ids: &[String], seq: u64) -> Result<(), ControlError> {
        let app = self.runtime(app_id)?;
        let now = self.now_ms();
        let mut state = app.lock();
        state
            .sequence
            .check(ids.iter().map(String::as_str), seq, now)?;
        let found = state.bans.plan_unban(ids);
        let batch = WriteBatch {
            app_id,
            ops: found
                .iter()
                .map(|id| WriteOp::Unban {
                    stream_id: id.to_string(),
                })
                .collect(),
        };
        if !batch.ops.is_empty() {
            self.write(&batch)?;
        }
        state.bans.commit_unban(found);
        state
            .sequence
            .record(ids.iter().map(String::as_str), seq, now);
        drop(state);
        for id in ids {
            info!(app_id, stream_id = %id, "stream resumed");
            self.announce(CoreEvent::StreamResumed {
                app_id,
                stream_id: id.clone(),
            });
        }
        Ok(())
    }

    pub fn is_banned(&self, app_id: AppId, stream_id: &str) -> bool {
        self.apps
            .get(&app_id)
            .is_some_and(|app| app.lock().bans.is_banned(stream_id))
    }

    /// The live RTC publication of `stream_id`, if there is one (Sequence-checked like
    /// the other media-service calls). API-added streams are signalling only and do not
    /// count as live.
    pub fn rtc_state(
        &self,
        app_id: AppId,
        stream_id: &str,
        seq: u64,
    ) -> Result<Option<StreamInfo>, ControlError> {
        let app = self.runtime(app_id)?;
        let now = self.now_ms();
        let mut state = app.lock();
        Self::sequence(&mut state, &[stream_id.to_string()], seq, now)?;
        Ok(state
            .rooms
            .stream(stream_id)
            .filter(|s| s.origin == StreamOrigin::Published)
            .cloned())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::test_store::MemStore;

    fn plane(store: Arc<MemStore>) -> ControlPlane {
        let mut app = AppConfig::new(1, "s".into(), "c".into());
        app.callback_urls = vec!["http://hook/".into()];
        let urls = PlayUrls {
            rtmp_base: "rtmp://h".into(),
            http_base: "http://h".into(),
        };
        ControlPlane::load(vec![app], store, urls).unwrap()
    }

    fn new_stream(id: &str) -> NewStream {
        NewStream {
            stream_id: id.into(),
            room_id: "r".into(),
            user_id: "u".into(),
            user_name: String::new(),
            title: String::new(),
            extra_info: String::new(),
            censor_flag: 0,
            origin: StreamOrigin::Added,
        }
    }

    #[test]
    fn the_sequence_window_and_callback_times_follow_the_clock() {
        let store = Arc::new(MemStore::default());
        let clock = crate::clock::ManualClock::at(1_700_000_000_000);
        let mut app = AppConfig::new(1, "s".into(), "c".into());
        app.callback_urls = vec!["http://hook/".into()];
        let urls = PlayUrls {
            rtmp_base: "rtmp://h".into(),
            http_base: "http://h".into(),
        };
        let cp =
            ControlPlane::load_with_clock(vec![app], store.clone(), urls, clock.clone()).unwrap();
        let s = cp.add_stream(1, new_stream("a")).unwrap();
        assert_eq!(s.create_time_ms, 1_700_000_000_000);
        assert_eq!(store.callback_times("stream_create"), [1_700_000_000_000]);
        cp.forbid(1, &["x".into()], 5).unwrap();
        clock.advance(9_999);
        assert!(
            cp.resume(1, &["x".into()], 3).is_err(),
            "a smaller Sequence within 10 s is stale"
        );
        clock.advance(1);
        cp.resume(1, &["x".into()], 3).unwrap();
        assert!(!cp.is_banned(1, "x"));
    }

    #[test]
    fn a_failed_write_changes_nothing() {
        let store = Arc::new(MemStore::default());
        let cp = plane(store.clone());
        let mut events = cp.subscribe();
        store.fail.store(true, Ordering::SeqCst);
        assert!(matches!(
            cp.add_stream(1, new_stream("a")),
            Err(ControlError::Store(_))
        ));
        assert!(cp.list_streams(1, "r").unwrap().is_empty());
        assert!(events.try_recv().is_err());
        assert!(cp.forbid(1, &["x".into()], 1).is_err());
        assert!(!cp.is_banned(1, "x"));
        // The refused Sequence was not recorded either: the same value works later.
        store.fail.store(false, Ordering::SeqCst);
        cp.forbid(1, &["x".into()], 1).unwrap();
        assert!(cp.is_banned(1, "x"));
    }

    #[test]
    fn changes_are_written_with_their_callbacks_and_announced() {
        let store = Arc::new(MemStore::default());
        let cp = plane(store.clone());
        let mut events = cp.subscribe();
        cp.add_stream(1, new_stream("a")).unwrap();
        let batch = store.batches.lock().unwrap()[0].clone();
        assert!(matches!(batch.ops[0], WriteOp::PutRoom(_)));
        assert!(matches!(batch.ops[1], WriteOp::PutStream(_)));
        assert!(
            matches!(&batch.ops[2], WriteOp::EnqueueCallback(cb) if cb.event == "stream_create")
        );
        assert!(matches!(
            events.try_recv(),
            Ok(CoreEvent::StreamAdded { .. })
        ));

        cp.forbid(1, &["a".into(), "b".into()], 7).unwrap();
        // "a" is in a room (the feed of that room shows it); "b" is a pre-emptive ban.
        for (id, room) in [("a", Some(new_stream("a").room_id)), ("b", None)] {
            match events.try_recv() {
                Ok(CoreEvent::StreamForbidden {
                    app_id: 1,
                    stream_id,
                    room_id,
                }) => assert_eq!((stream_id.as_str(), room_id), (id, room)),
                other => panic!("{other:?}"),
            }
        }
        cp.resume(1, &["a".into()], 8).unwrap();
        assert!(matches!(
            events.try_recv(),
            Ok(CoreEvent::StreamResumed { .. })
        ));
        assert!(!cp.is_banned(1, "a") && cp.is_banned(1, "b"));

        cp.remove_stream(1, "r", "a", CloseReason::Deleted).unwrap();
        let last = store.batches.lock().unwrap().last().cloned().unwrap();
        assert!(matches!(&last.ops[0], WriteOp::DeleteRoom { room_id } if room_id == "r"));
        assert!(matches!(&last.ops[2], WriteOp::EnqueueCallback(cb) if cb.event == "stream_close"));
        assert!(matches!(
            events.try_recv(),
            Ok(CoreEvent::StreamRemoved {
                reason: CloseReason::Deleted,
                ..
            })
        ));
        assert!(matches!(
            cp.add_stream(2, new_stream("z")),
            Err(ControlError::UnknownApp(2))
        ));
    }
}
