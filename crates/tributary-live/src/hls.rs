//! HLS: every live stream is cut into MPEG-TS segments (~2 s, on key frames) kept in
//! memory in a sliding window; the playlist and segments are served over HTTP.
//!
//! Segmenting runs as an internal hub subscriber per stream, so a slow HLS client costs
//! nothing but its own HTTP response. Segments live in memory only (no disk to clean
//! up); a stream's last playlist (with `#EXT-X-ENDLIST`) stays for `linger` after the
//! publisher leaves, then it is gone.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::broadcast::error::RecvError;
use tracing::{debug, warn};

use crate::hub::{Hub, HubEvent, Subscription};
use crate::media::{AudioCodec, Kind, Packet, VideoCodec};
use crate::metrics::Protocol;
use crate::ts::{AacConfig, AudioFormat, AvcConfig, Es, HevcConfig, TsMuxer, VideoFormat};

#[derive(Debug, Clone, Copy)]
pub struct HlsConfig {
    pub segment: Duration,
    pub window: usize,
    pub linger: Duration,
}

impl Default for HlsConfig {
    fn default() -> Self {
        HlsConfig {
            segment: Duration::from_secs(2),
            window: 6,
            linger: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Segment {
    pub seq: u64,
    pub duration_ms: u32,
    pub data: Bytes,
}

/// Largest segment held while waiting for a key frame to cut at.
const MAX_SEGMENT_BYTES: usize = 32 << 20;
/// Longest segment, at least: a publisher that never sends another key frame must not
/// grow one segment forever (the cap is `max(10 × target, 30 s)`).
const MIN_MAX_SEGMENT_MS: u32 = 30_000;

/// The video track's configuration: H.264 (legacy FLV) or H.265 (Enhanced RTMP).
enum VideoTrack {
    Avc(AvcConfig),
    Hevc(HevcConfig),
}

impl VideoTrack {
    fn format(&self) -> VideoFormat {
        match self {
            VideoTrack::Avc(_) => VideoFormat::H264,
            VideoTrack::Hevc(_) => VideoFormat::H265,
        }
    }

    /// A frame's Annex B access unit and composition offset (ms) from its FLV body;
    /// `None` for what is not a coded frame (end of sequence, metadata, junk).
    fn access_unit(&self, p: &Packet, key: bool) -> Option<(Vec<u8>, i32)> {
        match self {
            VideoTrack::Avc(avc) => {
                if p.data.get(1) != Some(&1) {
                    return None;
                }
                Some((avc.to_annex_b(p.data.get(5..)?, key)?, p.composition_time()))
            }
            VideoTrack::Hevc(hevc) => {
                let d = &p.data;
                // [ex|frame type|packet type]["hvc1"]: 1 coded frames + CTS, 3 without.
                let (body, cts) = match d.first()? & 0x0F {
                    1 => {
                        let c = d.get(5..8)?;
                        let v = ((c[0] as i32) << 16) | ((c[1] as i32) << 8) | c[2] as i32;
                        (d.get(8..)?, (v << 8) >> 8)
                    }
                    3 => (d.get(5..)?, 0),
                    _ => return None,
                };
                if (d[0] >> 4) & 0x07 == 5 {
                    return None; // a command frame
                }
                Some((hevc.to_annex_b(body, key)?, cts))
            }
        }
    }
}

/// Cuts a packet sequence into TS segments. Pure: no clock, no I/O.
pub struct Segmenter {
    target_ms: u32,
    window: usize,
    mux: TsMuxer,
    avc: Option<VideoTrack>,
    aac: Option<AacConfig>,
    mp3: bool,
    video: bool,
    /// Timed script data has been seen: segments declare an ID3 stream from the next one.
    id3: bool,
    /// The open segment's tables declare the ID3 stream.
    id3_declared: bool,
    current: Vec<u8>,
    current_start: Option<u32>,
    last_ts: u32,
    next_seq: u64,
    segments: VecDeque<Segment>,
    ended: bool,
    unsupported_logged: bool,
    forced_cuts: u64,
}

impl Segmenter {
    pub fn new(target: Duration, window: usize) -> Segmenter {
        Segmenter {
            target_ms: target.as_millis().min(u32::MAX as u128) as u32,
            window: window.max(1),
            mux: TsMuxer::default(),
            avc: None,
            aac: None,
            mp3: false,
            video: false,
            id3: false,
            id3_declared: false,
            current: Vec::new(),
            current_start: None,
            last_ts: 0,
            next_seq: 0,
            segments: VecDeque::new(),
            ended: false,
            unsupported_logged: false,
            forced_cuts: 0,
        }
    }

    fn audio_format(&self) -> Option<AudioFormat> {
        if self.aac.is_some() {
            Some(AudioFormat::Aac)
        } else if self.mp3 {
            Some(AudioFormat::Mp3)
        } else {
            None
        }
    }

    fn close_segment(&mut self, end_ts: u32) {
        let Some(start) = self.current_start.take() else {
            return;
        };
        let data = std::mem::take(&mut self.current);
        if data.is_empty() {
            return;
        }
        self.segments.push_back(Segment {
            seq: self.next_seq,
            duration_ms: end_ts.wrapping_sub(start).min(3_600_000),
            data: Bytes::from(data),
        });
        self.next_seq += 1;
        while self.segments.len() > self.window {
            self.segments.pop_front();
        }
    }

    fn open_segment(&mut self, ts: u32) {
        self.current_start = Some(ts);
        let audio = self.audio_format();
        let video = self
            .avc
            .as_ref()
            .map(VideoTrack::format)
            .filter(|_| self.video);
        self.id3_declared = self.id3;
        self.mux
            .write_tables(&mut self.current, video, audio, self.id3);
    }

    /// Feeds one packet; returns true when a segment was completed.
    pub fn push(&mut self, p: &Packet) -> bool {
        let before = self.next_seq;
        match p.kind {
            Kind::Meta if p.is_metadata() => {}
            Kind::Meta => {
                // Timed data as timed ID3, in segments whose tables declare it (the first
                // message only turns the stream on, from the next segment).
                self.id3 = true;
                if self.id3_declared
                    && self.current_start.is_some()
                    && let Some(tag) = crate::id3::from_script_data(&p.data)
                {
                    let t = u64::from(p.timestamp) * 90;
                    self.mux
                        .write_pes(&mut self.current, Es::Id3, t, t, None, false, &tag);
                }
            }
            Kind::Video if p.is_config() => {
                let config = p.data.get(5..);
                match p.video_codec() {
                    Some(VideoCodec::H264) => {
                        self.avc = config.and_then(AvcConfig::parse).map(VideoTrack::Avc);
                    }
                    Some(VideoCodec::H265) => {
                        self.avc = config.and_then(HevcConfig::parse).map(VideoTrack::Hevc);
                    }
                    codec => {
                        if !self.unsupported_logged {
                            self.unsupported_logged = true;
                            warn!(
                                ?codec,
                                "HLS carries H.264 and H.265 only; this stream's video is left out of HLS"
                            );
                        }
                    }
                }
                self.video = self.avc.is_some();
            }
            Kind::Audio if p.is_config() => {
                match p.audio_codec() {
                    Some(AudioCodec::Aac) => self.aac = p.data.get(2..).and_then(AacConfig::parse),
                    // Opus in TS is read by FFmpeg but by no browser player: left out.
                    codec => warn!(
                        ?codec,
                        "HLS carries AAC and MP3 audio only; this stream's audio is left out of HLS"
                    ),
                }
            }
            Kind::Video => {
                let Some(track) = &self.avc else { return false };
                let key = p.is_key();
                let Some((au, cts)) = track.access_unit(p, key) else {
                    return false;
                };
                match self.current_start {
                    None if !key => return false, // wait for a key frame to start
                    Some(start) if key && p.timestamp.wrapping_sub(start) >= self.target_ms => {
                        self.close_segment(p.timestamp);
                        self.open_segment(p.timestamp);
                    }
                    None => self.open_segment(p.timestamp),
                    _ => {}
                }
                let dts = u64::from(p.timestamp) * 90;
                let pts = (i64::from(p.timestamp) + i64::from(cts)).max(0) as u64 * 90;
                self.mux
                    .write_pes(&mut self.current, Es::Video, pts, dts, Some(dts), key, &au);
                self.last_ts = p.timestamp;
            }
            Kind::Audio => {
                let frame = match p.audio_codec() {
                    Some(AudioCodec::Aac) => match (&self.aac, p.data.get(2..)) {
                        (Some(cfg), Some(raw)) if p.data.get(1) == Some(&1) => cfg.adts(raw),
                        _ => return false,
                    },
                    Some(AudioCodec::Mp3) => {
                        self.mp3 = true;
                        p.data[1..].to_vec()
                    }
                    _ => return false,
                };
                if self.video {
                    if self.current_start.is_none() {
                        return false;
                    }
                } else {
                    match self.current_start {
                        None => self.open_segment(p.timestamp),
                        Some(start) if p.timestamp.wrapping_sub(start) >= self.target_ms => {
                            self.close_segment(p.timestamp);
                            self.open_segment(p.timestamp);
                        }
                        _ => {}
                    }
                }
                let t = u64::from(p.timestamp) * 90;
                let pcr = (!self.video).then_some(t);
                self.mux
                    .write_pes(&mut self.current, Es::Audio, t, t, pcr, false, &frame);
                self.last_ts = self.last_ts.max(p.timestamp);
            }
        }
        self.cap_segment();
        self.next_seq != before
    }

    /// Closes the open segment if it passed the byte or time cap without a key frame to
    /// cut at. Video then waits for the next key frame before a new segment opens, so
    /// nothing more is held in the meantime.
    fn cap_segment(&mut self) {
        let Some(start) = self.current_start else {
            return;
        };
        let max_ms = self.target_ms.saturating_mul(10).max(MIN_MAX_SEGMENT_MS);
        if self.current.len() > MAX_SEGMENT_BYTES || self.last_ts.wrapping_sub(start) > max_ms {
            if self.forced_cuts == 0 {
                warn!(
                    bytes = self.current.len(),
                    ms = self.last_ts.wrapping_sub(start),
                    "HLS segment closed without a key frame (the publisher sends too few)"
                );
            }
            self.forced_cuts += 1;
            self.close_segment(self.last_ts);
        }
    }

    /// Segments closed by the cap rather than at a key frame.
    pub fn forced_cuts(&self) -> u64 {
        self.forced_cuts
    }

    /// The publisher left: the last segment is closed and the playlist ends.
    pub fn finish(&mut self) {
        let end = self.last_ts.wrapping_add(40);
        self.close_segment(end);
        self.ended = true;
    }

    pub fn playlist(&self, query: &str) -> String {
        let target = self
            .segments
            .iter()
            .map(|s| (s.duration_ms + 500) / 1000) // RFC 8216: rounded EXTINF ≤ target
            .max()
            .unwrap_or(self.target_ms.div_ceil(1000))
            .max(1);
        let first = self
            .segments
            .front()
            .map(|s| s.seq)
            .unwrap_or(self.next_seq);
        let mut out = String::new();
        let _ = write!(
            out,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:{first}\n"
        );
        for s in &self.segments {
            let _ = write!(
                out,
                "#EXTINF:{:.3},\n{}.ts{}\n",
                s.duration_ms as f64 / 1000.0,
                s.seq,
                query
            );
        }
        if self.ended {
            out.push_str("#EXT-X-ENDLIST\n");
        }
        out
    }

    pub fn segment(&self, seq: u64) -> Option<Bytes> {
        self.segments
            .iter()
            .find(|s| s.seq == seq)
            .map(|s| s.data.clone())
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
}

type Entry = Arc<Mutex<Segmenter>>;

/// How often the segmenters take what their streams sent.
const BATCH: Duration = Duration::from_millis(100);
/// Packets taken from one queue at a time (the queue holds at most 1024).
const BATCH_PACKETS: usize = 256;

/// One live stream's subscription and the segmenter it feeds.
struct Feed {
    key: String,
    sub: Subscription,
    entry: Entry,
}

impl Feed {
    /// Moves everything queued into the segmenter; false once the stream has ended and
    /// everything it sent was taken.
    fn take(&self, packets: &mut Vec<Packet>) -> bool {
        loop {
            packets.clear();
            self.sub.drain_ready(packets, BATCH_PACKETS);
            if packets.is_empty() {
                return !self.sub.is_finished();
            }
            let mut seg = lock(&self.entry);
            for p in packets.iter() {
                seg.push(p);
            }
        }
    }
}

/// The segmenters of all streams, fed by the hub.
#[derive(Clone)]
pub struct Hls {
    streams: Arc<Mutex<HashMap<String, Entry>>>,
    config: HlsConfig,
    /// When each live stream's playlist was last asked for: what HLS's demand looks like
    /// to a producer that works only on demand (a VP8 stream's H.264 twin).
    asked: Arc<Mutex<HashMap<String, std::time::Instant>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hls {
    pub fn new(config: HlsConfig) -> Hls {
        Hls {
            streams: Arc::new(Mutex::new(HashMap::new())),
            config,
            asked: Arc::default(),
        }
    }

    /// Runs forever: starts a segmenter for every stream that goes live, and feeds all
    /// of them from this one task every [`BATCH`].
    ///
    /// Segments are seconds long, so nothing is gained by waking per packet: a task per
    /// stream woken on every packet cost a context switch per packet (about 5 % of the
    /// CPU of 50 audio rooms, whose outputs are segmented too). Taking each stream's
    /// queue in a batch costs a segment at most [`BATCH`] of freshness.
    pub async fn run(self, hub: Hub) {
        let mut events = hub.events();
        let mut feeds: Vec<Feed> = Vec::new();
        let mut ended: VecDeque<(tokio::time::Instant, String, Entry)> = VecDeque::new();
        // Streams live before we listened.
        for key in hub.keys() {
            feeds.extend(self.start(&hub, key));
        }
        let mut batch = tokio::time::interval(BATCH);
        batch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut packets = Vec::with_capacity(BATCH_PACKETS);
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Ok(HubEvent::Published(key)) => feeds.extend(self.start(&hub, key)),
                    Ok(HubEvent::Unpublished(_)) => {}
                    Err(RecvError::Lagged(n)) => {
                        warn!(missed = n, "HLS missed hub events; rescanning");
                        for key in hub.keys() {
                            if !feeds.iter().any(|f| f.key == key) {
                                feeds.extend(self.start(&hub, key));
                            }
                        }
                    }
                    Err(RecvError::Closed) => return,
                },
                _ = batch.tick() => {
                    let now = tokio::time::Instant::now();
                    feeds.retain(|f| {
                        if f.take(&mut packets) {
                            return true;
                        }
                        lock(&f.entry).finish();
                        debug!(stream = %f.key, "HLS stream ended");
                        ended.push_back((now + self.config.linger, f.key.clone(), f.entry.clone()));
                        false
                    });
                    // The last playlist stays for `linger`, unless the stream came back.
                    while ended.front().is_some_and(|(t, _, _)| *t <= now) {
                        if let Some((_, key, entry)) = ended.pop_front() {
                            let mut map = lock(&self.streams);
                            if map.get(&key).is_some_and(|e| Arc::ptr_eq(e, &entry)) {
                                map.remove(&key);
                                lock(&self.asked).remove(&key);
                            }
                        }
                    }
                }
            }
        }
    }

    fn start(&self, hub: &Hub, key: String) -> Option<Feed> {
        let sub = hub.subscribe(&key, Protocol::Internal).ok()?;
        let entry: Entry = Arc::new(Mutex::new(Segmenter::new(
            self.config.segment,
            self.config.window,
        )));
        lock(&self.streams).insert(key.clone(), entry.clone());
        Some(Feed { key, sub, entry })
    }

    pub fn playlist(&self, key: &str, query: &str) -> Option<String> {
        let e = lock(&self.streams).get(key).cloned()?;
        {
            // Bounded by the live streams: an entry goes with its stream's segmenter.
            let mut asked = lock(&self.asked);
            asked.insert(key.to_string(), std::time::Instant::now());
        }
        let seg = lock(&e);
        Some(seg.playlist(query))
    }

    /// Whether a player asked for `key`'s playlist within `within`.
    pub fn asked_within(&self, key: &str, within: std::time::Duration) -> bool {
        lock(&self.asked)
            .get(key)
            .is_some_and(|t| t.elapsed() < within)
    }

    pub fn segment(&self, key: &str, seq: u64) -> Option<Bytes> {
        let e = lock(&self.streams).get(key).cloned()?;
        lock(&e).segment(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(ts: u32, key: bool) -> Packet {
        let mut d = vec![
            if key { 0x17 } else { 0x27 },
            1,
            0,
            0,
            0,
            0,
            0,
            0,
            2,
            0x65,
            0x00,
        ];
        if !key {
            d[9] = 0x41;
        }
        Packet::new(Kind::Video, ts, Bytes::from(d))
    }

    #[test]
    fn a_stream_without_key_frames_cannot_grow_a_segment_forever() {
        let mut s = Segmenter::new(Duration::from_secs(2), 3);
        let cfg = [
            0x17u8, 0, 0, 0, 0, 1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, 2, 0x67, 0xAA, 1, 0, 1, 0x68,
        ];
        s.push(&Packet::new(Kind::Video, 0, Bytes::copy_from_slice(&cfg)));
        s.push(&video(0, true));
        // One key frame, then 40 s of inter frames.
        for i in 1..=1000u32 {
            s.push(&video(i * 40, false));
        }
        assert_eq!(s.forced_cuts(), 1);
        assert_eq!(s.segment_count(), 1);
        // Nothing is held until the next key frame.
        assert!(s.current.is_empty());
        s.push(&video(40_040, true));
        s.push(&video(42_100, true));
        assert_eq!(s.segment_count(), 2);
    }

    #[test]
    fn cuts_on_key_frames_and_slides() {
        let mut s = Segmenter::new(Duration::from_secs(2), 3);
        let cfg = [
            0x17u8, 0, 0, 0, 0, 1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, 2, 0x67, 0xAA, 1, 0, 1, 0x68,
        ];
        s.push(&Packet::new(Kind::Video, 0, Bytes::copy_from_slice(&cfg)));
        s.push(&Packet::new(
            Kind::Audio,
            0,
            Bytes::from_static(&[0xAF, 0, 0x12, 0x10]),
        ));
        assert!(!s.push(&video(0, false)), "no segment before a key frame");
        // 1 key frame per second for 10 s, audio in between.
        for t in (0..10_000u32).step_by(40) {
            s.push(&video(t, t % 1000 == 0));
            s.push(&Packet::new(
                Kind::Audio,
                t + 5,
                Bytes::from_static(&[0xAF, 1, 0x21, 0x00]),
            ));
        }
        s.finish();
        let pl = s.playlist("?token=x");
        assert!(pl.contains("#EXT-X-TARGETDURATION:2"), "{pl}");
        assert!(pl.contains("#EXT-X-MEDIA-SEQUENCE:2"), "{pl}");
        assert!(pl.contains("#EXTINF:2.000,\n2.ts?token=x"), "{pl}");
        assert!(pl.ends_with("#EXT-X-ENDLIST\n"));
        assert_eq!(s.segment_count(), 3);
        assert!(s.segment(1).is_none(), "slid out of the window");
        let seg = s.segment(4).unwrap();
        assert_eq!(seg.len() % 188, 0);
        assert_eq!(seg[0], 0x47);
    }
}
