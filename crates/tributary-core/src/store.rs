//! The persistence port: what tributary must never lose, as a small trait.
//!
//! The binary provides the embedded SQLite implementation; a shared store for several
//! nodes can implement the same trait later. Writes come as one [`WriteBatch`] applied
//! atomically, so a change and the callbacks announcing it are stored together or not at
//! all.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::app::{AppConfig, AppId};
use crate::mix_task::MixTask;
use crate::registry::{RoomInfo, StreamInfo};
use crate::watermark::Watermark;

#[derive(Debug, Error)]
#[error("store: {0}")]
pub struct StoreError(pub String);

/// A callback to deliver, as queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCallback {
    pub app_id: AppId,
    pub event: String,
    pub url: String,
    /// The exact bytes to POST (already signed).
    pub body: String,
    pub created_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallbackState {
    Pending,
    Failed,
}

impl CallbackState {
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackState::Pending => "pending",
            CallbackState::Failed => "failed",
        }
    }
}

/// A queued callback with its delivery state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub id: i64,
    pub app_id: AppId,
    pub event: String,
    pub url: String,
    pub body: String,
    pub created_ms: u64,
    pub attempts: u32,
    pub next_at_ms: u64,
    pub state: CallbackState,
    pub last_error: String,
}

/// What happened to one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    Retry { next_at_ms: u64, error: String },
    Failed { error: String },
}

/// One change to persist.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    PutRoom(RoomInfo),
    DeleteRoom {
        room_id: String,
    },
    PutStream(StreamInfo),
    DeleteStream {
        stream_id: String,
    },
    Ban {
        stream_id: String,
        at_ms: u64,
    },
    Unban {
        stream_id: String,
    },
    EnqueueCallback(NewCallback),
    /// A mix task as started or last updated (restarted after a crash or restart).
    PutMixTask(Box<MixTask>),
    DeleteMixTask {
        task_id: String,
    },
    PutWatermark(Watermark),
    DeleteWatermark {
        id: u64,
    },
    /// A live stream of this node (a publisher, a listed mix output) as the room lists
    /// show it, for the other nodes sharing the store to list too. Single-node stores
    /// keep nothing.
    PutLiveStream(StreamInfo),
    DeleteLiveStream {
        stream_id: String,
    },
}

/// Changes of one app, applied all together or not at all.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WriteBatch {
    pub app_id: AppId,
    pub ops: Vec<WriteOp>,
}

/// What another node changed in a shared store, as a watcher hears it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreChange {
    /// The app's ban list changed.
    Bans(AppId),
    /// The watch (re)connected: anything may have changed meanwhile.
    Resync,
}

/// Called with each change a watched store reports (on the store's own thread: it must
/// not block).
pub type ChangeSink = Box<dyn Fn(StoreChange) + Send + Sync>;

/// A node's entry among the nodes sharing a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub node_id: String,
    /// Its API address and RTMP address, as it serves them.
    pub http: String,
    pub rtmp: String,
    pub started_ms: u64,
    pub renewed_ms: u64,
    /// The node counts as live until then.
    pub lease_until_ms: u64,
    /// What is left of its mixing budget (pixels per second), as of its last renewal:
    /// placement sends a new task to the node with the most.
    #[serde(default)]
    pub free_budget: u64,
    /// Set while it hands its tasks over before it stops (`tributary drain`): it takes
    /// no new ones.
    #[serde(default)]
    pub draining: bool,
    /// The tasks it ran at its last renewal (`app:task`): placement counts a task it
    /// sent there against that node's budget until its renewal lists it.
    #[serde(default)]
    pub tasks: Vec<String>,
}

/// Everything stored for one app's registry.
#[derive(Debug, Clone, Default)]
pub struct StoredRegistry {
    pub rooms: Vec<RoomInfo>,
    pub streams: Vec<StreamInfo>,
    pub bans: Vec<(String, u64)>,
}

pub trait Store: Send + Sync + 'static {
    /// Whether the store answers a query (the readiness probe).
    fn ping(&self) -> Result<(), StoreError>;
    /// A server setting (e.g. the generated admin token).
    fn setting(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Stores `value` unless the key has one; returns the value now stored (so nodes
    /// starting together on one shared store agree on it).
    fn put_setting_if_absent(&self, key: &str, value: &str) -> Result<String, StoreError>;
    /// The app's ban list as stored.
    fn bans(&self, app_id: AppId) -> Result<Vec<(String, u64)>, StoreError>;
    /// Starts reporting what other nodes change (bans) to `sink`; `Ok(false)` when the
    /// store serves a single node and there is nothing to watch.
    fn watch(&self, sink: ChangeSink) -> Result<bool, StoreError> {
        drop(sink);
        Ok(false)
    }
    /// Names the node writing through this store: the mix tasks it stores from now on are
    /// marked as run by it. Called once, before the first write.
    fn set_node(&self, node_id: &str) {
        let _ = node_id;
    }
    /// Whether several nodes share this store (then each runs only its own tasks and
    /// adopts those of nodes that died).
    fn shared(&self) -> bool {
        false
    }
    /// Tasks whose node's lease ran out (or that name no node), other than this node's:
    /// `(app, task id, the node that ran it)`.
    fn orphaned_tasks(&self, now_ms: u64) -> Result<Vec<(AppId, String, String)>, StoreError> {
        let _ = now_ms;
        Ok(Vec::new())
    }
    /// Makes this node the one that runs a task, if it is still marked as `from`'s;
    /// returns it then (another node that adopted it first wins).
    fn adopt_task(
        &self,
        app_id: AppId,
        task_id: &str,
        from: &str,
    ) -> Result<Option<MixTask>, StoreError> {
        let _ = (app_id, task_id, from);
        Ok(None)
    }
    /// The node a stored task is marked as run by (`None`: no such task). Single-node
    /// stores: always this node.
    fn task_owner(&self, app_id: AppId, task_id: &str) -> Result<Option<String>, StoreError> {
        let _ = (app_id, task_id);
        Ok(None)
    }
    /// Records that this node publishes a stream (`live`), or no longer does, so other
    /// nodes can relay it from here. Single-node stores: nothing to record.
    fn put_live_stream(
        &self,
        app_id: AppId,
        stream_id: &str,
        live: bool,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let _ = (app_id, stream_id, live, now_ms);
        Ok(())
    }
    /// The other live nodes (lease running) that publish the stream, the most recent
    /// publisher first.
    fn stream_origins(
        &self,
        app_id: AppId,
        stream_id: &str,
        now_ms: u64,
    ) -> Result<Vec<NodeInfo>, StoreError> {
        let _ = (app_id, stream_id, now_ms);
        Ok(Vec::new())
    }
    /// The room's streams as the other live nodes list them (their publishers and mix
    /// outputs) and the room's API-added streams, whichever node added them. Single-node
    /// stores: none (the node's own registry has everything).
    fn room_streams(
        &self,
        app_id: AppId,
        room_id: &str,
        now_ms: u64,
    ) -> Result<Vec<StreamInfo>, StoreError> {
        let _ = (app_id, room_id, now_ms);
        Ok(Vec::new())
    }
    /// Forgets every stream this node recorded as published (at start: rows a crash
    /// left behind).
    fn clear_live_streams(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Hands a task this node runs to node `to` (a drain): `Ok(false)` when it is not
    /// this node's any more.
    fn hand_over_task(&self, app_id: AppId, task_id: &str, to: &str) -> Result<bool, StoreError> {
        let _ = (app_id, task_id, to);
        Ok(false)
    }
    /// Tasks the store marks as this node's (another node handed them over): the ones
    /// this node must run.
    fn owned_tasks(&self) -> Result<Vec<(AppId, MixTask)>, StoreError> {
        Ok(Vec::new())
    }
    /// Writes this node's entry (its lease renewed, or given up with `lease_until_ms` now).
    fn renew_node(&self, node: &NodeInfo) -> Result<(), StoreError>;
    /// The nodes whose lease runs past `now_ms`, by id.
    fn nodes(&self, now_ms: u64) -> Result<Vec<NodeInfo>, StoreError>;
    /// Claims a signed request's nonce (`scope` names the dialect) for every node that
    /// shares this store, until `until_ms`: `Ok(false)` when a node already claimed it and
    /// the claim has not run out — a replay sent to another node. A store that serves a
    /// single node answers `Ok(true)`: that node's in-memory replay guard already sees
    /// every request, and a disk write per API call would buy nothing.
    fn claim_nonce(
        &self,
        app_id: AppId,
        scope: &str,
        nonce: &str,
        now_ms: u64,
        until_ms: u64,
    ) -> Result<bool, StoreError> {
        let _ = (app_id, scope, nonce, now_ms, until_ms);
        Ok(true)
    }
    /// Counts one call against a rate limit shared by every node of the store: the calls
    /// counted under `key` in the fixed window of `window_ms` that holds `now_ms`, this
    /// one included. `Ok(None)` from a store that serves a single node (its in-memory
    /// limiters see every call).
    fn count_call(
        &self,
        app_id: AppId,
        key: &str,
        window_ms: u64,
        now_ms: u64,
    ) -> Result<Option<u64>, StoreError> {
        let _ = (app_id, key, window_ms, now_ms);
        Ok(None)
    }
    /// Claims a moderation call's `Sequence` for `ids` for every node sharing the store
    /// (the rule of [`crate::sequence`]: within `window_ms` of the last call on an id, a
    /// Sequence must be greater), all ids or none: `Ok(Some((id, last, age_ms)))` names
    /// an id the claim is stale for. `Ok(None)` also from a store that serves a single
    /// node (its in-memory guard sees every call).
    fn claim_sequence(
        &self,
        app_id: AppId,
        ids: &[String],
        seq: u64,
        now_ms: u64,
        window_ms: u64,
    ) -> Result<Option<(String, u64, u64)>, StoreError> {
        let _ = (app_id, ids, seq, now_ms, window_ms);
        Ok(None)
    }
    /// Apps created by tributary itself (the first-run demo app).
    fn apps(&self) -> Result<Vec<AppConfig>, StoreError>;
    /// Stores `app` only if no app is stored yet, in one step no other node can split:
    /// nodes starting at once on an empty store each make a demo app, and exactly one is
    /// kept. Returns the apps stored afterwards (the winner's, for the others).
    fn insert_first_app(&self, app: &AppConfig) -> Result<Vec<AppConfig>, StoreError>;
    fn registry(&self, app_id: AppId) -> Result<StoredRegistry, StoreError>;
    fn apply(&self, batch: &WriteBatch) -> Result<(), StoreError>;
    /// The app's running mix tasks (on a shared store: those this node runs).
    fn mix_tasks(&self, app_id: AppId) -> Result<Vec<MixTask>, StoreError>;
    /// The app's registered watermark images.
    fn watermarks(&self, app_id: AppId) -> Result<Vec<Watermark>, StoreError>;
    /// Pending callbacks whose next attempt is due, oldest first.
    fn due_callbacks(&self, now_ms: u64, limit: usize) -> Result<Vec<OutboxEntry>, StoreError>;
    /// The earliest next attempt among pending callbacks.
    fn next_callback_at(&self) -> Result<Option<u64>, StoreError>;
    fn record_delivery(&self, id: i64, outcome: &DeliveryOutcome) -> Result<(), StoreError>;
    /// Callbacks in a state (pending or failed), oldest first.
    fn callbacks(&self, state: CallbackState, limit: usize)
    -> Result<Vec<OutboxEntry>, StoreError>;
    /// Puts failed callbacks back in the queue, due now; returns how many.
    fn requeue_failed(&self, now_ms: u64) -> Result<usize, StoreError>;
}
