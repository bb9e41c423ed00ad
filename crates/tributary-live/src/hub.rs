//! The hub: publish/subscribe of encoded packets, one slot per live stream.
//!
//! Any source publishes into a stream (an RTMP publisher now; a URL pull or a mixer output
//! next) and any sink subscribes (players now; mix inputs next). A new subscriber first
//! gets the metadata, the codec configuration and the GOP cache (from the last key frame),
//! so a player starts on a picture at once. Each subscriber has its own bounded
//! [`Queue`]: a slow one loses whole GOPs, nobody else notices.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use crate::amf0::{self, Amf0};
use crate::media::{AudioCodec, Kind, Packet, VideoCodec};
use crate::metrics::{LiveMetrics, Protocol};
use crate::queue::{Queue, QueueLimits};

/// The GOP cache stops growing past this (a stream with very long GOPs then starts
/// players at the next key frame instead).
const MAX_GOP_BYTES: usize = 8 << 20;
const MAX_GOP_PACKETS: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    #[error("stream {0} is already being published")]
    AlreadyPublishing(String),
    #[error("stream {0} is not live")]
    NotLive(String),
    #[error("too many subscribers on stream {0}")]
    TooManySubscribers(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubEvent {
    Published(String),
    Unpublished(String),
}

#[derive(Debug, Clone, Copy)]
pub struct HubConfig {
    pub queue: QueueLimits,
    pub max_subscribers_per_stream: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            queue: QueueLimits::default(),
            max_subscribers_per_stream: 10_000,
        }
    }
}

#[derive(Default)]
struct Cache {
    meta: Option<Packet>,
    video_config: Option<Packet>,
    audio_config: Option<Packet>,
    gop: Vec<Packet>,
    gop_bytes: usize,
    /// False once the GOP outgrew the cache: wait for the next key frame.
    gop_open: bool,
    subscribers: Vec<(Protocol, Arc<Queue>)>,
    last_ts: [u32; 3],
    video_codec: Option<VideoCodec>,
    audio_codec: Option<AudioCodec>,
}

/// One live stream.
pub struct Stream {
    key: String,
    cache: Mutex<Cache>,
    started: Instant,
    started_unix_ms: u64,
    /// A copy of a stream another node publishes.
    relay: bool,
    bytes_in: AtomicU64,
    video_frames: AtomicU64,
    dropped_gops: AtomicU64,
}

/// What the JSON introspection endpoint shows of a stream.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StreamStats {
    pub key: String,
    pub started_unix_ms: u64,
    pub uptime_ms: u64,
    pub video_codec: Option<VideoCodec>,
    pub audio_codec: Option<AudioCodec>,
    pub width: Option<f64>,
    pub height: Option<f64>,
    pub fps: Option<f64>,
    pub audio_sample_rate: Option<f64>,
    pub audio_channels: Option<f64>,
    pub bytes_in: u64,
    pub bitrate_kbps: f64,
    pub measured_fps: f64,
    pub players: HashMap<Protocol, usize>,
    pub dropped_gops: u64,
}

impl Stream {
    fn lock(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this is a copy relayed from the node that publishes it.
    pub fn is_relay(&self) -> bool {
        self.relay
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// The codecs seen so far (cheap, unlike [`Stream::stats`]).
    pub fn codecs(&self) -> (Option<VideoCodec>, Option<AudioCodec>) {
        let c = self.lock();
        (c.video_codec, c.audio_codec)
    }

    /// How many read the stream now (players, mix inputs, bridges, the HLS segmenter).
    pub fn subscriber_count(&self) -> usize {
        self.lock().subscribers.len()
    }

    pub fn stats(&self) -> StreamStats {
        let c = self.lock();
        let uptime = self.started.elapsed();
        let secs = uptime.as_secs_f64().max(0.001);
        let props = c
            .meta
            .as_ref()
            .and_then(|m| amf0::decode_all(&m.data).ok())
            .and_then(|mut v| {
                if v.len() >= 2 {
                    Some(v.remove(1))
                } else {
                    None
                }
            });
        let prop = |k: &str| props.as_ref().and_then(|p| p.get(k)).and_then(Amf0::as_f64);
        let mut players = HashMap::new();
        for (proto, _) in &c.subscribers {
            *players.entry(*proto).or_insert(0) += 1;
        }
        let bytes_in = self.bytes_in.load(Ordering::Relaxed);
        StreamStats {
            key: self.key.clone(),
            started_unix_ms: self.started_unix_ms,
            uptime_ms: uptime.as_millis() as u64,
            video_codec: c.video_codec,
            audio_codec: c.audio_codec,
            width: prop("width"),
            height: prop("height"),
            fps: prop("framerate").or_else(|| prop("videoframerate")),
            audio_sample_rate: prop("audiosamplerate"),
            audio_channels: prop("audiochannels"),
            bytes_in,
            bitrate_kbps: bytes_in as f64 * 8.0 / 1000.0 / secs,
            measured_fps: self.video_frames.load(Ordering::Relaxed) as f64 / secs,
            players,
            dropped_gops: self.dropped_gops.load(Ordering::Relaxed)
                + c.subscribers
                    .iter()
                    .map(|(_, q)| q.dropped_gops())
                    .sum::<u64>(),
        }
    }
}

/// Where streams published on other nodes come from: a cluster's relays (set only when
/// several nodes share a store).
pub trait Origins: Send + Sync + 'static {
    /// Someone here asked for `key`, which is not live here: if another node publishes
    /// it, relay it in. Returns at once (the hub announces the stream once it is live);
    /// repeated asks are cheap.
    fn want(&self, key: &str);
    /// Whether another node publishes `key` (a store lookup: blocks briefly).
    fn elsewhere(&self, key: &str) -> bool;
}

struct Inner {
    streams: Mutex<HashMap<String, Arc<Stream>>>,
    origins: OnceLock<Arc<dyn Origins>>,
    /// Public name → the stream players of it get instead (a mix that took over an
    /// input's name). Internal readers always get the stream itself.
    aliases: Mutex<HashMap<String, String>>,
    events: broadcast::Sender<HubEvent>,
    config: HubConfig,
    metrics: Arc<LiveMetrics>,
}

#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl Hub {
    pub fn new(config: HubConfig, metrics: Arc<LiveMetrics>) -> Hub {
        let (events, _) = broadcast::channel(1024);
        Hub {
            inner: Arc::new(Inner {
                streams: Mutex::new(HashMap::new()),
                origins: OnceLock::new(),
                aliases: Mutex::new(HashMap::new()),
                events,
                config,
                metrics,
            }),
        }
    }

    fn streams(&self) -> MutexGuard<'_, HashMap<String, Arc<Stream>>> {
        self.inner.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn metrics(&self) -> &Arc<LiveMetrics> {
        &self.inner.metrics
    }

    /// Streams starting and ending (a slow listener loses the oldest, never blocks).
    pub fn events(&self) -> broadcast::Receiver<HubEvent> {
        self.inner.events.subscribe()
    }

    /// Claims `key` for a new source. Fails if it is live already: the first publisher
    /// keeps it.
    pub fn publish(&self, key: &str, started_unix_ms: u64) -> Result<Publisher, HubError> {
        self.publish_as(key, started_unix_ms, false)
    }

    /// Claims `key` for a copy of a stream another node publishes (see [`Origins`]).
    pub fn publish_relay(&self, key: &str, started_unix_ms: u64) -> Result<Publisher, HubError> {
        self.publish_as(key, started_unix_ms, true)
    }

    fn publish_as(
        &self,
        key: &str,
        started_unix_ms: u64,
        relay: bool,
    ) -> Result<Publisher, HubError> {
        let mut streams = self.streams();
        if streams.contains_key(key) {
            return Err(HubError::AlreadyPublishing(key.to_string()));
        }
        let stream = Arc::new(Stream {
            key: key.to_string(),
            cache: Mutex::new(Cache {
                gop_open: true,
                ..Cache::default()
            }),
            started: Instant::now(),
            started_unix_ms,
            relay,
            bytes_in: AtomicU64::new(0),
            video_frames: AtomicU64::new(0),
            dropped_gops: AtomicU64::new(0),
        });
        streams.insert(key.to_string(), stream.clone());
        drop(streams);
        self.inner.metrics.streams.inc();
        let _ = self.inner.events.send(HubEvent::Published(key.to_string()));
        Ok(Publisher {
            hub: self.clone(),
            stream,
        })
    }

    pub fn stream(&self, key: &str) -> Option<Arc<Stream>> {
        self.streams().get(key).cloned()
    }

    /// Makes streams published on other nodes reachable here (once, at start).
    pub fn set_origins(&self, origins: Arc<dyn Origins>) {
        let _ = self.inner.origins.set(origins);
    }

    /// Whether `key` is live here or on another node (a store lookup when it is not
    /// here: call off the async workers).
    pub fn live_anywhere(&self, key: &str) -> bool {
        self.stream(key).is_some() || self.inner.origins.get().is_some_and(|o| o.elsewhere(key))
    }

    /// [`Hub::subscribe`], and when the stream is not live here but another node
    /// publishes it, relays it in and waits for it (at most `within`).
    pub async fn subscribe_waiting(
        &self,
        key: &str,
        protocol: Protocol,
        within: Duration,
    ) -> Result<Subscription, HubError> {
        let first = self.subscribe(key, protocol);
        let (Err(HubError::NotLive(_)), Some(origins)) = (&first, self.inner.origins.get()) else {
            return first;
        };
        // Listening from here on; a stream that appeared just before is seen below.
        let mut events = self.events();
        let target = if protocol == Protocol::Internal {
            key.to_string()
        } else {
            self.resolve(key)
        };
        let (o, k) = (origins.clone(), target.clone());
        let elsewhere = tokio::task::spawn_blocking(move || o.elsewhere(&k))
            .await
            .unwrap_or(false);
        if !elsewhere {
            return first;
        }
        origins.want(&target);
        let deadline = tokio::time::Instant::now() + within;
        while self.stream(&target).is_none() {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Ok(HubEvent::Published(k))) if k == target => break,
                Ok(Ok(_)) => {}
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                    if self.stream(&target).is_some() {
                        break;
                    }
                }
                Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => break,
            }
        }
        self.subscribe(key, protocol)
    }

    pub fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self.streams().keys().cloned().collect();
        k.sort();
        k
    }

    fn aliases(&self) -> MutexGuard<'_, HashMap<String, String>> {
        self.inner.aliases.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// From now on players of `public` get `target` (until [`Hub::clear_alias`]).
    pub fn set_alias(&self, public: &str, target: &str) {
        self.aliases()
            .insert(public.to_string(), target.to_string());
    }

    /// Ends an alias, if it still points at `target`.
    pub fn clear_alias(&self, public: &str, target: &str) {
        let mut a = self.aliases();
        if a.get(public).is_some_and(|t| t == target) {
            a.remove(public);
        }
    }

    /// The stream players of `key` get.
    pub fn resolve(&self, key: &str) -> String {
        self.aliases()
            .get(key)
            .cloned()
            .unwrap_or_else(|| key.to_string())
    }

    /// Subscribes to a live stream; the queue starts with metadata, configs and the GOP.
    /// Players follow aliases; internal readers (mixer inputs, the HLS segmenter) do not.
    pub fn subscribe(&self, key: &str, protocol: Protocol) -> Result<Subscription, HubError> {
        if protocol == Protocol::Internal {
            self.subscribe_exact(key, protocol)
        } else {
            self.subscribe_exact(&self.resolve(key), protocol)
        }
    }

    /// Subscribes a player to exactly `key`, aliases aside (a WebRTC viewer that has
    /// already chosen its source).
    pub fn subscribe_exact(&self, key: &str, protocol: Protocol) -> Result<Subscription, HubError> {
        let Some(stream) = self.stream(key) else {
            if let Some(o) = self.inner.origins.get() {
                o.want(key);
            }
            return Err(HubError::NotLive(key.to_string()));
        };
        let queue = Arc::new(Queue::new(self.inner.config.queue));
        {
            let mut c = stream.lock();
            if c.subscribers.len() >= self.inner.config.max_subscribers_per_stream {
                return Err(HubError::TooManySubscribers(key.to_string()));
            }
            queue.has_video.store(
                c.video_config.is_some() || c.video_codec.is_some(),
                Ordering::Relaxed,
            );
            for p in [&c.meta, &c.video_config, &c.audio_config]
                .into_iter()
                .flatten()
            {
                queue.push(p.clone());
            }
            for p in &c.gop {
                queue.push(p.clone());
            }
            c.subscribers.push((protocol, queue.clone()));
        }
        self.inner.metrics.player(protocol).inc();
        Ok(Subscription {
            hub: self.clone(),
            stream,
            queue,
            protocol,
        })
    }
}

/// The right to feed one stream; dropping it ends the stream for every subscriber.
pub struct Publisher {
    hub: Hub,
    stream: Arc<Stream>,
}

impl Publisher {
    pub fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }

    /// Sends a packet to every subscriber. Timestamps are made monotonic per track (a
    /// packet older than the last of its kind is given the last time).
    pub fn send(&self, mut p: Packet) {
        let metrics = &self.hub.inner.metrics;
        self.stream
            .bytes_in
            .fetch_add(p.data.len() as u64, Ordering::Relaxed);
        metrics.bytes_in.inc_by(p.data.len() as u64);
        let mut c = self.stream.lock();
        let track = p.kind as usize;
        if p.kind != Kind::Meta {
            if p.timestamp < c.last_ts[track] && c.last_ts[track] - p.timestamp < 0x8000_0000 {
                p.timestamp = c.last_ts[track];
            }
            c.last_ts[track] = p.timestamp;
        }
        match p.kind {
            Kind::Meta if p.is_metadata() => c.meta = Some(p.clone()),
            Kind::Meta => {}
            Kind::Video if p.is_config() => {
                mark_video(&mut c, p.video_codec());
                c.video_config = Some(p.clone());
            }
            Kind::Audio if p.is_config() => {
                c.audio_codec = p.audio_codec();
                c.audio_config = Some(p.clone());
            }
            Kind::Video => {
                if c.video_codec.is_none() {
                    mark_video(&mut c, p.video_codec());
                }
                self.stream.video_frames.fetch_add(1, Ordering::Relaxed);
                if p.is_key() {
                    c.gop.clear();
                    c.gop_bytes = 0;
                    c.gop_open = true;
                }
                cache_push(&mut c, &p);
            }
            Kind::Audio => {
                if c.audio_codec.is_none() {
                    c.audio_codec = p.audio_codec();
                }
                // Audio joins the GOP only once there is a key frame to start from.
                if !c.gop.is_empty() {
                    cache_push(&mut c, &p);
                }
            }
        }
        for (_, q) in &c.subscribers {
            if q.push(p.clone()) {
                metrics.dropped_gops.inc();
            }
        }
    }
}

/// Records the video codec; the first time the stream is known to have video, its
/// subscribers' queues learn it (they resume lagging readers on key frames from then on).
fn mark_video(c: &mut Cache, codec: Option<VideoCodec>) {
    if c.video_codec.is_none() && codec.is_some() {
        for (_, q) in &c.subscribers {
            q.has_video.store(true, Ordering::Relaxed);
        }
    }
    c.video_codec = codec;
}

fn cache_push(c: &mut Cache, p: &Packet) {
    if !c.gop_open {
        return;
    }
    if c.gop.len() >= MAX_GOP_PACKETS || c.gop_bytes + p.data.len() > MAX_GOP_BYTES {
        c.gop.clear();
        c.gop_bytes = 0;
        c.gop_open = false;
        return;
    }
    c.gop_bytes += p.data.len();
    c.gop.push(p.clone());
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let removed = {
            let mut streams = self.hub.streams();
            match streams.get(&self.stream.key) {
                Some(s) if Arc::ptr_eq(s, &self.stream) => streams.remove(&self.stream.key),
                _ => None,
            }
        };
        let c = self.stream.lock();
        for (_, q) in &c.subscribers {
            q.close();
        }
        drop(c);
        if removed.is_some() {
            self.hub.inner.metrics.streams.dec();
            let _ = self
                .hub
                .inner
                .events
                .send(HubEvent::Unpublished(self.stream.key.clone()));
        }
    }
}

/// A reader of one stream; dropping it unsubscribes.
pub struct Subscription {
    hub: Hub,
    stream: Arc<Stream>,
    queue: Arc<Queue>,
    protocol: Protocol,
}

impl Subscription {
    pub async fn recv(&self) -> Option<Packet> {
        self.queue.recv().await
    }
    /// Takes what is queued now, without waiting (batching writers, and readers that
    /// poll on their own clock such as audio-only mixes).
    pub fn drain_ready(&self, out: &mut Vec<Packet>, max: usize) {
        self.queue.drain_ready(out, max)
    }
    /// The stream ended and everything it sent has been taken.
    pub fn is_finished(&self) -> bool {
        self.queue.is_finished()
    }
    /// Whether [`Subscription::drain_ready`] would take something, or the stream ended
    /// (for readers that poll: a turn with nothing to take is skipped).
    pub fn has_ready(&self) -> bool {
        self.queue.has_ready()
    }
    pub fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }
    pub fn dropped_gops(&self) -> u64 {
        self.queue.dropped_gops()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut c = self.stream.lock();
        c.subscribers.retain(|(_, q)| !Arc::ptr_eq(q, &self.queue));
        drop(c);
        self.stream
            .dropped_gops
            .fetch_add(self.queue.dropped_gops(), Ordering::Relaxed);
        self.hub.inner.metrics.player(self.protocol).dec();
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn hub() -> Hub {
        Hub::new(HubConfig::default(), Arc::new(LiveMetrics::default()))
    }
    fn v(ts: u32, key: bool) -> Packet {
        Packet::new(
            Kind::Video,
            ts,
            Bytes::from(vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0, 9]),
        )
    }

    #[tokio::test]
    async fn late_subscriber_gets_config_and_gop_first() {
        let hub = hub();
        let publisher = hub.publish("1/s", 0).unwrap();
        assert!(matches!(
            hub.publish("1/s", 0),
            Err(HubError::AlreadyPublishing(_))
        ));
        publisher.send(Packet::metadata(Amf0::object([(
            "width",
            Amf0::Number(320.0),
        )])));
        publisher.send(Packet::new(
            Kind::Video,
            0,
            Bytes::from_static(&[0x17, 0, 0, 0, 0]),
        ));
        publisher.send(Packet::new(
            Kind::Audio,
            0,
            Bytes::from_static(&[0xAF, 0, 0x12, 0x10]),
        ));
        publisher.send(v(0, true));
        publisher.send(v(40, false));
        publisher.send(v(80, true));
        publisher.send(Packet::new(
            Kind::Audio,
            90,
            Bytes::from_static(&[0xAF, 1, 1]),
        ));
        publisher.send(v(70, false)); // goes backwards: clamped
        let sub = hub.subscribe("1/s", Protocol::Flv).unwrap();
        let mut got = Vec::new();
        sub.drain_ready(&mut got, 100);
        let kinds: Vec<_> = got.iter().map(|p| (p.kind, p.timestamp)).collect();
        assert_eq!(
            kinds,
            vec![
                (Kind::Meta, 0),
                (Kind::Video, 0),
                (Kind::Audio, 0),
                (Kind::Video, 80),
                (Kind::Audio, 90),
                (Kind::Video, 80),
            ]
        );
        assert_eq!(sub.stream().stats().width, Some(320.0));
        assert_eq!(sub.stream().stats().players.get(&Protocol::Flv), Some(&1));
        drop(publisher);
        assert!(sub.recv().await.is_none(), "stream end reaches the player");
        assert!(hub.stream("1/s").is_none());
        assert!(hub.publish("1/s", 0).is_ok(), "the key is free again");
    }
}
