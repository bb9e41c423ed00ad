//! An in-memory [`Store`] for unit tests: records write batches and can be told to fail.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tributary_core::store::{
    CallbackState, DeliveryOutcome, OutboxEntry, Store, StoreError, StoredRegistry, WriteBatch,
};
use tributary_core::{AppConfig, AppId};

/// An in-memory store that records batches and can be told to fail.
#[derive(Default)]
pub(crate) struct MemStore {
    pub(crate) batches: Mutex<Vec<WriteBatch>>,
    pub(crate) fail: AtomicBool,
    /// What `next_callback_at` answers.
    pub(crate) next_callback_at: Mutex<Option<u64>>,
}

impl MemStore {
    /// The times of the callbacks queued so far, by event.
    pub(crate) fn callback_times(&self, event: &str) -> Vec<u64> {
        self.batches
            .lock()
            .unwrap()
            .iter()
            .flat_map(|b| b.ops.iter())
            .filter_map(|op| match op {
                tributary_core::store::WriteOp::EnqueueCallback(cb) if cb.event == event => {
                    Some(cb.created_ms)
                }
                _ => None,
            })
            .collect()
    }
}

impl Store for MemStore {
    fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
    fn setting(&self, _: &str) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
    fn put_setting_if_absent(&self, _: &str, value: &str) -> Result<String, StoreError> {
        Ok(value.to_string())
    }
    fn renew_node(&self, _: &tributary_core::store::NodeInfo) -> Result<(), StoreError> {
        Ok(())
    }
    fn nodes(&self, _: u64) -> Result<Vec<tributary_core::store::NodeInfo>, StoreError> {
        Ok(Vec::new())
    }
    fn bans(&self, _: AppId) -> Result<Vec<(String, u64)>, StoreError> {
        Ok(Vec::new())
    }
    fn apps(&self) -> Result<Vec<AppConfig>, StoreError> {
        Ok(Vec::new())
    }
    fn insert_first_app(&self, app: &AppConfig) -> Result<Vec<AppConfig>, StoreError> {
        Ok(vec![app.clone()])
    }
    fn registry(&self, _: AppId) -> Result<StoredRegistry, StoreError> {
        Ok(StoredRegistry::default())
    }
    fn mix_tasks(&self, _: AppId) -> Result<Vec<tributary_core::mix_task::MixTask>, StoreError> {
        Ok(Vec::new())
    }
    fn watermarks(
        &self,
        _: AppId,
    ) -> Result<Vec<tributary_core::watermark::Watermark>, StoreError> {
        Ok(Vec::new())
    }
    fn apply(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(StoreError("disk full".into()));
        }
        self.batches.lock().unwrap().push(batch.clone());
        Ok(())
    }
    fn due_callbacks(&self, _: u64, _: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        Ok(Vec::new())
    }
    fn next_callback_at(&self) -> Result<Option<u64>, StoreError> {
        Ok(*self.next_callback_at.lock().unwrap())
    }
    fn record_delivery(&self, _: i64, _: &DeliveryOutcome) -> Result<(), StoreError> {
        Ok(())
    }
    fn callbacks(&self, _: CallbackState, _: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        Ok(Vec::new())
    }
    fn requeue_failed(&self, _: u64) -> Result<usize, StoreError> {
        Ok(0)
    }
}
