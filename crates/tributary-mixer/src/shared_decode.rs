//! A hub stream that several tasks read is decoded once.
//!
//! Each task used to decode its own copy of every input: with N layouts of one room, the
//! same publisher was decoded N times, on N threads woken per packet. Now the engine
//! keeps one [`SharedDecode`] per hub stream that video tasks read: one tap, one decode
//! thread, and a [`Sink`] per task, which scales the picture to that task's tile (once
//! per distinct size: tasks that draw the input alike share the picture) and places it,
//! and the samples, on the task's own timeline. A task joining a stream whose pictures
//! are already being decoded for another task starts from the next decoded frame, with
//! no wait for a key frame.
//!
//! It lives while some task holds it: the registry keeps only weak handles, and the last
//! task to let go stops the tap and the thread.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use prometheus_client::metrics::gauge::Gauge;
use tracing::warn;
use tributary_live::hub::Hub;

use crate::input::{
    Decoder, InputMsg, InputState, Sink, Sinks, TAP_QUEUE, decode_loop, hub_tap, lock_sinks,
};

/// One hub stream's tap and decode thread, and the tasks it feeds.
pub(crate) struct SharedDecode {
    sinks: Sinks,
    stop: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
    tap: Option<tokio::task::JoinHandle<()>>,
    /// The engine's count of shared decodes, one less when this one ends.
    gauge: Gauge,
}

impl SharedDecode {
    fn start(rt: &tokio::runtime::Handle, hub: &Hub, key: &str, gauge: Gauge) -> SharedDecode {
        let sinks: Sinks = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicU64::new(0));
        let (tx, rx) = sync_channel::<InputMsg>(TAP_QUEUE);
        let decoder = Decoder::new(key.to_owned(), sinks.clone());
        let thread_stop = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("mix-decode".into())
            .spawn(move || decode_loop(rx, decoder, thread_stop));
        if let Err(e) = spawned {
            warn!(stream = %key, error = %e, "cannot start a decode thread");
        }
        let tap = rt.spawn(hub_tap(
            hub.clone(),
            key.to_owned(),
            tx,
            stop.clone(),
            dropped.clone(),
        ));
        gauge.inc();
        SharedDecode {
            sinks,
            stop,
            dropped,
            tap: Some(tap),
            gauge,
        }
    }

    /// Starts feeding a task's input state (on the task's clock).
    pub(crate) fn attach(&self, state: Arc<Mutex<InputState>>, clock: Instant) {
        lock_sinks(&self.sinks).push(Sink::new(state, clock));
    }

    /// Stops feeding a task's input state.
    pub(crate) fn detach(&self, state: &Arc<Mutex<InputState>>) {
        lock_sinks(&self.sinks).retain(|s| !s.feeds(state));
    }

    /// Packets the decoder fell too far behind to take (for every task it feeds).
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for SharedDecode {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.tap.take() {
            t.abort();
        }
        self.gauge.dec();
    }
}

/// The engine's shared decodes, by hub key.
pub(crate) struct SharedDecodes {
    by_key: Mutex<HashMap<String, Weak<SharedDecode>>>,
    /// Where the taps run and what they read.
    rt: tokio::runtime::Handle,
    hub: Hub,
    gauge: Gauge,
}

impl SharedDecodes {
    /// `gauge` counts the decodes running.
    pub(crate) fn new(rt: tokio::runtime::Handle, hub: Hub, gauge: Gauge) -> SharedDecodes {
        SharedDecodes {
            by_key: Mutex::new(HashMap::new()),
            rt,
            hub,
            gauge,
        }
    }

    /// The running decode of hub stream `key`, or a new one.
    pub(crate) fn get(&self, key: &str) -> Arc<SharedDecode> {
        let mut map = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = map.get(key).and_then(Weak::upgrade) {
            return d;
        }
        // Forget the ones every task has let go of (the map stays as large as the
        // streams being read).
        map.retain(|_, w| w.strong_count() > 0);
        let d = Arc::new(SharedDecode::start(
            &self.rt,
            &self.hub,
            key,
            self.gauge.clone(),
        ));
        map.insert(key.to_owned(), Arc::downgrade(&d));
        d
    }
}
