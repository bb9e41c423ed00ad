//! Durable, at-least-once callback delivery.
//!
//! Callbacks are queued in the store in the same transaction as the change they announce;
//! this dispatcher only reads the queue. It POSTs each due entry, records the outcome, and
//! retries failures after 2, 4, 8, 16 and 32 s (the vendor's schedule, scaled by
//! `retry_base`); after the last retry the entry is marked failed, logged, and kept for
//! `tributary callbacks list --failed`. A restart simply finds the pending entries again.
//! API calls never wait for any of this: they only write the queue.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use tributary_core::store::{DeliveryOutcome, OutboxEntry, Store};
use tributary_core::url_policy::redact;

use crate::clock::Clock;

/// How many retries follow the first attempt.
pub const MAX_RETRIES: u32 = 5;

#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// The first retry's delay; each next one doubles (2 s by default, as the vendor).
    pub retry_base: Duration,
    /// One attempt's time limit.
    pub timeout: Duration,
    /// Deliveries in flight at once.
    pub concurrency: usize,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            retry_base: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
            concurrency: 32,
        }
    }
}

/// The outcome of attempt number `attempt` (1-based) that failed with `error`.
pub fn after_failure(
    attempt: u32,
    error: String,
    retry_base: Duration,
    now_ms: u64,
) -> DeliveryOutcome {
    if attempt > MAX_RETRIES {
        return DeliveryOutcome::Failed { error };
    }
    let delay = retry_base.as_millis() as u64 * (1u64 << (attempt - 1).min(30));
    DeliveryOutcome::Retry {
        next_at_ms: now_ms + delay,
        error,
    }
}

pub struct Outbox {
    store: Arc<dyn Store>,
    wakeup: Arc<Notify>,
    client: reqwest::Client,
    config: OutboxConfig,
    clock: Arc<dyn Clock>,
}

impl Outbox {
    pub fn new(
        store: Arc<dyn Store>,
        wakeup: Arc<Notify>,
        config: OutboxConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("tributary/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Outbox {
            store,
            wakeup,
            client,
            config,
            clock,
        })
    }

    /// Delivers until `shutdown` turns true. Deliveries still in flight then are dropped
    /// and stay pending in the store, to be sent again after the restart.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut in_flight: HashSet<i64> = HashSet::new();
        let mut tasks: JoinSet<(i64, DeliveryOutcome)> = JoinSet::new();
        loop {
            if *shutdown.borrow() {
                break;
            }
            let free = self.config.concurrency.saturating_sub(in_flight.len());
            if free > 0 {
                match self.due(free + in_flight.len()).await {
                    Ok(entries) => {
                        for entry in entries {
                            if in_flight.len() >= self.config.concurrency {
                                break;
                            }
                            if !in_flight.insert(entry.id) {
                                continue;
                            }
                            let client = self.client.clone();
                            let base = self.config.retry_base;
                            let clock = self.clock.clone();
                            tasks.spawn(async move { deliver(client, entry, base, clock).await });
                        }
                    }
                    Err(e) => warn!(error = %e, "reading the callback outbox failed"),
                }
            }
            let wait = self.wait_time().await;
            tokio::select! {
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Ok((id, outcome)) = done {
                        in_flight.remove(&id);
                        self.record(id, outcome).await;
                    }
                }
                _ = self.wakeup.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
        tasks.abort_all();
    }

    async fn due(&self, limit: usize) -> Result<Vec<OutboxEntry>, String> {
        let store = self.store.clone();
        let now = self.clock.now_ms();
        tokio::task::spawn_blocking(move || store.due_callbacks(now, limit))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// Until the next pending entry is due in the future, at most a second: entries
    /// requeued by another process (`tributary callbacks retry-failed`) are noticed by
    /// polling, one indexed query a second.
    async fn wait_time(&self) -> Duration {
        let store = self.store.clone();
        let next = tokio::task::spawn_blocking(move || store.next_callback_at())
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        let max = Duration::from_secs(1);
        let now = self.clock.now_ms();
        match next {
            Some(at) if at > now => Duration::from_millis(at - now).min(max),
            // An entry already due was just handed out: it is in flight or waiting for a
            // free slot, and a finishing attempt wakes the loop through `join_next`.
            // Waiting 0 here would spin on the store for as long as the attempt lasts.
            _ => max,
        }
    }

    async fn record(&self, id: i64, outcome: DeliveryOutcome) {
        let store = self.store.clone();
        let res = tokio::task::spawn_blocking(move || store.record_delivery(id, &outcome)).await;
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(callback_id = id, error = %e, "recording a delivery failed"),
            Err(e) => warn!(callback_id = id, error = %e, "recording a delivery failed"),
        }
    }
}

async fn deliver(
    client: reqwest::Client,
    entry: OutboxEntry,
    retry_base: Duration,
    clock: Arc<dyn Clock>,
) -> (i64, DeliveryOutcome) {
    let attempt = entry.attempts + 1;
    let result = client
        .post(&entry.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(entry.body.clone())
        .send()
        .await;
    let error = match result {
        Ok(resp) if resp.status().is_success() => {
            debug!(callback_id = entry.id, event = %entry.event, url = %redact(&entry.url), attempt, "callback delivered");
            return (entry.id, DeliveryOutcome::Delivered);
        }
        Ok(resp) => format!("HTTP {}", resp.status().as_u16()),
        // reqwest's message names the whole URL (its query may hold the backend's secret):
        // keep the reason only; the log line names the URL redacted.
        Err(e) => e.without_url().to_string(),
    };
    let shown = redact(&entry.url);
    let outcome = after_failure(attempt, error.clone(), retry_base, clock.now_ms());
    match &outcome {
        DeliveryOutcome::Failed { .. } => warn!(
            callback_id = entry.id, app_id = entry.app_id, event = %entry.event, url = %shown,
            attempts = attempt, error = %error,
            "callback failed for good; see `tributary callbacks list --failed`"
        ),
        _ => info!(
            callback_id = entry.id, event = %entry.event, url = %shown, attempt, error = %error,
            "callback attempt failed; will retry"
        ),
    }
    (entry.id, outcome)
}

#[cfg(test)]
mod tests {

    #[tokio::test]
    async fn the_wait_until_the_next_attempt_follows_the_clock() {
        let store = Arc::new(crate::test_store::MemStore::default());
        let clock = crate::clock::ManualClock::at(10_000);
        let outbox = Outbox::new(
            store.clone(),
            Arc::new(Notify::new()),
            OutboxConfig::default(),
            clock.clone(),
        )
        .unwrap();
        // Nothing pending: poll once a second.
        assert_eq!(outbox.wait_time().await, Duration::from_secs(1));
        *store.next_callback_at.lock().unwrap() = Some(10_300);
        assert_eq!(outbox.wait_time().await, Duration::from_millis(300));
        clock.advance(200);
        assert_eq!(outbox.wait_time().await, Duration::from_millis(100));
        // Due already (in flight or waiting for a slot): no busy loop.
        clock.advance(500);
        assert_eq!(outbox.wait_time().await, Duration::from_secs(1));
        *store.next_callback_at.lock().unwrap() = Some(60_000);
        assert_eq!(outbox.wait_time().await, Duration::from_secs(1), "capped");
    }

    use super::*;

    #[test]
    fn schedule_is_2_4_8_16_32_then_failed() {
        let base = Duration::from_secs(2);
        let delays: Vec<u64> = (1..=5)
            .map(|a| match after_failure(a, "x".into(), base, 1_000) {
                DeliveryOutcome::Retry { next_at_ms, .. } => (next_at_ms - 1_000) / 1000,
                other => panic!("attempt {a}: {other:?}"),
            })
            .collect();
        assert_eq!(delays, [2, 4, 8, 16, 32]);
        assert!(matches!(
            after_failure(6, "x".into(), base, 0),
            DeliveryOutcome::Failed { .. }
        ));
    }
}
