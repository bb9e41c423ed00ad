//! One output of a task: an encoder thread that takes composed ticks from a small bounded
//! queue (dropping when it falls behind, so a slow output never holds the mix back),
//! encodes them and publishes the result into the hub. A `StreamUrl` output is published
//! under an internal key and pushed from there by the live plane's push client, which
//! reconnects with back-off on its own.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use tracing::{info, warn};

use tributary_core::mix::{AudioCodec, MixOutput, Target, VideoCodec, VideoOut};
use tributary_core::url_policy::UrlPolicy;
use tributary_live::amf0::Amf0;
use tributary_live::hub::{Hub, HubError, Publisher};
use tributary_live::media::{Kind, Packet};
use tributary_live::push::{self, PushConfig, PushHandle};

use crate::audio::Stereo;
use crate::codec::{AudioEncoder, Rescaler, VideoEncoder};
use crate::frame::I420;
use crate::passed_sei::PassedSei;
use crate::pool::PicturePool;
use crate::resample::Resampler;

/// An output's frame rate and key-frame interval (seconds), fixed for its life.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cadence {
    pub fps: u32,
    pub gop_s: u32,
}

/// How often an audio-only output repeats the task's user data.
const DATA_REPEAT_MS: i64 = 2_000;

/// The script data name of the stream data message in audio-only outputs.
pub const DATA_MESSAGE: &str = "onTributaryData";

/// Ticks queued per output: a few frames of slack, then drops.
pub(crate) const OUTPUT_QUEUE: usize = 8;

/// Rescaled canvases out at once: the encoder lets go of each before the next (2 for slack).
const SCALED_PICTURES: usize = 2;

/// What an output's worker is handed: a composed tick to encode, or (pass-through) the
/// input's own packets, already on the output's timeline.
pub(crate) enum Work {
    Tick(Arc<Tick>),
    Copy(Arc<Vec<Packet>>),
}

/// One tick of the mix, shared by every output.
pub(crate) struct Tick {
    pub pts_ms: i64,
    pub canvas: Option<Arc<I420>>,
    pub audio: Arc<Vec<Stereo>>,
    /// What this tick's video frame may carry as SEI.
    pub sei: Option<Arc<TickSei>>,
}

/// The stream data of a tick: the task's user data and layout (sent when they change and
/// on key frames), and sound levels when a 100 ms period ended at this tick.
#[derive(Debug, Default)]
pub(crate) struct TickSei {
    pub user_data: Option<Arc<Vec<u8>>>,
    /// Moves when the user data changes, so each output sends the new one at once.
    pub user_data_rev: u64,
    pub layout: Option<Arc<Vec<u8>>>,
    pub levels: Option<Vec<(u32, u8)>>,
    /// Sound levels keyed by stream id (auto-mixes), an encoded record value.
    pub stream_levels: Option<Vec<u8>>,
    /// The inputs' own SEI messages shown at this tick (PassInputSei), in input order.
    pub passed: Vec<Arc<PassedSei>>,
}

#[derive(Debug, Default)]
pub(crate) struct OutputCounters {
    pub frames: AtomicU64,
    pub dropped_ticks: AtomicU64,
    pub bytes: AtomicU64,
    pub encode_errors: AtomicU64,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutputStats {
    pub target: String,
    pub frames_encoded: u64,
    pub dropped_ticks: u64,
    pub bytes: u64,
    pub push: Option<String>,
}

pub(crate) struct Output {
    pub target: Target,
    /// The hub stream this output publishes.
    pub key: String,
    /// Audio-only outputs encode on the mix thread (a 20 ms AAC frame costs less than the
    /// thread wake-up a queue would need); video outputs have a thread of their own.
    inline: Option<Mutex<Worker>>,
    tx: SyncSender<Work>,
    /// A pass-through batch was dropped: the worker skips video until a key frame.
    gap: Arc<AtomicBool>,
    /// A player asked for a key frame: the next encoded frame is one.
    key_wanted: Arc<AtomicBool>,
    settings: Arc<Mutex<MixOutput>>,
    counters: Arc<OutputCounters>,
    stop: Arc<AtomicBool>,
    push: Option<PushHandle>,
}

impl Output {
    pub fn spawn(
        rt: &tokio::runtime::Handle,
        hub: &Hub,
        key: String,
        spec: MixOutput,
        cadence: Cadence,
        preset: String,
        policy: &UrlPolicy,
    ) -> Output {
        let (tx, rx) = sync_channel(OUTPUT_QUEUE);
        let settings = Arc::new(Mutex::new(spec.clone()));
        let counters = Arc::new(OutputCounters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let gap = Arc::new(AtomicBool::new(false));
        let key_wanted = Arc::new(AtomicBool::new(false));
        let push = match &spec.target {
            Target::Url(url) => match push::Target::parse(url) {
                Ok(t) => {
                    let _guard = rt.enter();
                    Some(push::spawn(
                        hub.clone(),
                        key.clone(),
                        t,
                        PushConfig {
                            policy: policy.clone(),
                            ..PushConfig::default()
                        },
                    ))
                }
                Err(e) => {
                    warn!(url = %e.0, "mix output URL refused");
                    None
                }
            },
            Target::Stream(_) | Target::Replace(_) => None,
        };
        let worker_key = key.clone();
        let worker = Worker {
            hub: hub.clone(),
            key,
            settings: settings.clone(),
            counters: counters.clone(),
            stop: stop.clone(),
            fps: cadence.fps,
            gop_s: cadence.gop_s,
            preset,
            publisher: None,
            enc: None,
            rescaler: Rescaler::default(),
            scaled: PicturePool::new(SCALED_PICTURES),
            warned: false,
            sent_user_data: None,
            user_data_sent_ms: i64::MIN,
            gap: gap.clone(),
            key_wanted: key_wanted.clone(),
            last_key_forced: None,
            last_copy: [0; 3],
        };
        let inline = if spec.video.is_none() {
            Some(Mutex::new(worker))
        } else {
            if let Err(e) = std::thread::Builder::new()
                .name("mix-encode".into())
                .spawn(move || worker.run(rx))
            {
                warn!(error = %e, "cannot start an encoder thread");
            }
            None
        };
        Output {
            target: spec.target,
            key: worker_key,
            inline,
            tx,
            gap,
            key_wanted,
            settings,
            counters,
            stop,
            push,
        }
    }

    /// Applies a live update (bitrate, size); the encoder picks it up at its next tick.
    pub fn update(&self, spec: &MixOutput) {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner()) = spec.clone();
    }

    /// Hands a tick over without waiting (or encodes it here, for audio-only outputs).
    pub fn offer(&self, tick: &Arc<Tick>) {
        if let Some(w) = &self.inline {
            w.lock().unwrap_or_else(|e| e.into_inner()).step(tick);
            return;
        }
        if let Err(TrySendError::Full(_)) = self.tx.try_send(Work::Tick(tick.clone())) {
            self.counters.dropped_ticks.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Hands the input's packets over for pass-through (published here, for audio-only
    /// outputs). A batch that does not fit is dropped and the stream resumes at the next
    /// key frame.
    pub fn offer_copy(&self, packets: &Arc<Vec<Packet>>) {
        if let Some(w) = &self.inline {
            w.lock().unwrap_or_else(|e| e.into_inner()).copy(packets);
            return;
        }
        if let Err(TrySendError::Full(_)) = self.tx.try_send(Work::Copy(packets.clone())) {
            self.counters.dropped_ticks.fetch_add(1, Ordering::Relaxed);
            self.gap.store(true, Ordering::Relaxed);
        }
    }

    pub fn stats(&self) -> OutputStats {
        OutputStats {
            target: self.target.describe().into_owned(),
            frames_encoded: self.counters.frames.load(Ordering::Relaxed),
            dropped_ticks: self.counters.dropped_ticks.load(Ordering::Relaxed),
            bytes: self.counters.bytes.load(Ordering::Relaxed),
            push: self.push.as_ref().map(|p| format!("{:?}", p.state())),
        }
    }

    pub fn dropped_ticks(&self) -> u64 {
        self.counters.dropped_ticks.load(Ordering::Relaxed)
    }

    /// Makes the next encoded frame a key frame (at most one forced per second).
    pub fn force_key_frame(&self) {
        self.key_wanted.store(true, Ordering::Relaxed);
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(p) = self.push.take() {
            p.stop();
        }
    }
}

struct Worker {
    hub: Hub,
    key: String,
    settings: Arc<Mutex<MixOutput>>,
    counters: Arc<OutputCounters>,
    stop: Arc<AtomicBool>,
    fps: u32,
    gop_s: u32,
    preset: String,
    publisher: Option<Publisher>,
    enc: Option<Encoders>,
    rescaler: Rescaler,
    /// The canvas scaled to this output's size, when it differs (see `pool`).
    scaled: PicturePool,
    warned: bool,
    /// The user data revision this output last carried.
    sent_user_data: Option<u64>,
    /// Audio-only outputs: when the user data last went out (it is repeated every
    /// [`DATA_REPEAT_MS`] for players that join late, as key frames repeat it in video).
    user_data_sent_ms: i64,
    gap: Arc<AtomicBool>,
    key_wanted: Arc<AtomicBool>,
    /// When a key frame was last forced: viewers asking in a burst get one, not many.
    last_key_forced: Option<std::time::Instant>,
    /// Pass-through: the last timestamp sent per kind (audio, video, meta), kept
    /// non-decreasing.
    last_copy: [u32; 3],
}

/// An output's audio encoder, and the converter from the mix's rate to the output's when
/// they differ.
struct AudioOut {
    enc: AudioEncoder,
    codec: AudioCodec,
    resampler: Option<Resampler>,
}

impl AudioOut {
    fn open(spec: &MixOutput) -> Result<AudioOut, crate::codec::CodecError> {
        let (ch, bps, rate) = (spec.channels, spec.audio_bitrate_bps, spec.sample_rate);
        let enc = match spec.audio_codec {
            AudioCodec::AacLc => AudioEncoder::new(ch, bps, rate)?,
            AudioCodec::Mp3 => AudioEncoder::mp3(ch, bps, rate)?,
            AudioCodec::Opus => AudioEncoder::opus(ch, bps)?,
            AudioCodec::HeAac => AudioEncoder::he_aac(ch, bps, rate)?,
        };
        Ok(AudioOut {
            enc,
            codec: spec.audio_codec,
            resampler: (rate != crate::audio::RATE)
                .then(|| Resampler::between(crate::audio::RATE, rate)),
        })
    }

    /// The sequence header's payload: AAC's AudioSpecificConfig, Opus's `OpusHead`; MP3
    /// has none.
    fn config(&self) -> Option<&[u8]> {
        (self.codec != AudioCodec::Mp3).then(|| self.enc.config())
    }

    fn encode(
        &mut self,
        samples: &[Stereo],
    ) -> Result<Vec<crate::codec::Encoded>, crate::codec::CodecError> {
        let converted;
        let samples = match self.resampler.as_mut() {
            Some(r) => {
                converted = r.convert(samples);
                &converted[..]
            }
            None => samples,
        };
        self.enc.encode(samples)
    }

    /// FLV `audiocodecid` of `onMetaData` (Enhanced RTMP: the FourCC as a number).
    fn flv_codec_id(&self) -> f64 {
        match self.codec {
            AudioCodec::Mp3 => 2.0,
            AudioCodec::Opus => u32::from_be_bytes(*OPUS) as f64,
            AudioCodec::AacLc | AudioCodec::HeAac => 10.0,
        }
    }
}

struct Encoders {
    spec: MixOutput,
    video: Option<VideoEncoder>,
    audio: Option<AudioOut>,
    /// Output time of the audio encoder's first sample (it counts from zero).
    audio_base_ms: i64,
}

impl Worker {
    fn run(mut self, rx: Receiver<Work>) {
        while !self.stop.load(Ordering::Relaxed) {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(Work::Tick(tick)) => self.step(&tick),
                Ok(Work::Copy(packets)) => self.copy(&packets),
                Err(_) => continue,
            }
        }
        info!(stream = %self.key, "mix output stopped");
    }

    /// Publishes the input's own packets (pass-through). Coming from mixing, the encoders
    /// close: the input's configuration packets, which open its stream, follow in-band.
    fn copy(&mut self, packets: &[Packet]) {
        if self.publisher.is_none() {
            self.publisher = self.claim();
            if self.publisher.is_none() {
                return;
            }
            info!(stream = %self.key, "mix output publishing (pass-through)");
        }
        self.enc = None;
        let Some(publisher) = self.publisher.as_ref() else {
            return;
        };
        for p in packets {
            if p.kind == Kind::Video && self.gap.load(Ordering::Relaxed) {
                if !p.is_key() {
                    continue;
                }
                self.gap.store(false, Ordering::Relaxed);
            }
            let slot = match p.kind {
                Kind::Audio => 0,
                Kind::Video => 1,
                Kind::Meta => 2,
            };
            let ts = p.timestamp.max(self.last_copy[slot]);
            self.last_copy[slot] = ts;
            self.counters
                .bytes
                .fetch_add(p.data.len() as u64, Ordering::Relaxed);
            if p.kind == Kind::Video && !p.is_config() {
                self.counters.frames.fetch_add(1, Ordering::Relaxed);
            }
            publisher.send(if ts == p.timestamp {
                p.clone()
            } else {
                Packet::new(p.kind, ts, p.data.clone())
            });
        }
    }

    /// Encodes and publishes one tick (claiming the output stream first if needed).
    fn step(&mut self, tick: &Tick) {
        if self.publisher.is_none() {
            self.publisher = self.claim();
            if self.publisher.is_none() {
                return;
            }
            info!(stream = %self.key, "mix output publishing");
        }
        let Some(publisher) = self.publisher.take() else {
            return;
        };
        let spec = self
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let rebuild = self.enc.as_ref().is_none_or(|e| {
            let retunes = e.video.as_ref().is_none_or(|v| v.retunes_bitrate());
            let shape = |v: VideoOut| (v.width, v.height, v.codec);
            e.spec.video.map(shape) != spec.video.map(shape)
                || e.spec.channels != spec.channels
                || (!retunes
                    && e.spec.video.map(|v| v.bitrate_bps) != spec.video.map(|v| v.bitrate_bps))
        });
        if rebuild {
            self.enc = self.open(&spec, &publisher, tick.pts_ms);
            if self.enc.is_none() {
                self.counters.encode_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(mut e) = self.enc.take() {
            if let (Some(v), Some(ve)) = (spec.video, e.video.as_mut()) {
                ve.set_bitrate(v.bitrate_bps);
            }
            e.spec = spec;
            self.encode(&mut e, tick, &publisher);
            self.enc = Some(e);
        }
        self.publisher = Some(publisher);
    }

    /// Claims the output stream in the hub; `None` while someone else publishes it (the
    /// next tick tries again).
    fn claim(&mut self) -> Option<Publisher> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        match self.hub.publish(&self.key, now) {
            Ok(p) => Some(p),
            Err(e) => {
                if !self.warned {
                    let busy = matches!(e, HubError::AlreadyPublishing(_));
                    warn!(stream = %self.key, error = %e, busy, "mix output cannot publish yet; retrying");
                    self.warned = true;
                }
                None
            }
        }
    }

    fn open(&self, spec: &MixOutput, publisher: &Publisher, now_ms: i64) -> Option<Encoders> {
        let video = match spec.video {
            Some(v) => {
                match VideoEncoder::new(
                    v.width,
                    v.height,
                    self.fps,
                    v.bitrate_bps,
                    &self.preset,
                    self.gop_s,
                    v.codec,
                ) {
                    Ok(e) => Some(e),
                    Err(err) => {
                        warn!(stream = %self.key, error = %err, "cannot open the video encoder");
                        return None;
                    }
                }
            }
            None => None,
        };
        let audio = match AudioOut::open(spec) {
            Ok(e) => e,
            Err(err) => {
                warn!(stream = %self.key, error = %err, "cannot open the audio encoder");
                return None;
            }
        };
        let mut meta = vec![
            (
                "audiocodecid".to_string(),
                Amf0::Number(audio.flv_codec_id()),
            ),
            (
                "audiosamplerate".to_string(),
                Amf0::Number(spec.sample_rate as f64),
            ),
            (
                "audiochannels".to_string(),
                Amf0::Number(spec.channels as f64),
            ),
            (
                "audiodatarate".to_string(),
                Amf0::Number(spec.audio_bitrate_bps as f64 / 1000.0),
            ),
            (
                "encoder".to_string(),
                Amf0::String("tributary mixer".into()),
            ),
        ];
        if let Some(v) = spec.video {
            meta.extend([
                ("width".to_string(), Amf0::Number(v.width as f64)),
                ("height".to_string(), Amf0::Number(v.height as f64)),
                ("framerate".to_string(), Amf0::Number(self.fps as f64)),
                (
                    "videocodecid".to_string(),
                    Amf0::Number(match v.codec {
                        VideoCodec::H264 => 7.0,
                        VideoCodec::H265 { .. } => u32::from_be_bytes(*HVC1) as f64,
                        VideoCodec::Vp8 => u32::from_be_bytes(*VP08) as f64,
                    }),
                ),
                (
                    "videodatarate".to_string(),
                    Amf0::Number(v.bitrate_bps as f64 / 1000.0),
                ),
            ]);
        }
        publisher.send(Packet::metadata(Amf0::EcmaArray(meta)));
        if let Some(v) = &video {
            publisher.send(video_packet(v.codec(), 0, 0, true, 0, v.config()));
        }
        if let Some(config) = audio.config() {
            publisher.send(audio_packet(audio.codec, spec.channels == 2, 0, 0, config));
        }
        Some(Encoders {
            spec: spec.clone(),
            video,
            audio: Some(audio),
            audio_base_ms: now_ms,
        })
    }

    /// A frame's AVCC bytes with this tick's SEI first: user data when it changed since
    /// this output last sent it and on key frames, the layout on key frames, sound levels
    /// on the first frame of the tick that ended a period.
    fn with_sei(
        &mut self,
        codec: VideoCodec,
        avcc: &[u8],
        key: bool,
        first: bool,
        sei: &TickSei,
    ) -> Vec<u8> {
        let user_data = sei
            .user_data
            .as_deref()
            .filter(|_| key || self.sent_user_data != Some(sei.user_data_rev));
        let msg = crate::sei::Message {
            user_data: user_data.map(Vec::as_slice),
            sound_levels: sei.levels.as_deref().filter(|_| first),
            layout: sei.layout.as_deref().map(Vec::as_slice).filter(|_| key),
            stream_levels: sei.stream_levels.as_deref().filter(|_| first),
        };
        let passed: &[Arc<PassedSei>] = if first { &sei.passed } else { &[] };
        if msg.is_empty() && passed.is_empty() {
            return avcc.to_vec();
        }
        if user_data.is_some() {
            self.sent_user_data = Some(sei.user_data_rev);
        }
        let nal = |payload_type: u8, payload: &[u8]| match codec {
            VideoCodec::H264 => crate::sei::h264_nal_of(payload_type, payload),
            VideoCodec::H265 { .. } | VideoCodec::Vp8 => {
                crate::hevc::sei_nal_of(payload_type, payload)
            }
        };
        // Each unit goes first: prepend the last one first, ours last (it leads).
        let mut out = avcc.to_vec();
        for m in passed.iter().rev() {
            out = crate::sei::prepend_to_avcc(&out, &nal(m.payload_type, &m.payload));
        }
        if !msg.is_empty() {
            out = crate::sei::prepend_to_avcc(&out, &nal(5, &msg.payload()));
        }
        out
    }

    /// Audio-only outputs carry the stream data as timed script data (`DATA_MESSAGE`,
    /// `{payload: base64 of the SEI payload}`; HLS turns it into timed ID3): the user
    /// data when it changes and every 2 s, sound levels when a period ends.
    fn send_data(&mut self, sei: &TickSei, pts_ms: i64, publisher: &Publisher) {
        use base64::Engine as _;
        let due = self.sent_user_data != Some(sei.user_data_rev)
            || pts_ms - self.user_data_sent_ms >= DATA_REPEAT_MS;
        let user_data = sei.user_data.as_deref().filter(|_| due);
        let msg = crate::sei::Message {
            user_data: user_data.map(Vec::as_slice),
            sound_levels: sei.levels.as_deref(),
            layout: None,
            stream_levels: sei.stream_levels.as_deref(),
        };
        if msg.is_empty() {
            return;
        }
        if user_data.is_some() {
            self.sent_user_data = Some(sei.user_data_rev);
            self.user_data_sent_ms = pts_ms;
        }
        let payload = base64::engine::general_purpose::STANDARD.encode(msg.payload());
        publisher.send(Packet::data(
            DATA_MESSAGE,
            Amf0::EcmaArray(vec![("payload".into(), Amf0::String(payload))]),
            pts_ms.max(0) as u32,
        ));
    }

    fn encode(&mut self, e: &mut Encoders, tick: &Tick, publisher: &Publisher) {
        let rescaler = &mut self.rescaler;
        if let (Some(ve), Some(v), Some(canvas)) =
            (e.video.as_mut(), e.spec.video, tick.canvas.as_ref())
        {
            let scaled;
            let pic: &Arc<I420> = if (canvas.width, canvas.height) == (v.width, v.height) {
                canvas
            } else {
                let fitted = self
                    .scaled
                    .fill(v.width, v.height, |out| rescaler.scale_into(canvas, out));
                match fitted {
                    Ok(p) => {
                        scaled = p;
                        &scaled
                    }
                    Err(_) => {
                        self.counters.encode_errors.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            };
            let codec = ve.codec();
            let force = self.key_wanted.swap(false, Ordering::Relaxed)
                && self
                    .last_key_forced
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
            if force {
                self.last_key_forced = Some(std::time::Instant::now());
            }
            match ve.encode(pic, tick.pts_ms, force) {
                Ok(packets) => {
                    let mut first = true;
                    for p in packets {
                        let data = match tick.sei.as_deref().filter(|_| codec != VideoCodec::Vp8) {
                            Some(sei) => {
                                let with = self.with_sei(codec, &p.data, p.key, first, sei);
                                first = false;
                                with
                            }
                            None => p.data,
                        };
                        let p = crate::codec::Encoded { data, ..p };
                        let cts = (p.pts_ms - p.dts_ms).max(0) as i32;
                        self.counters
                            .bytes
                            .fetch_add(p.data.len() as u64, Ordering::Relaxed);
                        publisher.send(video_packet(
                            codec,
                            p.dts_ms.max(0) as u32,
                            cts,
                            p.key,
                            1,
                            &p.data,
                        ));
                        self.counters.frames.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(_) => {
                    self.counters.encode_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        // VP8 has no SEI: its stream data goes as timed script data, as audio-only
        // outputs' does.
        let frames_carry_data = e
            .video
            .as_ref()
            .is_some_and(|v| v.codec() != VideoCodec::Vp8);
        if !frames_carry_data && let Some(sei) = tick.sei.as_deref() {
            self.send_data(sei, tick.pts_ms, publisher);
        }
        if let Some(ae) = e.audio.as_mut() {
            match ae.encode(&tick.audio) {
                Ok(packets) => {
                    for p in packets {
                        // An output opened at the task's start: its priming is not sent.
                        let Some(ts) = p.audio_ts(e.audio_base_ms) else {
                            continue;
                        };
                        self.counters
                            .bytes
                            .fetch_add(p.data.len() as u64, Ordering::Relaxed);
                        publisher.send(audio_packet(
                            e.spec.audio_codec,
                            e.spec.channels == 2,
                            ts,
                            1,
                            &p.data,
                        ));
                    }
                }
                Err(_) => {
                    self.counters.encode_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Enhanced RTMP FourCCs.
const HVC1: &[u8; 4] = b"hvc1";
const VP08: &[u8; 4] = b"vp08";
const OPUS: &[u8; 4] = b"Opus";

/// An FLV video tag body; `kind` 0 is the sequence header, 1 a frame. H.264 is legacy FLV
/// (AVC, codec id 7); H.265 is Enhanced RTMP (`[1 ex][3 frame type][4 packet type]`,
/// FourCC `hvc1`, then the composition time for coded frames).
pub(crate) fn video_packet(
    codec: VideoCodec,
    ts: u32,
    cts: i32,
    key: bool,
    kind: u8,
    payload: &[u8],
) -> Packet {
    let mut b = BytesMut::with_capacity(payload.len() + 8);
    let frame_type: u8 = if key { 1 } else { 2 };
    match codec {
        VideoCodec::H264 => {
            b.put_u8((frame_type << 4) | 7);
            b.put_u8(kind);
        }
        VideoCodec::H265 { .. } => {
            b.put_u8(0x80 | (frame_type << 4) | kind);
            b.put_slice(HVC1);
        }
        VideoCodec::Vp8 => {
            b.put_u8(0x80 | (frame_type << 4) | kind);
            b.put_slice(VP08);
        }
    }
    // A composition time for AVC (legacy) and HEVC coded frames; none for VP8.
    if (kind == 1 && codec != VideoCodec::Vp8) || codec == VideoCodec::H264 {
        let c = cts.to_be_bytes();
        b.put_slice(&c[1..]);
    }
    b.put_slice(payload);
    Packet::new(Kind::Video, ts, b.freeze())
}

/// An FLV audio tag body; `kind` 0 is the sequence header, 1 a frame. AAC is `0xAF` + the
/// packet type (FLV requires the 44 kHz / 16-bit / stereo flags whatever the AAC
/// carries); MP3 is format 2 with its real channel count and no packet type; Opus is
/// Enhanced RTMP (`[4 format 9][4 packet type]`, FourCC `Opus`; the sequence header is
/// the `OpusHead`).
pub(crate) fn audio_packet(
    codec: AudioCodec,
    stereo: bool,
    ts: u32,
    kind: u8,
    payload: &[u8],
) -> Packet {
    let mut b = BytesMut::with_capacity(payload.len() + 5);
    match codec {
        AudioCodec::Mp3 => b.put_u8(0x2e | u8::from(stereo)),
        AudioCodec::Opus => {
            b.put_u8(0x90 | kind);
            b.put_slice(OPUS);
        }
        AudioCodec::AacLc | AudioCodec::HeAac => {
            b.put_u8(0xaf);
            b.put_u8(kind);
        }
    }
    b.put_slice(payload);
    Packet::new(Kind::Audio, ts, Bytes::from(b))
}
