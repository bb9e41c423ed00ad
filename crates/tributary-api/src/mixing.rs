//! Mix tasks: the one way they start, change and stop, whatever the dialect.
//!
//! The same steps as the control plane: the core plans the change (owner, Sequence, fixed
//! fields, limits), the engine checks what only it can know (budget, live inputs, images)
//! and starts or updates the media, the store writes the task together with its
//! `mix_start`/`mix_stop` callbacks, and only then memory follows. A task the store
//! could not keep is stopped again, so an acknowledged task is always one that survives a
//! restart.
//!
//! The engine is behind a trait: this crate knows no FFmpeg.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use serde_json::{Map, Value, json};
use tracing::{debug, info, warn};

use tributary_core::mix::{MixLimits, MixSpec, RoomTarget, Target};
use tributary_core::mix_task::{MixTask, MixTasks, TaskError};
use tributary_core::registry::{NewStream, StreamOrigin};
use tributary_core::store::{NewCallback, StoreError, WriteBatch, WriteOp};
use tributary_core::{AppConfig, AppId, CloseReason, CoreEvent};

use crate::callbacks::payload::sign_payload;
use crate::cluster::{Cluster, Peer};
use crate::control::{ControlError, ControlPlane};

/// Most tasks per app.
pub const MAX_TASKS_PER_APP: usize = 1000;

/// How long a task this node could not start waits for its next try after its
/// `failures`-th failure: 2 s, doubling, at most a minute. A refusal for want of budget is
/// cheap to repeat, but one that fetches an image holds its app's tasks while it waits.
pub fn retry_after_ms(failures: u32) -> u64 {
    (2_000u64 << failures.saturating_sub(1).min(5)).min(60_000)
}

/// Why the engine refused a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineRefusal {
    OverBudget(String),
    InputMissing(String),
    /// An image reference that is not usable (scheme, name).
    ImageReference(String),
    /// An image that could not be fetched or decoded, or is too big.
    ImageLoad(String),
    /// An input URL the URL policy refuses (the message names the field and why).
    InputUrl(String),
    /// An output URL the URL policy refuses.
    OutputUrl(String),
    /// The node could not start the task now (no thread to be had): retry.
    Internal(String),
    /// A label that cannot be drawn (its font is missing).
    Label(String),
}

/// What the mixing control needs from a media engine.
pub trait MixEngine: Send + Sync + 'static {
    /// Checks a task before it is accepted; `require_inputs`: its input streams must be live.
    fn check(
        &self,
        app_id: AppId,
        task_id: &str,
        spec: &MixSpec,
        require_inputs: bool,
    ) -> Result<(), EngineRefusal>;
    /// Starts the task, or updates it in place.
    fn start(&self, app_id: AppId, task_id: &str, spec: &MixSpec) -> Result<(), EngineRefusal>;
    fn stop(&self, app_id: AppId, task_id: &str);
    /// The frame rate a live stream announces or shows, if known.
    fn stream_fps(&self, _app_id: AppId, _stream_id: &str) -> Option<f64> {
        None
    }
    /// Whether the task runs here now.
    fn is_running(&self, app_id: AppId, task_id: &str) -> bool;
    /// The picture size of a live stream, from its metadata.
    fn stream_size(&self, app_id: AppId, stream_id: &str) -> Option<(u32, u32)>;
}

#[derive(Debug, thiserror::Error)]
pub enum MixControlError {
    #[error(transparent)]
    Rule(#[from] TaskError),
    #[error("engine refused")]
    Engine(EngineRefusal),
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An output's `TargetRoom` names a room that does not exist (no streams).
    #[error("output {stream}: room {room} does not exist; publish or add a stream to it first")]
    TargetRoomMissing { stream: String, room: String },
}

/// Why a task ended, for logs and the callback's context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Requested,
    Idle,
    /// `WaitVideoInput`: no video came in time.
    NoVideo,
}

pub struct MixControl {
    control: Arc<ControlPlane>,
    engine: Arc<dyn MixEngine>,
    apps: HashMap<AppId, Mutex<MixTasks>>,
    /// Set on a node that shares its store with others.
    cluster: OnceLock<Arc<Cluster>>,
    /// Each auto-mix's inputs as last applied (a periodic check re-applies only a change).
    auto_inputs: Mutex<HashMap<(AppId, String), Vec<String>>>,
    /// Tasks held here whose start failed when they were resumed, adopted or handed over
    /// (this node over its budget, say), with their failures so far and when to try
    /// again: no caller waits for them, so [`MixControl::retry_not_started`] tries again,
    /// and the failover scan offers them to another node meanwhile.
    not_started: Mutex<HashMap<(AppId, String), (u32, u64)>>,
    /// Set while the fence holds every task stopped (the lease may be lost): nothing
    /// starts until the lease is back.
    suspended: AtomicBool,
}

impl MixControl {
    /// Loads every app's stored tasks (not started yet: see [`MixControl::resume_all`]).
    pub fn load(
        control: Arc<ControlPlane>,
        engine: Arc<dyn MixEngine>,
    ) -> Result<Self, StoreError> {
        let mut apps = HashMap::new();
        for app in control.apps() {
            let id = app.config.app_id;
            let tasks = control.store().mix_tasks(id)?;
            let limits = MixLimits {
                max_inputs: app.config.limits.max_mix_inputs as usize,
                max_outputs: app.config.limits.max_mix_outputs as usize,
            };
            apps.insert(
                id,
                Mutex::new(MixTasks::restore(MAX_TASKS_PER_APP, limits, tasks)),
            );
        }
        Ok(MixControl {
            control,
            engine,
            apps,
            cluster: OnceLock::new(),
            auto_inputs: Mutex::new(HashMap::new()),
            not_started: Mutex::new(HashMap::new()),
            suspended: AtomicBool::new(false),
        })
    }

    /// Joins a cluster (once, at start): tasks may then run on other nodes.
    pub fn set_cluster(&self, cluster: Arc<Cluster>) {
        let _ = self.cluster.set(cluster);
    }

    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.get()
    }

    /// The other node a call about `task_id` belongs to: the one running it (a task
    /// this node runs, or one no live node runs, is answered here).
    pub fn owner_elsewhere(&self, app_id: AppId, task_id: &str) -> Option<Peer> {
        let cluster = self.cluster.get()?;
        if self.tasks(app_id).ok()?.get(task_id).is_some() {
            return None;
        }
        crate::blocking::run(|| cluster.placement.owner(app_id, task_id))
            .filter(|p| p.node != cluster.node)
    }

    /// Where a task should start, when not here: a new task, placed by cost and by where
    /// its inputs are published. An update stays where the task runs.
    pub fn place_elsewhere(&self, app_id: AppId, task: &MixTask) -> Option<Peer> {
        let cluster = self.cluster.get()?;
        if self.tasks(app_id).ok()?.get(&task.task_id).is_some() {
            return None;
        }
        let spec = self.effective(app_id, task);
        crate::blocking::run(|| cluster.placement.place(app_id, &task.task_id, &spec))
            .filter(|p| p.node != cluster.node)
    }

    /// The node a task this node runs should move to (a drain: this node takes none).
    pub fn place_away(&self, app_id: AppId, task: &MixTask) -> Option<Peer> {
        let cluster = self.cluster.get()?;
        let spec = self.effective(app_id, task);
        crate::blocking::run(|| cluster.placement.place(app_id, &task.task_id, &spec))
            .filter(|p| p.node != cluster.node)
    }

    /// Another node that publishes `stream_id`, when this one does not (a transcode
    /// runs where its input is).
    pub fn origin_elsewhere(&self, app_id: AppId, stream_id: &str) -> Option<Peer> {
        let cluster = self.cluster.get()?;
        crate::blocking::run(|| cluster.placement.origin(app_id, stream_id))
            .filter(|p| p.node != cluster.node)
    }

    fn tasks(&self, app_id: AppId) -> Result<MutexGuard<'_, MixTasks>, ControlError> {
        self.apps
            .get(&app_id)
            .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()))
            .ok_or(ControlError::UnknownApp(app_id))
    }

    fn app_config(&self, app_id: AppId) -> Result<&AppConfig, ControlError> {
        self.control
            .app(app_id)
            .map(|a| &a.config)
            .ok_or(ControlError::UnknownApp(app_id))
    }

    /// The spec to run now: an auto-mix takes the room's current streams.
    fn effective(&self, app_id: AppId, task: &MixTask) -> MixSpec {
        if !task.is_auto() {
            return task.spec.clone();
        }
        // The room's streams on every node: those held elsewhere are relayed in.
        let streams: Vec<String> = self
            .control
            .list_streams_everywhere(app_id, &task.room_id)
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.stream_id)
            .collect();
        let max_inputs = self
            .control
            .app(app_id)
            .map_or(tributary_core::mix::MAX_INPUTS, |a| {
                a.config.limits.max_mix_inputs as usize
            });
        task.effective_spec(&streams, max_inputs)
    }

    /// Starts every stored task again (after a restart). Failures are logged; the task
    /// stays stored so a later start or stop can act on it.
    ///
    /// Runs in the background while the server already serves: each task is taken under
    /// its app's lock, as stored *now*, so a StopMix or an update that came first wins
    /// and nothing stopped is started again.
    pub fn resume_all(&self) {
        for (app_id, tasks) in &self.apps {
            let ids: Vec<String> = tasks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|t| t.task_id.clone())
                .collect();
            for id in ids {
                let guard = tasks.lock().unwrap_or_else(|e| e.into_inner());
                let Some(t) = guard.get(&id).cloned() else {
                    continue;
                };
                if self.engine.is_running(*app_id, &id) {
                    continue;
                }
                self.run_stored(*app_id, &t, "resumed");
                drop(guard);
            }
        }
    }

    /// Starts a stored task again as it is (no callback: its `mix_start` went out when it
    /// first started). A failure is logged and remembered for
    /// [`MixControl::retry_not_started`]; returns whether the task runs.
    fn run_stored(&self, app_id: AppId, t: &MixTask, how: &str) -> bool {
        match self.start_stored(app_id, t) {
            Ok(()) => {
                info!(app_id, task_id = %t.task_id, "mix task {how}");
                true
            }
            Err(e) => {
                warn!(app_id, task_id = %t.task_id, error = ?e, "mix task could not be {how}");
                false
            }
        }
    }

    fn start_stored(&self, app_id: AppId, t: &MixTask) -> Result<(), EngineRefusal> {
        let key = (app_id, t.task_id.clone());
        let spec = self.effective(app_id, t);
        if let Err(e) = self.engine.start(app_id, &t.task_id, &spec) {
            let now = self.control.now_ms();
            let mut pending = self.lock_not_started();
            let failures = pending.get(&key).map_or(0, |f| f.0) + 1;
            pending.insert(key, (failures, now + retry_after_ms(failures)));
            return Err(e);
        }
        self.lock_not_started().remove(&key);
        // Listings in rooms live in memory only: list them again.
        for (stream, room) in listed_outputs(t) {
            self.list(app_id, &stream, &room);
        }
        Ok(())
    }

    fn lock_not_started(&self) -> MutexGuard<'_, HashMap<(AppId, String), (u32, u64)>> {
        self.not_started.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts again, once their wait is over ([`retry_after_ms`]), the tasks held here
    /// whose start failed (see `not_started`) and that `mine` says the store still marks
    /// as this node's, and returns those that still do not run here: the failover scan
    /// offers them to another node on every scan. A task stopped or released meanwhile is
    /// forgotten; nothing starts while the fence holds every task stopped.
    pub fn retry_not_started(&self, mine: impl Fn(AppId, &str) -> bool) -> Vec<(AppId, MixTask)> {
        if self.suspended.load(Ordering::Relaxed) {
            return Vec::new();
        }
        let now = self.control.now_ms();
        let pending: Vec<((AppId, String), u64)> = self
            .lock_not_started()
            .iter()
            .map(|(k, (_, at))| (k.clone(), *at))
            .collect();
        let mut refused = Vec::new();
        for ((app_id, id), at) in pending {
            let Ok(tasks) = self.tasks(app_id) else {
                self.lock_not_started().remove(&(app_id, id));
                continue;
            };
            let held = tasks.get(&id).cloned();
            match held {
                Some(_) if !mine(app_id, &id) => {}
                Some(t) if self.engine.is_running(app_id, &id) => {
                    self.lock_not_started().remove(&(app_id, t.task_id));
                }
                Some(t) if now < at => refused.push((app_id, t)),
                Some(t) => match self.start_stored(app_id, &t) {
                    Ok(()) => info!(app_id, task_id = %id, "mix task started on a retry"),
                    Err(e) => {
                        debug!(app_id, task_id = %id, error = ?e, "mix task still not started");
                        refused.push((app_id, t));
                    }
                },
                _ => {
                    self.lock_not_started().remove(&(app_id, id));
                }
            }
            drop(tasks);
        }
        refused
    }

    /// Stops every task running here without touching the store or calling back: this
    /// node lost its lease (the store stopped answering), so another node may adopt its
    /// tasks, and two nodes must not publish one output. [`Self::resume_owned`] undoes it.
    pub fn suspend_all(&self) -> usize {
        self.suspended.store(true, Ordering::Relaxed);
        let mut n = 0;
        for (app_id, tasks) in &self.apps {
            let tasks = tasks.lock().unwrap_or_else(|e| e.into_inner());
            for t in tasks.iter() {
                if self.engine.is_running(*app_id, &t.task_id) {
                    self.engine.stop(*app_id, &t.task_id);
                    warn!(app_id, task_id = %t.task_id, "mix task suspended: this node lost its lease");
                    n += 1;
                }
            }
        }
        n
    }

    /// After a suspension: runs again the tasks `still_mine` says this node still owns,
    /// and forgets the others (another node adopted them meanwhile).
    pub fn resume_owned(&self, still_mine: impl Fn(AppId, &str) -> bool) {
        self.suspended.store(false, Ordering::Relaxed);
        for (app_id, tasks) in &self.apps {
            let mut tasks = tasks.lock().unwrap_or_else(|e| e.into_inner());
            let ids: Vec<String> = tasks.iter().map(|t| t.task_id.clone()).collect();
            for id in ids {
                if self.engine.is_running(*app_id, &id) {
                    continue;
                }
                if still_mine(*app_id, &id) {
                    if let Some(t) = tasks.get(&id).cloned() {
                        self.run_stored(*app_id, &t, "resumed after the lease came back");
                    }
                } else if let Some(t) = tasks.commit_stop(&id) {
                    info!(app_id, task_id = %id, "mix task left to the node that adopted it");
                    for (stream, room) in listed_outputs(&t) {
                        self.unlist(*app_id, &stream, &room);
                    }
                }
            }
        }
    }

    /// Every task this node holds, as stored.
    pub fn held(&self) -> Vec<(AppId, MixTask)> {
        let mut out = Vec::new();
        for (app_id, tasks) in &self.apps {
            let tasks = tasks.lock().unwrap_or_else(|e| e.into_inner());
            out.extend(tasks.iter().map(|t| (*app_id, t.clone())));
        }
        out
    }

    /// Stops a task here without touching the store or calling back, and forgets it:
    /// it goes on on another node (a drain), which lists its outputs there.
    pub fn release(&self, app_id: AppId, task_id: &str) -> Option<MixTask> {
        let mut tasks = self.tasks(app_id).ok()?;
        self.engine.stop(app_id, task_id);
        let t = tasks.commit_stop(task_id)?;
        drop(tasks);
        for (stream, room) in listed_outputs(&t) {
            self.unlist(app_id, &stream, &room);
        }
        info!(app_id, task_id, "mix task released to another node");
        Some(t)
    }

    /// Takes over a task another node ran until it died (the store already marks it as
    /// this node's): it runs here from now on, with the same spec and outputs, and no
    /// second `mix_start`. Returns whether it runs; one this node cannot start stays held
    /// for [`MixControl::retry_not_started`].
    pub fn adopt(&self, app_id: AppId, task: MixTask) -> Result<bool, ControlError> {
        let mut tasks = self.tasks(app_id)?;
        if tasks.get(&task.task_id).is_some() {
            return Ok(self.engine.is_running(app_id, &task.task_id));
        }
        tasks.commit_start(tributary_core::mix_task::StartPlan {
            task: task.clone(),
            is_update: false,
        });
        Ok(self.run_stored(app_id, &task, "adopted"))
    }

    /// StartMix / StartAutoMix: starts or updates. Returns the task as stored.
    pub fn start(&self, app_id: AppId, task: MixTask) -> Result<(MixTask, bool), MixControlError> {
        let app = self.app_config(app_id)?.clone();
        let mut tasks = self.tasks(app_id)?;
        let plan = tasks.plan_start(task)?;
        let old_rooms = tasks
            .get(&plan.task.task_id)
            .map(listed_outputs)
            .unwrap_or_default();
        let new_rooms = listed_outputs(&plan.task);
        for (stream, room) in new_rooms.iter().filter(|r| !old_rooms.contains(r)) {
            if self
                .control
                .list_streams_everywhere(app_id, &room.room_id)?
                .is_empty()
            {
                return Err(MixControlError::TargetRoomMissing {
                    stream: stream.clone(),
                    room: room.room_id.clone(),
                });
            }
        }
        let spec = self.effective(app_id, &plan.task);
        // Only a new audio+video task needs its inputs live: an update may name inputs
        // that come later, and an auto-mix follows whatever the room has.
        let require_inputs = !plan.is_update && !plan.task.is_auto();
        self.engine
            .check(app_id, &plan.task.task_id, &spec, require_inputs)
            .map_err(MixControlError::Engine)?;
        self.engine
            .start(app_id, &plan.task.task_id, &spec)
            .map_err(MixControlError::Engine)?;
        let now = self.control.now_ms();
        let mut ops = vec![WriteOp::PutMixTask(Box::new(plan.task.clone()))];
        if plan.task.is_transcode() {
            // The vendor announces updates of a transcode too.
            let status = if plan.is_update {
                "TranscodeUpdated"
            } else {
                "TranscodeStarted"
            };
            ops.extend(transcode_callbacks(
                &app,
                "transcode_start",
                status,
                None,
                &plan.task,
                now,
            ));
        } else if !plan.is_update {
            ops.extend(mix_callbacks(
                &app,
                "mix_start",
                &plan.task,
                &self.control,
                now,
            ));
        }
        if let Err(e) = self.control.write(&WriteBatch { app_id, ops }) {
            // Put the engine back where the store and memory still are.
            match tasks.get(&plan.task.task_id) {
                Some(old) => {
                    let spec = self.effective(app_id, old);
                    if let Err(r) = self.engine.start(app_id, &old.task_id, &spec) {
                        warn!(app_id, task_id = %old.task_id, error = ?r, "could not restore the task's previous spec");
                    }
                }
                None => self.engine.stop(app_id, &plan.task.task_id),
            }
            return Err(e.into());
        }
        let is_update = plan.is_update;
        let stored = plan.task.clone();
        tasks.commit_start(plan);
        for (stream, room) in old_rooms.iter().filter(|r| !new_rooms.contains(r)) {
            self.unlist(app_id, stream, room);
        }
        for (stream, room) in new_rooms.iter().filter(|r| !old_rooms.contains(r)) {
            self.list(app_id, stream, room);
        }
        info!(app_id, task_id = %stored.task_id, is_update, "mix task accepted");
        Ok((stored, is_update))
    }

    /// StopMix / StopAutoMix, or the engine's idle stop (`user_id`/`sequence` None).
    pub fn stop(
        &self,
        app_id: AppId,
        task_id: &str,
        user_id: Option<&str>,
        sequence: Option<i64>,
        reason: StopReason,
    ) -> Result<MixTask, MixControlError> {
        let app = self.app_config(app_id)?.clone();
        let mut tasks = self.tasks(app_id)?;
        let task = tasks.plan_stop(task_id, user_id, sequence)?.clone();
        let mut task_for_cb = task.clone();
        if let Some(seq) = sequence {
            task_for_cb.sequence = Some(seq);
        }
        let mut ops = vec![WriteOp::DeleteMixTask {
            task_id: task_id.to_string(),
        }];
        if task.is_transcode() {
            // StopReason 0: stopped by the user; 1: stopped by itself.
            let why = u8::from(reason != StopReason::Requested);
            ops.extend(transcode_callbacks(
                &app,
                "transcode_stop",
                "TranscodeStopped",
                Some(why),
                &task_for_cb,
                self.control.now_ms(),
            ));
        } else {
            ops.extend(mix_callbacks(
                &app,
                "mix_stop",
                &task_for_cb,
                &self.control,
                self.control.now_ms(),
            ));
        }
        self.control.write(&WriteBatch { app_id, ops })?;
        self.engine.stop(app_id, task_id);
        tasks.commit_stop(task_id);
        for (stream, room) in listed_outputs(&task) {
            self.unlist(app_id, &stream, &room);
        }
        info!(app_id, task_id, ?reason, "mix task ended");
        Ok(task)
    }

    /// Lists a mix output in its `TargetRoom` like a published stream (`stream_create`,
    /// room feeds). A failure is logged: the mix itself runs on.
    fn list(&self, app_id: AppId, stream: &str, room: &RoomTarget) {
        let req = NewStream {
            stream_id: stream.to_string(),
            room_id: room.room_id.clone(),
            user_id: room.user_id.clone(),
            user_name: String::new(),
            title: String::new(),
            extra_info: String::new(),
            censor_flag: 0,
            origin: StreamOrigin::Mix,
        };
        match self.control.add_stream(app_id, req) {
            Ok(_) => {
                info!(app_id, stream_id = stream, room_id = %room.room_id, "mix output listed in its room")
            }
            Err(e) => {
                warn!(app_id, stream_id = stream, room_id = %room.room_id, error = %e, "mix output could not be listed in its room")
            }
        }
    }

    /// Takes a mix output off its room's list (`stream_close`), if it is still there: a
    /// room that was cleared meanwhile took it off already.
    fn unlist(&self, app_id: AppId, stream: &str, room: &RoomTarget) {
        let listed = self
            .control
            .list_streams(app_id, &room.room_id)
            .unwrap_or_default()
            .iter()
            .any(|s| s.stream_id == stream && s.origin == StreamOrigin::Mix);
        if listed
            && let Err(e) =
                self.control
                    .remove_stream(app_id, &room.room_id, stream, CloseReason::Normal)
        {
            warn!(app_id, stream_id = stream, room_id = %room.room_id, error = %e, "mix output could not be taken off its room");
        }
    }

    pub fn get(&self, app_id: AppId, task_id: &str) -> Result<Option<MixTask>, ControlError> {
        Ok(self.tasks(app_id)?.get(task_id).cloned())
    }

    /// How many of the app's tasks other than `except` read stream `stream_id`.
    pub fn tasks_reading(&self, app_id: AppId, stream_id: &str, except: &str) -> usize {
        let Ok(tasks) = self.tasks(app_id) else {
            return 0;
        };
        tasks
            .iter()
            .filter(|t| t.task_id != except && t.spec.input_streams().any(|s| s == stream_id))
            .count()
    }

    /// Re-resolves the auto-mixes that follow a room after its stream list changed.
    pub fn room_changed(&self, app_id: AppId, room_id: &str) {
        self.follow_room(app_id, room_id, false);
    }

    /// Re-resolves the room's auto-mixes; `only_changes`: leaves alone those whose
    /// inputs are the same as last applied.
    fn follow_room(&self, app_id: AppId, room_id: &str, only_changes: bool) {
        let Ok(tasks) = self.tasks(app_id) else {
            return;
        };
        let autos: Vec<MixTask> = tasks.auto_in_room(room_id).cloned().collect();
        drop(tasks);
        for t in autos {
            let spec = self.effective(app_id, &t);
            let inputs: Vec<String> = spec.input_streams().map(str::to_string).collect();
            {
                let mut applied = self.auto_inputs.lock().unwrap_or_else(|e| e.into_inner());
                let key = (app_id, t.task_id.clone());
                if only_changes && applied.get(&key) == Some(&inputs) {
                    continue;
                }
                applied.insert(key, inputs);
            }
            if let Err(e) = self.engine.start(app_id, &t.task_id, &spec) {
                warn!(app_id, task_id = %t.task_id, error = ?e, "auto-mix could not follow the room");
            } else {
                info!(app_id, task_id = %t.task_id, inputs = spec.inputs.len(), "auto-mix follows the room");
            }
        }
    }

    /// Follows room changes for auto-mixes until the event stream closes. Run it on a
    /// blocking-capable task: engine updates may wait on a lock.
    pub async fn follow_rooms(self: Arc<Self>) {
        let mut events = self.control.subscribe();
        loop {
            let (app_id, room) = match events.recv().await {
                Ok(CoreEvent::StreamAdded { app_id, room, .. })
                | Ok(CoreEvent::StreamRemoved { app_id, room, .. }) => (app_id, room.room_id),
                Ok(_) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    // Missed some: re-resolve every auto-mix.
                    let me = self.clone();
                    let _ = tokio::task::spawn_blocking(move || me.refresh_all_auto()).await;
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            let me = self.clone();
            let _ = tokio::task::spawn_blocking(move || me.room_changed(app_id, &room)).await;
        }
    }

    /// On a shared store: auto-mixes follow streams other nodes publish in their rooms
    /// (those nodes' room events are not heard here), checked every call.
    pub fn follow_other_nodes(&self) {
        if self.cluster.get().is_none() {
            return;
        }
        for (app_id, room) in self.auto_rooms() {
            self.follow_room(app_id, &room, true);
        }
    }

    fn refresh_all_auto(&self) {
        for (app_id, room) in self.auto_rooms() {
            self.room_changed(app_id, &room);
        }
    }

    /// The rooms auto-mixes follow.
    fn auto_rooms(&self) -> Vec<(AppId, String)> {
        let mut out = Vec::new();
        for (app_id, tasks) in &self.apps {
            let tasks = tasks.lock().unwrap_or_else(|e| e.into_inner());
            out.extend(
                tasks
                    .iter()
                    .filter(|t| t.is_auto())
                    .map(|t| (*app_id, t.room_id.clone())),
            );
        }
        out
    }

    pub fn stream_size(&self, app_id: AppId, stream_id: &str) -> Option<(u32, u32)> {
        self.engine.stream_size(app_id, stream_id)
    }

    pub fn stream_fps(&self, app_id: AppId, stream_id: &str) -> Option<f64> {
        self.engine.stream_fps(app_id, stream_id)
    }

    pub fn control(&self) -> &Arc<ControlPlane> {
        &self.control
    }
}

/// The task's outputs that are listed in a room: (stream id, room).
fn listed_outputs(task: &MixTask) -> Vec<(String, RoomTarget)> {
    task.spec
        .outputs
        .iter()
        .filter_map(|o| match (&o.target, &o.room) {
            (Target::Stream(id) | Target::Replace(id), Some(room)) => {
                Some((id.clone(), room.clone()))
            }
            _ => None,
        })
        .collect()
}

/// `transcode_start` / `transcode_stop` (spec §5.6): PascalCase fields, signed like the
/// other callbacks but under `Timestamp`/`Nonce`/`Signature`.
fn transcode_callbacks(
    app: &AppConfig,
    event: &'static str,
    status: &'static str,
    stop_reason: Option<u8>,
    task: &MixTask,
    now: u64,
) -> Vec<WriteOp> {
    if app.callback_urls.is_empty() {
        return Vec::new();
    }
    let input = match task.spec.inputs.first().map(|i| &i.source) {
        Some(tributary_core::mix::Source::Stream(id)) => json!({"StreamId": id, "StreamUrl": ""}),
        Some(tributary_core::mix::Source::Url(u)) => json!({"StreamId": "", "StreamUrl": u}),
        None => json!({}),
    };
    let outputs: Vec<Value> = task
        .spec
        .outputs
        .iter()
        .map(|o| {
            let (id, url) = match &o.target {
                Target::Stream(id) | Target::Replace(id) => (id.clone(), String::new()),
                Target::Url(u) => (String::new(), u.clone()),
            };
            let v = o.video.unwrap_or(tributary_core::mix::VideoOut {
                width: 0,
                height: 0,
                bitrate_bps: 0,
                codec: Default::default(),
            });
            json!({"StreamId": id, "StreamUrl": url, "VideoEncId": 1,
                   "VideoBitrate": v.bitrate_bps, "ShortEdgeAdaption": 0,
                   "Fps": task.spec.fps, "Width": v.width, "Height": v.height,
                   "GOP": task.spec.gop()})
        })
        .collect();
    let timestamp = (now / 1000).to_string();
    let nonce = rand::random::<u64>().to_string();
    let mut body = json!({
        "Event": event,
        "Appid": app.app_id,
        "Timestamp": timestamp,
        "Nonce": nonce,
        "Signature": crate::callbacks::signature::sign(&app.callback_secret, &timestamp, &nonce),
        "TaskId": task.task_id,
        "UserId": task.user_id,
        "Sequence": task.sequence.unwrap_or(0),
        "Status": status,
        "Details": {"Input": input, "Outputs": outputs},
    });
    if let (Some(why), Value::Object(m)) = (stop_reason, &mut body) {
        m.insert("StopReason".into(), Value::from(why));
    }
    let text = body.to_string();
    app.callback_urls
        .iter()
        .map(|url| {
            WriteOp::EnqueueCallback(NewCallback {
                app_id: app.app_id,
                event: event.to_string(),
                url: url.clone(),
                body: text.clone(),
                created_ms: now,
            })
        })
        .collect()
}

/// `mix_start` / `mix_stop` payloads: one per output that has a stream id (the vendor's
/// `mix_stream_alias`), or one for the task when every output is a URL.
fn mix_callbacks(
    app: &AppConfig,
    event: &'static str,
    task: &MixTask,
    control: &ControlPlane,
    now: u64,
) -> Vec<WriteOp> {
    if app.callback_urls.is_empty() {
        return Vec::new();
    }
    let urls = control.play_urls();
    let app_id = app.app_id;
    let mut bodies = Vec::new();
    for out in &task.spec.outputs {
        let (alias, mix_url, rtmp, flv, hls) = match &out.target {
            Target::Stream(id) | Target::Replace(id) => (
                id.clone(),
                urls.rtmp(app_id, id),
                urls.rtmp(app_id, id),
                urls.flv(app_id, id),
                urls.hls(app_id, id),
            ),
            Target::Url(u) => (
                String::new(),
                u.clone(),
                u.clone(),
                String::new(),
                String::new(),
            ),
        };
        let mut obj = json!({
            "appid": app_id.to_string(),
            "event": event,
            "seq": task.sequence.unwrap_or(0).to_string(),
            "task_id": format!("{app_id}:{}", task.task_id),
            "channel_id": task.room_id,
            "publish_id": task.user_id,
            "mix_url": mix_url,
            "mix_stream_alias": alias,
        });
        if event == "mix_start"
            && let Value::Object(m) = &mut obj
        {
            m.insert("stream_alias".into(), Value::from(alias.clone()));
            m.insert("rtmp_url".into(), Value::from(rtmp.clone()));
            m.insert("hls_url".into(), Value::from(hls.clone()));
            m.insert("hdl_url".into(), Value::from(flv.clone()));
            m.insert("rtmp_urls".into(), json!([rtmp]));
            m.insert(
                "hls_urls".into(),
                json!(if hls.is_empty() { vec![] } else { vec![hls] }),
            );
            m.insert(
                "hdl_urls".into(),
                json!(if flv.is_empty() { vec![] } else { vec![flv] }),
            );
        }
        if let Value::Object(m) = obj {
            bodies.push(m);
        }
    }
    let mut ops = Vec::new();
    for mut body in bodies {
        sign_payload(app, &mut body, now);
        let text = Value::Object(Map::clone(&body)).to_string();
        for url in &app.callback_urls {
            ops.push(WriteOp::EnqueueCallback(NewCallback {
                app_id,
                event: event.to_string(),
                url: url.clone(),
                body: text.clone(),
                created_ms: now,
            }));
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use tributary_core::mix::{Content, MixInput, MixOutput, RenderMode, Source, VideoOut};
    use tributary_core::mix_task::TaskKind;

    use super::*;
    use crate::PlayUrls;
    use crate::test_store::MemStore;

    /// An engine that records what it is asked and refuses checks when told to.
    #[derive(Default)]
    struct FakeEngine {
        calls: Mutex<Vec<String>>,
        refuse: AtomicBool,
        /// Refuses starts too (a node over its budget when it adopts a task).
        refuse_start: AtomicBool,
    }

    impl FakeEngine {
        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl MixEngine for FakeEngine {
        fn check(&self, _: AppId, id: &str, _: &MixSpec, _: bool) -> Result<(), EngineRefusal> {
            if self.refuse.load(Ordering::SeqCst) {
                return Err(EngineRefusal::OverBudget("full".into()));
            }
            self.calls.lock().unwrap().push(format!("check {id}"));
            Ok(())
        }
        fn start(&self, _: AppId, id: &str, spec: &MixSpec) -> Result<(), EngineRefusal> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("start {id} {}k", video_kbps(spec)));
            if self.refuse_start.load(Ordering::SeqCst) {
                return Err(EngineRefusal::OverBudget("full".into()));
            }
            Ok(())
        }
        fn stop(&self, _: AppId, id: &str) {
            self.calls.lock().unwrap().push(format!("stop {id}"));
        }
        fn is_running(&self, _: AppId, _: &str) -> bool {
            false
        }
        fn stream_size(&self, _: AppId, _: &str) -> Option<(u32, u32)> {
            None
        }
    }

    fn setup() -> (Arc<MemStore>, Arc<FakeEngine>, MixControl) {
        let (store, engine, mixing, _) = setup_at(1_000);
        (store, engine, mixing)
    }

    fn setup_at(
        ms: u64,
    ) -> (
        Arc<MemStore>,
        Arc<FakeEngine>,
        MixControl,
        Arc<crate::clock::ManualClock>,
    ) {
        let clock = crate::clock::ManualClock::at(ms);
        let store = Arc::new(MemStore::default());
        let mut app = AppConfig::new(1, "s".into(), "c".into());
        app.callback_urls = vec!["http://hook/".into()];
        let urls = PlayUrls {
            rtmp_base: "rtmp://h".into(),
            http_base: "http://h".into(),
        };
        let control = Arc::new(
            ControlPlane::load_with_clock(vec![app], store.clone(), urls, clock.clone()).unwrap(),
        );
        let engine = Arc::new(FakeEngine::default());
        let mixing = MixControl::load(control, engine.clone()).unwrap();
        (store, engine, mixing, clock)
    }

    #[test]
    fn retries_wait_2_s_then_twice_as_long_each_time_up_to_a_minute() {
        let waits: Vec<u64> = (1..=8).map(retry_after_ms).collect();
        assert_eq!(
            waits,
            [2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]
        );
        assert_eq!(retry_after_ms(u32::MAX), 60_000);
    }

    #[test]
    fn a_task_whose_start_was_refused_is_retried_while_it_is_this_nodes_and_not_suspended() {
        let (store, engine, mixing, clock) = setup_at(1_000);
        let starts = || {
            engine
                .calls()
                .iter()
                .filter(|c| c.starts_with("start"))
                .count()
        };
        engine.refuse_start.store(true, Ordering::SeqCst);
        assert!(!mixing.adopt(1, task("u", 1, 500)).unwrap());
        assert_eq!(starts(), 1);
        // Offered to another node at once, tried here again only after its wait.
        let refused = mixing.retry_not_started(|_, _| true);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].1.task_id, "t");
        assert_eq!(starts(), 1);
        clock.advance(2_000);
        assert_eq!(mixing.retry_not_started(|_, _| true).len(), 1);
        assert_eq!(starts(), 2);
        // The second failure waits 4 s.
        clock.advance(2_000);
        mixing.retry_not_started(|_, _| true);
        assert_eq!(starts(), 2);
        clock.advance(2_000);
        // Not this node's in the store, or the fence holds everything: not started.
        assert!(mixing.retry_not_started(|_, _| false).is_empty());
        mixing.suspend_all();
        assert!(mixing.retry_not_started(|_, _| true).is_empty());
        assert_eq!(starts(), 2);
        mixing.resume_owned(|_, _| true);
        assert_eq!(starts(), 3);
        // Room again: the next try starts it, and after that there is nothing to do.
        engine.refuse_start.store(false, Ordering::SeqCst);
        clock.advance(60_000);
        assert!(mixing.retry_not_started(|_, _| true).is_empty());
        assert_eq!(starts(), 4);
        clock.advance(60_000);
        assert!(mixing.retry_not_started(|_, _| true).is_empty());
        assert_eq!(starts(), 4);
        // A refused task that is stopped is not started again, and nothing was called
        // back: the adopted task's mix_start went out on the node that first ran it.
        engine.refuse_start.store(true, Ordering::SeqCst);
        mixing.resume_all();
        assert_eq!(starts(), 5);
        mixing
            .stop(1, "t", Some("u"), Some(2), StopReason::Requested)
            .unwrap();
        clock.advance(60_000);
        assert!(mixing.retry_not_started(|_, _| true).is_empty());
        assert_eq!(starts(), 5);
        assert!(store.callback_times("mix_start").is_empty());
    }

    #[test]
    fn mix_callbacks_are_stamped_by_the_clock() {
        let (store, _, mixing, clock) = setup_at(50_000);
        mixing.start(1, task("u", 1, 500)).unwrap();
        clock.advance(90_000);
        mixing
            .stop(1, "t", Some("u"), Some(2), StopReason::Requested)
            .unwrap();
        assert_eq!(store.callback_times("mix_start"), [50_000]);
        assert_eq!(store.callback_times("mix_stop"), [140_000]);
    }

    fn video_kbps(spec: &MixSpec) -> u32 {
        spec.outputs[0].video.map_or(0, |v| v.bitrate_bps / 1000)
    }

    /// A one-input task; its video `kbps` (live-updatable) tells versions apart in the
    /// engine's log.
    fn task(user: &str, seq: i64, kbps: u32) -> MixTask {
        MixTask {
            task_id: "t".into(),
            user_id: user.into(),
            room_id: "r".into(),
            sequence: Some(seq),
            kind: TaskKind::Manual,
            spec: MixSpec {
                inputs: vec![MixInput {
                    source: Source::Stream("a".into()),
                    rect: None,
                    content: Content::AudioVideo,
                    volume: 100,
                    render: RenderMode::Crop,
                    crop: None,
                    decor: Default::default(),
                }],
                outputs: vec![MixOutput {
                    target: Target::Stream("out".into()),
                    video: Some(VideoOut {
                        width: 320,
                        height: 240,
                        bitrate_bps: kbps * 1000,
                        codec: Default::default(),
                    }),
                    audio_bitrate_bps: 48_000,
                    channels: 1,
                    room: None,
                    audio_codec: Default::default(),
                    sample_rate: 44_100,
                }],
                ..MixSpec::new(Vec::new(), Vec::new(), 15)
            },
            ex_para: vec![],
            started_ms: 1,
            updated_ms: 1,
        }
    }

    #[test]
    fn a_failed_store_write_stops_a_new_task() {
        let (store, engine, mixing) = setup();
        store.fail.store(true, Ordering::SeqCst);
        assert!(matches!(
            mixing.start(1, task("u", 1, 480)),
            Err(MixControlError::Control(_) | MixControlError::Store(_))
        ));
        assert_eq!(engine.calls(), ["check t", "start t 480k", "stop t"]);
        assert!(mixing.get(1, "t").unwrap().is_none());
        assert!(store.batches.lock().unwrap().is_empty());
    }

    #[test]
    fn a_failed_store_write_restores_the_running_version() {
        let (store, engine, mixing) = setup();
        mixing.start(1, task("u", 1, 480)).unwrap();
        // The first write holds the task and its signed mix_start.
        let batches = store.batches.lock().unwrap().clone();
        assert_eq!(batches.len(), 1);
        assert!(
            batches[0]
                .ops
                .iter()
                .any(|op| matches!(op, WriteOp::EnqueueCallback(c) if c.event == "mix_start"))
        );
        store.fail.store(true, Ordering::SeqCst);
        assert!(mixing.start(1, task("u", 2, 640)).is_err());
        // Started with the update, then put back to the version still stored.
        assert_eq!(
            engine.calls()[2..],
            ["check t", "start t 640k", "start t 480k"]
        );
        assert_eq!(mixing.get(1, "t").unwrap().unwrap().sequence, Some(1));
    }

    #[test]
    fn stale_sequences_and_other_users_change_nothing() {
        let (store, engine, mixing) = setup();
        mixing.start(1, task("u", 5, 480)).unwrap();
        let before = engine.calls().len();
        assert!(matches!(
            mixing.start(1, task("u", 5, 640)),
            Err(MixControlError::Rule(_))
        ));
        assert!(matches!(
            mixing.start(1, task("someone-else", 6, 640)),
            Err(MixControlError::Rule(TaskError::NotOwner { .. }))
        ));
        assert!(matches!(
            mixing.stop(1, "t", Some("someone-else"), Some(7), StopReason::Requested),
            Err(MixControlError::Rule(TaskError::NotOwner { .. }))
        ));
        assert_eq!(engine.calls().len(), before, "the engine was not touched");
        assert_eq!(store.batches.lock().unwrap().len(), 1);
        // The owner stops it: stored with mix_stop, then the engine stops.
        mixing
            .stop(1, "t", Some("u"), Some(8), StopReason::Requested)
            .unwrap();
        assert_eq!(engine.calls().last().map(String::as_str), Some("stop t"));
        assert_eq!(store.batches.lock().unwrap().len(), 2);
    }

    #[test]
    fn an_engine_refusal_stores_nothing() {
        let (store, engine, mixing) = setup();
        engine.refuse.store(true, Ordering::SeqCst);
        assert!(matches!(
            mixing.start(1, task("u", 1, 480)),
            Err(MixControlError::Engine(EngineRefusal::OverBudget(_)))
        ));
        assert!(engine.calls().is_empty());
        assert!(store.batches.lock().unwrap().is_empty());
        assert!(mixing.get(1, "t").unwrap().is_none());
    }
}
