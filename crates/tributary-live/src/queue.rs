//! A subscriber's queue: bounded, and it drops whole GOPs instead of growing.
//!
//! The publisher pushes without ever waiting. When a subscriber falls behind past the
//! bound, everything queued is thrown away except codec configuration, and the queue
//! skips media until the next video key frame, so the player resumes on a clean picture
//! instead of smearing. Each such drop is counted.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

use crate::media::{Kind, Packet};

#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    pub max_packets: usize,
    pub max_bytes: usize,
}

impl Default for QueueLimits {
    fn default() -> Self {
        // ~6 s of a 4 Mb/s stream at 30 fps + audio.
        QueueLimits {
            max_packets: 1024,
            max_bytes: 4 << 20,
        }
    }
}

struct State {
    packets: VecDeque<Packet>,
    bytes: usize,
    /// After a drop: media is skipped until the next video key frame.
    waiting_for_key: bool,
    closed: bool,
}

pub struct Queue {
    state: Mutex<State>,
    notify: Notify,
    limits: QueueLimits,
    /// Whether the stream has video (audio-only streams restart on any packet).
    pub(crate) has_video: std::sync::atomic::AtomicBool,
    dropped_gops: AtomicU64,
}

impl Queue {
    pub fn new(limits: QueueLimits) -> Queue {
        Queue {
            state: Mutex::new(State {
                packets: VecDeque::new(),
                bytes: 0,
                waiting_for_key: false,
                closed: false,
            }),
            notify: Notify::new(),
            limits,
            has_video: std::sync::atomic::AtomicBool::new(false),
            dropped_gops: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a packet; never blocks beyond a short lock. Returns true when it had to
    /// drop the backlog.
    pub fn push(&self, p: Packet) -> bool {
        let mut st = self.lock();
        if st.closed {
            return false;
        }
        let has_video = self.has_video.load(Ordering::Relaxed);
        if st.waiting_for_key && !p.is_config() && p.kind != Kind::Meta {
            let resumes = match p.kind {
                Kind::Video => p.is_key(),
                _ => !has_video,
            };
            if !resumes {
                return false;
            }
            st.waiting_for_key = false;
        }
        let size = p.data.len();
        let mut dropped = false;
        if st.packets.len() + 1 > self.limits.max_packets || st.bytes + size > self.limits.max_bytes
        {
            // Drop the backlog but keep configuration: the decoder still needs it.
            st.packets.retain(|q| q.is_config() || q.kind == Kind::Meta);
            st.bytes = st.packets.iter().map(|q| q.data.len()).sum();
            self.dropped_gops.fetch_add(1, Ordering::Relaxed);
            dropped = true;
            let resumes_now = p.is_config()
                || p.kind == Kind::Meta
                || (p.kind == Kind::Video && p.is_key())
                || (!has_video && p.kind == Kind::Audio);
            if !resumes_now {
                st.waiting_for_key = true;
                return true;
            }
        }
        st.bytes += size;
        st.packets.push_back(p);
        drop(st);
        self.notify.notify_one();
        dropped
    }

    /// Ends the queue: the reader gets what is left, then `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_one();
    }

    /// The next packet, or `None` once closed and drained.
    pub async fn recv(&self) -> Option<Packet> {
        loop {
            {
                let mut st = self.lock();
                if let Some(p) = st.packets.pop_front() {
                    st.bytes -= p.data.len().min(st.bytes);
                    return Some(p);
                }
                if st.closed {
                    return None;
                }
            }
            // `notify_one` stores a permit when nobody waits, so a push between the
            // unlock above and this await is not lost.
            self.notify.notified().await;
        }
    }

    /// Takes everything queued now, without waiting (for batching writes).
    pub fn drain_ready(&self, out: &mut Vec<Packet>, max: usize) {
        let mut st = self.lock();
        while out.len() < max {
            match st.packets.pop_front() {
                Some(p) => {
                    st.bytes -= p.data.len().min(st.bytes);
                    out.push(p);
                }
                None => break,
            }
        }
    }

    pub fn dropped_gops(&self) -> u64 {
        self.dropped_gops.load(Ordering::Relaxed)
    }

    /// Something to take: a packet, or the end.
    pub fn has_ready(&self) -> bool {
        let st = self.lock();
        st.closed || !st.packets.is_empty()
    }

    /// Closed and drained: nothing more will come.
    pub fn is_finished(&self) -> bool {
        let st = self.lock();
        st.closed && st.packets.is_empty()
    }

    pub fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn video(ts: u32, key: bool, size: usize) -> Packet {
        let mut d = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
        d.resize(size.max(5), 0);
        Packet::new(Kind::Video, ts, Bytes::from(d))
    }

    #[tokio::test]
    async fn lagging_reader_drops_whole_gops() {
        let q = Queue::new(QueueLimits {
            max_packets: 10,
            max_bytes: 1 << 20,
        });
        q.has_video.store(true, Ordering::Relaxed);
        q.push(Packet::new(
            Kind::Video,
            0,
            Bytes::from_static(&[0x17, 0, 0, 0, 0]),
        ));
        // 3 GOPs of 5 frames without reading.
        for g in 0..3u32 {
            for f in 0..5u32 {
                q.push(video(g * 100 + f, f == 0, 100));
            }
        }
        assert!(q.dropped_gops() >= 1);
        assert!(q.queued_bytes() <= 10 * 100);
        // What is left starts with the config, then a key frame.
        let first = q.recv().await.unwrap();
        assert!(first.is_config());
        let second = q.recv().await.unwrap();
        assert!(second.is_key(), "resumes on a key frame");
        let mut last = second.timestamp;
        q.close();
        while let Some(p) = q.recv().await {
            assert!(p.timestamp > last, "monotonic after the drop");
            last = p.timestamp;
        }
        assert_eq!(last, 204);
    }

    #[test]
    fn a_polling_reader_sees_packets_and_the_end() {
        let q = Queue::new(QueueLimits::default());
        assert!(!q.has_ready(), "nothing yet");
        q.push(video(0, true, 10));
        assert!(q.has_ready());
        let mut out = Vec::new();
        q.drain_ready(&mut out, 16);
        assert_eq!(out.len(), 1);
        assert!(!q.has_ready(), "taken");
        q.close();
        assert!(q.has_ready(), "the end is something to take");
    }

    #[tokio::test]
    async fn reader_wakes_on_push_and_close() {
        let q = std::sync::Arc::new(Queue::new(QueueLimits::default()));
        let q2 = q.clone();
        let reader = tokio::spawn(async move {
            let mut n = 0;
            while q2.recv().await.is_some() {
                n += 1;
            }
            n
        });
        for i in 0..50 {
            q.push(video(i, i == 0, 10));
            tokio::task::yield_now().await;
        }
        q.close();
        assert_eq!(reader.await.unwrap(), 50);
    }
}
