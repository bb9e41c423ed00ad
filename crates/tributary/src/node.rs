//! This node among the nodes that share a store: its name, and its lease in the store's
//! `nodes` table, renewed every [`RENEW`] while it runs. A node that stops renewing
//! (killed, cut off) drops out of the live list when its lease runs out; one that stops
//! cleanly gives its lease up at once. `GET /api/nodes` lists the live ones.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tracing::warn;

use tributary_api::clock::now_ms;
use tributary_core::store::{NodeInfo, Store};

/// How often a node renews its lease.
pub const RENEW: Duration = Duration::from_secs(2);
/// How long a lease lasts: three renewals, so one slow write does not drop a node.
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
}

impl Me {
    fn info(&self, now: u64, lease_until_ms: u64) -> NodeInfo {
        NodeInfo {
            node_id: self.id.clone(),
            http: self.http.clone(),
            rtmp: self.rtmp.clone(),
            started_ms: self.started_ms,
            renewed_ms: now,
            lease_until_ms,
        }
    }
}

/// Renews this node's lease until the task is dropped (aborted at shutdown, after which
/// [`leave`] gives the lease up).
pub async fn keep_alive(store: Arc<dyn Store>, me: Me) {
    let mut tick = tokio::time::interval(RENEW);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (store, now) = (store.clone(), now_ms());
        let info = me.info(now, now + LEASE.as_millis() as u64);
        match tokio::task::spawn_blocking(move || store.renew_node(&info)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(node = %me.id, error = %e, "node lease not renewed"),
            Err(e) => warn!(node = %me.id, error = %e, "node lease not renewed"),
        }
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
