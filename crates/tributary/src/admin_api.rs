//! Operator introspection beyond streams and mixes, for the console and scripts (admin
//! token, like every `/api/*` route): an app's rooms with their streams and users, its ban
//! list, the callback outbox (pending or
//! failed deliveries, with callback URLs redacted), and requeueing the failed ones — what
//! `tributary bans list` and `tributary callbacks …` do, over HTTP.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use tributary_api::clock::now_ms;
use tributary_api::control::ControlPlane;
use tributary_core::AppId;
use tributary_core::store::{CallbackState, Store};
use tributary_core::url_policy::redact;

/// At most this many callbacks (or rooms) per listing (there can be many more).
const MAX_LISTED: usize = 500;

pub fn router(store: Arc<dyn Store>, control: Arc<ControlPlane>) -> Router {
    Router::new()
        .route("/api/bans/{app}", get(bans))
        .route("/api/callbacks", get(callbacks))
        .route("/api/callbacks/retry-failed", post(retry_failed))
        .with_state(store)
        .merge(
            Router::new()
                .route("/api/rooms/{app}", get(rooms))
                .with_state(control),
        )
}

/// The app's open rooms (the first [`MAX_LISTED`] by id) with their streams and users.
async fn rooms(State(control): State<Arc<ControlPlane>>, Path(app): Path<String>) -> Response {
    let Some(app_id) = app
        .parse::<AppId>()
        .ok()
        .filter(|id| control.app(*id).is_some())
    else {
        return (StatusCode::NOT_FOUND, "no such app\n").into_response();
    };
    match control.rooms_overview(app_id, MAX_LISTED) {
        Ok(rooms) => axum::Json(json!({ "app_id": app_id, "rooms": rooms })).into_response(),
        Err(e) => failed(e),
    }
}

fn failed(e: impl std::fmt::Display) -> Response {
    tracing::warn!(error = %e, "admin API: the store failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "the store failed; see the log\n",
    )
        .into_response()
}

async fn bans(State(store): State<Arc<dyn Store>>, Path(app): Path<String>) -> Response {
    let Ok(app_id) = app.parse::<AppId>() else {
        return (StatusCode::NOT_FOUND, "no such app\n").into_response();
    };
    match tokio::task::spawn_blocking(move || store.registry(app_id)).await {
        Ok(Ok(reg)) => {
            let mut bans: Vec<_> = reg
                .bans
                .into_iter()
                .map(|(stream_id, since_ms)| json!({"stream_id": stream_id, "since_ms": since_ms}))
                .collect();
            bans.sort_by(|a, b| a["stream_id"].as_str().cmp(&b["stream_id"].as_str()));
            axum::Json(json!({ "app_id": app_id, "bans": bans })).into_response()
        }
        Ok(Err(e)) => failed(e),
        Err(e) => failed(e),
    }
}

#[derive(Deserialize)]
struct Listing {
    /// `pending` (default) or `failed`.
    state: Option<String>,
    limit: Option<usize>,
}

async fn callbacks(State(store): State<Arc<dyn Store>>, Query(q): Query<Listing>) -> Response {
    let state = match q.state.as_deref() {
        None | Some("pending") => CallbackState::Pending,
        Some("failed") => CallbackState::Failed,
        Some(_) => {
            return (StatusCode::BAD_REQUEST, "state is pending or failed\n").into_response();
        }
    };
    let limit = q.limit.unwrap_or(100).min(MAX_LISTED);
    match tokio::task::spawn_blocking(move || store.callbacks(state, limit)).await {
        Ok(Ok(entries)) => {
            let list: Vec<_> = entries
                .into_iter()
                .map(|e| {
                    json!({
                        "id": e.id, "app_id": e.app_id, "event": e.event, "url": redact(&e.url),
                        "created_ms": e.created_ms, "attempts": e.attempts,
                        "next_at_ms": e.next_at_ms, "last_error": e.last_error,
                    })
                })
                .collect();
            axum::Json(json!({ "callbacks": list })).into_response()
        }
        Ok(Err(e)) => failed(e),
        Err(e) => failed(e),
    }
}

async fn retry_failed(State(store): State<Arc<dyn Store>>) -> Response {
    match tokio::task::spawn_blocking(move || store.requeue_failed(now_ms())).await {
        Ok(Ok(n)) => axum::Json(json!({ "requeued": n })).into_response(),
        Ok(Err(e)) => failed(e),
        Err(e) => failed(e),
    }
}
