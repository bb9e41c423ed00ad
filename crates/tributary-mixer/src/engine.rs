//! The engine: the running tasks of this node, admission control, and live updates.
//!
//! Tasks are keyed by `(AppId, TaskId)`. Starting a key that runs is an update: the new
//! plan is prepared off to the side (images loaded, new inputs and outputs started) and
//! swapped in whole. A task that stops by itself (idle) is reported on the events channel.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use thiserror::Error;
use tokio::sync::mpsc;
use tracing::{info, warn};

use tributary_core::mix::{Alignment, MixSpec, Source, Target};
use tributary_core::url_policy::{Purpose, UrlPolicy};
use tributary_live::dial;
use tributary_live::hub::Hub;

use crate::compose::fitted_size;
use crate::frame::I420;
use crate::images::{self, ImageError};
use crate::input::{Input, InputMode, Render};
use crate::output::Output;
use crate::task::{
    self, DrawnLabel, Ended, MixLoop, Plan, Shared, TaskStats, TickMetrics, TileDress,
};
use crate::ticker::{Finish, Job, Ticker};
use crate::timeline::TimelineConfig;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub timeline: TimelineConfig,
    /// Where `preset-id://NAME` images live.
    pub images_dir: Option<PathBuf>,
    /// Largest background or watermark image, bytes.
    pub max_image_bytes: usize,
    /// libx264 preset.
    pub preset: String,
    /// What this node may run, in decoded-plus-encoded pixels per second.
    pub budget_pixels_per_s: u64,
    /// Assumed size of an input picture before it is decoded (pixels).
    pub input_pixels_estimate: u64,
    /// Stop idle tasks after at most this many seconds, whatever their MaxIdleTime.
    pub idle_cap_s: Option<u32>,
    /// Which URLs tasks may open (inputs, outputs, images).
    pub url_policy: UrlPolicy,
    /// Decoded images kept for reuse, bytes.
    pub image_cache_bytes: usize,
    /// Bytes all running tasks' prepared pictures may hold together (admission).
    pub image_memory_budget: usize,
    /// This server's own play URL bases (`rtmp://host:port`, `http://host:port`): an
    /// input URL under one of them, of the task's own app, is read from the hub directly
    /// instead of over the network (and needs no network opened in the URL policy).
    pub self_urls: Vec<String>,
    /// The font of each label `FontType` (0–3).
    pub fonts: Vec<crate::fonts::Face>,
}

/// With `AlignmentType` 1 or 2, the aligned inputs share at least this receive buffer, ms.
pub const ALIGNED_BUFFER_MS: i64 = 300;
/// Largest placeholder image (the vendor's 1 MB).
pub const MAX_PLACEHOLDER_BYTES: usize = 1 << 20;

impl Default for EngineConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
        EngineConfig {
            timeline: TimelineConfig::default(),
            images_dir: None,
            max_image_bytes: 5 << 20,
            preset: "veryfast".into(),
            // Measured on this project's 2-core machine (BENCHMARKS.md): a core decodes
            // and encodes 114–174 M pixels/s in real time with veryfast; 100 M leaves room
            // for ingest and players.
            budget_pixels_per_s: cores * 100_000_000,
            input_pixels_estimate: 640 * 480,
            idle_cap_s: None,
            url_policy: UrlPolicy::default(),
            image_cache_bytes: 256 << 20,
            image_memory_budget: 1 << 30,
            self_urls: Vec::new(),
            fonts: crate::fonts::default_faces(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EngineError {
    #[error("this node is at its mixing budget: the task needs {need} pixels/s, {free} are free")]
    OverBudget { need: u64, free: u64 },
    #[error(
        "this node's image memory is spent: the task's pictures need {need} bytes, {free} are free"
    )]
    ImageMemory { need: usize, free: usize },
    /// The system refused a thread (out of threads or memory): try again later.
    #[error("the mix thread could not be started: {0}")]
    Spawn(String),
    #[error("input stream {0} is not being published")]
    InputMissing(String),
    /// A `StreamUrl` input the URL policy refuses.
    #[error("MixInput[{index}].StreamUrl {reason}")]
    InputUrl { index: usize, reason: String },
    /// A `StreamUrl` output the URL policy refuses.
    #[error("MixOutput[{index}].StreamUrl {reason}")]
    OutputUrl { index: usize, reason: String },
    #[error("{what}: {error}")]
    Image {
        what: &'static str,
        error: ImageError,
    },
    /// A label's font cannot be loaded.
    #[error("MixInput[{index}].Label: {reason}")]
    Label { index: usize, reason: String },
}

/// Something a task did by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineEvent {
    /// Every input was gone for MaxIdleTime; the task stopped.
    Idle { app_id: u64, task_id: String },
    /// `WaitVideoInput`: no video came in time; the task stopped.
    NoVideo { app_id: u64, task_id: String },
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabel {
    task: String,
}

/// Prometheus figures of the engine.
#[derive(Default)]
pub struct MixMetrics {
    tasks: Gauge,
    cost: Gauge,
    budget: Gauge,
    ticks: Family<TaskLabel, Counter>,
    late_ticks: Family<TaskLabel, Counter>,
    inputs_live: Family<TaskLabel, Gauge>,
    inputs: Family<TaskLabel, Gauge>,
    decodes: Gauge,
}

impl MixMetrics {
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "tributary_mix_tasks",
            "Mix tasks running",
            self.tasks.clone(),
        );
        r.register(
            "tributary_mix_cost_pixels_per_second",
            "Estimated decode+encode load of the running tasks",
            self.cost.clone(),
        );
        r.register(
            "tributary_mix_budget_pixels_per_second",
            "The node's mixing budget",
            self.budget.clone(),
        );
        r.register(
            "tributary_mix_ticks",
            "Output clock ticks mixed",
            self.ticks.clone(),
        );
        r.register(
            "tributary_mix_late_ticks",
            "Ticks mixed later than 50 ms after their time",
            self.late_ticks.clone(),
        );
        r.register(
            "tributary_mix_inputs_live",
            "Inputs of a task delivering media now",
            self.inputs_live.clone(),
        );
        r.register(
            "tributary_mix_inputs",
            "Inputs of a task",
            self.inputs.clone(),
        );
        r.register(
            "tributary_mix_decodes",
            "Streams decoded for video tasks (each once, however many tasks read it)",
            self.decodes.clone(),
        );
        r.register(
            "tributary_mix_silent_frames_not_encoded",
            "AAC-LC output frames of digital silence sent as a repeated packet, not encoded",
            crate::silence::FRAMES_NOT_ENCODED.clone(),
        );
        r.register(
            "tributary_mix_silent_packets_not_decoded",
            "Repeated AAC-LC input packets of digital silence answered with zeros, not decoded",
            crate::silence::PACKETS_NOT_DECODED.clone(),
        );
    }
}

/// A task's background, watermark, image layers and tile dressings, ready for the
/// composer.
struct Prepared {
    background: Option<I420>,
    watermark: Option<(crate::frame::I420A, tributary_core::mix::Rect)>,
    images: Vec<(crate::frame::I420A, tributary_core::mix::Rect)>,
    tiles: Vec<TileDress>,
}

struct Running {
    shared: Arc<Shared>,
    cost: u64,
    /// Bytes of the task's prepared pictures (background, watermark, image layers).
    image_bytes: usize,
}

/// The stream id of `url` when it is one of this server's play URLs for `app_id`.
fn self_stream(bases: &[String], app_id: u64, url: &str) -> Option<String> {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    bases.iter().find_map(|base| {
        let rest = url.strip_prefix(base.trim_end_matches('/'))?;
        let rest = rest.strip_prefix(&format!("/{app_id}/"))?;
        let id = if base.starts_with("http") {
            rest.strip_suffix(".flv")?
        } else {
            rest
        };
        (!id.is_empty() && !id.contains('/')).then(|| id.to_string())
    })
}

/// Bytes a task's prepared pictures hold.
fn prepared_bytes(p: &Prepared) -> usize {
    let pic = |i: &I420| i.y.len() + i.u.len() + i.v.len();
    let over = |o: &crate::frame::I420A| pic(&o.picture) + o.alpha.len();
    p.background.as_ref().map_or(0, pic)
        + p.watermark.as_ref().map_or(0, |(o, _)| over(o))
        + p.images.iter().map(|(o, _)| over(o)).sum::<usize>()
        + p.tiles
            .iter()
            .map(|t| {
                t.placeholder.as_ref().map_or(0, |(o, _)| over(o))
                    + t.label.as_ref().map_or(0, |d| over(&d.picture))
            })
            .sum::<usize>()
}

pub struct Engine {
    hub: Hub,
    rt: tokio::runtime::Handle,
    config: EngineConfig,
    tasks: Mutex<HashMap<(u64, String), Running>>,
    events: mpsc::Sender<EngineEvent>,
    metrics: Arc<MixMetrics>,
    images: images::ImageCache,
    /// Tasks stopped or updated so far (threads ended): when it moves, freed memory is
    /// worth giving back.
    churn: std::sync::atomic::AtomicU64,
    /// The threads that tick audio-only and pass-through tasks (`None` when the system
    /// refused them: such tasks then get a thread each, as video tasks do).
    ticker: Option<Ticker>,
    /// Hub streams decoded once for every video task that reads them.
    decodes: crate::shared_decode::SharedDecodes,
}

impl Engine {
    pub fn new(
        hub: Hub,
        rt: tokio::runtime::Handle,
        config: EngineConfig,
        metrics: Arc<MixMetrics>,
    ) -> (Arc<Engine>, mpsc::Receiver<EngineEvent>) {
        let (tx, rx) = mpsc::channel(1024);
        metrics.budget.set(config.budget_pixels_per_s as i64);
        crate::codec::init();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let decodes = crate::shared_decode::SharedDecodes::new(
            rt.clone(),
            hub.clone(),
            metrics.decodes.clone(),
        );
        let ticker = Ticker::start(cores)
            .inspect_err(|e| warn!(error = %e, "cannot start the mix ticker threads"))
            .ok();
        (
            Arc::new(Engine {
                hub,
                rt,
                config: config.clone(),
                tasks: Mutex::new(HashMap::new()),
                events: tx,
                metrics,
                churn: std::sync::atomic::AtomicU64::new(0),
                ticker,
                decodes,
                images: images::ImageCache::new(
                    config.image_cache_bytes,
                    std::time::Duration::from_secs(300),
                ),
            }),
            rx,
        )
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<(u64, String), Running>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Checks what can be checked cheaply before a task is accepted: budget, live inputs
    /// (when `require_inputs`), image references. Fetching the images is left to
    /// [`Engine::start`], which refuses a task whose images do not load.
    pub fn check(
        &self,
        app_id: u64,
        task_id: &str,
        spec: &MixSpec,
        require_inputs: bool,
    ) -> Result<(), EngineError> {
        let local = self.localize(app_id, spec);
        let spec = &local;
        let cost = self.cost(app_id, spec);
        {
            let tasks = self.lock();
            let used: u64 = tasks
                .iter()
                .filter(|(k, _)| !(k.0 == app_id && k.1 == task_id))
                .map(|(_, r)| r.cost)
                .sum();
            let free = self.config.budget_pixels_per_s.saturating_sub(used);
            if cost > free {
                return Err(EngineError::OverBudget { need: cost, free });
            }
        }
        self.check_urls(spec)?;
        if require_inputs {
            for id in spec.input_streams() {
                // Live here, or on another node (then relayed in once the task reads it).
                if !self.hub.live_anywhere(&key(app_id, id)) {
                    return Err(EngineError::InputMissing(id.to_string()));
                }
            }
        }
        if spec.lenient_images {
            return Ok(());
        }
        let dir = self.config.images_dir.as_deref();
        let refs = spec
            .background_image
            .iter()
            .map(|u| ("BackgroundImage", u))
            .chain(spec.watermark.iter().map(|w| ("WaterMark.Image", &w.image)))
            .chain(spec.images.iter().map(|i| ("image layer", &i.image)))
            .chain(spec.inputs.iter().filter_map(|i| {
                i.decor
                    .placeholder
                    .as_ref()
                    .map(|p| ("MixInput.Image.Url", &p.image))
            }));
        for (what, uri) in refs {
            images::check_reference(uri, dir, &self.config.url_policy)
                .map_err(|error| EngineError::Image { what, error })?;
        }
        Ok(())
    }

    /// The spec with input URLs that point at this server's own streams of `app_id`
    /// (`{base}/{app}/{stream}`, `.flv` for HTTP) turned into stream inputs.
    fn localize(&self, app_id: u64, spec: &MixSpec) -> MixSpec {
        let mut out = spec.clone();
        for i in &mut out.inputs {
            if let Source::Url(url) = &i.source
                && let Some(id) = self_stream(&self.config.self_urls, app_id, url)
            {
                i.source = Source::Stream(id);
            }
        }
        out
    }

    /// Every input and output URL under the URL policy: syntax, scheme, and the addresses
    /// its host resolves to now (they are checked again on every connection). A name that
    /// does not resolve yet passes here: the input waits for it, the push retries.
    fn check_urls(&self, spec: &MixSpec) -> Result<(), EngineError> {
        let policy = &self.config.url_policy;
        let check = |url: &str, purpose: Purpose| -> Result<(), String> {
            let u = policy.parse(url, purpose).map_err(|e| e.to_string())?;
            match dial::resolve_blocking(policy, &u.host, u.port) {
                Err(e @ dial::DialError::Refused { .. }) => Err(e.to_string()),
                _ => Ok(()),
            }
        };
        for (index, i) in spec.inputs.iter().enumerate() {
            if let Source::Url(url) = &i.source {
                check(url, Purpose::MixInput)
                    .map_err(|reason| EngineError::InputUrl { index, reason })?;
            }
        }
        for (index, o) in spec.outputs.iter().enumerate() {
            if let Target::Url(url) = &o.target {
                check(url, Purpose::MixOutput)
                    .map_err(|reason| EngineError::OutputUrl { index, reason })?;
            }
        }
        Ok(())
    }

    /// The task's estimated load: every encode at its size, every visible input at its
    /// real size when it is live (from its metadata), else at the configured estimate.
    fn cost(&self, app_id: u64, spec: &MixSpec) -> u64 {
        let base = spec.cost_pixels_per_s(0);
        let fps = spec.fps as u64;
        let decode: u64 = spec
            .inputs
            .iter()
            .filter(|i| i.content.has_video())
            .map(|i| {
                let live = match &i.source {
                    tributary_core::mix::Source::Stream(id) => self
                        .hub
                        .stream(&key(app_id, id))
                        .map(|s| s.stats())
                        .and_then(|st| Some(st.width? * st.height?))
                        // Metadata claiming 0×0 (or garbage) costs as the estimate; a
                        // claim past 8192×8192 costs as that.
                        .filter(|px| *px >= 1.0)
                        .map(|px| px.min(8192.0 * 8192.0) as u64),
                    tributary_core::mix::Source::Url(_) => None,
                };
                live.unwrap_or(self.config.input_pixels_estimate) * fps
            })
            .sum();
        base + decode
    }

    /// Loads an image; with `lenient_images`, a failure leaves it out (logged).
    fn image(
        &self,
        spec: &MixSpec,
        uri: &str,
        what: &'static str,
    ) -> Result<Option<Arc<images::Rgba>>, EngineError> {
        let max = if what == "MixInput.Image.Url" {
            self.config.max_image_bytes.min(MAX_PLACEHOLDER_BYTES)
        } else {
            self.config.max_image_bytes
        };
        match self.images.get(
            uri,
            self.config.images_dir.as_deref(),
            max,
            &self.config.url_policy,
        ) {
            Ok(img) => Ok(Some(img)),
            Err(error) if spec.lenient_images => {
                warn!(what, %error, "image left out (not checked as asked)");
                Ok(None)
            }
            Err(error) => Err(EngineError::Image { what, error }),
        }
    }

    /// Nothing for an audio-only or pass-through task: neither draws a picture (a
    /// pass-through that becomes a mix is prepared again by that update).
    fn prepare(&self, spec: &MixSpec, old: Option<&Plan>) -> Result<Prepared, EngineError> {
        let Some((w, h)) = spec.canvas().filter(|_| !spec.is_bypass()) else {
            return Ok(Prepared {
                background: None,
                watermark: None,
                images: Vec::new(),
                tiles: Vec::new(),
            });
        };
        let bg_image = match &spec.background_image {
            Some(uri) => self.image(spec, uri, "BackgroundImage")?,
            None => None,
        };
        let background = match bg_image {
            Some(img) => {
                let over = img.to_overlay(w, h);
                // Opaque on the colour: transparent parts of the image show the colour.
                let mut bg = I420::filled(w, h, spec.background_rgb);
                crate::compose::blend(&mut bg, &over, full_rect(w, h));
                bg
            }
            None => I420::filled(w, h, spec.background_rgb),
        };
        let watermark = match &spec.watermark {
            Some(wm) => self.image(spec, &wm.image, "WaterMark.Image")?.map(|img| {
                let (rw, rh) = (
                    wm.rect.width().max(1) as u32,
                    wm.rect.height().max(1) as u32,
                );
                (img.to_overlay(rw, rh), wm.rect)
            }),
            None => None,
        };
        let mut images = Vec::new();
        for img in &spec.images {
            if let Some(rgba) = self.image(spec, &img.image, "image layer")? {
                let (rw, rh) = (
                    img.rect.width().max(1) as u32,
                    img.rect.height().max(1) as u32,
                );
                let mut overlay = rgba.to_overlay(rw, rh);
                if img.opaque {
                    overlay.alpha.fill(255);
                }
                images.push((overlay, img.rect));
            }
        }
        Ok(Prepared {
            background: Some(background),
            watermark,
            images,
            tiles: self.tiles(spec, old)?,
        })
    }

    /// Each input's placeholder, scaled for its rect the way its video is (render mode),
    /// and its label, drawn once in its font.
    fn tiles(&self, spec: &MixSpec, old: Option<&Plan>) -> Result<Vec<TileDress>, EngineError> {
        // Labels the running plan already drew, by their text and font.
        let drawn: Vec<&DrawnLabel> = old
            .iter()
            .flat_map(|p| p.tiles.iter())
            .filter_map(|t| t.label.as_ref())
            .collect();
        let mut tiles = Vec::with_capacity(spec.inputs.len());
        for (index, input) in spec.inputs.iter().enumerate() {
            let mut tile = TileDress::default();
            let Some(rect) = input.rect.filter(|_| input.is_visible()) else {
                tiles.push(tile);
                continue;
            };
            let (rw, rh) = (rect.width() as u32, rect.height() as u32);
            if let Some(p) = &input.decor.placeholder
                && let Some(img) = self.image(spec, &p.image, "MixInput.Image.Url")?
            {
                let (w, h) = fitted_size(img.width, img.height, rw, rh, input.render);
                tile.placeholder = Some((img.to_overlay(w, h), p.mode));
            }
            if let Some(l) = &input.decor.label {
                let face = self.config.fonts.get(l.font.face as usize).ok_or_else(|| {
                    EngineError::Label {
                        index,
                        reason: format!("no font configured for FontType {}", l.font.face),
                    }
                })?;
                let (x, y) = (rect.left + l.left, rect.top + l.top);
                // Only what can show: from the label's corner to the end of its tile and
                // of the canvas.
                let (cw, ch) = spec.canvas().unwrap_or((0, 0));
                let span = |end: i32, limit: u32, at: i32| {
                    (end.min(limit as i32) - at).clamp(0, 2 * limit as i32) as u32
                };
                let room = (span(rect.right, cw, x), span(rect.bottom, ch, y));
                let picture = match drawn.iter().find(|d| d.label == *l && d.room == room) {
                    Some(d) => Some(d.picture.clone()),
                    None => {
                        let font = crate::fonts::load(face).map_err(|e| EngineError::Label {
                            index,
                            reason: e.to_string(),
                        })?;
                        crate::label::render(&l.text, &l.font, &font, room.0, room.1).map(Arc::new)
                    }
                };
                tile.label = picture.map(|picture| DrawnLabel {
                    picture,
                    label: l.clone(),
                    room,
                    at: (x, y),
                });
            }
            tiles.push(tile);
        }
        Ok(tiles)
    }

    /// The inputs' timeline: the node's, with the buffer raised to the task's
    /// `RecvBufferLevel`, and to [`ALIGNED_BUFFER_MS`] when inputs are aligned.
    fn timeline(&self, spec: &MixSpec) -> TimelineConfig {
        let mut t = self.config.timeline;
        t.buffer_ms = t.buffer_ms.max(spec.timing.recv_buffer_ms as i64);
        if spec.timing.alignment != Alignment::None {
            t.buffer_ms = t.buffer_ms.max(ALIGNED_BUFFER_MS);
        }
        t
    }

    /// Starts a task, or updates it in place when it runs. Call [`Engine::check`] first
    /// for the refusals a caller should see; this one still refuses an over-budget task.
    ///
    /// In four steps: admission (pixels and image memory against what the other tasks
    /// use), inputs and outputs reconciled with the running plan (kept ones are updated in
    /// place, new ones started), then the new plan swapped in or, for a new task, its mix
    /// thread spawned.
    pub fn start(&self, app_id: u64, task_id: &str, spec: &MixSpec) -> Result<(), EngineError> {
        let local = self.localize(app_id, spec);
        let spec = &local;
        let cost = self.cost(app_id, spec);
        let k = (app_id, task_id.to_string());
        // The running plan (outside the lock: preparing loads images and fonts).
        let running = self.lock().get(&k).map(|r| r.shared.plan());
        let prepared = self.prepare(spec, running.as_deref())?;
        let image_bytes = prepared_bytes(&prepared);
        let Prepared {
            background,
            watermark,
            images,
            tiles,
        } = prepared;
        let mut tasks = self.lock();
        self.admit(&tasks, &k, cost, image_bytes)?;
        let name = format!("{app_id}:{task_id}");
        let old = tasks.get(&k).map(|r| r.shared.plan());
        let clock = tasks.get(&k).map_or_else(Instant::now, |r| r.shared.clock);
        let plan = Arc::new(Plan {
            spec: spec.clone(),
            background,
            watermark,
            images,
            tiles,
            sei: plan_sei(spec, old.as_deref()),
            inputs: self.reconcile_inputs(app_id, spec, old.as_deref(), clock),
            outputs: self.reconcile_outputs(app_id, task_id, spec, old.as_deref()),
        });
        // Outputs that took over an input's name: send its players to the mix, and give
        // names back that this update no longer takes.
        if let Some(old) = &old {
            self.clear_aliases(app_id, old, Some(&plan));
        }
        for o in &plan.outputs {
            if let Target::Replace(id) = &o.target {
                self.hub.set_alias(&key(app_id, id), &o.key);
            }
        }
        if let Some(r) = tasks.get_mut(&k) {
            *r.shared.plan.lock().unwrap_or_else(|e| e.into_inner()) = plan;
            r.cost = cost;
            r.image_bytes = image_bytes;
            self.churn.fetch_add(1, Ordering::Relaxed);
            info!(task = %name, "mix task updated");
        } else {
            let shared = self.spawn_task(app_id, task_id, &name, plan, clock)?;
            tasks.insert(
                k,
                Running {
                    shared,
                    cost,
                    image_bytes,
                },
            );
            info!(task = %name, cost, "mix task started");
        }
        self.refresh_gauges(&tasks);
        Ok(())
    }

    /// Admission: the task's pixels per second and picture bytes must fit in what the
    /// other tasks (not this one's running version) leave of the node's budgets.
    fn admit(
        &self,
        tasks: &HashMap<(u64, String), Running>,
        k: &(u64, String),
        cost: u64,
        image_bytes: usize,
    ) -> Result<(), EngineError> {
        let others = || tasks.iter().filter(|(kk, _)| *kk != k).map(|(_, r)| r);
        let free = self
            .config
            .budget_pixels_per_s
            .saturating_sub(others().map(|r| r.cost).sum());
        if cost > free {
            return Err(EngineError::OverBudget { need: cost, free });
        }
        let images_free = self
            .config
            .image_memory_budget
            .saturating_sub(others().map(|r| r.image_bytes).sum());
        if image_bytes > images_free {
            return Err(EngineError::ImageMemory {
                need: image_bytes,
                free: images_free,
            });
        }
        Ok(())
    }

    /// The plan's inputs: a running one with the same source (and decode mode) is kept and
    /// given its new rect; others are started.
    fn reconcile_inputs(
        &self,
        app_id: u64,
        spec: &MixSpec,
        old: Option<&Plan>,
        clock: Instant,
    ) -> Vec<Arc<Input>> {
        let prefix = format!("{app_id}/");
        let copy = spec.is_bypass();
        let polled = !spec.has_video() || copy;
        spec.inputs
            .iter()
            .map(|i| {
                let render = Render {
                    rect_size: i
                        .rect
                        .filter(|_| i.is_visible())
                        .map(|r| (r.width() as u32, r.height() as u32)),
                    mode: i.render,
                    content: i.content,
                    crop: i.crop,
                };
                if let Some(existing) = old.and_then(|p| {
                    p.inputs.iter().find(|x| {
                        x.source == i.source && x.is_polled() == polled && x.is_copy() == copy
                    })
                }) {
                    existing.lock().render = render;
                    existing.clone()
                } else {
                    Arc::new(Input::spawn(
                        &self.hub,
                        &self.decodes,
                        &prefix,
                        i.source.clone(),
                        render,
                        InputMode {
                            timeline: self.timeline(spec),
                            clock,
                            polled,
                            copy,
                        },
                        &self.config.url_policy,
                    ))
                }
            })
            .collect()
    }

    /// The plan's outputs: a running one with the same target is kept and updated in
    /// place (bitrate, size); others are started.
    fn reconcile_outputs(
        &self,
        app_id: u64,
        task_id: &str,
        spec: &MixSpec,
        old: Option<&Plan>,
    ) -> Vec<Arc<Output>> {
        spec.outputs
            .iter()
            .enumerate()
            .map(|(idx, o)| {
                if let Some(existing) =
                    old.and_then(|p| p.outputs.iter().find(|x| x.target == o.target))
                {
                    existing.update(o);
                    existing.clone()
                } else {
                    let hub_key = match &o.target {
                        Target::Stream(id) => key(app_id, id),
                        // Published under an internal name that players of `id` are sent
                        // to (by an alias); the original stays readable for this mix.
                        Target::Replace(_) => format!("{app_id}/__mix.{task_id}.{idx}"),
                        // Pushed from an internal stream nobody else can claim.
                        Target::Url(_) => format!("{app_id}/__mix.{task_id}.{idx}"),
                    };
                    Arc::new(Output::spawn(
                        &self.rt,
                        &self.hub,
                        hub_key,
                        o.clone(),
                        crate::output::Cadence {
                            fps: spec.fps,
                            gop_s: spec.gop(),
                        },
                        self.config.preset.clone(),
                        &self.config.url_policy,
                    ))
                }
            })
            .collect()
    }

    /// A new task's shared state and its mix thread (the output clock).
    fn spawn_task(
        &self,
        app_id: u64,
        task_id: &str,
        name: &str,
        plan: Arc<Plan>,
        clock: Instant,
    ) -> Result<Arc<Shared>, EngineError> {
        let waiting = plan.spec.timing.wait_video && plan.spec.has_video();
        let recv_buffer_ms = self.timeline(&plan.spec).buffer_ms;
        let shared = Arc::new(Shared {
            plan: Mutex::new(plan),
            idle_cap_s: self.config.idle_cap_s,
            stop: AtomicBool::new(false),
            waiting_for_video: AtomicBool::new(waiting),
            counters: Default::default(),
            clock,
            name: name.to_string(),
            recv_buffer_ms,
        });
        let label = TaskLabel {
            task: name.to_string(),
        };
        let metrics = TickMetrics {
            ticks: self.metrics.ticks.get_or_create(&label).clone(),
            late: self.metrics.late_ticks.get_or_create(&label).clone(),
            inputs_live: self.metrics.inputs_live.get_or_create(&label).clone(),
            inputs: self.metrics.inputs.get_or_create(&label).clone(),
        };
        let (thread_shared, events) = (shared.clone(), self.events.clone());
        let task_id_owned = task_id.to_string();
        let finish: Finish = Box::new(move |ended| {
            match ended {
                Ended::Idle => {
                    let _ = events.try_send(EngineEvent::Idle {
                        app_id,
                        task_id: task_id_owned,
                    });
                }
                Ended::NoVideo => {
                    let _ = events.try_send(EngineEvent::NoVideo {
                        app_id,
                        task_id: task_id_owned,
                    });
                }
                Ended::Stopped => {}
            }
            task::warn_dropped(&thread_shared);
        });
        let mut job = Job {
            mix: Box::new(MixLoop::new(shared.clone(), metrics)),
            finish,
        };
        if let Some(ticker) = self.ticker.as_ref().filter(|_| job.mix.is_light()) {
            match ticker.add(job) {
                Ok(()) => return Ok(shared),
                Err(back) => job = back,
            }
        }
        std::thread::Builder::new()
            .name("mix".into())
            .spawn(move || job.run_alone())
            .map_err(|e| {
                warn!(task = %name, error = %e, "cannot start the mix thread");
                // Its inputs and outputs stop with the plan, dropped with `shared`.
                shared.stop.store(true, Ordering::Relaxed);
                self.metrics.ticks.remove(&label);
                self.metrics.late_ticks.remove(&label);
                self.metrics.inputs_live.remove(&label);
                self.metrics.inputs.remove(&label);
                EngineError::Spawn(e.to_string())
            })?;
        Ok(shared)
    }

    /// Stops a task; its outputs end (players see the stream end). `false` if unknown.
    pub fn stop(&self, app_id: u64, task_id: &str) -> bool {
        let mut tasks = self.lock();
        let removed = tasks.remove(&(app_id, task_id.to_string()));
        self.refresh_gauges(&tasks);
        drop(tasks);
        self.churn.fetch_add(1, Ordering::Relaxed);
        match removed {
            Some(r) => {
                r.shared.stop.store(true, Ordering::Relaxed);
                self.clear_aliases(app_id, &r.shared.plan(), None);
                // Forget the task's series: task ids come and go, the registry must not
                // grow with them.
                let label = TaskLabel {
                    task: r.shared.name.clone(),
                };
                self.metrics.ticks.remove(&label);
                self.metrics.late_ticks.remove(&label);
                self.metrics.inputs_live.remove(&label);
                self.metrics.inputs.remove(&label);
                // The inputs and outputs stop when the plan's last holder lets go: the
                // mix thread, within one tick.
                info!(task = %r.shared.name, "mix task stopped");
                true
            }
            None => false,
        }
    }

    /// Ends the aliases of `old`'s replacing outputs that `new` does not keep.
    fn clear_aliases(&self, app_id: u64, old: &Plan, new: Option<&Plan>) {
        for o in &old.outputs {
            let Target::Replace(id) = &o.target else {
                continue;
            };
            if new.is_some_and(|n| n.outputs.iter().any(|x| x.key == o.key)) {
                continue;
            }
            self.hub.clear_alias(&key(app_id, id), &o.key);
        }
    }

    fn refresh_gauges(&self, tasks: &HashMap<(u64, String), Running>) {
        self.metrics.tasks.set(tasks.len() as i64);
        self.metrics
            .cost
            .set(tasks.values().map(|r| r.cost).sum::<u64>() as i64);
    }

    pub fn stats(&self, app_id: u64, task_id: &str) -> Option<TaskStats> {
        let tasks = self.lock();
        let r = tasks.get(&(app_id, task_id.to_string()))?;
        Some(task::stats(&r.shared, app_id, task_id, r.cost))
    }

    pub fn list(&self) -> Vec<TaskStats> {
        let tasks = self.lock();
        tasks
            .iter()
            .map(|((app, id), r)| task::stats(&r.shared, *app, id, r.cost))
            .collect()
    }

    /// A live stream's picture size, from its metadata.
    pub fn stream_size(&self, app_id: u64, stream_id: &str) -> Option<(u32, u32)> {
        let st = self.hub.stream(&key(app_id, stream_id))?.stats();
        Some((st.width? as u32, st.height? as u32))
    }

    /// The frame rate a live stream announces in its metadata, else the one measured.
    pub fn stream_fps(&self, app_id: u64, stream_id: &str) -> Option<f64> {
        let st = self.hub.stream(&key(app_id, stream_id))?.stats();
        st.fps
            .filter(|f| *f > 0.0)
            .or(Some(st.measured_fps).filter(|f| *f > 0.0))
    }

    /// Tasks stopped or updated since the engine started.
    /// A player of the mix output published as hub stream `key` lost its picture (a
    /// WebRTC viewer's PLI): that output's encoder makes its next frame a key frame.
    /// Whether such an output runs here.
    pub fn request_key_frame(&self, key: &str) -> bool {
        let tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        let mut found = false;
        for r in tasks.values() {
            for o in r.shared.plan().outputs.iter().filter(|o| o.key == key) {
                o.force_key_frame();
                found = true;
            }
        }
        found
    }

    pub fn churn_total(&self) -> u64 {
        self.churn.load(Ordering::Relaxed)
    }

    /// What the running tasks leave of the mixing budget (pixels per second): what a
    /// node tells the others for placement.
    pub fn free_budget(&self) -> u64 {
        let used: u64 = self.lock().values().map(|r| r.cost).sum();
        self.config.budget_pixels_per_s.saturating_sub(used)
    }

    /// The running tasks, as `app:task` (what a node tells the others it runs).
    pub fn task_keys(&self) -> Vec<String> {
        self.lock()
            .keys()
            .map(|(app, task)| format!("{app}:{task}"))
            .collect()
    }

    /// What a task would cost here (pixels per second), for placement.
    pub fn cost_of(&self, app_id: u64, spec: &MixSpec) -> u64 {
        let local = self.localize(app_id, spec);
        self.cost(app_id, &local)
    }

    pub fn is_running(&self, app_id: u64, task_id: &str) -> bool {
        self.lock().contains_key(&(app_id, task_id.to_string()))
    }
}

/// The plan's stream data: the user data (its revision moves only when the bytes change,
/// so an update that keeps them does not resend them) and the layout record when some
/// input names its user.
fn plan_sei(spec: &MixSpec, old: Option<&Plan>) -> crate::task::PlanSei {
    let user_data = spec.stream_data.user_data.as_ref();
    let user_data_rev = match old {
        Some(o) if o.sei.user_data.as_deref() == user_data => o.sei.user_data_rev,
        Some(o) => o.sei.user_data_rev + 1,
        None => 0,
    };
    let layout = spec
        .inputs
        .iter()
        .any(|i| i.decor.uid.is_some())
        .then(|| {
            crate::sei::layout(spec.inputs.iter().filter_map(|i| {
                let r = i.rect.filter(|_| i.is_visible())?;
                Some((
                    r.left,
                    r.top,
                    r.right,
                    r.bottom,
                    i.decor.uid.as_deref().unwrap_or(""),
                ))
            }))
        })
        .map(Arc::new);
    crate::task::PlanSei {
        user_data: user_data.cloned().map(Arc::new),
        user_data_rev,
        layout,
    }
}

fn key(app_id: u64, stream: &str) -> String {
    format!("{app_id}/{stream}")
}

fn full_rect(w: u32, h: u32) -> tributary_core::mix::Rect {
    tributary_core::mix::Rect {
        layer: 0,
        left: 0,
        top: 0,
        right: w as i32,
        bottom: h as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_play_urls_of_the_same_app_become_stream_inputs() {
        let bases = vec![
            "rtmp://127.0.0.1:1935".to_string(),
            "http://127.0.0.1:8080/".to_string(),
        ];
        let f = |url| self_stream(&bases, 42, url);
        assert_eq!(f("rtmp://127.0.0.1:1935/42/cam1"), Some("cam1".into()));
        assert_eq!(
            f("rtmp://127.0.0.1:1935/42/cam1?token=x"),
            Some("cam1".into())
        );
        assert_eq!(f("http://127.0.0.1:8080/42/cam1.flv"), Some("cam1".into()));
        // Another app's stream, another server, HLS, nested paths: not ours to map.
        assert_eq!(f("rtmp://127.0.0.1:1935/43/cam1"), None);
        assert_eq!(f("rtmp://127.0.0.1:19350/42/cam1"), None);
        assert_eq!(f("http://127.0.0.1:8080/42/cam1/playlist.m3u8"), None);
        assert_eq!(f("rtmp://127.0.0.1:1935/42/a/b"), None);
        assert_eq!(f("rtmp://127.0.0.1:1935/42/"), None);
    }
}
