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
use tracing::{info, warn};

use tributary_core::ban::BanList;
use tributary_core::registry::{
    AddKind, LeavePlan, NewStream, RoomUser, Rooms, StreamInfo, StreamOrigin, UserCount,
};
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
/// One room as the console lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RoomOverview {
    pub room_id: String,
    pub streams: Vec<tributary_core::registry::StreamInfo>,
    pub users: Vec<tributary_core::registry::RoomUser>,
}

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
    /// Other nodes' room lists, read from a shared store at most every half second.
    others: Mutex<crate::room_lists::RoomLists>,
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
            others: Mutex::default(),
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
        } else if self.store.shared() {
            // Listed on the other nodes too (as long as this node's lease runs).
            batch.ops.push(WriteOp::PutLiveStream(plan.stream.clone()));
        }
        let mut events = joined_events(
            app_id,
            &plan.room,
            plan.room_created,
            plan.joined.as_ref(),
            &plan.stream.user_id,
        );
        if plan.kind == AddKind::New {
            events.push(CoreEvent::StreamAdded {
                app_id,
                room: plan.room.clone(),
                stream: plan.stream.clone(),
            });
        }
        for ev in &events {
            batch.ops.extend(payload::callbacks_for(
                &app.config,
                ev,
                &self.play_urls,
                now,
            ));
        }
        self.write(&batch)?;
        let stream = plan.stream.clone();
        let new = plan.kind == AddKind::New;
        state.rooms.commit_add(plan);
        drop(state);
        if new {
            info!(app_id, stream_id = %stream.stream_id, room_id = %stream.room_id, "stream added");
        }
        for ev in events {
            self.announce(ev);
        }
        Ok(stream)
    }

    /// Puts a viewer session of `user_id` (a player or an event feed with a user-bound
    /// token) in `room_id`, creating the room if needed; queues `room_create` /
    /// `room_login` when the room or the member is new. The session id, to leave with.
    pub fn join(
        &self,
        app_id: AppId,
        room_id: &str,
        user_id: &str,
        user_name: &str,
    ) -> Result<u64, ControlError> {
        let app = self.runtime(app_id)?;
        let now = self.now_ms();
        let mut state = app.lock();
        let plan = state.rooms.plan_join(
            room_id,
            user_id,
            user_name,
            now,
            rand::random::<u32>() as u64,
        )?;
        let events = joined_events(
            app_id,
            &plan.room,
            plan.room_created,
            plan.joined.as_ref(),
            user_id,
        );
        self.write_events(&app.config, &events, None, now)?;
        state.rooms.commit_join(&plan);
        drop(state);
        if plan.joined.is_some() {
            info!(app_id, room_id, user_id, "viewer joined the room");
        }
        for ev in events {
            self.announce(ev);
        }
        Ok(plan.session)
    }

    /// Takes viewer session `session` of `user_id` out of `room_id`; queues
    /// `room_logout` / `room_close` when that ends the membership or the room. Nothing
    /// happens when the session is gone already (kicked, room closed).
    pub fn leave(
        &self,
        app_id: AppId,
        room_id: &str,
        user_id: &str,
        session: u64,
        reason: CloseReason,
    ) -> Result<(), ControlError> {
        let app = self.runtime(app_id)?;
        let now = self.now_ms();
        let state = app.lock();
        let Some(plan) = state.rooms.plan_leave(room_id, user_id, Some(session)) else {
            return Ok(());
        };
        self.finish_leave(app, state, &plan, reason, false, now)
    }

    /// Writes a leave's callbacks, applies it, releases the app's lock, then announces
    /// it: `room_logout` / `room_close` as the plan says.
    fn finish_leave(
        &self,
        app: &AppRuntime,
        mut state: MutexGuard<'_, AppState>,
        plan: &LeavePlan,
        reason: CloseReason,
        quiet_close: bool,
        now: u64,
    ) -> Result<(), ControlError> {
        let events = left_events(
            app.config.app_id,
            &plan.room,
            plan.left.as_ref(),
            plan.room_closes,
            reason,
            now,
            quiet_close,
        );
        self.write_events(&app.config, &events, closed(plan), now)?;
        state.rooms.commit_leave(plan);
        drop(state);
        for ev in events {
            self.announce(ev);
        }
        Ok(())
    }

    /// Writes the callbacks of membership events, and deletes the stored row of a room
    /// that `closes` (viewer sessions themselves are live state, gone with a restart).
    fn write_events(
        &self,
        app: &tributary_core::AppConfig,
        events: &[CoreEvent],
        closes: Option<&str>,
        now: u64,
    ) -> Result<(), StoreError> {
        let mut batch = WriteBatch {
            app_id: app.app_id,
            ops: Vec::new(),
        };
        if let Some(room_id) = closes {
            batch.ops.push(WriteOp::DeleteRoom {
                room_id: room_id.to_string(),
            });
        }
        for ev in events {
            batch
                .ops
                .extend(payload::callbacks_for(app, ev, &self.play_urls, now));
        }
        if batch.ops.is_empty() {
            return Ok(());
        }
        self.write(&batch)
    }

    /// Removes a stream from its room's list and queues `stream_close` with `reason`
    /// (and `room_logout` / `room_close` when its owner or the room is left with nothing).
    pub fn remove_stream(
        &self,
        app_id: AppId,
        room_id: &str,
        stream_id: &str,
        reason: CloseReason,
    ) -> Result<StreamInfo, ControlError> {
        self.remove_stream_with(app_id, room_id, stream_id, reason, false)
    }

    fn remove_stream_with(
        &self,
        app_id: AppId,
        room_id: &str,
        stream_id: &str,
        reason: CloseReason,
        quiet_close: bool,
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
        if plan.stream.origin != StreamOrigin::Added && self.store.shared() {
            batch.ops.push(WriteOp::DeleteLiveStream {
                stream_id: plan.stream.stream_id.clone(),
            });
        }
        let mut events = vec![CoreEvent::StreamRemoved {
            app_id,
            room: plan.room.clone(),
            stream: plan.stream.clone(),
            reason,
            at_ms: now,
        }];
        events.extend(left_events(
            app_id,
            &plan.room,
            plan.left.as_ref(),
            plan.room_closes,
            reason,
            now,
            quiet_close,
        ));
        for ev in &events {
            batch.ops.extend(payload::callbacks_for(
                &app.config,
                ev,
                &self.play_urls,
                now,
            ));
        }
        self.write(&batch)?;
        state.rooms.commit_remove(&plan);
        drop(state);
        info!(app_id, stream_id, room_id, ?reason, "stream removed");
        for ev in events {
            self.announce(ev);
        }
        Ok(plan.stream)
    }

    /// The room's streams on every node sharing the store, in creation order: this
    /// node's registry, then what the others list (their publishers and mix outputs)
    /// and API-added streams this node has not loaded. One node: [`Self::list_streams`].
    /// A store that does not answer leaves the others' out (logged).
    pub fn list_streams_everywhere(
        &self,
        app_id: AppId,
        room_id: &str,
    ) -> Result<Vec<StreamInfo>, ControlError> {
        let mut streams = self.list_streams(app_id, room_id)?;
        if !self.store.shared() {
            return Ok(streams);
        }
        let now = self.now_ms();
        let cached = self
            .others
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(app_id, room_id, now);
        let read = match cached {
            Some(list) => Ok(list),
            None => crate::blocking::run(|| self.store.room_streams(app_id, room_id, now)).inspect(
                |list| {
                    self.others.lock().unwrap_or_else(|e| e.into_inner()).put(
                        app_id,
                        room_id,
                        now,
                        list.clone(),
                    );
                },
            ),
        };
        match read {
            Ok(others) => {
                for s in others {
                    if !streams.iter().any(|m| m.stream_id == s.stream_id) {
                        streams.push(s);
                    }
                }
                streams.sort_by(|a, b| {
                    (a.create_time_ms, &a.stream_id).cmp(&(b.create_time_ms, &b.stream_id))
                });
            }
            Err(e) => warn!(app_id, room_id, error = %e, "other nodes' streams not listed"),
        }
        Ok(streams)
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

    /// Up to `limit` open rooms of the app (by id), each with its streams and users, as
    /// one consistent snapshot (for the operator's console).
    pub fn rooms_overview(
        &self,
        app_id: AppId,
        limit: usize,
    ) -> Result<Vec<RoomOverview>, ControlError> {
        let app = self.runtime(app_id)?;
        let state = app.lock();
        Ok(state
            .rooms
            .room_ids(limit)
            .into_iter()
            .map(|room_id| RoomOverview {
                streams: state
                    .rooms
                    .list(&room_id)
                    .map(<[_]>::to_vec)
                    .unwrap_or_default(),
                users: state.rooms.users(&room_id),
                room_id,
            })
            .collect())
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

    /// Takes every member of the room in `users` (everyone when `None`) out of it with
    /// `reason`: their streams leave the list (`stream_close` each) and their live
    /// publishers are cut off; their viewer sessions end. Kicked users are refused for the
    /// app's `kick_refusal_secs`. `room_close` is queued only when `room_callback` (a
    /// kick that empties the room always sends it). The streams removed.
    pub fn clear_users(
        &self,
        app_id: AppId,
        room_id: &str,
        users: Option<&[String]>,
        reason: CloseReason,
        room_callback: bool,
    ) -> Result<Vec<StreamInfo>, ControlError> {
        let app = self.runtime(app_id)?;
        let quiet = reason == CloseReason::RoomCleared && !room_callback;
        if reason == CloseReason::Kicked
            && let Some(kicked) = users
        {
            let now = self.now_ms();
            let until = now + u64::from(app.config.limits.kick_refusal_secs) * 1000;
            let mut state = app.lock();
            for u in kicked {
                state.rooms.refuse(room_id, u, now, until);
            }
        }
        // Viewers first, so the last stream's removal is what closes the room.
        let viewers: Vec<String> = app
            .lock()
            .rooms
            .viewers(room_id)
            .into_iter()
            .filter(|v| users.is_none_or(|u| u.contains(v)))
            .collect();
        for user in &viewers {
            let now = self.now_ms();
            let state = app.lock();
            let Some(plan) = state.rooms.plan_leave(room_id, user, None) else {
                continue;
            };
            self.finish_leave(app, state, &plan, reason, quiet, now)?;
        }
        if !viewers.is_empty() {
            self.announce(CoreEvent::ViewersRemoved {
                app_id,
                room_id: room_id.to_string(),
                users: users.map(<[String]>::to_vec),
            });
        }
        let streams = self.list_streams(app_id, room_id)?;
        let mut removed = Vec::new();
        for s in streams
            .iter()
            .filter(|s| users.is_none_or(|u| u.contains(&s.user_id)))
        {
            match self.remove_stream_with(app_id, room_id, &s.stream_id, reason, quiet) {
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

    /// Makes the app's ban list the stored one — bans and resumes another node made on a
    /// shared store — and announces each change, so this node's live plane cuts off (or
    /// lets back) its own publishers. Nothing is written and no callback is sent: the
    /// node that made the change did both. Returns how many ids were banned and resumed.
    pub fn sync_bans(
        &self,
        app_id: AppId,
        stored: &[(String, u64)],
    ) -> Result<(usize, usize), ControlError> {
        let app = self.runtime(app_id)?;
        let mut state = app.lock();
        let (added, removed) = state.bans.sync(stored);
        let rooms: Vec<Option<String>> = added
            .iter()
            .map(|id| state.rooms.stream(id).map(|s| s.room_id.clone()))
            .collect();
        drop(state);
        for (id, room_id) in added.iter().zip(rooms) {
            info!(app_id, stream_id = %id, "stream forbidden on another node");
            self.announce(CoreEvent::StreamForbidden {
                app_id,
                stream_id: id.clone(),
                room_id,
            });
        }
        for id in &removed {
            info!(app_id, stream_id = %id, "stream resumed on another node");
            self.announce(CoreEvent::StreamResumed {
                app_id,
                stream_id: id.clone(),
            });
        }
        Ok((added.len(), removed.len()))
    }

    /// Claims a signed request's nonce for every node sharing the store, for `keep_ms`
    /// (`Ok(false)`: already claimed — a replay). A shared store's round trip runs in
    /// `block_in_place`, so the worker's other requests move on meanwhile.
    pub fn claim_nonce(
        &self,
        app_id: AppId,
        scope: &str,
        nonce: &str,
        now_ms: u64,
        keep_ms: u64,
    ) -> Result<bool, StoreError> {
        let claim = || {
            self.store
                .claim_nonce(app_id, scope, nonce, now_ms, now_ms + keep_ms)
        };
        if self.store.shared() {
            crate::blocking::run(claim)
        } else {
            claim()
        }
    }

    /// Claims a moderation call's Sequence for every node sharing the store (a stale
    /// call is refused whichever node it reaches); a single node's in-memory guard
    /// decides alone.
    pub fn claim_sequence(
        &self,
        app_id: AppId,
        ids: &[String],
        seq: u64,
    ) -> Result<(), ControlError> {
        if !self.store.shared() {
            return Ok(());
        }
        let now = self.now_ms();
        let stale = crate::blocking::run(|| {
            self.store.claim_sequence(
                app_id,
                ids,
                seq,
                now,
                tributary_core::sequence::SEQUENCE_WINDOW_MS,
            )
        })?;
        match stale {
            None => Ok(()),
            Some((stream_id, last, age_ms)) => Err(CoreError::StaleSequence {
                stream_id,
                got: seq,
                last,
                age_ms,
            }
            .into()),
        }
    }

    /// Counts a call against a rate limit every node sharing the store enforces together
    /// (see [`Store::count_call`]): the calls in its window so far, this one included;
    /// `None` on a single node.
    pub fn count_call(
        &self,
        app_id: AppId,
        key: &str,
        window_ms: u64,
        now_ms: u64,
    ) -> Result<Option<u64>, StoreError> {
        if !self.store.shared() {
            return Ok(None);
        }
        crate::blocking::run(|| self.store.count_call(app_id, key, window_ms, now_ms))
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

/// The room a leave closes, if it does.
fn closed(plan: &LeavePlan) -> Option<&str> {
    plan.room_closes.then_some(plan.room.room_id.as_str())
}

/// What a member arriving causes: `RoomCreated` if the room is new (`creator` made it),
/// then `UserJoined` if the user was not a member yet.
fn joined_events(
    app_id: AppId,
    room: &tributary_core::registry::RoomInfo,
    room_created: bool,
    joined: Option<&RoomUser>,
    creator: &str,
) -> Vec<CoreEvent> {
    let mut events = Vec::new();
    if room_created {
        events.push(CoreEvent::RoomCreated {
            app_id,
            room: room.clone(),
            creator: creator.to_string(),
        });
    }
    if let Some(user) = joined {
        events.push(CoreEvent::UserJoined {
            app_id,
            room: room.clone(),
            user: user.clone(),
        });
    }
    events
}

/// What a member leaving causes: `UserLeft` if it was their last tie to the room, then
/// `RoomClosed` if the room is empty.
fn left_events(
    app_id: AppId,
    room: &tributary_core::registry::RoomInfo,
    left: Option<&RoomUser>,
    room_closes: bool,
    reason: CloseReason,
    now: u64,
    quiet_close: bool,
) -> Vec<CoreEvent> {
    let mut events = Vec::new();
    if let Some(user) = left {
        events.push(CoreEvent::UserLeft {
            app_id,
            room: room.clone(),
            user: user.clone(),
            reason,
            at_ms: now,
        });
    }
    if room_closes {
        events.push(CoreEvent::RoomClosed {
            app_id,
            room: room.clone(),
            reason,
            at_ms: now,
            quiet: quiet_close,
        });
    }
    events
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
        assert_eq!(
            batch.ops.len(),
            3,
            "no room callback URL, no room callbacks"
        );
        assert!(matches!(
            events.try_recv(),
            Ok(CoreEvent::RoomCreated { .. })
        ));
        assert!(matches!(
            events.try_recv(),
            Ok(CoreEvent::UserJoined { .. })
        ));
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
        assert!(matches!(events.try_recv(), Ok(CoreEvent::UserLeft { .. })));
        assert!(matches!(
            events.try_recv(),
            Ok(CoreEvent::RoomClosed { .. })
        ));
        assert!(matches!(
            cp.add_stream(2, new_stream("z")),
            Err(ControlError::UnknownApp(2))
        ));
    }

    fn events_of(batches: &[WriteBatch]) -> Vec<String> {
        batches
            .iter()
            .flat_map(|b| b.ops.iter())
            .filter_map(|op| match op {
                WriteOp::EnqueueCallback(cb) => Some(cb.event.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn members_log_in_and_out_and_rooms_open_and_close_with_them() {
        let store = Arc::new(MemStore::default());
        let mut app = AppConfig::new(1, "s".into(), "c".into());
        app.room_callback_urls = vec!["http://rooms/".into()];
        let urls = PlayUrls {
            rtmp_base: "rtmp://h".into(),
            http_base: "http://h".into(),
        };
        let cp = ControlPlane::load(vec![app], store.clone(), urls).unwrap();
        // A viewer opens the room; a publisher joins it; the viewer's second session
        // adds nothing.
        let v1 = cp.join(1, "r", "viewer", "V").unwrap();
        cp.add_stream(1, new_stream("a")).unwrap();
        let v2 = cp.join(1, "r", "viewer", "V").unwrap();
        assert_ne!(v1, v2);
        let users = cp.room_users(1, "r").unwrap();
        let mut roles: Vec<(&str, u8)> =
            users.iter().map(|u| (u.user_id.as_str(), u.role)).collect();
        roles.sort();
        assert_eq!(
            roles,
            [("u", 4), ("viewer", 2)],
            "an admin and an audience member"
        );
        assert_eq!(
            events_of(&store.batches.lock().unwrap()),
            ["room_create", "room_login", "room_login"]
        );
        // One session ends: still a member. The publisher leaves; then the last session.
        cp.leave(1, "r", "viewer", v1, CloseReason::Normal).unwrap();
        cp.leave(1, "r", "viewer", v1, CloseReason::Normal).unwrap();
        assert_eq!(cp.room_users(1, "r").unwrap().len(), 2);
        cp.remove_stream(1, "r", "a", CloseReason::Disconnected)
            .unwrap();
        cp.leave(1, "r", "viewer", v2, CloseReason::Disconnected)
            .unwrap();
        assert!(cp.room_users(1, "r").unwrap().is_empty());
        let batches = store.batches.lock().unwrap().clone();
        assert_eq!(
            events_of(&batches),
            [
                "room_create",
                "room_login",
                "room_login",
                "room_logout",
                "room_logout",
                "room_close"
            ]
        );
        let last = batches.last().unwrap();
        assert!(matches!(&last.ops[0], WriteOp::DeleteRoom { room_id } if room_id == "r"));
        let WriteOp::EnqueueCallback(close) = &last.ops[2] else {
            panic!("{:?}", last.ops);
        };
        let body: serde_json::Value = serde_json::from_str(&close.body).unwrap();
        assert_eq!(body["close_reason"], "2", "the last member went offline");
    }

    #[test]
    fn a_kicked_user_is_refused_for_a_while_and_a_closed_room_stays_quiet() {
        let store = Arc::new(MemStore::default());
        let mut app = AppConfig::new(1, "s".into(), "c".into());
        app.room_callback_urls = vec!["http://rooms/".into()];
        app.limits.kick_refusal_secs = 30;
        let clock = crate::clock::ManualClock::at(1_000_000);
        let urls = PlayUrls {
            rtmp_base: "rtmp://h".into(),
            http_base: "http://h".into(),
        };
        let cp =
            ControlPlane::load_with_clock(vec![app], store.clone(), urls, clock.clone()).unwrap();
        let mut events = cp.subscribe();
        cp.join(1, "r", "bad", "").unwrap();
        cp.join(1, "r", "good", "").unwrap();
        cp.clear_users(1, "r", Some(&["bad".into()]), CloseReason::Kicked, false)
            .unwrap();
        let mut saw_removed = false;
        while let Ok(ev) = events.try_recv() {
            if let CoreEvent::ViewersRemoved { users, .. } = ev {
                assert_eq!(users, Some(vec!["bad".to_string()]));
                saw_removed = true;
            }
        }
        assert!(saw_removed);
        assert!(matches!(
            cp.join(1, "r", "bad", ""),
            Err(ControlError::Rule(CoreError::UserKicked {
                secs_left: 30,
                ..
            }))
        ));
        let mut publish = new_stream("p");
        publish.user_id = "bad".into();
        publish.origin = StreamOrigin::Published;
        assert!(cp.add_stream(1, publish.clone()).is_err());
        clock.advance(30_000);
        cp.add_stream(1, publish).unwrap();
        // CloseRoom without RoomCloseCallback: everyone logs out, no room_close.
        cp.clear_users(1, "r", None, CloseReason::RoomCleared, false)
            .unwrap();
        let names = events_of(&store.batches.lock().unwrap());
        assert_eq!(names.iter().filter(|n| *n == "room_logout").count(), 3);
        assert!(!names.iter().any(|n| n == "room_close"));
        assert!(cp.room_users(1, "r").unwrap().is_empty());
    }
}
