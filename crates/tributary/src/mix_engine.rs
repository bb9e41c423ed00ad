//! Wires the mixing engine (`tributary-mixer`) to the control plane's `MixEngine` port,
//! serves the per-task introspection endpoint, and turns the engine's idle stops into
//! ordinary stops (stored, with `mix_stop`).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use tokio::sync::mpsc;
use tracing::warn;

use tributary_api::clock::now_ms;
use tributary_api::mixing::{EngineRefusal, MixControl, MixEngine, StopReason};
use tributary_core::AppId;
use tributary_core::mix::MixSpec;
use tributary_core::store::Store;
use tributary_mixer::images::ImageError;
use tributary_mixer::{Engine, EngineError, EngineEvent};

pub struct EngineAdapter(pub Arc<Engine>);

fn refusal(e: EngineError) -> EngineRefusal {
    match e {
        EngineError::OverBudget { .. } | EngineError::ImageMemory { .. } => {
            EngineRefusal::OverBudget(e.to_string())
        }
        EngineError::InputMissing(_) => EngineRefusal::InputMissing(e.to_string()),
        EngineError::Image {
            error: ImageError::Reference(_),
            ..
        } => EngineRefusal::ImageReference(e.to_string()),
        EngineError::Image { .. } => EngineRefusal::ImageLoad(e.to_string()),
        EngineError::InputUrl { .. } => EngineRefusal::InputUrl(e.to_string()),
        EngineError::OutputUrl { .. } => EngineRefusal::OutputUrl(e.to_string()),
        EngineError::Spawn(_) => EngineRefusal::Internal(e.to_string()),
        EngineError::Label { .. } => EngineRefusal::Label(e.to_string()),
    }
}

impl MixEngine for EngineAdapter {
    fn check(
        &self,
        app_id: AppId,
        task_id: &str,
        spec: &MixSpec,
        require_inputs: bool,
    ) -> Result<(), EngineRefusal> {
        self.0
            .check(app_id as u64, task_id, spec, require_inputs)
            .map_err(refusal)
    }

    fn start(&self, app_id: AppId, task_id: &str, spec: &MixSpec) -> Result<(), EngineRefusal> {
        self.0.start(app_id as u64, task_id, spec).map_err(refusal)
    }

    fn stop(&self, app_id: AppId, task_id: &str) {
        self.0.stop(app_id as u64, task_id);
    }

    fn is_running(&self, app_id: AppId, task_id: &str) -> bool {
        self.0.is_running(app_id as u64, task_id)
    }

    fn stream_size(&self, app_id: AppId, stream_id: &str) -> Option<(u32, u32)> {
        self.0.stream_size(app_id as u64, stream_id)
    }

    fn stream_fps(&self, app_id: AppId, stream_id: &str) -> Option<f64> {
        self.0.stream_fps(app_id as u64, stream_id)
    }
}

/// Stops (with `mix_stop`) the tasks that ended by themselves: idle for MaxIdleTime, or
/// no video in time with WaitVideoInput.
pub async fn follow_idle(mixing: Arc<MixControl>, mut events: mpsc::Receiver<EngineEvent>) {
    while let Some(ev) = events.recv().await {
        let (app_id, task_id, reason) = match ev {
            EngineEvent::Idle { app_id, task_id } => (app_id, task_id, StopReason::Idle),
            EngineEvent::NoVideo { app_id, task_id } => (app_id, task_id, StopReason::NoVideo),
        };
        let m = mixing.clone();
        let result = tokio::task::spawn_blocking(move || {
            m.stop(app_id as AppId, &task_id, None, None, reason)
        })
        .await;
        if let Ok(Err(e)) = result {
            warn!(app_id, error = %e, "a mix task that ended could not be stopped cleanly");
        }
    }
}

/// `GET /api/mix` (every task of this node) and `GET /api/mix/{app}/{task}`: fps
/// achieved, late ticks, input states, output counters. Each task's answer names the
/// node that runs it (`"node"`); on a shared store, a task another node runs is asked
/// of that node (with the caller's own credential) and its answer passed on.
pub fn router(engine: Arc<Engine>, node: String, store: Arc<dyn Store>) -> Router {
    Router::new()
        .route("/api/mix", get(list))
        .route("/api/mix/{app}/{task}", get(one))
        .with_state(MixState {
            engine,
            node: Arc::new(node),
            store,
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .build()
                .ok(),
        })
}

#[derive(Clone)]
struct MixState {
    engine: Arc<Engine>,
    node: Arc<String>,
    store: Arc<dyn Store>,
    client: Option<reqwest::Client>,
}

/// A task's statistics with the node running it.
fn on_node(stats: impl serde::Serialize, node: &str) -> serde_json::Value {
    let mut v = serde_json::to_value(stats).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("node".into(), node.into());
    }
    v
}

async fn list(State(MixState { engine, node, .. }): State<MixState>) -> Response {
    let tasks: Vec<serde_json::Value> = engine
        .list()
        .into_iter()
        .map(|t| on_node(t, &node))
        .collect();
    Json(tasks).into_response()
}

async fn one(
    State(st): State<MixState>,
    Path((app, task)): Path<(u64, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(s) = st.engine.stats(app, &task) {
        return Json(on_node(s, &st.node)).into_response();
    }
    let not_found = || (StatusCode::NOT_FOUND, "no such mix task").into_response();
    let (Ok(app_id), true) = (AppId::try_from(app), st.store.shared()) else {
        return not_found();
    };
    // Run by another node? Its live entry gives its address.
    let (store, me, t) = (st.store.clone(), st.node.clone(), task.clone());
    let owner = tokio::task::spawn_blocking(move || {
        let owner = store.task_owner(app_id, &t).ok()??;
        if owner == *me {
            return None;
        }
        let nodes = store.nodes(now_ms()).ok()?;
        nodes.into_iter().find(|n| n.node_id == owner)
    })
    .await
    .ok()
    .flatten();
    let (Some(owner), Some(client)) = (owner, st.client) else {
        return not_found();
    };
    let mut req = client.get(format!("http://{}/api/mix/{app}/{task}", owner.http));
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        req = req.header(header::AUTHORIZATION, auth.clone());
    }
    let answer = match req.send().await {
        Ok(r) if r.status().is_success() => r.json::<serde_json::Value>().await.ok(),
        _ => None,
    };
    match answer {
        Some(v) => Json(v).into_response(),
        None => (
            StatusCode::BAD_GATEWAY,
            Json(
                serde_json::json!({"app_id": app, "task_id": task, "node": owner.node_id,
                "error": "the node that runs the task did not answer"}),
            ),
        )
            .into_response(),
    }
}
