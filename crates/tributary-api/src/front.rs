//! `/`: both dialects share the path, as the vendors' endpoints do; each request goes to
//! the dialect its headers and parameters name (a TC3 `X-TC-Action` header or Tencent's
//! legacy `SecretId`/`Signature`, else ZEGO's `Action`/`AppId`).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use axum::routing::get;

use crate::cluster;
use crate::tencent::handler::{TencentApi, is_tencent, respond as tencent};
use crate::zego::{self, BODY_LIMIT, ZegoApi};

#[derive(Clone)]
struct Dialects {
    zego: Arc<ZegoApi>,
    tencent: Arc<TencentApi>,
}

pub fn router(zego: Arc<ZegoApi>, tencent: Arc<TencentApi>) -> Router {
    Router::new()
        .route("/", get(handle).post(handle))
        .with_state(Dialects { zego, tencent })
}

/// Tencent's dialect alone (for a separate address, as the vendor's own endpoint).
pub fn tencent_router(tencent: Arc<TencentApi>) -> Router {
    Router::new()
        .route("/", get(handle_tencent).post(handle_tencent))
        .with_state(tencent)
}

async fn handle_tencent(
    State(t): State<Arc<TencentApi>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    let bytes = axum::body::to_bytes(body, BODY_LIMIT).await.ok();
    let query = query.unwrap_or_default();
    let now = t.now_ms();
    let via = match cluster::via(
        t.cluster().map(|c| &**c),
        &headers,
        &method,
        &query,
        bytes.as_ref(),
        now,
    ) {
        Ok(v) => v,
        Err(refused) => return *refused,
    };
    tencent(&t, method, &headers, &query, bytes, via).await
}

async fn handle(
    State(d): State<Dialects>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    let bytes = axum::body::to_bytes(body, BODY_LIMIT).await.ok();
    let query = query.unwrap_or_default();
    let now = d.tencent.now_ms();
    let cluster = d.zego.cluster().map(|c| &**c);
    let via = match cluster::via(cluster, &headers, &method, &query, bytes.as_ref(), now) {
        Ok(v) => v,
        Err(refused) => return *refused,
    };
    if is_tencent(&headers, &query, bytes.as_deref()) {
        tencent(&d.tencent, method, &headers, &query, bytes, via).await
    } else {
        zego::respond(&d.zego, method, &headers, &query, bytes, via).await
    }
}
