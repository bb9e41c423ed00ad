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
    /// Tasks this node sent to others lately.
    pub recent: Mutex<Vec<Placed>>,
    /// The other live nodes as last read, and when (member calls go to all of them: a
    /// store read per call would cost more than the call).
    pub peers: Mutex<(u64, Vec<Peer>)>,
}

/// How long the list of other nodes is used before it is read again.
const PEERS_FRESH_MS: u64 = 1_000;

/// A task this node sent to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub node: String,
    /// `app:task`, as nodes list their tasks.
    pub task: String,
    pub cost: u64,
    pub at_ms: u64,
}

/// A node's free budget as the placing node should see it: as last renewed, less the
/// tasks this node sent it that its renewal does not list yet (a burst of StartMix calls
/// would otherwise all go to the node whose renewal is oldest; a time window instead
/// counted tasks twice once renewed: 6 of 9 back-to-back calls went to one of two nodes).
pub fn free_after(n: &NodeInfo, recent: &[Placed]) -> u64 {
    let placed: u64 = recent
        .iter()
        .filter(|p| p.node == n.node_id && !n.tasks.contains(&p.task))
        .map(|p| p.cost)
        .sum();
    n.free_budget.saturating_sub(placed)
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

    fn place(&self, app_id: AppId, task_id: &str, spec: &MixSpec) -> Option<Peer> {
        let now = now_ms();
        let nodes = self.store.nodes(now).ok()?;
        let cost = self.engine.cost_of(u64::from(app_id), spec);
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        // A task that never showed up (its start failed there) stops counting after 10 s.
        recent.retain(|p| p.at_ms + 10_000 > now);
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
                        free_after(n, &recent)
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
        tracing::debug!(app_id, task_id, cost, ?candidates, chosen = %chosen.node, "task placed");
        if chosen.node == self.me {
            return None;
        }
        recent.push(Placed {
            node: chosen.node.clone(),
            task: format!("{app_id}:{task_id}"),
            cost,
            at_ms: now,
        });
        nodes.iter().find(|n| n.node_id == chosen.node).map(peer)
    }

    fn peers(&self) -> Vec<Peer> {
        let now = now_ms();
        let mut cached = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        if now.saturating_sub(cached.0) >= PEERS_FRESH_MS {
            match self.store.nodes(now) {
                Ok(nodes) => {
                    *cached = (
                        now,
                        nodes
                            .iter()
                            .filter(|n| n.node_id != self.me)
                            .map(peer)
                            .collect(),
                    );
                }
                Err(e) => tracing::warn!(error = %e, "other nodes not listed"),
            }
        }
        cached.1.clone()
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
    fn tasks_sent_count_against_a_node_until_its_renewal_lists_them() {
        let placed = |node: &str, task: &str, cost| Placed {
            node: node.into(),
            task: task.into(),
            cost,
            at_ms: 0,
        };
        let recent = vec![
            placed("b", "1:t1", 30),
            placed("b", "1:t2", 30),
            placed("c", "1:t3", 99),
        ];
        let node = |free, tasks: &[&str]| NodeInfo {
            node_id: "b".into(),
            http: String::new(),
            rtmp: String::new(),
            started_ms: 0,
            renewed_ms: 0,
            lease_until_ms: 0,
            free_budget: free,
            draining: false,
            tasks: tasks.iter().map(|t| t.to_string()).collect(),
        };
        // Neither listed yet: both count; c's is c's.
        assert_eq!(free_after(&node(100, &[]), &recent), 40);
        // t1 is in the renewal (and in its free budget): only t2 counts.
        assert_eq!(free_after(&node(70, &["1:t1"]), &recent), 40);
        assert_eq!(free_after(&node(40, &["1:t1", "1:t2"]), &recent), 40);
        assert_eq!(free_after(&node(20, &[]), &recent), 0);
    }

    #[test]
    fn a_draining_node_takes_nothing() {
        let nodes = [c("a", 1000, 3, true), c("b", 10, 0, false)];
        assert_eq!(choose(5, &nodes).unwrap().node, "b");
        assert!(choose(5, &nodes[..1]).is_none());
    }
}
