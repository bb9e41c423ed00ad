//! Audio bridges between the two worlds, one per stream however many players:
//! - **Opus for WebRTC viewers**: WebRTC players decode Opus, RTMP publishers and most mix
//!   outputs send AAC (or MP3). The bridge republishes the stream under `{key}#opus`: its
//!   video and metadata as they are, its audio decoded, converted to 48 kHz
//!   (band-limited) and encoded as Opus. It starts with the first viewer that needs it and
//!   stops 5 s after the last one left, or when its stream ends.
//! - **AAC and H.264 for everyone else**: a WHIP publisher sends Opus (and maybe VP8),
//!   which RTMP, HTTP-FLV and HLS players (and Debian's FFmpeg, hls.js, Safari) do not
//!   read in FLV/TS. Its twin under `{key}#aac` carries AAC-LC 44.1 kHz and H.264 video,
//!   and the hub sends that stream's players there (an alias); WebRTC viewers and mixes
//!   keep reading the original. It lives as long as the publisher. H.264 video passes as
//!   it is; VP8 is decoded and encoded again (libx264, the source's size) only while
//!   someone reads the twin — an RTMP, HTTP-FLV or WHEP player, or HLS (a playlist
//!   asked for within the last 30 s) — starting at a key frame it asks the publisher
//!   for. The same twin serves a mix output encoded in VP8.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::{debug, info, warn};

use tributary_core::mix::AudioCodec as OutCodec;
use tributary_live::hub::{Hub, Publisher, Subscription};
use tributary_live::media::{AudioCodec, Kind, Packet};
use tributary_live::metrics::Protocol;

use tributary_core::mix::VideoCodec as OutVideo;
use tributary_live::hls::Hls;
use tributary_live::media::VideoCodec;

use crate::codec::{AudioDecoder, AudioEncoder, VideoDecoder, VideoEncoder};
use crate::output::{audio_packet, video_packet};
use crate::pool::PicturePool;
use crate::resample::Resampler;

/// A bridge with no viewer for this long stops.
const IDLE: Duration = Duration::from_secs(5);
/// Opus bitrate of a bridged stream (stereo speech and music at WebRTC's usual rate).
const OPUS_BPS: u32 = 64_000;

/// The suffixes of bridged streams' keys; `#` is not allowed in stream ids, so no
/// publisher or player can name them.
pub const OPUS_SUFFIX: &str = "#opus";
pub const AAC_SUFFIX: &str = "#aac";
/// AAC bitrate of a WHIP publisher's twin.
const AAC_BPS: u32 = 64_000;
/// HLS counts as a reader of a twin for this long after its last playlist request.
const HLS_DEMAND: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct OpusBridges {
    hub: Hub,
    rt: tokio::runtime::Handle,
    running: Arc<Mutex<HashSet<String>>>,
}

impl OpusBridges {
    pub fn new(hub: Hub, rt: tokio::runtime::Handle) -> Self {
        OpusBridges {
            hub,
            rt,
            running: Arc::default(),
        }
    }

    /// The stream a WebRTC viewer of `key` reads: `key` itself when its audio is Opus
    /// (or it has none), else its bridge, started if needed.
    pub fn source_for(&self, key: &str) -> String {
        // Follow the hub's aliases (a mix standing in for the stream), but not to a
        // WHIP publisher's AAC twin: its Opus original is what WebRTC wants.
        let resolved = self.hub.resolve(key);
        let key = if resolved == format!("{key}{AAC_SUFFIX}") {
            key.to_string()
        } else {
            resolved
        };
        let key = key.as_str();
        let Some(stream) = self.hub.stream(key) else {
            return key.to_string();
        };
        if !matches!(stream.codecs().1, Some(AudioCodec::Aac | AudioCodec::Mp3)) {
            return key.to_string();
        }
        let derived = format!("{key}{OPUS_SUFFIX}");
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if running.contains(&derived) {
            return derived;
        }
        let Ok(sub) = self.hub.subscribe(key, Protocol::Internal) else {
            return key.to_string();
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let Ok(publisher) = self.hub.publish(&derived, now) else {
            return key.to_string();
        };
        running.insert(derived.clone());
        let (rt, done, name) = (self.rt.clone(), self.running.clone(), derived.clone());
        let spawned = std::thread::Builder::new()
            .name("opus-bridge".into())
            .spawn(move || {
                info!(stream = %name, "Opus bridge started");
                run(
                    &rt,
                    sub,
                    publisher,
                    Audio::new(OutCodec::Opus),
                    None,
                    Some(IDLE),
                );
                done.lock().unwrap_or_else(|e| e.into_inner()).remove(&name);
                info!(stream = %name, "Opus bridge stopped");
            });
        if let Err(e) = spawned {
            warn!(error = %e, "cannot start an Opus bridge");
            running.remove(&derived);
            return key.to_string();
        }
        derived
    }
}

/// What a twin needs from around it: HLS (whose playlist requests count as demand) and
/// a way to ask the source's producer for a key frame (a WHIP publisher's PLI).
#[derive(Clone)]
pub struct TwinContext {
    pub hls: Hls,
    pub key_frame: Arc<dyn Fn(&str) + Send + Sync>,
}

/// Starts the twin of stream `key` (see the module doc) — a WHIP publisher's, or a VP8
/// mix output's: it runs until the stream ends. Players of `key` are sent to the twin
/// meanwhile.
pub fn start_twin(hub: &Hub, rt: &tokio::runtime::Handle, key: &str, cx: TwinContext) {
    let twin = format!("{key}{AAC_SUFFIX}");
    let Ok(sub) = hub.subscribe(key, Protocol::Internal) else {
        return;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let Ok(publisher) = hub.publish(&twin, now) else {
        warn!(stream = %twin, "the twin is already published");
        return;
    };
    hub.set_alias(key, &twin);
    let (hub, rt, key) = (hub.clone(), rt.clone(), key.to_string());
    let spawned = std::thread::Builder::new()
        .name("player-twin".into())
        .spawn(move || {
            info!(stream = %twin, "player twin started");
            let video = Video::new(key.clone(), twin.clone(), cx);
            run(
                &rt,
                sub,
                publisher,
                Audio::new(OutCodec::AacLc),
                Some(video),
                None,
            );
            hub.clear_alias(&key, &twin);
            info!(stream = %twin, "player twin stopped");
        });
    if let Err(e) = spawned {
        warn!(error = %e, "cannot start a player twin");
    }
}

/// Gives every VP8 stream that has no twin yet (a VP8 mix output, an RTMP publisher
/// sending Enhanced RTMP `vp08`) one, so its RTMP, HTTP-FLV and HLS players get H.264.
/// WHIP publishers get theirs when they publish. Runs for ever.
pub async fn twin_vp8_streams(hub: Hub, rt: tokio::runtime::Handle, cx: TwinContext) {
    use tributary_live::hub::HubEvent;
    let mut events = hub.events();
    loop {
        let key = match events.recv().await {
            Ok(HubEvent::Published(key)) => key,
            Ok(HubEvent::Unpublished(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        if key.contains('#') {
            continue; // a bridge or a twin itself
        }
        let (hub, rt, cx) = (hub.clone(), rt.clone(), cx.clone());
        tokio::spawn(async move {
            // The codec is known from the first video packet: look for 10 s.
            for _ in 0..100 {
                let Some(stream) = hub.stream(&key) else {
                    return;
                };
                match stream.codecs().0 {
                    Some(VideoCodec::Vp8) => {
                        if hub.resolve(&key) == key {
                            start_twin(&hub, &rt, &key, cx);
                        }
                        return;
                    }
                    Some(_) => return,
                    None => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
    }
}

/// The video half of a twin: H.264 passes; VP8 becomes H.264 while the twin has readers.
struct Video {
    source: String,
    twin: String,
    cx: TwinContext,
    /// Someone reads the twin (checked once a second).
    demand: bool,
    decoder: Option<VideoDecoder>,
    encoder: Option<(VideoEncoder, (u32, u32))>,
    last_key_request: Option<Instant>,
    /// The encoder's next picture is forced to a key frame (a new encoder, a gap).
    force_key: bool,
    /// Decoded pictures in the encoder's size, reused once it has read them.
    pictures: PicturePool,
}

impl Video {
    fn new(source: String, twin: String, cx: TwinContext) -> Self {
        Video {
            source,
            twin,
            cx,
            demand: false,
            decoder: None,
            encoder: None,
            last_key_request: None,
            force_key: true,
            pictures: PicturePool::new(2),
        }
    }

    fn check_demand(&mut self, publisher: &Publisher) {
        let demand = players(publisher) > 0 || self.cx.hls.asked_within(&self.twin, HLS_DEMAND);
        if demand != self.demand {
            info!(stream = %self.twin, demand, "VP8 to H.264 transcoding {}", if demand { "starts" } else { "stops" });
            self.demand = demand;
            if !demand {
                self.decoder = None;
                self.encoder = None;
            }
        }
    }

    fn convert(&mut self, p: &Packet) -> Vec<Packet> {
        if p.video_codec() != Some(VideoCodec::Vp8) {
            return vec![p.clone()];
        }
        // [1|type|kind]["vp08"] + a frame; kind 0 is the sequence start.
        if !self.demand || p.is_config() || p.data[0] & 0x0f != 1 {
            return Vec::new();
        }
        let Some(frame) = p.data.get(5..) else {
            return Vec::new();
        };
        if self.decoder.is_none() {
            if !p.is_key() {
                self.ask_key_frame();
                return Vec::new();
            }
            match VideoDecoder::vp8() {
                Ok(d) => self.decoder = Some(d),
                Err(e) => {
                    warn!(error = %e, "cannot open the twin's VP8 decoder");
                    return Vec::new();
                }
            }
        }
        let Some(dec) = self.decoder.as_mut() else {
            return Vec::new();
        };
        let ts = i64::from(p.timestamp);
        let pictures = match dec.decode(frame, ts, ts) {
            Ok(pics) => pics,
            Err(e) => {
                debug!(error = %e, "VP8 frame dropped; waiting for a key frame");
                self.decoder = None;
                self.ask_key_frame();
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (t, pic) in pictures {
            // libx264 wants even sizes; a picture of another size reopens the encoder.
            let size = (pic.width() & !1, pic.height() & !1);
            if size.0 == 0 || size.1 == 0 {
                continue;
            }
            if self.encoder.as_ref().is_none_or(|(_, s)| *s != size) {
                // About 0.1 bit per pixel at 30 fps, within 300 kb/s–4 Mb/s.
                let bps = (u64::from(size.0) * u64::from(size.1) * 3).clamp(300_000, 4_000_000);
                match VideoEncoder::new(
                    size.0,
                    size.1,
                    30,
                    bps as u32,
                    "veryfast",
                    2,
                    OutVideo::H264,
                ) {
                    Ok(e) => {
                        out.push(video_packet(
                            OutVideo::H264,
                            t.max(0) as u32,
                            0,
                            true,
                            0,
                            e.config(),
                        ));
                        self.encoder = Some((e, size));
                        self.force_key = true;
                    }
                    Err(e) => {
                        warn!(error = %e, "cannot open the twin's H.264 encoder");
                        return out;
                    }
                }
            }
            let Some((enc, _)) = self.encoder.as_mut() else {
                return out;
            };
            let i420 = match self
                .pictures
                .fill(size.0, size.1, |o| dec.scale_into(&pic, o))
            {
                Ok(i) => i,
                Err(_) => continue,
            };
            let key = std::mem::take(&mut self.force_key);
            match enc.encode(&i420, t, key) {
                Ok(packets) => {
                    for e in packets {
                        let cts = (e.pts_ms - e.dts_ms).max(0) as i32;
                        out.push(video_packet(
                            OutVideo::H264,
                            e.dts_ms.max(0) as u32,
                            cts,
                            e.key,
                            1,
                            &e.data,
                        ));
                    }
                }
                Err(e) => debug!(error = %e, "twin frame not encoded"),
            }
        }
        out
    }

    /// Asks the publisher for a key frame, at most once a second.
    fn ask_key_frame(&mut self) {
        if self
            .last_key_request
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        self.last_key_request = Some(Instant::now());
        (self.cx.key_frame)(&self.source);
    }
}

/// The audio half of a bridge: decoder, converter, encoder, and the output clock.
struct Audio {
    out: OutCodec,
    decoder: Option<AudioDecoder>,
    resampler: Option<Resampler>,
    encoder: Option<AudioEncoder>,
    /// The source time of the encoder's first sample.
    base_ms: Option<i64>,
    config_sent: bool,
}

impl Audio {
    fn new(out: OutCodec) -> Self {
        Audio {
            out,
            decoder: None,
            resampler: None,
            encoder: None,
            base_ms: None,
            config_sent: false,
        }
    }
}

/// Copies video and metadata, converts audio; ends with the source, or (`idle`) when no
/// player has read the bridge for that long.
fn run(
    rt: &tokio::runtime::Handle,
    sub: Subscription,
    publisher: Publisher,
    mut audio: Audio,
    mut video: Option<Video>,
    idle: Option<Duration>,
) {
    let mut last_viewer = Instant::now();
    let mut checked: Option<Instant> = None;
    loop {
        let next =
            rt.block_on(async { tokio::time::timeout(Duration::from_secs(1), sub.recv()).await });
        if checked.is_none_or(|c| c.elapsed() >= Duration::from_secs(1)) {
            checked = Some(Instant::now());
            if let Some(v) = video.as_mut() {
                v.check_demand(&publisher);
            }
            let viewers = players(&publisher);
            if viewers > 0 {
                last_viewer = Instant::now();
            } else if idle.is_some_and(|i| last_viewer.elapsed() > i) {
                return;
            }
        }
        let p = match next {
            Ok(Some(p)) => p,
            Ok(None) => return, // the stream ended
            Err(_) => continue,
        };
        match p.kind {
            Kind::Video => match video.as_mut() {
                Some(v) => {
                    for out in v.convert(&p) {
                        publisher.send(out);
                    }
                }
                None => publisher.send(p),
            },
            Kind::Meta => publisher.send(p),
            Kind::Audio => {
                for out in audio.convert(&p) {
                    publisher.send(out);
                }
            }
        }
    }
}

/// Who reads a bridged stream: players only. HLS segments every stream, bridges
/// included, as an internal reader, which must neither keep a bridge alive nor count as
/// demand for a twin's transcode.
fn players(publisher: &Publisher) -> usize {
    publisher
        .stream()
        .stats()
        .players
        .iter()
        .filter(|(p, _)| **p != Protocol::Internal)
        .map(|(_, n)| n)
        .sum()
}

/// The output codec a source codec already is (AAC of any profile passes as AAC-LC
/// would: every AAC player reads it).
fn codec_of(c: Option<AudioCodec>) -> Option<OutCodec> {
    match c {
        Some(AudioCodec::Opus) => Some(OutCodec::Opus),
        Some(AudioCodec::Aac) => Some(OutCodec::AacLc),
        _ => None,
    }
}

impl Audio {
    fn convert(&mut self, p: &Packet) -> Vec<Packet> {
        let codec = p.audio_codec();
        if Some(self.out) == codec_of(codec) {
            return vec![p.clone()]; // already what the players want, header included
        }
        let body = match codec {
            Some(AudioCodec::Aac) if p.is_config() => {
                self.decoder = p.data.get(2..).and_then(|asc| AudioDecoder::aac(asc).ok());
                return Vec::new();
            }
            Some(AudioCodec::Aac) => p.data.get(2..),
            Some(AudioCodec::Mp3) => {
                if self.decoder.is_none() {
                    self.decoder = AudioDecoder::mp3().ok();
                }
                p.data.get(1..)
            }
            Some(AudioCodec::Opus) if p.is_config() => {
                self.decoder = p.data.get(5..).and_then(|h| AudioDecoder::opus(h).ok());
                return Vec::new();
            }
            // Enhanced RTMP: [9|type]["Opus"] + the packet.
            Some(AudioCodec::Opus) if p.data[0] & 0x0f == 1 => p.data.get(5..),
            _ => None,
        };
        let (Some(body), Some(dec)) = (body, self.decoder.as_mut()) else {
            return Vec::new();
        };
        let frames = match dec.decode(body) {
            Ok(f) => f,
            Err(e) => {
                debug!(error = %e, "bridged audio packet dropped");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        if self.encoder.is_none() {
            let opened = match self.out {
                OutCodec::Opus => AudioEncoder::opus(2, OPUS_BPS),
                _ => AudioEncoder::new(2, AAC_BPS, self.out.default_rate()),
            };
            match opened {
                Ok(e) => {
                    self.encoder = Some(e);
                    self.base_ms = Some(i64::from(p.timestamp));
                }
                Err(e) => {
                    warn!(error = %e, "cannot open the bridge's audio encoder");
                    return out;
                }
            }
        }
        let (Some(enc), Some(base)) = (self.encoder.as_mut(), self.base_ms) else {
            return out;
        };
        let to = self.out.default_rate();
        for (rate, samples) in frames {
            let r = self
                .resampler
                .get_or_insert_with(|| Resampler::between(rate, to));
            if r.from_rate() != rate {
                *r = Resampler::between(rate, to);
            }
            let pcm = r.convert(&samples);
            if let Ok(packets) = enc.encode(&pcm) {
                for e in packets {
                    let Some(ts) = e.audio_ts(base) else {
                        continue;
                    };
                    // The sequence header goes out with the first frame, at its time: the
                    // encoder's first frame starts before `base` (its priming), and a header
                    // stamped later would make the hub push that frame forward onto the
                    // next one's time.
                    if !self.config_sent {
                        self.config_sent = true;
                        out.push(audio_packet(self.out, true, ts, 0, enc.config()));
                    }
                    out.push(audio_packet(self.out, true, ts, 1, &e.data));
                }
            }
        }
        out
    }
}
