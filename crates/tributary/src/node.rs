//! This node among the nodes that share a store: its name, and its lease in the store's
//! `nodes` table, renewed every [`RENEW`] while it runs. A node that stops renewing
//! (killed, cut off) drops out of the live list when its lease runs out; one that stops
//! cleanly gives its lease up at once. `GET /api/nodes` lists the live ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tracing::{info, warn};

use tributary_api::clock::now_ms;
use tributary_core::store::{NodeInfo, Store};

/// How often a node renews its lease.
pub const RENEW: Duration = Duration::from_secs(1);
/// How long a lease lasts: six renewals, so a few slow writes do not drop a node.
pub const LEASE: Duration = Duration::from_secs(6);

/// Whether `id` may name a node: 1–64 of `A–Z a–z 0–9 . _ -` (it appears in URLs, logs
/// and answers).
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The name a node gets when none is configured: its host and ports, so it is the same
/// after a restart and differs between nodes sharing a host.
pub fn default_id(host: &str, http_port: u16, rtmp_port: u16) -> String {
    let host: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    let host = if host.is_empty() { "node".into() } else { host };
    format!("{host}-{http_port}-{rtmp_port}")
}

/// The machine's host name (Linux), else `node`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// What this node says about itself in the store.
#[derive(Clone)]
pub struct Me {
    pub id: String,
    pub http: String,
    pub rtmp: String,
    pub started_ms: u64,
    /// Its mixing budget left and its tasks, read at each renewal (placement reads them).
    pub load: Arc<dyn Fn() -> (u64, Vec<String>) + Send + Sync>,
    /// Set by a drain: it takes no new tasks.
    pub draining: Arc<AtomicBool>,
}

impl Me {
    fn info(&self, now: u64, lease_until_ms: u64) -> NodeInfo {
        let load = (self.load)();
        NodeInfo {
            node_id: self.id.clone(),
            http: self.http.clone(),
            rtmp: self.rtmp.clone(),
            started_ms: self.started_ms,
            renewed_ms: now,
            lease_until_ms,
            free_budget: load.0,
            draining: self.draining.load(Ordering::Relaxed),
            tasks: load.1,
        }
    }
}

/// What a node does when its lease may have run out, and when it holds one again.
pub trait Fence: Send + Sync + 'static {
    /// The store has not taken a renewal for [`FENCE_AFTER`]: another node may adopt this
    /// node's tasks any moment, so they stop here first.
    fn lost(&self);
    /// A renewal went through again.
    fn regained(&self);
}

/// How long without a renewal before a node stops its tasks: half the lease, so they
/// have stopped here before another node can adopt them.
pub const FENCE_AFTER: Duration = Duration::from_secs(3);

/// Renews this node's lease until the task is dropped (aborted at shutdown, after which
/// [`leave`] gives the lease up); on a single-node store, writes it once. Renewals failing for [`FENCE_AFTER`] call
/// `fence.lost()`; the next success calls `fence.regained()`.
pub async fn keep_alive(store: Arc<dyn Store>, me: Me, fence: Option<Arc<dyn Fence>>) {
    if !store.shared() {
        // One node per store: no one else reads the lease, so it is written once (an
        // fsync a second would buy nothing) and given up at a clean stop.
        let info = me.info(now_ms(), u64::MAX);
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.renew_node(&info)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(node = %me.id, error = %e, "node entry not written"),
            Err(e) => warn!(node = %me.id, error = %e, "node entry not written"),
        }
        return;
    }
    let mut tick = tokio::time::interval(RENEW);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut renewed = tokio::time::Instant::now();
    let mut fenced = false;
    loop {
        tick.tick().await;
        let (s, now) = (store.clone(), now_ms());
        let info = me.info(now, now + LEASE.as_millis() as u64);
        // A renewal slower than the renewal period counts as failed (a hung database
        // must not hold the fence back past the lease; the call itself ends within the
        // store's 10 s deadline).
        let renewal = tokio::task::spawn_blocking(move || s.renew_node(&info));
        let ok = match tokio::time::timeout(RENEW, renewal).await {
            Ok(Ok(Ok(()))) => true,
            Ok(Ok(Err(e))) => {
                warn!(node = %me.id, error = %e, "node lease not renewed");
                false
            }
            Ok(Err(e)) => {
                warn!(node = %me.id, error = %e, "node lease not renewed");
                false
            }
            Err(_) => {
                warn!(node = %me.id, "node lease not renewed within {} s", RENEW.as_secs());
                false
            }
        };
        if ok {
            renewed = tokio::time::Instant::now();
        }
        let Some(fence) = fence.as_ref() else {
            continue;
        };
        if !ok && !fenced && renewed.elapsed() >= FENCE_AFTER {
            fenced = true;
            warn!(node = %me.id, "no lease renewal for {} s: stopping this node's tasks", FENCE_AFTER.as_secs());
            let f = fence.clone();
            let _ = tokio::task::spawn_blocking(move || f.lost()).await;
        } else if ok && fenced {
            fenced = false;
            info!(node = %me.id, "lease renewed again: resuming this node's own tasks");
            let f = fence.clone();
            let _ = tokio::task::spawn_blocking(move || f.regained()).await;
        }
    }
}

/// The mix tasks as fenced: stopped when the lease may be lost, and on its return run
/// again if the store still marks them as this node's.
pub struct TaskFence {
    pub store: Arc<dyn Store>,
    pub mixing: Arc<tributary_api::mixing::MixControl>,
    pub node: String,
}

impl Fence for TaskFence {
    fn lost(&self) {
        self.mixing.suspend_all();
    }

    fn regained(&self) {
        self.mixing.resume_owned(|app, task| {
            // Unknown (the store failed again): keep it stopped, the next loss or regain
            // decides.
            matches!(self.store.task_owner(app, task), Ok(Some(owner)) if owner == self.node)
        });
    }
}

/// Gives the lease up (a clean stop): the node leaves the live list at once.
pub fn leave(store: &dyn Store, me: &Me) {
    let now = now_ms();
    if let Err(e) = store.renew_node(&me.info(now, now)) {
        warn!(node = %me.id, error = %e, "node lease not given up");
    }
}

/// `GET /api/nodes`: the nodes whose lease is running, this one marked.
pub fn router(store: Arc<dyn Store>, me: String) -> Router {
    Router::new()
        .route("/api/nodes", get(nodes))
        .with_state((store, Arc::new(me)))
}

async fn nodes(State((store, me)): State<(Arc<dyn Store>, Arc<String>)>) -> Response {
    let now = now_ms();
    match tokio::task::spawn_blocking(move || store.nodes(now)).await {
        Ok(Ok(list)) => {
            let nodes: Vec<serde_json::Value> = list
                .iter()
                .map(|n| {
                    json!({
                        "node": n.node_id,
                        "http": n.http,
                        "rtmp": n.rtmp,
                        "started_ms": n.started_ms,
                        "renewed_ms": n.renewed_ms,
                        "lease_until_ms": n.lease_until_ms,
                        "free_budget": n.free_budget,
                        "draining": n.draining,
                        "this": n.node_id == *me,
                    })
                })
                .collect();
            axum::Json(json!({ "node": *me, "nodes": nodes })).into_response()
        }
        _ => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "the store did not answer\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids() {
        assert_eq!(default_id("box-1", 8080, 1935), "box-1-8080-1935");
        assert_eq!(default_id("a b/c", 1, 2), "a-b-c-1-2");
        assert_eq!(default_id("", 1, 2), "node-1-2");
        assert!(valid_id(&default_id(&"h".repeat(300), 65535, 65535)));
        assert!(valid_id("eu-1.node_a"));
        for bad in ["", "a b", "a/b", "é", &"x".repeat(65)] {
            assert!(!valid_id(bad), "{bad:?}");
        }
    }
}
