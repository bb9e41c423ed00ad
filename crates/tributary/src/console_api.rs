//! The console's write path. The layout editor and the moderation buttons act through
//! the very ZEGO actions a backend calls (StartMix with its live update, StopMix,
//! ForbidRTCStream, ResumeRTCStream): the server signs a fresh request as the app — it
//! holds the app's secret, the browser never does — and hands it to the dialect's own
//! handler, so signatures, replay guard, rate limits, `Sequence` rules, persistence and
//! callbacks are exactly the API's. Reached only with the admin token (`/api/*`).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use tributary_api::control::ControlPlane;
use tributary_api::tencent::templates;
use tributary_api::zego::{self, ZegoApi};
use tributary_core::AppId;

use crate::sign::signed_url;

/// What the console may do as an app; every other action is refused.
const ACTIONS: &[&str] = &["StartMix", "StopMix", "ForbidRTCStream", "ResumeRTCStream"];

/// The largest body the console sends (a StartMix of the largest layout fits easily).
const BODY_LIMIT: usize = 256 * 1024;

#[derive(Clone)]
struct ConsoleApi {
    zego: Arc<ZegoApi>,
    control: Arc<ControlPlane>,
}

pub fn router(zego: Arc<ZegoApi>, control: Arc<ControlPlane>) -> Router {
    Router::new()
        .route("/api/console/apps", get(apps))
        .route("/api/console/templates", get(templates))
        .route("/api/console/zego/{app}/{action}", post(act))
        .with_state(ConsoleApi { zego, control })
}

/// The apps the console can act for (ids only: no secrets leave the server).
async fn apps(State(c): State<ConsoleApi>) -> Response {
    let mut ids: Vec<AppId> = c.control.apps().map(|a| a.config.app_id).collect();
    ids.sort_unstable();
    axum::Json(json!({ "apps": ids })).into_response()
}

/// The output size the editor asks template boxes for.
#[derive(serde::Deserialize)]
struct Size {
    width: Option<u32>,
    height: Option<u32>,
}

/// Tencent's `MixStreamTemplateId` layouts on the editor's output size, as presets: the
/// boxes come from the dialect's own table, so a layout drawn from a preset is the one a
/// Tencent request naming that template gets.
async fn templates(Query(size): Query<Size>) -> Response {
    let (w, h) = (size.width.unwrap_or(640), size.height.unwrap_or(360));
    if !(64..=3840).contains(&w) || !(64..=2160).contains(&h) {
        return (
            StatusCode::BAD_REQUEST,
            "width must be 64–3840 and height 64–2160\n",
        )
            .into_response();
    }
    let list: Vec<serde_json::Value> = templates::catalogue()
        .filter_map(|(id, inputs, canvas)| {
            let boxes = templates::layout(id, w, h, inputs, canvas).ok()?;
            Some(json!({
                "id": id,
                "inputs": inputs,
                "canvas_background": canvas,
                "boxes": boxes.iter().map(|b| json!({
                    "layer": b.layer, "x": b.x, "y": b.y, "width": b.width, "height": b.height,
                })).collect::<Vec<_>>(),
            }))
        })
        .collect();
    axum::Json(json!({ "width": w, "height": h, "templates": list })).into_response()
}

async fn act(
    State(c): State<ConsoleApi>,
    Path((app, action)): Path<(String, String)>,
    body: Body,
) -> Response {
    if !ACTIONS.contains(&action.as_str()) {
        return (
            StatusCode::NOT_FOUND,
            "the console cannot run this action\n",
        )
            .into_response();
    }
    let Some(config) = app
        .parse::<AppId>()
        .ok()
        .and_then(|id| c.control.app(id))
        .map(|a| a.config.clone())
    else {
        return (StatusCode::NOT_FOUND, "no such app\n").into_response();
    };
    let bytes = axum::body::to_bytes(body, BODY_LIMIT).await.ok();
    let now_secs = c.control.now_ms() / 1000;
    let url = signed_url("", &config, &action, &[], now_secs);
    let query = url.split_once('?').map_or("", |(_, q)| q);
    zego::respond(
        &c.zego,
        Method::POST,
        &axum::http::HeaderMap::new(),
        query,
        bytes,
        tributary_api::cluster::Via::Client,
    )
    .await
}
