//! The audio bridge for WebRTC viewers: WebRTC players decode Opus, RTMP publishers and
//! most mix outputs send AAC (or MP3). A bridge republishes a stream under a hidden key
//! (`{key}#opus`): its video and metadata as they are, its audio decoded, converted to
//! 48 kHz (band-limited) and encoded as Opus. One bridge per stream, however many
//! viewers; it starts with the first viewer that needs it and stops 5 s after the last
//! one left, or when its stream ends.

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

/// The suffix of a bridged stream's key; `#` is not allowed in stream ids, so no
/// publisher or player can name it.
pub const OPUS_SUFFIX: &str = "#opus";

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
                run(&rt, sub, publisher);
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

/// The audio half of a bridge: decoder, converter, encoder, and the output clock.
#[derive(Default)]
struct Audio {
    decoder: Option<AudioDecoder>,
    resampler: Option<Resampler>,
    encoder: Option<AudioEncoder>,
    /// The source time of the encoder's first sample.
    base_ms: Option<i64>,
}

fn run(rt: &tokio::runtime::Handle, sub: Subscription, publisher: Publisher) {
    let mut audio = Audio::default();
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
            } else if last_viewer.elapsed() > IDLE {
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
            match AudioEncoder::opus(2, OPUS_BPS) {
                Ok(e) => {
                    out.push(audio_packet(
                        OutCodec::Opus,
                        true,
                        p.timestamp,
                        0,
                        e.config(),
                    ));
                    self.encoder = Some(e);
                    self.base_ms = Some(i64::from(p.timestamp));
                }
                Err(e) => {
                    warn!(error = %e, "cannot open the bridge's Opus encoder");
                    return out;
                }
            }
        }
        let (Some(enc), Some(base)) = (self.encoder.as_mut(), self.base_ms) else {
            return out;
        };
        for (rate, samples) in frames {
            let r = self
                .resampler
                .get_or_insert_with(|| Resampler::between(rate, 48_000));
            if r.from_rate() != rate {
                *r = Resampler::between(rate, 48_000);
            }
            let pcm = r.convert(&samples);
            if let Ok(packets) = enc.encode(&pcm) {
                for e in packets {
                    let ts = (base + e.pts_ms).max(0) as u32;
                    out.push(audio_packet(OutCodec::Opus, true, ts, 1, &e.data));
                }
            }
        }
        out
    }
}
