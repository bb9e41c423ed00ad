//! Tasks of nodes that died, taken over: on a shared store, every node looks every
//! [`SCAN`] for tasks whose node's lease ran out, marks each as its own in the store (one
//! node wins each: the change is conditional on the old owner) and runs it with the same
//! spec and outputs, without a second `mix_start`. A killed node's tasks thus run again
//! within its lease (6 s) plus one scan.
//!
//! The same scan runs the tasks the store marks as this node's that it does not hold:
//! tasks a draining node handed to it ([`crate::drain`]). A draining node adopts nothing.
//! And it lets this node's auto-mixes pick up streams other nodes hold in their rooms.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tracing::{info, warn};

use tributary_api::clock::now_ms;
use tributary_api::mixing::MixControl;
use tributary_core::AppId;
use tributary_core::store::Store;

use crate::drain::{HandOver, hand_over_one};

/// How often a node looks for orphaned tasks.
pub const SCAN: Duration = Duration::from_secs(2);

/// Tasks this node holds but could not start (adopted or handed over while it was over
/// its budget, say): tried here again once each one's wait is over
/// ([`tributary_api::mixing::retry_after_ms`]), and those still not running handed to a
/// node that has room for them, as a drain does. `mine`: the tasks the store marks as
/// this node's in this scan; no other task is started or moved.
fn offer_refused(store: &dyn Store, m: &MixControl, mine: &HashSet<(AppId, String)>) {
    for (app_id, task) in m.retry_not_started(|a, t| mine.contains(&(a, t.to_owned()))) {
        match hand_over_one(store, m, app_id, &task) {
            HandOver::Moved(to) => {
                info!(app_id, task_id = %task.task_id, to = %to, "mix task this node could not start handed over")
            }
            HandOver::NoRoom => {}
            HandOver::TakenElsewhere => {
                info!(app_id, task_id = %task.task_id, "mix task this node could not start is another node's")
            }
            HandOver::Failed(e) => {
                warn!(app_id, task_id = %task.task_id, error = %e, "mix task not handed over")
            }
        }
    }
}

/// On a node alone on its store: retries the stored tasks it could not start when it
/// resumed them (over its budget, say), once each one's wait is over (looked at every
/// [`SCAN`]), for as long as the server runs.
pub async fn retry_not_started(mixing: Arc<MixControl>) {
    let mut tick = tokio::time::interval(SCAN);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let m = mixing.clone();
        let _ = tokio::task::spawn_blocking(move || m.retry_not_started(|_, _| true)).await;
    }
}

/// Runs for as long as the server does (only with a shared store).
pub async fn adopt_orphans(
    store: Arc<dyn Store>,
    mixing: Arc<MixControl>,
    node: String,
    draining: Arc<AtomicBool>,
) {
    let mut tick = tokio::time::interval(SCAN);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (s, m) = (store.clone(), mixing.clone());
        let node = node.clone();
        if draining.load(Ordering::Relaxed) {
            continue;
        }
        // Store calls and task starts block: off the async workers.
        let pass = tokio::task::spawn_blocking(move || {
            match s.owned_tasks() {
                Ok(owned) => {
                    let held: HashSet<(AppId, String)> =
                        m.held().into_iter().map(|(a, t)| (a, t.task_id)).collect();
                    let mine: HashSet<(AppId, String)> =
                        owned.iter().map(|(a, t)| (*a, t.task_id.clone())).collect();
                    for (app_id, task) in owned {
                        if held.contains(&(app_id, task.task_id.clone())) {
                            continue;
                        }
                        info!(app_id, task_id = %task.task_id, node = %node, "running a task handed to this node");
                        if let Err(e) = m.adopt(app_id, task) {
                            warn!(app_id, error = %e, "handed-over task not run");
                        }
                    }
                    offer_refused(s.as_ref(), &m, &mine);
                }
                Err(e) => warn!(error = %e, "tasks of this node not listed"),
            }
            // Auto-mixes follow the streams other nodes hold in their rooms.
            m.follow_other_nodes();
            let orphans = match s.orphaned_tasks(now_ms()) {
                Ok(o) => o,
                Err(e) => {
                    warn!(error = %e, "orphaned tasks not listed");
                    return;
                }
            };
            for (app_id, task_id, from) in orphans {
                match s.adopt_task(app_id, &task_id, &from) {
                    Ok(Some(task)) => {
                        info!(app_id, task_id = %task_id, from = %from, node = %node, "adopting a task of a node that stopped renewing its lease");
                        // One this node cannot start is tried again by the next scan,
                        // and offered to a node with room for it (`offer_refused`).
                        if let Err(e) = m.adopt(app_id, task) {
                            warn!(app_id, task_id = %task_id, error = %e, "task not adopted");
                        }
                    }
                    Ok(None) => {} // another node was first
                    Err(e) => warn!(app_id, task_id = %task_id, error = %e, "task not adopted"),
                }
            }
        });
        let _ = pass.await;
    }
}
