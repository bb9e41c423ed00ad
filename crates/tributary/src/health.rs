//! Probes for supervisors and load balancers, open without the admin token and saying
//! nothing about the node: `GET /healthz` — the process serves HTTP (liveness);
//! `GET /readyz` — it can also do its work: the store answers within a deadline
//! (readiness). A failed check is logged with its reason; the caller sees only 503.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use tracing::warn;

use tributary_core::store::Store;

/// How long the store may take to answer before the node counts as not ready (a write
/// holding the database longer than this is itself a reason to send traffic elsewhere).
const STORE_DEADLINE: Duration = Duration::from_secs(2);

pub fn router(store: Arc<dyn Store>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let store = store.clone();
                async move { ready(store).await }
            }),
        )
}

async fn ready(store: Arc<dyn Store>) -> (StatusCode, &'static str) {
    let check = tokio::task::spawn_blocking(move || store.ping());
    match tokio::time::timeout(STORE_DEADLINE, check).await {
        Ok(Ok(Ok(()))) => (StatusCode::OK, "ready"),
        Ok(Ok(Err(e))) => {
            warn!(error = %e, "not ready: the store failed a query");
            (StatusCode::SERVICE_UNAVAILABLE, "not ready")
        }
        Ok(Err(e)) => {
            warn!(error = %e, "not ready: the store check did not finish");
            (StatusCode::SERVICE_UNAVAILABLE, "not ready")
        }
        Err(_) => {
            warn!(
                deadline_ms = STORE_DEADLINE.as_millis() as u64,
                "not ready: the store did not answer in time"
            );
            (StatusCode::SERVICE_UNAVAILABLE, "not ready")
        }
    }
}
