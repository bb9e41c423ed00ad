//! One running mix: the output clock and the thread that, at every tick, picks each
//! input's frame and samples, composes and mixes them, and hands the result to the
//! outputs.
//!
//! Everything a live update changes lives in one [`Plan`] behind a mutex; the mix thread
//! takes the current plan at the start of each tick, so an update applies whole, at a tick
//! boundary. Inputs and outputs that survive an update are carried over (same decoder,
//! same encoder, the player keeps playing).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use serde::Serialize;
use tracing::{info, warn};

use tributary_core::mix::{Label, MixSpec, PlaceholderMode, Rect, Source};

use crate::audio::{self, RATE, Stereo};
use crate::compose::{self, Layer};
use crate::frame::{I420, I420A};
use crate::input::{self, Input, InputStats, InputStatus};
use crate::output::{Output, OutputStats, Tick, TickSei};
use crate::placeholder::{self, Seen};
use crate::pool::PicturePool;
use crate::sound_level::Meter;
use crate::ticker::{Step, Ticking};
use crate::timeline::IdleWatch;

/// Audio-only tasks tick every 20 ms.
const AUDIO_ONLY_RATE: u32 = 50;
/// Most audio one tick may mix (after the clock skipped ahead): 2 s.
const MAX_AUDIO_CHUNK: i64 = 2 * RATE as i64;
/// With `WaitVideoInput`, how long the task waits for its first video before it ends.
pub const WAIT_VIDEO_MS: i64 = 10_000;
/// A tick later than this is counted late.
const LATE_MS: i64 = 50;
/// Behind by more than this, the clock skips ahead instead of catching up in a burst.
const SKIP_MS: i64 = 1_000;

/// What the mix thread draws and where it sends it.
pub(crate) struct Plan {
    pub spec: MixSpec,
    pub background: Option<I420>,
    pub watermark: Option<(I420A, Rect)>,
    /// Still image layers, scaled to their rects.
    pub images: Vec<(I420A, Rect)>,
    /// Each input's placeholder and label, ready to draw (same order as the inputs).
    pub tiles: Vec<TileDress>,
    /// The task's user data and layout for the outputs' SEI.
    pub sei: PlanSei,
    pub inputs: Vec<Arc<Input>>,
    pub outputs: Vec<Arc<Output>>,
}

/// What of the task's stream data stays the same from tick to tick.
#[derive(Debug, Default, Clone)]
pub(crate) struct PlanSei {
    pub user_data: Option<Arc<Vec<u8>>>,
    /// Moves when the user data changes.
    pub user_data_rev: u64,
    /// The layout record, when some input names its user (`UID`).
    pub layout: Option<Arc<Vec<u8>>>,
}

/// An input's prepared placeholder (scaled for its rect and render mode) and label (with
/// its top-left on the canvas).
#[derive(Default)]
pub(crate) struct TileDress {
    pub placeholder: Option<(I420A, PlaceholderMode)>,
    pub label: Option<DrawnLabel>,
}

/// A label drawn for a tile: an update that keeps the label and its room reuses the
/// picture.
pub(crate) struct DrawnLabel {
    pub picture: Arc<I420A>,
    pub label: Label,
    /// The most it could take (`max_w`, `max_h`).
    pub room: (u32, u32),
    /// Its top-left corner on the canvas.
    pub at: (i32, i32),
}

#[derive(Default)]
pub(crate) struct Counters {
    pub ticks: AtomicU64,
    pub late_ticks: AtomicU64,
    pub skipped_ticks: AtomicU64,
}

pub(crate) struct Shared {
    pub plan: Mutex<Arc<Plan>>,
    /// The node's cap on any task's idle time, seconds (operators' cleanup knob).
    pub idle_cap_s: Option<u32>,
    pub stop: AtomicBool,
    /// `WaitVideoInput`: nothing published yet, waiting for the first video.
    pub waiting_for_video: AtomicBool,
    pub counters: Counters,
    pub clock: Instant,
    pub name: String,
    /// The inputs' receive buffer, ms (fixed for the task's life).
    pub recv_buffer_ms: i64,
}

impl Shared {
    pub fn plan(&self) -> Arc<Plan> {
        self.plan.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Per-task figures for the introspection endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct TaskStats {
    pub app_id: u64,
    pub task_id: String,
    pub running_s: u64,
    pub fps_target: u32,
    pub fps_achieved: f64,
    pub ticks: u64,
    pub late_ticks: u64,
    pub skipped_ticks: u64,
    pub cost_pixels_per_s: u64,
    /// Every input's receive buffer, ms (the node's minimum, raised by `RecvBufferLevel`
    /// and by alignment).
    pub recv_buffer_ms: i64,
    /// `WaitVideoInput` and nothing published yet.
    pub waiting_for_video: bool,
    pub inputs: Vec<InputStats>,
    pub outputs: Vec<OutputStats>,
}

/// Why the mix thread ended by itself.
pub(crate) enum Ended {
    Stopped,
    Idle,
    /// `WaitVideoInput`: no input's video came within [`WAIT_VIDEO_MS`].
    NoVideo,
}

pub(crate) struct TickMetrics {
    pub ticks: Counter,
    pub late: Counter,
    pub inputs_live: Gauge,
    pub inputs: Gauge,
}

/// A task's mix loop: the output clock and what each tick does. It runs on a thread of
/// its own ([`crate::ticker::Job::run_alone`]) or, for audio-only and pass-through tasks,
/// beside many others on the shared [`crate::ticker`].
pub(crate) struct MixLoop {
    shared: Arc<Shared>,
    metrics: TickMetrics,
    /// The next tick's number at `rate`.
    n: u64,
    rate: u32,
    /// The current plan's ticks are light (see [`is_light`]); kept with `rate`.
    light: bool,
    samples_done: Option<i64>,
    idle: IdleWatch,
    /// With WaitVideoInput, nothing is published until some input's video is drawn.
    held: bool,
    started: i64,
    meter: Meter,
    scratch: Vec<Stereo>,
    /// Canvases, back once every output's encoder has read them.
    canvases: PicturePool,
}

/// Canvases out at once: the ticks queued for the slowest output, the one being encoded
/// and the one being composed.
const CANVASES: usize = crate::output::OUTPUT_QUEUE + 2;

impl MixLoop {
    pub fn new(shared: Arc<Shared>, metrics: TickMetrics) -> MixLoop {
        let plan = shared.plan();
        let idle = IdleWatch::new(idle_ms(&shared, &plan.spec), 0);
        let held = plan.spec.timing.wait_video && plan.spec.has_video();
        let started = shared.clock.elapsed().as_millis() as i64;
        MixLoop {
            rate: tick_rate(&plan.spec),
            light: is_light(&plan.spec),
            shared,
            metrics,
            n: 0,
            samples_done: None,
            idle,
            held,
            started,
            meter: Meter::new(),
            scratch: Vec::new(),
            canvases: PicturePool::new(CANVASES),
        }
    }

    /// One tick at `t_ms` (task clock), run at `now`.
    fn tick(&mut self, plan: &Plan, t_ms: i64, now: i64) -> Option<Ended> {
        for inp in &plan.inputs {
            inp.poll();
        }
        if plan.spec.is_bypass() {
            // Pass-through: the input's packets go to every output as they are.
            let packets = plan
                .inputs
                .first()
                .map(|i| i.take_copied())
                .unwrap_or_default();
            let mut live = 0;
            for inp in &plan.inputs {
                let mut s = inp.lock();
                if input::update_status(&mut s, now) {
                    warn!(task = %self.shared.name, input = %inp.source.describe(), "mix input lost");
                }
                live += i64::from(s.status == InputStatus::Live);
            }
            if !packets.is_empty() {
                let packets = Arc::new(packets);
                for out in &plan.outputs {
                    out.offer_copy(&packets);
                }
            }
            self.samples_done = None;
            if finish_tick(
                &self.shared,
                &self.metrics,
                plan,
                live,
                &mut self.idle,
                idle_ms(&self.shared, &plan.spec),
                now,
            ) {
                return Some(Ended::Idle);
            }
            return None;
        }
        let (canvas, any_video) = compose_tick(plan, t_ms, &mut self.canvases);
        if self.held && any_video {
            self.held = false;
            self.shared
                .waiting_for_video
                .store(false, Ordering::Relaxed);
            info!(task = %self.shared.name, "video arrived; publishing");
        } else if self.held && now - self.started >= WAIT_VIDEO_MS {
            info!(task = %self.shared.name, "no video within 10 s (WaitVideoInput); ending");
            return Some(Ended::NoVideo);
        }
        // Audio lags video by one tick: this tick mixes the samples due up to now, not
        // the ones of the coming tick, which have not all arrived yet (an input's samples
        // for time t arrive around t − buffer; a tick is up to 1000/fps ms long). Output
        // timestamps come from the sample count, so the lag costs no A/V sync.
        let end = (self.n * RATE as u64 / self.rate as u64) as i64;
        let start = match self.samples_done {
            Some(done) if done <= end && end - done <= MAX_AUDIO_CHUNK => done,
            _ => end,
        };
        let mut buf: Vec<Stereo> = vec![[0.0; 2]; (end - start) as usize];
        let mut live_inputs = 0i64;
        let by_stream = plan.spec.stream_data.sound_levels_by_stream;
        let metering = plan.spec.stream_data.sound_levels || by_stream;
        let passing = plan.spec.stream_data.pass_input_sei;
        let mut passed = Vec::new();
        for (idx, (inp, spec)) in plan.inputs.iter().zip(&plan.spec.inputs).enumerate() {
            let mut s = inp.lock();
            if input::update_status(&mut s, now) {
                // The design's "raise an event": operators see it in the log and in
                // /api/mix; the rect keeps the last frame for 3 s, then the background.
                warn!(task = %self.shared.name, input = %inp.source.describe(), "mix input lost");
            }
            if s.status == InputStatus::Live {
                live_inputs += 1;
            }
            // The input's SEI whose frames are due by this tick (PassInputSei).
            while s.passed_sei.front().is_some_and(|(t, _)| *t <= t_ms) {
                if let Some((_, m)) = s.passed_sei.pop_front()
                    && passing
                {
                    passed.push(m);
                }
            }
            if !spec.content.has_audio() {
                continue;
            }
            if metering {
                // Its own contribution first, to measure it, then into the mix.
                self.scratch.clear();
                self.scratch.resize(buf.len(), [0.0; 2]);
                s.audio
                    .mix_into(start, &mut self.scratch, audio::gain(spec.volume));
                self.meter.add(idx, &self.scratch);
                for (b, x) in buf.iter_mut().zip(&self.scratch) {
                    b[0] += x[0];
                    b[1] += x[1];
                }
            } else {
                s.audio.mix_into(start, &mut buf, audio::gain(spec.volume));
            }
        }
        audio::soft_clip(&mut buf);
        self.samples_done = Some(end);

        let report = if metering {
            self.meter.report(t_ms, plan.inputs.len())
        } else {
            None
        };
        let (mut levels, mut stream_levels) = (None, None);
        if let Some(report) = report {
            let inputs = plan.spec.inputs.iter().zip(report);
            if by_stream {
                // Pulled inputs (URLs) have no stream id to be keyed by.
                stream_levels =
                    Some(crate::sei::stream_levels(inputs.filter_map(
                        |(i, l)| match &i.source {
                            Source::Stream(id) => Some((id.as_str(), l)),
                            Source::Url(_) => None,
                        },
                    )));
            } else {
                levels = Some(
                    inputs
                        .filter_map(|(i, l)| i.decor.sound_level_id.map(|id| (id, l)))
                        .collect::<Vec<_>>(),
                );
            }
        }
        let sei = (plan.sei.user_data.is_some()
            || plan.sei.layout.is_some()
            || levels.is_some()
            || stream_levels.is_some()
            || !passed.is_empty())
        .then(|| {
            Arc::new(TickSei {
                user_data: plan.sei.user_data.clone(),
                user_data_rev: plan.sei.user_data_rev,
                layout: plan.sei.layout.clone(),
                levels,
                stream_levels,
                passed,
            })
        });
        let tick = Arc::new(Tick {
            pts_ms: t_ms,
            canvas,
            audio: Arc::new(buf),
            sei,
        });
        if !self.held {
            for out in &plan.outputs {
                out.offer(&tick);
            }
        }
        if finish_tick(
            &self.shared,
            &self.metrics,
            plan,
            live_inputs,
            &mut self.idle,
            idle_ms(&self.shared, &plan.spec),
            now,
        ) {
            return Some(Ended::Idle);
        }
        None
    }
}

impl Ticking for MixLoop {
    /// Whether the task's current plan may tick on the shared ticker (cheap ticks only).
    fn is_light(&self) -> bool {
        self.light
    }

    /// Runs every tick due by now; returns when the next is due, or when the task ended
    /// (stopped, or every input gone for its `MaxIdleTime`).
    fn step(&mut self) -> Step {
        let clock = self.shared.clock;
        loop {
            if self.shared.stop.load(Ordering::Relaxed) {
                return Step::Ended(Ended::Stopped);
            }
            let plan = self.shared.plan();
            self.light = is_light(&plan.spec);
            let r = tick_rate(&plan.spec);
            if r != self.rate {
                // Rate changes only between audio-only and video; restart the tick count
                // at the current time.
                let now = clock.elapsed().as_millis() as u64;
                self.n = now * r as u64 / 1000;
                self.rate = r;
            }
            let t_ms = (self.n * 1000 / self.rate as u64) as i64;
            let now = clock.elapsed().as_millis() as i64;
            if now < t_ms {
                return Step::Due(clock + Duration::from_millis(t_ms as u64));
            }
            if now - t_ms > SKIP_MS {
                let target = now as u64 * self.rate as u64 / 1000;
                self.shared
                    .counters
                    .skipped_ticks
                    .fetch_add(target.saturating_sub(self.n), Ordering::Relaxed);
                self.n = target;
                continue;
            }
            if now - t_ms > LATE_MS {
                self.shared
                    .counters
                    .late_ticks
                    .fetch_add(1, Ordering::Relaxed);
                self.metrics.late.inc();
            }
            if let Some(ended) = self.tick(&plan, t_ms, now) {
                return Step::Ended(ended);
            }
            self.n += 1;
        }
    }
}

/// The task's idle limit, ms: its `MaxIdleTime`, capped by the node's.
fn idle_ms(shared: &Shared, spec: &MixSpec) -> i64 {
    let s = shared
        .idle_cap_s
        .map_or(spec.max_idle_s, |cap| cap.min(spec.max_idle_s));
    s as i64 * 1000
}

/// Audio-only and pass-through tasks: a tick costs well under a millisecond, so many of
/// them share the ticker's threads instead of waking a thread each 50 times a second.
fn is_light(spec: &MixSpec) -> bool {
    !spec.has_video() || spec.is_bypass()
}

/// The end of every tick: counters, gauges and the idle rule. True when every input has
/// been gone for the task's idle time (the task stops).
fn finish_tick(
    shared: &Shared,
    metrics: &TickMetrics,
    plan: &Plan,
    live_inputs: i64,
    idle: &mut IdleWatch,
    idle_ms: i64,
    now: i64,
) -> bool {
    shared.counters.ticks.fetch_add(1, Ordering::Relaxed);
    metrics.ticks.inc();
    metrics.inputs.set(plan.inputs.len() as i64);
    metrics.inputs_live.set(live_inputs);
    if idle.observe(live_inputs > 0, idle_ms, now) {
        info!(task = %shared.name, idle_s = plan.spec.max_idle_s, "every input gone for MaxIdleTime; stopping");
        return true;
    }
    false
}

fn tick_rate(spec: &MixSpec) -> u32 {
    if is_light(spec) {
        AUDIO_ONLY_RATE
    } else {
        spec.fps.max(1)
    }
}

/// The composed picture of one tick (`None` for an audio-only task), and whether any
/// input's video was on it.
fn compose_tick(plan: &Plan, t_ms: i64, canvases: &mut PicturePool) -> (Option<Arc<I420>>, bool) {
    let Some(background) = plan.background.as_ref() else {
        return (None, false);
    };
    let mut picks: Vec<(usize, Rect, Option<Arc<I420>>, bool)> =
        Vec::with_capacity(plan.inputs.len());
    for (idx, (inp, spec)) in plan.inputs.iter().zip(&plan.spec.inputs).enumerate() {
        let Some(rect) = spec.rect.filter(|_| spec.is_visible()) else {
            continue;
        };
        let mut s = inp.lock();
        let pic = s.timeline.pick(t_ms).frame().cloned();
        let seen = Seen {
            last_video_ms: s.timeline.last_video_ms(),
            last_packet_ms: s.timeline.last_packet_ms(),
            since_ms: s.since_ms,
        };
        let shown = plan
            .tiles
            .get(idx)
            .and_then(|t| t.placeholder.as_ref())
            .is_some_and(|(_, mode)| placeholder::shows(*mode, seen, t_ms));
        s.placeholder_shown = shown;
        picks.push((idx, rect, pic, shown));
    }
    let any_video = picks.iter().any(|p| p.2.is_some());
    // One input that exactly covers the canvas, with nothing drawn on or around it (a
    // transcode, a full-screen single input): its decoded picture is the canvas, no copy.
    if let ([(idx, rect, Some(pic), false)], None, true) =
        (picks.as_slice(), &plan.watermark, plan.images.is_empty())
    {
        let decor = &plan.spec.inputs[*idx].decor;
        let plain = decor.corner_radius == 0 && decor.blur.is_none() && decor.label.is_none();
        let full = (rect.left, rect.top, rect.right, rect.bottom)
            == (0, 0, background.width as i32, background.height as i32);
        if plain && full && (pic.width, pic.height) == (background.width, background.height) {
            return (Some(pic.clone()), true);
        }
    }
    let mut layers: Vec<Layer> = picks
        .iter()
        .map(|(idx, rect, pic, shown)| {
            let tile = plan.tiles.get(*idx);
            let decor = &plan.spec.inputs[*idx].decor;
            Layer {
                rect: *rect,
                picture: pic.as_deref(),
                image: tile
                    .and_then(|t| t.placeholder.as_ref())
                    .filter(|_| *shown)
                    .map(|(img, _)| img),
                radius: decor.corner_radius,
                blur: decor.blur,
                label: tile
                    .and_then(|t| t.label.as_ref())
                    .map(|d| (&*d.picture, d.at.0, d.at.1)),
            }
        })
        .collect();
    layers.extend(
        plan.images
            .iter()
            .map(|(img, rect)| Layer::plain(*rect, None, Some(img))),
    );
    let watermark = plan.watermark.as_ref().map(|(w, r)| (w, *r));
    let Ok(canvas) = canvases.fill(background.width, background.height, |canvas| {
        compose::compose(canvas, background, &mut layers, watermark);
        Ok::<(), std::convert::Infallible>(())
    });
    (Some(canvas), any_video)
}

pub(crate) fn stats(shared: &Shared, app_id: u64, task_id: &str, cost: u64) -> TaskStats {
    let plan = shared.plan();
    let running = shared.clock.elapsed();
    let ticks = shared.counters.ticks.load(Ordering::Relaxed);
    TaskStats {
        app_id,
        task_id: task_id.to_string(),
        running_s: running.as_secs(),
        fps_target: tick_rate(&plan.spec),
        fps_achieved: if running.as_secs_f64() > 0.0 {
            (ticks as f64 / running.as_secs_f64() * 10.0).round() / 10.0
        } else {
            0.0
        },
        ticks,
        late_ticks: shared.counters.late_ticks.load(Ordering::Relaxed),
        skipped_ticks: shared.counters.skipped_ticks.load(Ordering::Relaxed),
        cost_pixels_per_s: cost,
        recv_buffer_ms: shared.recv_buffer_ms,
        waiting_for_video: shared.waiting_for_video.load(Ordering::Relaxed),
        inputs: plan
            .inputs
            .iter()
            .zip(&plan.spec.inputs)
            .map(|(i, spec)| InputStats {
                uid: spec.decor.uid.clone(),
                ..i.stats()
            })
            .collect(),
        outputs: plan.outputs.iter().map(|o| o.stats()).collect(),
    }
}

pub(crate) fn warn_dropped(shared: &Shared) {
    let plan = shared.plan();
    for o in &plan.outputs {
        if o.dropped_ticks() > 0 {
            warn!(task = %shared.name, output = %o.target.describe(), dropped = o.dropped_ticks(), "output fell behind");
        }
    }
}
