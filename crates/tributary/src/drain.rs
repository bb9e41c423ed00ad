//! `POST /api/drain` (and `tributary drain`): a node hands its mix tasks to other nodes
//! before it stops — a deploy or a reboot without the failover's lease wait.
//!
//! The node marks itself draining (placement sends it nothing new; its next lease
//! renewal tells the others), then for each task it runs: placement picks another node,
//! the store's owner changes to it (conditional on still being this node's), and only
//! then the task stops here, with no `mix_stop` (it goes on). The new owner finds it in
//! its next scan for tasks marked as its own ([`crate::failover::SCAN`]) and runs it like
//! a resumed one, with no second `mix_start`. A task no other node can take stays here.
//! With `?stop=true` the node then shuts down as on SIGTERM.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Notify;
use tracing::{info, warn};

use tributary_api::mixing::MixControl;
use tributary_core::AppId;
use tributary_core::mix_task::MixTask;
use tributary_core::store::{Store, StoreError};

#[derive(Clone)]
pub struct Drainer {
    pub store: Arc<dyn Store>,
    pub mixing: Arc<MixControl>,
    pub draining: Arc<AtomicBool>,
    /// Notified to stop the server after a drain that asks for it.
    pub stop: Arc<Notify>,
}

#[derive(Deserialize)]
struct DrainQuery {
    #[serde(default)]
    stop: bool,
}

pub fn router(d: Drainer) -> Router {
    Router::new().route("/api/drain", post(drain)).with_state(d)
}

/// What became of a task this node offered to another node.
pub enum HandOver {
    /// The store marks it as that node's now, and it stopped here.
    Moved(String),
    /// No other live node has the budget for it: it stays here.
    NoRoom,
    /// The store already marked it as another node's (this node was fenced, say): it
    /// stopped here.
    TakenElsewhere,
    /// The store did not answer: it stays here.
    Failed(StoreError),
}

/// Offers one task this node holds to the node placement picks: the store's owner
/// changes first (conditional on still being this node's), and only then the task stops
/// here, with no `mix_stop` (it goes on there).
pub fn hand_over_one(
    store: &dyn Store,
    mixing: &MixControl,
    app_id: AppId,
    task: &MixTask,
) -> HandOver {
    let Some(peer) = mixing.place_away(app_id, task) else {
        return HandOver::NoRoom;
    };
    match store.hand_over_task(app_id, &task.task_id, &peer.node) {
        Ok(true) => {
            mixing.release(app_id, &task.task_id);
            HandOver::Moved(peer.node)
        }
        Ok(false) => {
            mixing.release(app_id, &task.task_id);
            HandOver::TakenElsewhere
        }
        Err(e) => HandOver::Failed(e),
    }
}

impl Drainer {
    /// Hands every task over that another node can take: (moved as `(app, task, node)`,
    /// kept with the reason).
    fn hand_over(&self) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
        let (mut moved, mut kept) = (Vec::new(), Vec::new());
        for (app_id, task) in self.mixing.held() {
            let id = task.task_id.clone();
            match hand_over_one(self.store.as_ref(), &self.mixing, app_id, &task) {
                HandOver::Moved(node) => {
                    info!(app_id, task_id = %id, to = %node, "mix task handed over (drain)");
                    moved.push(json!({"app_id": app_id, "task_id": id, "node": node}));
                }
                HandOver::NoRoom => kept.push(json!({"app_id": app_id, "task_id": id,
                    "reason": "no other live node has the budget for it"})),
                HandOver::TakenElsewhere => kept.push(json!({"app_id": app_id, "task_id": id,
                    "reason": "the store marks it as another node's"})),
                HandOver::Failed(e) => {
                    warn!(app_id, task_id = %id, error = %e, "mix task not handed over");
                    kept.push(json!({"app_id": app_id, "task_id": id, "reason": e.to_string()}));
                }
            }
        }
        (moved, kept)
    }
}

async fn drain(State(d): State<Drainer>, Query(q): Query<DrainQuery>) -> Response {
    if !d.store.shared() {
        return (
            StatusCode::CONFLICT,
            "this node shares no store: there is no other node to hand its tasks to\n",
        )
            .into_response();
    }
    d.draining.store(true, Ordering::Relaxed);
    let worker = d.clone();
    let Ok((moved, kept)) = tokio::task::spawn_blocking(move || worker.hand_over()).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "drain failed\n").into_response();
    };
    info!(
        moved = moved.len(),
        kept = kept.len(),
        stop = q.stop,
        "node drained"
    );
    if q.stop {
        // After this answer is on its way.
        let stop = d.stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            stop.notify_one();
        });
    }
    Json(json!({"moved": moved, "kept": kept, "stopping": q.stop})).into_response()
}
