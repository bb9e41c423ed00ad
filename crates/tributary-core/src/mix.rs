//! `MixSpec`: what a mix task should produce, in vendor-neutral terms.
//!
//! The dialects translate their wire fields into this; the mixer engine only ever sees
//! this. Validation here covers the rules every dialect shares (limits, duplicates, sizes);
//! which fields a dialect refuses, and with which codes, stays in the dialect.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Most inputs one task mixes, by default (the vendor's; an app may set its own).
pub const MAX_INPUTS: usize = 9;
/// Most outputs one task encodes, by default.
pub const MAX_OUTPUTS: usize = 3;

/// An app's limits on one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MixLimits {
    pub max_inputs: usize,
    pub max_outputs: usize,
}

impl Default for MixLimits {
    fn default() -> Self {
        MixLimits {
            max_inputs: MAX_INPUTS,
            max_outputs: MAX_OUTPUTS,
        }
    }
}
/// Largest output width or height.
pub const MAX_DIMENSION: u32 = 3000;
/// Highest output frame rate.
pub const MAX_FPS: u32 = 60;
/// `MaxIdleTime` bounds, seconds.
pub const MIN_IDLE_S: u32 = 90;
pub const MAX_IDLE_S: u32 = 14_400;
/// What one audio track (decoded or encoded) counts for in [`MixSpec::cost_pixels_per_s`].
pub const AUDIO_TRACK_COST: u64 = 300_000;

/// Where an input's media comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Source {
    /// A stream of the same app, taken from the hub.
    Stream(String),
    /// An RTMP or HTTP-FLV URL pulled by the mixer.
    Url(String),
}

impl Source {
    /// The stream id, or the URL with its secrets redacted (logs, introspection, errors).
    pub fn describe(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Source::Stream(s) => s.into(),
            Source::Url(u) => crate::url_policy::redact(u).into(),
        }
    }
}

/// Where an output goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Target {
    /// Published as a stream of the same app (playable over RTMP, HTTP-FLV, HLS).
    Stream(String),
    /// Pushed to an `rtmp://` URL.
    Url(String),
    /// Takes over the name of one of the task's own input streams (Tencent's
    /// `OutputStreamType` 0, "A+B→A"): players of that stream get the mix, the mix keeps
    /// reading the original.
    Replace(String),
}

impl Target {
    /// The stream id, or the URL with its secrets redacted (logs, introspection, errors).
    pub fn describe(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Target::Stream(s) | Target::Replace(s) => s.into(),
            Target::Url(u) => crate::url_policy::redact(u).into(),
        }
    }
}

/// A rectangle on the canvas in pixels: `(left, top)` inclusive, `(right, bottom)`
/// exclusive, both measured from the canvas' top-left corner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rect {
    pub layer: i32,
    pub left: i32,
    pub top: i32,
    pub right: i32,
    pub bottom: i32,
}

impl Rect {
    pub fn width(&self) -> i32 {
        self.right - self.left
    }
    pub fn height(&self) -> i32 {
        self.bottom - self.top
    }
    pub fn is_empty(&self) -> bool {
        self.width() <= 0 || self.height() <= 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Content {
    AudioVideo,
    AudioOnly,
    VideoOnly,
}

impl Content {
    pub fn has_audio(self) -> bool {
        self != Content::VideoOnly
    }
    pub fn has_video(self) -> bool {
        self != Content::AudioOnly
    }
}

/// How a picture whose aspect differs from its rect is fitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RenderMode {
    /// Scale to cover the rect, centre-crop the overflow.
    Crop,
    /// Scale to fit inside the rect, whole picture shown, the rest is background.
    Fit,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MixInput {
    pub source: Source,
    /// `None`: the input is heard, not seen.
    pub rect: Option<Rect>,
    pub content: Content,
    /// Gain in percent, 0–200.
    pub volume: u32,
    pub render: RenderMode,
    /// A region of the source picture to use instead of all of it (pixels).
    #[serde(default)]
    pub crop: Option<Crop>,
    /// Placeholder, label, rounded corners, blurred margins, user id: how the input's
    /// tile is dressed. All live-updatable.
    #[serde(default)]
    pub decor: Decor,
}

/// Most a tile's corners are rounded, pixels.
pub const MAX_CORNER_RADIUS: u32 = 100;
/// Label font sizes, pixels, and the default.
pub const LABEL_FONT_SIZES: std::ops::RangeInclusive<u32> = 12..=100;
pub const DEFAULT_LABEL_FONT_SIZE: u32 = 24;
/// A label's length budget: 300 units, where an ASCII character is 1 and any other
/// character 3 (the vendor's "100 Chinese or 300 English characters").
pub const MAX_LABEL_UNITS: usize = 300;
/// Font faces a label may ask for (0–3; see the mixer's font table).
pub const FONT_FACES: u8 = 4;
/// Longest `UID`, bytes (the vendor's "< 64 bytes").
pub const MAX_UID_BYTES: usize = 63;
/// Largest minimum receive buffer, milliseconds.
pub const MAX_RECV_BUFFER_MS: u32 = 4_000;

/// How an input's tile is dressed beyond its picture.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decor {
    /// An image drawn in the tile instead of the video, always or when video is missing.
    #[serde(default)]
    pub placeholder: Option<Placeholder>,
    /// Text drawn over the tile, clipped to it.
    #[serde(default)]
    pub label: Option<Label>,
    /// Radius of the tile's rounded corners, pixels (0 = square).
    #[serde(default)]
    pub corner_radius: u32,
    /// Margins inside the tile that are shown blurred.
    #[serde(default)]
    pub blur: Option<Padding>,
    /// The publisher's user id, kept and reported with the task, and written into the
    /// layout record of the output's SEI.
    #[serde(default)]
    pub uid: Option<String>,
    /// The key of this input in the sound levels carried in the output (`SoundLevelId`).
    #[serde(default)]
    pub sound_level_id: Option<u32>,
}

/// When a placeholder image replaces an input's video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlaceholderMode {
    /// Always, while it is set.
    Always,
    /// While the publisher's camera is off: its stream carries audio but no video.
    CameraOff,
    /// Once the input has had no video for a while (none yet, or it stopped).
    NoVideo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placeholder {
    pub image: String,
    pub mode: PlaceholderMode,
}

/// A text label on an input's tile; `left`/`top` are relative to the tile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub text: String,
    pub left: i32,
    pub top: i32,
    pub font: Font,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Font {
    /// Which face, `0..FONT_FACES`.
    pub face: u8,
    /// Pixels.
    pub size: u32,
    /// `0xRRGGBB`.
    pub rgb: u32,
    /// 0 (invisible) to 100 (opaque).
    pub opacity: u8,
    /// An outline in this colour (`0xRRGGBB`).
    pub border_rgb: Option<u32>,
}

/// Distances from a rect's edges inwards, pixels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Padding {
    pub top: u32,
    pub left: u32,
    pub bottom: u32,
    pub right: u32,
}

impl Decor {
    /// The shared rules; `rect` is the input's tile.
    pub fn validate(&self, rect: Option<Rect>) -> Result<(), (Field, String)> {
        if self.corner_radius > MAX_CORNER_RADIUS {
            return Err((
                Field::CornerRadius,
                format!(
                    "must be within [0, {MAX_CORNER_RADIUS}], not {}",
                    self.corner_radius
                ),
            ));
        }
        if let Some(uid) = &self.uid
            && uid.len() > MAX_UID_BYTES
        {
            return Err((
                Field::Uid,
                format!(
                    "must be shorter than {} bytes, not {}",
                    MAX_UID_BYTES + 1,
                    uid.len()
                ),
            ));
        }
        if let Some(l) = &self.label {
            let bad = |reason: String| Err((Field::Label, reason));
            if l.text.is_empty() {
                return bad("the text is required".into());
            }
            if Label::units(&l.text) > MAX_LABEL_UNITS {
                return bad(
                    "the text is too long: at most 300 Latin or 100 other characters".into(),
                );
            }
            if !LABEL_FONT_SIZES.contains(&l.font.size) {
                return bad(format!(
                    "the font size must be within [{}, {}], not {}",
                    LABEL_FONT_SIZES.start(),
                    LABEL_FONT_SIZES.end(),
                    l.font.size
                ));
            }
            if l.font.face >= FONT_FACES {
                return bad(format!(
                    "the font type must be within [0, {}], not {}",
                    FONT_FACES - 1,
                    l.font.face
                ));
            }
            if l.font.opacity > 100 || l.font.rgb > 0xff_ffff {
                return bad("the font colour or transparency is out of range".into());
            }
        }
        if let (Some(b), Some(r)) = (self.blur, rect) {
            let (w, h) = (r.width().max(0) as u32, r.height().max(0) as u32);
            if b.top > h / 2 || b.bottom > h / 2 || b.left > w / 2 || b.right > w / 2 {
                return Err((
                    Field::Blur,
                    format!(
                        "top and bottom padding may be at most half the rect's height ({}), \
                         left and right at most half its width ({})",
                        h / 2,
                        w / 2
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl Label {
    /// The label's length in [`MAX_LABEL_UNITS`].
    pub fn units(text: &str) -> usize {
        text.chars().map(|c| if c.is_ascii() { 1 } else { 3 }).sum()
    }
}

/// A region of a source picture, in its pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crop {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl MixInput {
    pub fn is_visible(&self) -> bool {
        self.content.has_video() && self.rect.is_some_and(|r| !r.is_empty())
    }
}

/// An image drawn on top of everything (alpha honoured).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overlay {
    pub image: String,
    pub rect: Rect,
    /// Draw it opaque, ignoring the image's alpha channel.
    #[serde(default)]
    pub opaque: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoOut {
    pub width: u32,
    pub height: u32,
    pub bitrate_bps: u32,
    #[serde(default)]
    pub codec: VideoCodec,
}

/// How an output's video is encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum VideoCodec {
    #[default]
    H264,
    /// HEVC, carried in FLV per Enhanced RTMP. `low_bitrate_hd` is the vendors' "HD at a
    /// low bitrate" tuning (a slower preset and stronger adaptive quantisation, same
    /// bitrate).
    H265 { low_bitrate_hd: bool },
    /// VP8 (libvpx, real-time), carried in FLV per Enhanced RTMP (`vp08`); WebRTC viewers
    /// play it as it is, RTMP, HTTP-FLV and HLS players read its H.264 twin.
    Vp8,
}

impl VideoCodec {
    /// How much more an encode costs than H.264's, in percent (admission).
    pub fn cost_percent(self) -> u64 {
        match self {
            VideoCodec::H264 => 100,
            // libx265 `veryfast` `zerolatency` against libx264 with the same settings, 6 s
            // of 1280×720@30 at 1.5 Mb/s (two ffmpeg test patterns, 2026-12-03): 4.3–4.8×
            // the CPU. It was counted at 3×, which let a node take mixes it could not run.
            VideoCodec::H265 { .. } => 450,
            // libvpx at its fastest real-time speed costs about what x264 veryfast does
            // here; the twin that players of such an output may start is counted by
            // nothing (it runs only while someone reads it).
            VideoCodec::Vp8 => 150,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MixOutput {
    pub target: Target,
    /// `None`: an audio-only output.
    pub video: Option<VideoOut>,
    pub audio_bitrate_bps: u32,
    /// 1 or 2.
    pub channels: u8,
    /// A room whose stream list shows this output while the task runs.
    #[serde(default)]
    pub room: Option<RoomTarget>,
    #[serde(default)]
    pub audio_codec: AudioCodec,
    /// Hz; one of [`SAMPLE_RATES`] the codec can carry (Opus: 48 000 only).
    #[serde(default = "default_sample_rate")]
    pub sample_rate: u32,
}

/// The mix's own rate, and every output's unless asked otherwise.
pub const DEFAULT_SAMPLE_RATE: u32 = 44_100;

fn default_sample_rate() -> u32 {
    DEFAULT_SAMPLE_RATE
}

/// The output sample rates (Hz) an output may ask for; which one a codec can carry is
/// [`AudioCodec::carries`].
pub const SAMPLE_RATES: [u32; 12] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
];

/// How an output's audio is encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AudioCodec {
    #[default]
    AacLc,
    /// AAC-LC core + SBR (HE-AAC v1).
    HeAac,
    Mp3,
    /// Opus at 48 kHz, carried in FLV per Enhanced RTMP.
    Opus,
}

impl AudioCodec {
    /// The rate an output of this codec gets when the request names none: the mix's
    /// own, except for Opus, which is 48 kHz.
    pub fn default_rate(self) -> u32 {
        match self {
            AudioCodec::Opus => 48_000,
            _ => DEFAULT_SAMPLE_RATE,
        }
    }

    /// Whether the codec can be encoded at `rate` Hz: AAC at every rate of its table,
    /// HE-AAC from 16 to 48 kHz (libfdk-aac's SBR range), MP3 at the MPEG-1/2/2.5 rates,
    /// Opus at 48 kHz.
    pub fn carries(self, rate: u32) -> bool {
        match self {
            AudioCodec::AacLc => SAMPLE_RATES.contains(&rate),
            AudioCodec::HeAac => (16_000..=48_000).contains(&rate) && SAMPLE_RATES.contains(&rate),
            AudioCodec::Mp3 => rate <= 48_000 && SAMPLE_RATES.contains(&rate),
            AudioCodec::Opus => rate == 48_000,
        }
    }
}

/// Where an output stream is listed: the room and the user it is listed under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomTarget {
    pub room_id: String,
    pub user_id: String,
}

/// Which inputs share one timeline (the vendors' "alignment" of co-singers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Alignment {
    #[default]
    None,
    /// The inputs whose publishers ask for it.
    Listed,
    /// Every input.
    All,
}

/// How inputs are buffered and when output starts; fixed for a task's life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    /// Minimum receive buffer of every input, milliseconds (0–4000).
    #[serde(default)]
    pub recv_buffer_ms: u32,
    /// Publish nothing until some input's video arrives; give up after a while.
    #[serde(default)]
    pub wait_video: bool,
    #[serde(default)]
    pub alignment: Alignment,
}

/// Everything a task produces. The canvas is the first video output's size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MixSpec {
    pub inputs: Vec<MixInput>,
    pub outputs: Vec<MixOutput>,
    pub fps: u32,
    /// Canvas colour, `0xRRGGBB`.
    pub background_rgb: u32,
    pub background_image: Option<String>,
    pub watermark: Option<Overlay>,
    /// Still images drawn as layers among the inputs (their rect's `layer` orders them).
    #[serde(default)]
    pub images: Vec<Overlay>,
    pub max_idle_s: u32,
    /// Images that fail to load are left out instead of failing the task (the caller
    /// asked not to have them checked).
    #[serde(default)]
    pub lenient_images: bool,
    #[serde(default)]
    pub timing: Timing,
    /// Data carried in the output stream beside the picture and sound.
    #[serde(default)]
    pub stream_data: StreamData,
    /// Pass-through asked for (`ByPass`, `AllowCopy`): with a single stream input, the
    /// outputs carry its own packets, nothing decoded or encoded ([`MixSpec::is_bypass`]).
    #[serde(default)]
    pub bypass: bool,
    /// Seconds between key frames in video outputs; 0 means the default, 2 s.
    #[serde(default)]
    pub gop_s: u32,
}

/// The key-frame interval when none is asked for, and the longest one, seconds.
pub const DEFAULT_GOP_S: u32 = 2;
pub const MAX_GOP_S: u32 = 10;

/// Most user data bytes a task carries (the vendor's 4000 base64 characters, decoded).
pub const MAX_USER_DATA: usize = 3_000;

/// Timed data in a task's video outputs (SEI; the byte format is `docs/SEI.md`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamData {
    /// Bytes passed through to players as given (live-updatable).
    #[serde(default)]
    pub user_data: Option<Vec<u8>>,
    /// Each input's sound level (keyed by its `sound_level_id`) every 100 ms.
    #[serde(default)]
    pub sound_levels: bool,
    /// The inputs' own user data SEI, written into the output frames that show them.
    #[serde(default)]
    pub pass_input_sei: bool,
    /// Each input's sound level keyed by its stream id (auto-mixes, whose inputs have
    /// no `sound_level_id`), every 100 ms.
    #[serde(default)]
    pub sound_levels_by_stream: bool,
}

/// A field of a task, named without any vendor's spelling: each dialect maps it to its own
/// field name and error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Volume,
    Rect,
    CornerRadius,
    Uid,
    Label,
    Blur,
    Width,
    Height,
    VideoBitrate,
    AudioBitrate,
    Channels,
    OutputUrl,
    Replaced,
    TargetRoom,
    Fps,
    MaxIdleTime,
    RecvBuffer,
    Watermark,
    ImageLayer,
    UserData,
    SoundLevelId,
    Gop,
    SampleRate,
    VideoCodec,
}

impl Field {
    pub fn neutral_name(self) -> &'static str {
        match self {
            Field::Volume => "volume",
            Field::Rect => "rect",
            Field::CornerRadius => "corner radius",
            Field::Uid => "user id",
            Field::Label => "label",
            Field::Blur => "blurred margins",
            Field::Width => "width",
            Field::Height => "height",
            Field::VideoBitrate => "video bitrate",
            Field::AudioBitrate => "audio bitrate",
            Field::Channels => "audio channels",
            Field::OutputUrl => "output URL",
            Field::Replaced => "replaced stream",
            Field::TargetRoom => "target room",
            Field::Fps => "frame rate",
            Field::MaxIdleTime => "idle time",
            Field::RecvBuffer => "receive buffer",
            Field::Watermark => "watermark",
            Field::ImageLayer => "image layer",
            Field::UserData => "user data",
            Field::SoundLevelId => "sound level id",
            Field::Gop => "key-frame interval",
            Field::SampleRate => "audio sample rate",
            Field::VideoCodec => "video codec",
        }
    }
}

/// Which part of a task a field belongs to (list positions in the spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    Task,
    Input(usize),
    Output(usize),
}

impl std::fmt::Display for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Item::Task => Ok(()),
            Item::Input(i) => write!(f, "input {i} "),
            Item::Output(i) => write!(f, "output {i} "),
        }
    }
}

/// Output sizes: even, within [2, MAX_DIMENSION] (1×1 means audio-only in the dialects).
pub const VIDEO_BITRATES_BPS: std::ops::RangeInclusive<u32> = 10_000..=50_000_000;
pub const AUDIO_BITRATES_BPS: std::ops::RangeInclusive<u32> = 8_000..=320_000;
pub const MAX_VOLUME: u32 = 200;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MixError {
    #[error("{count} inputs; at most {max} are allowed")]
    TooManyInputs { count: usize, max: usize },
    #[error("{count} outputs; at most {max} are allowed")]
    TooManyOutputs { count: usize, max: usize },
    #[error("at least one output is required")]
    NoOutputs,
    #[error("input {0} is listed twice")]
    DuplicateInput(String),
    #[error("output {0} is listed twice")]
    DuplicateOutput(String),
    #[error("stream {0} is both an input and an output")]
    InputIsOutput(String),
    /// A field out of its range or shape; `reason` does not repeat the field's name.
    #[error("{item}{}: {reason}", field.neutral_name())]
    Invalid {
        item: Item,
        field: Field,
        reason: String,
    },
    #[error(
        "output {index}: the first video output must be the largest; later outputs are scaled from it"
    )]
    OutputLargerThanFirst { index: usize },
}

fn invalid(item: Item, field: Field, reason: impl Into<String>) -> MixError {
    MixError::Invalid {
        item,
        field,
        reason: reason.into(),
    }
}

impl MixSpec {
    /// A task of these inputs and outputs at `fps`, with everything else at its default
    /// (black canvas, no images, the vendor's 90 s idle time, no stream data, no
    /// pass-through, the default GOP); dialects set what their request carries.
    pub fn new(inputs: Vec<MixInput>, outputs: Vec<MixOutput>, fps: u32) -> MixSpec {
        MixSpec {
            inputs,
            outputs,
            fps,
            background_rgb: 0,
            background_image: None,
            watermark: None,
            images: Vec::new(),
            max_idle_s: MIN_IDLE_S,
            lenient_images: false,
            timing: Timing::default(),
            stream_data: StreamData::default(),
            bypass: false,
            gop_s: 0,
        }
    }

    /// The canvas (first video output), if any output carries video.
    pub fn canvas(&self) -> Option<(u32, u32)> {
        self.outputs
            .iter()
            .find_map(|o| o.video.map(|v| (v.width, v.height)))
    }

    pub fn has_video(&self) -> bool {
        self.canvas().is_some()
    }

    /// Checks the rules every dialect shares, under the app's limits.
    pub fn validate(&self, limits: MixLimits) -> Result<(), MixError> {
        if self.inputs.len() > limits.max_inputs {
            return Err(MixError::TooManyInputs {
                count: self.inputs.len(),
                max: limits.max_inputs,
            });
        }
        if self.outputs.is_empty() {
            return Err(MixError::NoOutputs);
        }
        if self.outputs.len() > limits.max_outputs {
            return Err(MixError::TooManyOutputs {
                count: self.outputs.len(),
                max: limits.max_outputs,
            });
        }
        for (i, a) in self.inputs.iter().enumerate() {
            if self.inputs[..i].iter().any(|b| b.source == a.source) {
                return Err(MixError::DuplicateInput(a.source.describe().to_string()));
            }
            if a.volume > MAX_VOLUME {
                return Err(invalid(
                    Item::Input(i),
                    Field::Volume,
                    format!("must be within [0, {MAX_VOLUME}], not {}", a.volume),
                ));
            }
            if let Some(r) = a.rect
                && (r.right < r.left || r.bottom < r.top)
            {
                return Err(invalid(
                    Item::Input(i),
                    Field::Rect,
                    "needs right ≥ left and bottom ≥ top",
                ));
            }
            a.decor
                .validate(a.rect)
                .map_err(|(field, reason)| invalid(Item::Input(i), field, reason))?;
        }
        for (i, o) in self.outputs.iter().enumerate() {
            if self.outputs[..i].iter().any(|b| b.target == o.target) {
                return Err(MixError::DuplicateOutput(o.target.describe().to_string()));
            }
            if let Target::Stream(id) = &o.target
                && self
                    .inputs
                    .iter()
                    .any(|inp| inp.source == Source::Stream(id.clone()))
            {
                return Err(MixError::InputIsOutput(id.clone()));
            }
            if let Target::Replace(id) = &o.target
                && !self
                    .inputs
                    .iter()
                    .any(|inp| inp.source == Source::Stream(id.clone()))
            {
                return Err(invalid(
                    Item::Output(i),
                    Field::Replaced,
                    format!("{id} can only be replaced by a mix that reads it"),
                ));
            }
            if let Target::Url(url) = &o.target
                && !url.starts_with("rtmp://")
            {
                return Err(invalid(
                    Item::Output(i),
                    Field::OutputUrl,
                    format!(
                        "must be an rtmp:// URL, not {:?}",
                        crate::url_policy::redact(url)
                    ),
                ));
            }
            if !(1..=2).contains(&o.channels) {
                return Err(invalid(
                    Item::Output(i),
                    Field::Channels,
                    format!("must be 1 or 2, not {}", o.channels),
                ));
            }
            if !o.audio_codec.carries(o.sample_rate) {
                return Err(invalid(
                    Item::Output(i),
                    Field::SampleRate,
                    format!(
                        "{:?} cannot be encoded at {} Hz",
                        o.audio_codec, o.sample_rate
                    ),
                ));
            }
            if !AUDIO_BITRATES_BPS.contains(&o.audio_bitrate_bps) {
                return Err(invalid(
                    Item::Output(i),
                    Field::AudioBitrate,
                    format!(
                        "must be within [{}, {}] bps, not {}",
                        AUDIO_BITRATES_BPS.start(),
                        AUDIO_BITRATES_BPS.end(),
                        o.audio_bitrate_bps
                    ),
                ));
            }
            if let Some(v) = o.video {
                for (field, size) in [(Field::Width, v.width), (Field::Height, v.height)] {
                    if !(2..=MAX_DIMENSION).contains(&size) || size % 2 != 0 {
                        return Err(invalid(
                            Item::Output(i),
                            field,
                            format!(
                                "must be an even number within [0, {MAX_DIMENSION}], not {size}"
                            ),
                        ));
                    }
                }
                if !VIDEO_BITRATES_BPS.contains(&v.bitrate_bps) {
                    return Err(invalid(
                        Item::Output(i),
                        Field::VideoBitrate,
                        format!(
                            "is in bps and must be within [{}, {}], not {}",
                            VIDEO_BITRATES_BPS.start(),
                            VIDEO_BITRATES_BPS.end(),
                            v.bitrate_bps
                        ),
                    ));
                }
                if let Some((w, h)) = self.canvas()
                    && (v.width > w || v.height > h)
                {
                    return Err(MixError::OutputLargerThanFirst { index: i });
                }
            }
        }
        if let Some((w, h)) = self.canvas() {
            let fits = |r: &Rect| {
                let (w, h) = (w as i32, h as i32);
                r.width() <= 2 * w
                    && r.height() <= 2 * h
                    && r.right > 0
                    && r.bottom > 0
                    && r.left < w
                    && r.top < h
            };
            for (i, inp) in self.inputs.iter().enumerate() {
                if let Some(r) = inp.rect.filter(|r| !r.is_empty())
                    && !fits(&r)
                {
                    return Err(invalid(
                        Item::Input(i),
                        Field::Rect,
                        format!("must overlap the {w}×{h} canvas and be at most twice its size"),
                    ));
                }
            }
            for img in &self.images {
                if !fits(&img.rect) || img.rect.is_empty() {
                    return Err(invalid(
                        Item::Task,
                        Field::ImageLayer,
                        format!("must overlap the {w}×{h} canvas and be at most twice its size"),
                    ));
                }
            }
            if let Some(wm) = &self.watermark
                && !fits(&wm.rect)
            {
                return Err(invalid(
                    Item::Task,
                    Field::Watermark,
                    format!("must overlap the {w}×{h} canvas and be at most twice its size"),
                ));
            }
        }
        if self.fps == 0 || self.fps > MAX_FPS {
            return Err(invalid(
                Item::Task,
                Field::Fps,
                format!("must be within [1, {MAX_FPS}], not {}", self.fps),
            ));
        }
        if !(MIN_IDLE_S..=MAX_IDLE_S).contains(&self.max_idle_s) {
            return Err(invalid(
                Item::Task,
                Field::MaxIdleTime,
                format!(
                    "must be within [{MIN_IDLE_S}, {MAX_IDLE_S}] seconds, not {}",
                    self.max_idle_s
                ),
            ));
        }
        if let Some(d) = &self.stream_data.user_data
            && d.len() > MAX_USER_DATA
        {
            return Err(invalid(
                Item::Task,
                Field::UserData,
                format!("is at most {MAX_USER_DATA} bytes, not {}", d.len()),
            ));
        }
        if self.stream_data.sound_levels {
            for (i, inp) in self.inputs.iter().enumerate() {
                let Some(id) = inp.decor.sound_level_id else {
                    return Err(invalid(
                        Item::Input(i),
                        Field::SoundLevelId,
                        "is required when sound levels are on",
                    ));
                };
                if self.inputs[..i]
                    .iter()
                    .any(|o| o.decor.sound_level_id == Some(id))
                {
                    return Err(invalid(
                        Item::Input(i),
                        Field::SoundLevelId,
                        format!("{id} is used by another input; each must be unique"),
                    ));
                }
            }
        }
        if self.gop_s > MAX_GOP_S {
            return Err(invalid(
                Item::Task,
                Field::Gop,
                format!(
                    "must be within [1, {MAX_GOP_S}] seconds, not {}",
                    self.gop_s
                ),
            ));
        }
        if self.timing.recv_buffer_ms > MAX_RECV_BUFFER_MS {
            return Err(invalid(
                Item::Task,
                Field::RecvBuffer,
                format!(
                    "must be within [0, {MAX_RECV_BUFFER_MS}] ms, not {}",
                    self.timing.recv_buffer_ms
                ),
            ));
        }
        for (i, o) in self.outputs.iter().enumerate() {
            if let Some(room) = &o.room {
                if room.room_id.is_empty() || room.user_id.is_empty() {
                    return Err(invalid(
                        Item::Output(i),
                        Field::TargetRoom,
                        "needs a room id and a user id",
                    ));
                }
                if matches!(o.target, Target::Url(_)) {
                    return Err(invalid(
                        Item::Output(i),
                        Field::TargetRoom,
                        "lists a stream in a room: the output needs a stream id",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether the task passes its input through: asked for, exactly one input, and that
    /// input a stream of the app (a pulled URL is mixed as usual). Layout, images, sizes
    /// and bitrates then do not apply; the outputs carry the input's own codecs.
    pub fn is_bypass(&self) -> bool {
        self.bypass && self.inputs.len() == 1 && matches!(self.inputs[0].source, Source::Stream(_))
    }

    /// Seconds between key frames.
    pub fn gop(&self) -> u32 {
        if self.gop_s == 0 {
            DEFAULT_GOP_S
        } else {
            self.gop_s
        }
    }

    /// Stream ids this task reads from the hub.
    pub fn input_streams(&self) -> impl Iterator<Item = &str> {
        self.inputs.iter().filter_map(|i| match &i.source {
            Source::Stream(s) => Some(s.as_str()),
            Source::Url(_) => None,
        })
    }

    /// Stream ids this task publishes into the hub.
    pub fn output_streams(&self) -> impl Iterator<Item = &str> {
        self.outputs.iter().filter_map(|o| match &o.target {
            Target::Stream(s) | Target::Replace(s) => Some(s.as_str()),
            Target::Url(_) => None,
        })
    }

    /// A rough cost in decoded-or-encoded pixels per second, for admission control:
    /// every encode at its size × fps, every visible input at `input_pixels` × fps
    /// (its real size is unknown until it is decoded).
    pub fn cost_pixels_per_s(&self, input_pixels: u64) -> u64 {
        if self.is_bypass() {
            // Packets are only copied: about what a player costs.
            return AUDIO_TRACK_COST;
        }
        let fps = self.fps as u64;
        let encode: u64 = self
            .outputs
            .iter()
            .filter_map(|o| o.video)
            .map(|v| v.width as u64 * v.height as u64 * fps * v.codec.cost_percent() / 100)
            .sum();
        let decode: u64 = self.inputs.iter().filter(|i| i.content.has_video()).count() as u64
            * input_pixels
            * fps;
        // Audio is cheap next to video but not free. Measured (BENCHMARKS.md): a 4-speaker
        // audio room costs about 1/68 of a core, i.e. ~300 k "pixels" per track at the
        // default budget of 100 M per core.
        let audio = (self.inputs.len() + self.outputs.len()) as u64 * AUDIO_TRACK_COST;
        encode + decode + audio
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn input(id: &str) -> MixInput {
        MixInput {
            source: Source::Stream(id.into()),
            rect: Some(Rect {
                layer: 0,
                left: 0,
                top: 0,
                right: 160,
                bottom: 120,
            }),
            content: Content::AudioVideo,
            volume: 100,
            render: RenderMode::Crop,
            crop: None,
            decor: Default::default(),
        }
    }

    pub(crate) fn spec() -> MixSpec {
        MixSpec {
            inputs: vec![input("a"), input("b")],
            outputs: vec![MixOutput {
                target: Target::Stream("out".into()),
                video: Some(VideoOut {
                    width: 320,
                    height: 240,
                    bitrate_bps: 500_000,
                    codec: Default::default(),
                }),
                audio_bitrate_bps: 48_000,
                channels: 1,
                room: None,
                audio_codec: Default::default(),
                sample_rate: 44_100,
            }],
            ..MixSpec::new(Vec::new(), Vec::new(), 15)
        }
    }

    #[test]
    fn a_plain_spec_is_valid() {
        spec().validate(MixLimits::default()).unwrap();
        assert_eq!(spec().canvas(), Some((320, 240)));
    }

    #[test]
    fn shared_rules_are_enforced() {
        let mut s = spec();
        s.inputs.push(input("a"));
        assert_eq!(
            s.validate(MixLimits::default()),
            Err(MixError::DuplicateInput("a".into()))
        );

        let mut s = spec();
        s.inputs = (0..10).map(|i| input(&i.to_string())).collect();
        assert!(matches!(
            s.validate(MixLimits::default()),
            Err(MixError::TooManyInputs { count: 10, .. })
        ));

        let mut s = spec();
        s.outputs[0].target = Target::Stream("a".into());
        assert_eq!(
            s.validate(MixLimits::default()),
            Err(MixError::InputIsOutput("a".into()))
        );

        let mut s = spec();
        s.outputs.push(s.outputs[0].clone());
        assert_eq!(
            s.validate(MixLimits::default()),
            Err(MixError::DuplicateOutput("out".into()))
        );

        let mut s = spec();
        if let Some(v) = s.outputs[0].video.as_mut() {
            v.width = 3002;
        }
        assert!(matches!(
            s.validate(MixLimits::default()),
            Err(MixError::Invalid {
                field: Field::Width,
                ..
            })
        ));

        let mut s = spec();
        if let Some(v) = s.outputs[0].video.as_mut() {
            v.height = 241;
        }
        assert!(matches!(
            s.validate(MixLimits::default()),
            Err(MixError::Invalid {
                field: Field::Height,
                ..
            })
        ));

        let mut s = spec();
        s.outputs[0].target = Target::Url("http://x/y".into());
        assert!(matches!(
            s.validate(MixLimits::default()),
            Err(MixError::Invalid {
                field: Field::OutputUrl,
                ..
            })
        ));

        let mut s = spec();
        s.inputs[0].rect = Some(Rect {
            layer: 0,
            left: 0,
            top: 0,
            right: 10_000,
            bottom: 100,
        });
        assert!(matches!(
            s.validate(MixLimits::default()),
            Err(MixError::Invalid {
                item: Item::Input(0),
                field: Field::Rect,
                ..
            })
        ));

        let mut s = spec();
        s.max_idle_s = 30;
        assert!(matches!(
            s.validate(MixLimits::default()),
            Err(MixError::Invalid {
                field: Field::MaxIdleTime,
                ..
            })
        ));

        let mut s = spec();
        let mut big = s.outputs[0].clone();
        big.target = Target::Stream("big".into());
        if let Some(v) = big.video.as_mut() {
            v.width = 640;
        }
        s.outputs.push(big);
        assert_eq!(
            s.validate(MixLimits::default()),
            Err(MixError::OutputLargerThanFirst { index: 1 })
        );
    }

    #[test]
    fn cost_counts_encodes_and_decodes() {
        let s = spec();
        let c = s.cost_pixels_per_s(320 * 240);
        assert_eq!(
            c,
            320 * 240 * 15 + 2 * 320 * 240 * 15 + 3 * AUDIO_TRACK_COST
        );
    }
}
