//! Audio bridges between the two worlds, one per stream however many players:
//! - **Opus for WebRTC viewers**: WebRTC players decode Opus, RTMP publishers and most mix
//!   outputs send AAC (or MP3). The bridge republishes the stream under `{key}#opus`: its
//!   video and metadata as they are, its audio decoded, converted to 48 kHz
//!   (band-limited) and encoded as Opus. It starts with the first viewer that needs it and
//!   stops 5 s after the last one left, or when its stream ends.
//! - **AAC for everyone else**: a WHIP publisher sends Opus, which RTMP, HTTP-FLV and HLS
//!   players (and Debian's FFmpeg, hls.js, Safari) do not read in FLV/TS. Its twin under
//!   `{key}#aac` carries the same video and AAC-LC 44.1 kHz, and the hub sends that
//!   stream's players there (an alias); WebRTC viewers and mixes keep reading the Opus
//!   original. It lives as long as the publisher.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::{debug, info, warn};

use tributary_core::mix::AudioCodec as OutCodec;
use tributary_live::hub::{Hub, Publisher, Subscription};
use tributary_live::media::{AudioCodec, Kind, Packet};
use tributary_live::metrics::Protocol;

use crate::codec::{AudioDecoder, AudioEncoder};
use crate::output::audio_packet;
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
                run(&rt, sub, publisher, Audio::new(OutCodec::Opus), Some(IDLE));
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

/// Starts the AAC twin of a WHIP publisher's stream `key` (see the module doc): it runs
/// until the stream ends. Players of `key` are sent to the twin meanwhile.
pub fn start_aac_twin(hub: &Hub, rt: &tokio::runtime::Handle, key: &str) {
    let twin = format!("{key}{AAC_SUFFIX}");
    let Ok(sub) = hub.subscribe(key, Protocol::Internal) else {
        return;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let Ok(publisher) = hub.publish(&twin, now) else {
        warn!(stream = %twin, "the AAC twin is already published");
        return;
    };
    hub.set_alias(key, &twin);
    let (hub, rt, key) = (hub.clone(), rt.clone(), key.to_string());
    let spawned = std::thread::Builder::new()
        .name("aac-twin".into())
        .spawn(move || {
            info!(stream = %twin, "AAC twin started");
            run(&rt, sub, publisher, Audio::new(OutCodec::AacLc), None);
            hub.clear_alias(&key, &twin);
            info!(stream = %twin, "AAC twin stopped");
        });
    if let Err(e) = spawned {
        warn!(error = %e, "cannot start an AAC twin");
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
    idle: Option<Duration>,
) {
    let mut last_viewer = Instant::now();
    let mut checked = Instant::now();
    loop {
        let next =
            rt.block_on(async { tokio::time::timeout(Duration::from_secs(1), sub.recv()).await });
        if checked.elapsed() >= Duration::from_secs(1) {
            checked = Instant::now();
            let viewers: usize = publisher.stream().stats().players.values().sum();
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
            Kind::Video | Kind::Meta => publisher.send(p),
            Kind::Audio => {
                for out in audio.convert(&p) {
                    publisher.send(out);
                }
            }
        }
    }
}

/// The output codec a source codec already is.
fn codec_of(c: Option<AudioCodec>) -> Option<OutCodec> {
    match c {
        Some(AudioCodec::Opus) => Some(OutCodec::Opus),
        _ => None,
    }
}

impl Audio {
    fn convert(&mut self, p: &Packet) -> Vec<Packet> {
        let codec = p.audio_codec();
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
        if Some(self.out) == codec_of(codec) {
            return vec![p.clone()]; // already what the players want
        }
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
                    let ts = (base + e.pts_ms).max(0) as u32;
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
