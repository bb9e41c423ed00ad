//! One input of a task: a tap that brings its encoded packets in (from the hub, or pulled
//! from a URL by FFmpeg's demuxer), and a decode thread that turns them into pictures and
//! samples on the task's timeline.
//!
//! The tap never blocks the hub: packets go through a bounded channel and are dropped
//! (counted) when the decoder falls behind. A publisher that goes away and comes back is a
//! new track (new offset), announced to the decoder before its first packet.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use tracing::{debug, info, warn};

use tributary_core::mix::{Content, Crop, RenderMode, Source};
use tributary_core::url_policy::UrlPolicy;
use tributary_live::hub::{Hub, HubEvent, Subscription};
use tributary_live::media::{Kind, Packet};
use tributary_live::metrics::Protocol;

use crate::audio::{AudioTrack, RATE};
use crate::codec::{AudioDecoder, PictureScaler, VideoDecoder};
use crate::compose::fitted_size;
use crate::frame::I420;
use crate::passed_sei::{self, PassedSei};
use crate::pool::PicturePool;
use crate::resample::Resampler;
use crate::shared_decode::{SharedDecode, SharedDecodes};
use crate::timeline::{Timeline, TimelineConfig, Track};

/// Packets queued between the tap and the decoder (about 4 s of a 30 fps stream).
pub(crate) const TAP_QUEUE: usize = 256;

/// What the tap hands the decoder.
pub(crate) enum InputMsg {
    NewTrack,
    VideoConfig(VideoCodecIn, Bytes),
    Video { dts: i64, pts: i64, data: Bytes },
    AudioConfig(AudioCodec),
    Audio { pts: i64, data: Bytes },
}

pub(crate) enum AudioCodec {
    Aac(Bytes),
    Mp3,
    /// With its `OpusHead`.
    Opus(Bytes),
}

/// The video codecs an input is decoded from (with their configuration record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VideoCodecIn {
    H264,
    H265,
    /// From a WHIP publisher or a VP8 mix output (Enhanced RTMP `vp08`).
    Vp8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputStatus {
    /// Not seen yet.
    Waiting,
    /// Packets are arriving.
    Live,
    /// It was live and went away.
    Lost,
}

/// How this input is drawn and heard, changed by live updates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Render {
    /// The size of its rect, or `None` when not visible.
    pub rect_size: Option<(u32, u32)>,
    pub mode: RenderMode,
    pub content: Content,
    /// The part of the source to use.
    pub crop: Option<Crop>,
}

/// Where a polled input's packets come from.
enum Feed {
    /// A URL pulled by its own thread.
    Channel(Receiver<InputMsg>),
    /// A hub stream read without any task in between: the mix thread drains the
    /// subscription each tick, so delivering a packet wakes nobody.
    Hub {
        hub: Hub,
        key: String,
        sub: Option<Subscription>,
        next_try: Instant,
    },
}

pub(crate) struct Polled {
    feed: Feed,
    decoder: Decoder,
    scratch: Vec<Packet>,
    /// Pass-through: packets are not decoded but re-stamped onto the task's clock and
    /// kept here for [`Input::take_copied`].
    copy: Option<Vec<Packet>>,
    clock: Instant,
}

/// How an input runs: its timeline settings, the task's clock, and whether the mix thread
/// polls its decoder (audio-only tasks) or it has a decode thread.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InputMode {
    pub timeline: TimelineConfig,
    pub clock: Instant,
    pub polled: bool,
    /// Pass-through (a polled hub input whose packets are copied, not decoded).
    pub copy: bool,
}

/// State shared by the tap, the decoder and the mix thread.
pub(crate) struct InputState {
    pub timeline: Timeline<Arc<I420>>,
    pub audio: AudioTrack,
    pub render: Render,
    pub status: InputStatus,
    pub frames_in: u64,
    /// When the task started reading this input (task clock, ms).
    pub since_ms: i64,
    /// Whether the last tick drew its placeholder instead of its video.
    pub placeholder_shown: bool,
    /// The publisher's user data SEI, at the output time of the frame that carried it
    /// (oldest first; at most [`MAX_PASSED_SEI`]).
    pub passed_sei: VecDeque<(i64, Arc<PassedSei>)>,
}

/// SEI messages waiting per input for the tick that shows their frame; older ones are
/// dropped beyond this (a tick takes them within a frame's time).
pub(crate) const MAX_PASSED_SEI: usize = 64;

#[derive(Debug, Clone, Serialize)]
pub struct InputStats {
    pub source: String,
    pub status: InputStatus,
    pub frames_decoded: u64,
    pub late_frames: u64,
    /// Audio that arrived after its time and was not played, in milliseconds.
    pub late_audio_ms: u64,
    pub dropped_packets: u64,
    pub tracks: u64,
    /// How long its last frame waited in the receive buffer before it was due, ms.
    pub buffer_delay_ms: i64,
    /// The publisher's user id (`UID`), when the task names it.
    pub uid: Option<String>,
    /// Whether its placeholder image is on screen instead of its video.
    pub placeholder_shown: bool,
}

pub(crate) struct Input {
    pub source: Source,
    pub state: Arc<Mutex<InputState>>,
    /// Audio-only tasks decode on the mix thread ([`Input::poll`]) instead of a thread
    /// per input: an AAC frame decodes in microseconds, far less than the wake-ups.
    polled: Option<Mutex<Polled>>,
    stop: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
    /// A hub stream a video task reads: decoded once for every task that reads it.
    shared: Option<Arc<SharedDecode>>,
    /// Pass-through: packets are copied, not decoded.
    copy: bool,
}

impl Input {
    pub fn lock(&self) -> MutexGuard<'_, InputState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the tap and the decoder of one input (or joins the shared decode of its
    /// stream). `clock` is the task's zero.
    pub fn spawn(
        hub: &Hub,
        decodes: &SharedDecodes,
        app_key_prefix: &str,
        source: Source,
        render: Render,
        mode: InputMode,
        policy: &UrlPolicy,
    ) -> Input {
        let InputMode {
            timeline,
            clock,
            polled,
            copy,
        } = mode;
        let copy = copy && matches!(source, Source::Stream(_));
        let polled = polled || copy;
        let state = Arc::new(Mutex::new(InputState {
            timeline: Timeline::new(timeline),
            audio: AudioTrack::new(),
            render,
            status: InputStatus::Waiting,
            frames_in: 0,
            since_ms: clock.elapsed().as_millis() as i64,
            placeholder_shown: false,
            passed_sei: VecDeque::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicU64::new(0));
        if let (false, Source::Stream(id)) = (polled, &source) {
            let shared = decodes.get(&format!("{app_key_prefix}{id}"));
            shared.attach(state.clone(), clock);
            return Input {
                source,
                state,
                polled: None,
                stop,
                dropped,
                shared: Some(shared),
                copy,
            };
        }
        let (tx, rx) = sync_channel::<InputMsg>(TAP_QUEUE);
        let name = source.describe().into_owned();
        let sinks: Sinks = Arc::new(Mutex::new(vec![Sink::new(state.clone(), clock)]));
        let decoder = Decoder::new(name.clone(), sinks);
        let polled = if polled {
            let feed = match &source {
                Source::Stream(id) => Feed::Hub {
                    hub: hub.clone(),
                    key: format!("{app_key_prefix}{id}"),
                    sub: None,
                    next_try: Instant::now(),
                },
                Source::Url(_) => Feed::Channel(rx),
            };
            Some(Mutex::new(Polled {
                feed,
                decoder,
                scratch: Vec::new(),
                copy: copy.then(Vec::new),
                clock,
            }))
        } else {
            let stop = stop.clone();
            let spawned = std::thread::Builder::new()
                .name("mix-decode".into())
                .spawn(move || decode_loop(rx, decoder, stop));
            if let Err(e) = spawned {
                warn!(input = %name, error = %e, "cannot start a decode thread");
            }
            None
        };
        // A hub stream here is polled by the mix thread (threaded ones returned above); a
        // URL is pulled by a thread of its own.
        if let Source::Url(url) = &source {
            let (url, stop, dropped) = (url.clone(), stop.clone(), dropped.clone());
            let policy = policy.clone();
            let spawned = std::thread::Builder::new()
                .name("mix-pull".into())
                .spawn(move || crate::pull::run(&url, &policy, &tx, &stop, &dropped));
            if let Err(e) = spawned {
                warn!(input = %name, error = %e, "cannot start a pull thread");
            }
        }
        Input {
            source,
            state,
            stop,
            dropped,
            shared: None,
            polled,
            copy,
        }
    }

    pub fn is_polled(&self) -> bool {
        self.polled.is_some()
    }

    /// Whether this input passes its packets through instead of decoding them.
    pub fn is_copy(&self) -> bool {
        self.copy
    }

    /// The packets a pass-through input gathered since the last call, on the task's
    /// clock.
    pub fn take_copied(&self) -> Vec<Packet> {
        let Some(p) = &self.polled else {
            return Vec::new();
        };
        p.lock()
            .unwrap_or_else(|e| e.into_inner())
            .copy
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Decodes what has arrived (polled inputs; a no-op for threaded ones).
    pub fn poll(&self) {
        let Some(p) = &self.polled else { return };
        let mut guard = p.lock().unwrap_or_else(|e| e.into_inner());
        let Polled {
            feed,
            decoder,
            scratch,
            copy,
            clock,
        } = &mut *guard;
        match feed {
            Feed::Channel(rx) => {
                while let Ok(msg) = rx.try_recv() {
                    decoder.handle(msg);
                }
            }
            Feed::Hub {
                hub,
                key,
                sub,
                next_try,
            } => {
                if sub.as_ref().is_some_and(Subscription::is_finished) {
                    debug!(stream = %key, "mix input ended");
                    *sub = None;
                }
                if sub.is_none() {
                    let now = Instant::now();
                    if now < *next_try {
                        return;
                    }
                    // Not live yet (or gone): look again in a moment, not every tick.
                    *next_try = now + Duration::from_millis(250);
                    match hub.subscribe(key, Protocol::Internal) {
                        Ok(s) => {
                            debug!(stream = %key, "mix input subscribed");
                            *sub = Some(s);
                            decoder.handle(InputMsg::NewTrack);
                            if copy.is_some() {
                                self.lock().timeline.new_track();
                            }
                        }
                        Err(_) => return,
                    }
                }
                let Some(s) = sub.as_ref() else { return };
                scratch.clear();
                s.drain_ready(scratch, TAP_QUEUE);
                if let Some(out) = copy.as_mut() {
                    restamp(&mut self.lock(), scratch, out, now_ms(*clock));
                    return;
                }
                for p in scratch.drain(..) {
                    if let Some(msg) = from_flv(&p) {
                        decoder.handle(msg);
                    }
                }
            }
        }
    }

    pub fn stats(&self) -> InputStats {
        let s = self.lock();
        InputStats {
            source: self.source.describe().into_owned(),
            status: s.status,
            frames_decoded: s.frames_in,
            late_frames: s.timeline.late_frames,
            late_audio_ms: s.audio.late * 1000 / RATE as u64,
            dropped_packets: self
                .shared
                .as_ref()
                .map_or_else(|| self.dropped.load(Ordering::Relaxed), |d| d.dropped()),
            tracks: s.timeline.anchors,
            buffer_delay_ms: s.timeline.last_wait_ms,
            uid: None,
            placeholder_shown: s.placeholder_shown,
        }
    }
}

impl Drop for Input {
    fn drop(&mut self) {
        if let Some(d) = &self.shared {
            d.detach(&self.state);
        }
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Sends without blocking; a full queue drops the packet (counted).
pub(crate) fn offer(tx: &SyncSender<InputMsg>, msg: InputMsg, dropped: &AtomicU64) -> bool {
    match tx.try_send(msg) {
        Ok(()) => true,
        Err(TrySendError::Full(_)) => {
            dropped.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(TrySendError::Disconnected(_)) => false,
    }
}

/// Follows hub stream `key`: subscribes whenever it is live, forwards its packets,
/// and starts a new track each time it (re)appears.
pub(crate) async fn hub_tap(
    hub: Hub,
    key: String,
    tx: SyncSender<InputMsg>,
    stop: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
) {
    let mut events = hub.events();
    while !stop.load(Ordering::Relaxed) {
        let sub = match hub.subscribe(&key, Protocol::Internal) {
            Ok(s) => s,
            Err(_) => {
                // Not live: wait until it is published (or re-check now and then, in case
                // the event was missed while lagging).
                let wait = async {
                    loop {
                        match events.recv().await {
                            Ok(HubEvent::Published(k)) if k == key => break,
                            Ok(_) => {}
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                                std::future::pending::<()>().await
                            }
                        }
                    }
                };
                let _ = tokio::time::timeout(Duration::from_secs(1), wait).await;
                continue;
            }
        };
        debug!(stream = %key, "mix input subscribed");
        if !offer(&tx, InputMsg::NewTrack, &dropped) {
            return;
        }
        while let Some(p) = sub.recv().await {
            let Some(msg) = from_flv(&p) else { continue };
            if !offer(&tx, msg, &dropped) {
                return;
            }
        }
        debug!(stream = %key, "mix input ended");
    }
}

/// Reads an FLV-tag-like packet into a decoder message; `None` for what is not decoded
/// (metadata, codecs other than H.264/H.265/AAC/MP3/Opus). Legacy FLV carries H.264, AAC
/// and MP3; Enhanced RTMP (what OBS and FFmpeg ≥ 6.1 send for H.265 and Opus) carries
/// `[1 ex][3 frame type][4 packet type]` + FourCC for video, `[4 format 9][4 packet
/// type]` + FourCC for audio.
pub(crate) fn from_flv(p: &Packet) -> Option<InputMsg> {
    let d = &p.data;
    let ts = p.timestamp as i64;
    match p.kind {
        Kind::Video if d.first()? & 0x80 != 0 => {
            let codec = match d.get(1..5)? {
                b"hvc1" => VideoCodecIn::H265,
                b"avc1" => VideoCodecIn::H264,
                b"vp08" => VideoCodecIn::Vp8,
                _ => return None,
            };
            // Frame type 5 is a command frame, not media.
            if (d[0] >> 4) & 0x07 == 5 {
                return None;
            }
            match d[0] & 0x0f {
                0 => Some(InputMsg::VideoConfig(codec, d.slice(5..))),
                // VP8's coded frames have no composition time (no reordering).
                1 if codec == VideoCodecIn::Vp8 => Some(InputMsg::Video {
                    dts: ts,
                    pts: ts,
                    data: d.slice(5..),
                }),
                1 => {
                    let c = d.get(5..8)?;
                    let cts = (((c[0] as i32) << 16 | (c[1] as i32) << 8 | c[2] as i32) << 8) >> 8;
                    Some(InputMsg::Video {
                        dts: ts,
                        pts: ts + cts as i64,
                        data: d.slice(8..),
                    })
                }
                // CodedFramesX: no composition time.
                3 => Some(InputMsg::Video {
                    dts: ts,
                    pts: ts,
                    data: d.slice(5..),
                }),
                _ => None,
            }
        }
        Kind::Video => {
            // Legacy FLV AVC: codec id 7.
            if d.len() < 5 || d[0] & 0x0f != 7 {
                return None;
            }
            match d[1] {
                0 => Some(InputMsg::VideoConfig(VideoCodecIn::H264, d.slice(5..))),
                1 => Some(InputMsg::Video {
                    dts: ts,
                    pts: ts + p.composition_time() as i64,
                    data: d.slice(5..),
                }),
                _ => None,
            }
        }
        Kind::Audio => {
            if d.len() < 2 {
                return None;
            }
            match d[0] >> 4 {
                10 => match d[1] {
                    0 => Some(InputMsg::AudioConfig(AudioCodec::Aac(d.slice(2..)))),
                    _ => Some(InputMsg::Audio {
                        pts: ts,
                        data: d.slice(2..),
                    }),
                },
                2 | 14 => Some(InputMsg::Audio {
                    pts: ts,
                    data: d.slice(1..),
                }),
                9 => {
                    let body = d.slice(5.min(d.len())..);
                    let config = match d.get(1..5)? {
                        b"Opus" => AudioCodec::Opus(body.clone()),
                        b"mp4a" => AudioCodec::Aac(body.clone()),
                        b".mp3" => AudioCodec::Mp3,
                        _ => return None,
                    };
                    match d[0] & 0x0f {
                        0 => Some(InputMsg::AudioConfig(config)),
                        1 => Some(InputMsg::Audio {
                            pts: ts,
                            data: body,
                        }),
                        _ => None,
                    }
                }
                _ => None,
            }
        }
        Kind::Meta => None,
    }
}

/// Pass-through: `packets` onto the task's clock through the input's timeline (the same
/// anchoring as decoded input: arrival plus buffer, re-anchored on jumps), appended to
/// `out`. Configuration and metadata packets take the time of what follows them.
fn restamp(s: &mut InputState, packets: &mut Vec<Packet>, out: &mut Vec<Packet>, now: i64) {
    for p in packets.drain(..) {
        let media = !p.is_config() && p.kind != Kind::Meta;
        let t = if media {
            let track = if p.kind == Kind::Video {
                Track::Video
            } else {
                Track::Audio
            };
            s.frames_in += u64::from(p.kind == Kind::Video);
            s.timeline.place(track, p.timestamp as i64, now)
        } else {
            now
        };
        s.status = InputStatus::Live;
        out.push(Packet::new(p.kind, t.max(0) as u32, p.data));
    }
}

fn now_ms(clock: Instant) -> i64 {
    clock.elapsed().as_millis() as i64
}

/// One task's view of a decoded input: where the pictures and samples go, scaled and
/// resampled for that task. A stream several tasks read is decoded once
/// ([`crate::shared_decode`]) and handed to each task's sink.
pub(crate) struct Sink {
    state: Arc<Mutex<InputState>>,
    clock: Instant,
    resampler: Option<Resampler>,
    /// Buffers the scaled pictures are drawn into, back once the timeline and the mix
    /// have let go of them.
    pictures: PicturePool,
    scaler: PictureScaler,
}

impl Sink {
    pub(crate) fn new(state: Arc<Mutex<InputState>>, clock: Instant) -> Sink {
        Sink {
            state,
            clock,
            resampler: None,
            pictures: PicturePool::new(INPUT_PICTURES),
            scaler: PictureScaler::default(),
        }
    }

    /// Whether this sink feeds `state` (for detaching a task).
    pub(crate) fn feeds(&self, state: &Arc<Mutex<InputState>>) -> bool {
        Arc::ptr_eq(&self.state, state)
    }

    fn lock(&self) -> MutexGuard<'_, InputState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Queues a frame's SEI at the output time of its frame (the timeline's offset as it
/// stands; re-anchoring moves frames by a few ms at most, and a tick takes every message
/// that is due).
fn keep_sei(s: &mut InputState, pts: i64, now: i64, passed: &[Arc<PassedSei>]) {
    let offset = s.timeline.offset().unwrap_or(now - pts);
    for m in passed {
        if s.passed_sei.len() >= MAX_PASSED_SEI {
            s.passed_sei.pop_front();
        }
        s.passed_sei.push_back((pts + offset, m.clone()));
    }
}

/// The sinks one decoder feeds: one for a task's own decoder, one per task for a shared one.
pub(crate) type Sinks = Arc<Mutex<Vec<Sink>>>;

pub(crate) fn lock_sinks(sinks: &Sinks) -> MutexGuard<'_, Vec<Sink>> {
    sinks.lock().unwrap_or_else(|e| e.into_inner())
}

/// An input's decoders and where their output goes. Decoder errors drop the packet, not
/// the input: a corrupt frame is concealed by the next key frame.
pub(crate) struct Decoder {
    /// The input's stream id or URL, for logs.
    name: String,
    sinks: Sinks,
    video: Option<VideoDecoder>,
    audio: Option<AudioDecoder>,
    mp3: bool,
    /// The video track's NAL length size and whether it is H.265, for reading its SEI.
    nal_format: (usize, bool),
}

/// Pictures an input may have out at once and still get back: its jitter buffer's frames
/// at 30 fps (a few), the one on screen and the one being composed, with room to spare.
const INPUT_PICTURES: usize = 12;

// SAFETY: a Decoder is used by one thread at a time (its decode thread, or the mix thread
// under the input's poll mutex); FFmpeg codec contexts carry no thread affinity.
unsafe impl Send for Decoder {}

/// Whether a task draws this input's video at all.
fn drawn(r: &Render) -> bool {
    r.content.has_video() && r.rect_size.is_some()
}

impl Decoder {
    pub(crate) fn new(name: String, sinks: Sinks) -> Self {
        Decoder {
            name,
            sinks,
            video: None,
            audio: None,
            mp3: false,
            nal_format: (4, false),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn handle(&mut self, msg: InputMsg) {
        match msg {
            InputMsg::NewTrack => {
                info!(input = %self.name, "mix input track started");
                self.video = None;
                self.audio = None;
                self.mp3 = false;
                for sink in lock_sinks(&self.sinks).iter_mut() {
                    sink.resampler = None;
                    let mut s = sink.lock();
                    s.timeline.new_track();
                    s.status = InputStatus::Live;
                }
            }
            InputMsg::VideoConfig(codec, config) => {
                // lengthSizeMinusOne: byte 4 of an avcC, byte 21 of an hvcC.
                let at = if codec == VideoCodecIn::H265 { 21 } else { 4 };
                let size = config.get(at).map_or(4, |b| (b & 3) as usize + 1);
                // Size 0: VP8 frames are not NAL units and carry no SEI.
                let size = if codec == VideoCodecIn::Vp8 { 0 } else { size };
                self.nal_format = (size, codec == VideoCodecIn::H265);
                let opened = match codec {
                    VideoCodecIn::H264 => VideoDecoder::h264(&config),
                    VideoCodecIn::H265 => VideoDecoder::h265(&config),
                    VideoCodecIn::Vp8 => VideoDecoder::vp8(),
                };
                match opened {
                    Ok(d) => self.video = Some(d),
                    Err(e) => warn!(error = %e, ?codec, "cannot open the input's video decoder"),
                }
            }
            InputMsg::AudioConfig(codec) => {
                let opened = match codec {
                    AudioCodec::Aac(asc) => AudioDecoder::aac(&asc),
                    AudioCodec::Mp3 => AudioDecoder::mp3(),
                    AudioCodec::Opus(head) => AudioDecoder::opus(&head),
                };
                match opened {
                    Ok(d) => self.audio = Some(d),
                    Err(e) => warn!(error = %e, "cannot open the input's audio decoder"),
                }
            }
            InputMsg::Video { dts, pts, data } => self.video(dts, pts, &data),
            InputMsg::Audio { pts, data } => self.audio(pts, &data),
        }
    }

    /// Decodes once, then scales once per distinct (crop, size) among the sinks that draw
    /// it: tasks drawing the input alike share one picture.
    fn video(&mut self, dts: i64, pts: i64, data: &[u8]) {
        let mut sinks = lock_sinks(&self.sinks);
        let passed: Vec<Arc<PassedSei>> = match self.nal_format {
            (0, _) => Vec::new(),
            (size, hevc) => passed_sei::read(data, size, hevc)
                .into_iter()
                .map(Arc::new)
                .collect(),
        };
        // One look at each task's state: how it draws the input, its SEI, and (when it
        // does not draw it: no need to decode for it) that the input is alive.
        let renders: Vec<Render> = sinks
            .iter()
            .map(|sink| {
                let now = now_ms(sink.clock);
                let mut s = sink.lock();
                keep_sei(&mut s, pts, now, &passed);
                if !drawn(&s.render) {
                    s.timeline.place(Track::Video, pts, now);
                }
                s.render
            })
            .collect();
        if !renders.iter().any(drawn) {
            return;
        }
        let Some(dec) = self.video.as_mut() else {
            return;
        };
        let pictures = match dec.decode(data, pts, dts) {
            Ok(p) => p,
            Err(e) => {
                debug!(error = %e, "video packet dropped");
                return;
            }
        };
        for (t, pic) in pictures {
            let mut made: Vec<(Option<Crop>, u32, u32, Arc<I420>)> = Vec::new();
            for (sink, render) in sinks.iter_mut().zip(&renders) {
                let Some((rw, rh)) = render.rect_size.filter(|_| drawn(render)) else {
                    continue;
                };
                let cropped;
                let src = match render.crop {
                    Some(c) => match pic.cropped(c.x, c.y, c.width, c.height) {
                        Some(p) => {
                            cropped = p;
                            &cropped
                        }
                        None => continue,
                    },
                    None => &pic,
                };
                let (w, h) = fitted_size(src.width(), src.height(), rw, rh, render.mode);
                let same = made
                    .iter()
                    .find(|(c, mw, mh, _)| (*c, *mw, *mh) == (render.crop, w, h));
                let i420 = match same {
                    Some((_, _, _, p)) => p.clone(),
                    None => {
                        let Sink {
                            pictures, scaler, ..
                        } = &mut *sink;
                        match pictures.fill(w, h, |out| scaler.scale_into(src, out)) {
                            Ok(p) => {
                                made.push((render.crop, w, h, p.clone()));
                                p
                            }
                            Err(e) => {
                                debug!(error = %e, "scaling failed");
                                continue;
                            }
                        }
                    }
                };
                let now = now_ms(sink.clock);
                let mut s = sink.lock();
                s.timeline.push_video(t, now, i420);
                s.frames_in += 1;
                s.status = InputStatus::Live;
            }
        }
    }

    /// Decodes once; each sink places the samples on its own timeline and converts them
    /// to the mix rate with its own resampler (which counts positions on that timeline).
    fn audio(&mut self, pts: i64, data: &[u8]) {
        if self.audio.is_none() && !self.mp3 {
            // MP3 needs no configuration packet: open on first sight.
            if let Ok(d) = AudioDecoder::mp3() {
                self.audio = Some(d);
                self.mp3 = true;
            }
        }
        let Decoder { audio, sinks, .. } = self;
        let Some(dec) = audio.as_mut() else {
            return;
        };
        let mut locked = None;
        let mut at_ms = pts;
        let decoded = dec.decode_each(data, |rate, samples| {
            if !(8_000..=192_000).contains(&rate) {
                debug!(rate, "audio frame with an unusable sample rate dropped");
                return;
            }
            let dur_ms = samples.len() as i64 * 1000 / rate.max(1) as i64;
            let sinks = locked.get_or_insert_with(|| lock_sinks(sinks));
            for sink in sinks.iter_mut() {
                let now = now_ms(sink.clock);
                let mut s = sink.state.lock().unwrap_or_else(|e| e.into_inner());
                let t = s.timeline.place(Track::Audio, at_ms, now);
                s.status = InputStatus::Live;
                if !s.render.content.has_audio() {
                    continue;
                }
                let at = t * RATE as i64 / 1000;
                if rate == RATE {
                    s.audio.push(at, samples);
                    continue;
                }
                let r = sink.resampler.get_or_insert_with(|| Resampler::new(rate));
                if r.from_rate() != rate {
                    *r = Resampler::new(rate);
                }
                if let Some((at, out)) = r.process(at, samples) {
                    s.audio.push(at, &out);
                }
            }
            at_ms += dur_ms;
        });
        if let Err(e) = decoded {
            debug!(error = %e, "audio packet dropped");
        }
    }
}

/// Decodes until the input stops.
pub(crate) fn decode_loop(rx: Receiver<InputMsg>, mut decoder: Decoder, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(msg) => decoder.handle(msg),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    debug!(input = %decoder.name(), "mix input decoder stopped");
}

/// Marks the input lost when its packets stopped for a while (called by the mix thread).
/// Returns true when the input was just marked lost.
pub(crate) fn update_status(s: &mut InputState, now_ms: i64) -> bool {
    if s.status == InputStatus::Live
        && s.timeline
            .last_packet_ms()
            .is_some_and(|at| now_ms - at > 1_000)
    {
        s.status = InputStatus::Lost;
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flv_packets_become_decoder_messages() {
        let cfg = Packet::new(
            Kind::Video,
            0,
            Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 2]),
        );
        assert!(
            matches!(from_flv(&cfg), Some(InputMsg::VideoConfig(VideoCodecIn::H264, b)) if b.as_ref() == [1, 2])
        );
        let frame = Packet::new(
            Kind::Video,
            100,
            Bytes::from_static(&[0x27, 1, 0, 0, 40, 9]),
        );
        assert!(matches!(
            from_flv(&frame),
            Some(InputMsg::Video {
                dts: 100,
                pts: 140,
                ..
            })
        ));
        let hevc = Packet::new(Kind::Video, 0, Bytes::from_static(&[0x1c, 0, 0, 0, 0, 1]));
        assert!(from_flv(&hevc).is_none());
        let asc = Packet::new(Kind::Audio, 0, Bytes::from_static(&[0xaf, 0, 0x12, 0x10]));
        assert!(matches!(
            from_flv(&asc),
            Some(InputMsg::AudioConfig(AudioCodec::Aac(_)))
        ));
        let mp3 = Packet::new(Kind::Audio, 20, Bytes::from_static(&[0x2f, 0xff, 0xfb]));
        assert!(matches!(
            from_flv(&mp3),
            Some(InputMsg::Audio { pts: 20, .. })
        ));
        let short = Packet::new(Kind::Video, 0, Bytes::from_static(&[0x17]));
        assert!(from_flv(&short).is_none());
    }
}
