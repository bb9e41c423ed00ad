//! Other nodes' changes applied on this one, when the store is shared: the store reports
//! which app's bans changed (PostgreSQL `LISTEN/NOTIFY`), this node reads that app's ban
//! list and makes its own the same — so a forbid sent to any node cuts off the publisher
//! wherever it is. Notifications can be lost (a dropped connection, a full queue), so
//! every app is also read again after a reconnection and every [`RECONCILE`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{debug, warn};

use tributary_api::control::ControlPlane;
use tributary_core::AppId;
use tributary_core::store::{Store, StoreChange, StoreError};

/// How often every app's bans are read again, notifications or not.
pub const RECONCILE: Duration = Duration::from_secs(10);
/// Changes waiting to be applied; beyond it, one full pass replaces them.
const QUEUE: usize = 256;

/// Starts applying other nodes' changes; `None` when the store serves this node alone.
pub fn start(
    store: Arc<dyn Store>,
    control: Arc<ControlPlane>,
) -> Result<Option<tokio::task::JoinHandle<()>>, StoreError> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let missed = Arc::new(AtomicBool::new(false));
    let overflow = missed.clone();
    let watching = store.watch(Box::new(move |change| {
        if tx.try_send(change).is_err() {
            overflow.store(true, Ordering::Relaxed);
        }
    }))?;
    if !watching {
        return Ok(None);
    }
    Ok(Some(tokio::spawn(apply(store, control, rx, missed))))
}

async fn apply(
    store: Arc<dyn Store>,
    control: Arc<ControlPlane>,
    mut changes: mpsc::Receiver<StoreChange>,
    missed: Arc<AtomicBool>,
) {
    let mut every = tokio::time::interval(RECONCILE);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let apps: Vec<AppId> = tokio::select! {
            change = changes.recv() => match change {
                Some(StoreChange::Bans(app)) => vec![app],
                Some(StoreChange::Resync) => all(&control),
                None => return,
            },
            _ = every.tick() => all(&control),
        };
        let apps = if missed.swap(false, Ordering::Relaxed) {
            all(&control)
        } else {
            apps
        };
        for app in apps {
            if control.app(app).is_none() {
                continue; // an app this node does not serve
            }
            let s = store.clone();
            match tokio::task::spawn_blocking(move || s.bans(app)).await {
                Ok(Ok(bans)) => match control.sync_bans(app, &bans) {
                    Ok((0, 0)) => {}
                    Ok((banned, resumed)) => {
                        debug!(app_id = app, banned, resumed, "bans taken from the store")
                    }
                    Err(e) => warn!(app_id = app, error = %e, "bans not taken from the store"),
                },
                Ok(Err(e)) => warn!(app_id = app, error = %e, "bans not read from the store"),
                Err(e) => warn!(app_id = app, error = %e, "bans not read from the store"),
            }
        }
    }
}

fn all(control: &ControlPlane) -> Vec<AppId> {
    control.apps().map(|a| a.config.app_id).collect()
}
