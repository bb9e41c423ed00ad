//! Where a mix task runs when several nodes share a store: the store's node leases (each
//! carrying its free mixing budget as of its last renewal), task owners and live
//! streams, read through the [`Placement`] port the dialects route by.
//!
//! The rule (pure, in [`choose`]): among the live nodes that are not draining and whose
//! free budget fits the task's cost (the engine's admission cost model, computed here),
//! the one that publishes the most of the task's input streams, then the one with the
//! most budget free, then the node the call came to (no hop for nothing), then the
//! lowest id (a stable order). When none fits, the task is
//! tried here, and this node's admission refuses it with its usual error.

use std::sync::{Arc, Mutex};

use tributary_api::clock::now_ms;
use tributary_api::cluster::{Peer, Placement};
use tributary_core::AppId;
use tributary_core::mix::MixSpec;
use tributary_core::store::{NodeInfo, Store};
use tributary_live::Hub;
use tributary_live::auth::stream_key;
use tributary_mixer::Engine;

/// A node as placement weighs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub node: String,
    pub free: u64,
    /// How many of the task's inputs it publishes.
    pub inputs_held: usize,
    pub draining: bool,
    /// The node choosing.
    pub here: bool,
}

/// The node a task of `cost` goes to, if any can take it.
pub fn choose(cost: u64, candidates: &[Candidate]) -> Option<&Candidate> {
    candidates
        .iter()
        .filter(|c| !c.draining && c.free >= cost)
        .min_by(|a, b| {
            b.inputs_held
                .cmp(&a.inputs_held)
                .then(b.free.cmp(&a.free))
                .then(b.here.cmp(&a.here))
                .then(a.node.cmp(&b.node))
        })
}

pub struct StorePlacement {
    pub store: Arc<dyn Store>,
    pub engine: Arc<Engine>,
    pub hub: Hub,
    pub me: String,
    /// Set while this node drains: it takes no new task.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// Tasks this node sent to others lately: `(node, cost, when)`.
    pub recent: Mutex<Vec<(String, u64, u64)>>,
}

/// How long a placement counts against its node beyond that node's next renewal (the
/// renewal may have been written before the task started there).
const PLACED_GRACE_MS: u64 = 1_000;

/// A node's free budget as the placing node should see it: as last renewed, less what
/// this node sent it since (a burst of StartMix calls would otherwise all go to the node
/// whose renewal is oldest).
pub fn free_after(
    reported: u64,
    renewed_ms: u64,
    node: &str,
    recent: &[(String, u64, u64)],
) -> u64 {
    let placed: u64 = recent
        .iter()
        .filter(|(n, _, at)| n == node && at + PLACED_GRACE_MS > renewed_ms)
        .map(|(_, cost, _)| cost)
        .sum();
    reported.saturating_sub(placed)
}

fn peer(n: &NodeInfo) -> Peer {
    Peer {
        node: n.node_id.clone(),
        http: n.http.clone(),
    }
}

impl Placement for StorePlacement {
    fn owner(&self, app_id: AppId, task_id: &str) -> Option<Peer> {
        let owner = self.store.task_owner(app_id, task_id).ok()??;
        if owner == self.me {
            return None;
        }
        let nodes = self.store.nodes(now_ms()).ok()?;
        nodes.iter().find(|n| n.node_id == owner).map(peer)
    }

    fn place(&self, app_id: AppId, spec: &MixSpec) -> Option<Peer> {
        let now = now_ms();
        let nodes = self.store.nodes(now).ok()?;
        let cost = self.engine.cost_of(u64::from(app_id), spec);
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.retain(|(_, _, at)| at + 10_000 > now);
        let inputs: Vec<&str> = spec.input_streams().collect();
        // Which node publishes each input (one lookup per input).
        let mut held: Vec<Vec<String>> = Vec::with_capacity(inputs.len());
        for s in &inputs {
            let mut at: Vec<String> = self
                .store
                .stream_origins(app_id, s, now_ms())
                .unwrap_or_default()
                .into_iter()
                .map(|n| n.node_id)
                .collect();
            if self
                .hub
                .stream(&stream_key(app_id, s))
                .is_some_and(|st| !st.is_relay())
            {
                at.push(self.me.clone());
            }
            held.push(at);
        }
        let candidates: Vec<Candidate> = nodes
            .iter()
            .map(|n| {
                let here = n.node_id == self.me;
                Candidate {
                    node: n.node_id.clone(),
                    free: if here {
                        self.engine.free_budget()
                    } else {
                        free_after(n.free_budget, n.renewed_ms, &n.node_id, &recent)
                    },
                    inputs_held: held.iter().filter(|at| at.contains(&n.node_id)).count(),
                    draining: if here {
                        self.draining.load(std::sync::atomic::Ordering::Relaxed)
                    } else {
                        n.draining
                    },
                    here,
                }
            })
            .collect();
        let chosen = choose(cost, &candidates)?;
        if chosen.node == self.me {
            return None;
        }
        recent.push((chosen.node.clone(), cost, now));
        nodes.iter().find(|n| n.node_id == chosen.node).map(peer)
    }

    fn origin(&self, app_id: AppId, stream_id: &str) -> Option<Peer> {
        let nodes = self
            .store
            .stream_origins(app_id, stream_id, now_ms())
            .ok()?;
        nodes.first().map(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(node: &str, free: u64, inputs_held: usize, draining: bool) -> Candidate {
        Candidate {
            node: node.into(),
            free,
            inputs_held,
            draining,
            here: false,
        }
    }

    #[test]
    fn inputs_first_then_budget_then_name() {
        let nodes = [
            c("a", 100, 0, false),
            c("b", 50, 2, false),
            c("c", 80, 2, false),
        ];
        assert_eq!(choose(10, &nodes).unwrap().node, "c");
        // b and c hold as many inputs; only a fits a task of 90.
        assert_eq!(choose(90, &nodes).unwrap().node, "a");
        assert!(choose(101, &nodes).is_none());
        let mut tie = [c("n2", 10, 1, false), c("n1", 10, 1, false)];
        assert_eq!(choose(1, &tie).unwrap().node, "n1");
        // All else equal, the node the call came to keeps it.
        tie[0].here = true;
        assert_eq!(choose(1, &tie).unwrap().node, "n2");
    }

    #[test]
    fn what_was_sent_since_a_renewal_counts_against_the_node() {
        let recent = vec![
            ("b".to_string(), 30, 5_000),
            ("b".to_string(), 30, 2_000),
            ("c".to_string(), 99, 5_000),
        ];
        // Renewed at 4 000: the task sent at 5 000 is not in it yet; the one sent at 2 000 is
        // (past the grace), the one for c is c's.
        assert_eq!(free_after(100, 4_000, "b", &recent), 70);
        // Renewed at 6 500: the 5 000 task is counted there by now.
        assert_eq!(free_after(100, 6_500, "b", &recent), 100);
        assert_eq!(free_after(20, 0, "b", &recent), 0);
    }

    #[test]
    fn a_draining_node_takes_nothing() {
        let nodes = [c("a", 1000, 3, true), c("b", 10, 0, false)];
        assert_eq!(choose(5, &nodes).unwrap().node, "b");
        assert!(choose(5, &nodes[..1]).is_none());
    }
}
