//! StartMix / StartAutoMix wire fields → core types. Unimplemented fields are refused by
//! name (110200002), never dropped.

use serde_json::Value;

use tributary_core::ids::{self, IdKind};
use tributary_core::mix::{
    AUDIO_BITRATES_BPS, Alignment, AudioCodec, Content, DEFAULT_LABEL_FONT_SIZE, Decor, FONT_FACES,
    Font, LABEL_FONT_SIZES, Label, MAX_CORNER_RADIUS, MAX_IDLE_S, MAX_LABEL_UNITS,
    MAX_RECV_BUFFER_MS, MAX_VOLUME, MIN_IDLE_S, MixInput, MixOutput, Padding, Placeholder,
    PlaceholderMode, Rect, RenderMode, RoomTarget, Source, StreamData, Target, Timing, VideoCodec,
    VideoOut,
};
use tributary_core::url_policy::{self, Purpose};

use crate::zego::Call;
use crate::zego::codes::*;
use crate::zego::params::Params;

pub(super) fn bad(msg: impl Into<String>) -> ZegoError {
    ZegoError::new(MIX_BAD_PARAM, msg)
}

/// An integer field: a JSON number, or a string of digits (GET query values).
pub(super) fn int(v: &Value, field: &str) -> Result<Option<i64>, ZegoError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| bad(format!("{field} must be an integer"))),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| bad(format!("{field} must be an integer, not {s:?}"))),
        Some(_) => Err(bad(format!("{field} must be an integer"))),
    }
}

pub(super) fn string<'v>(v: &'v Value, field: &str) -> Option<&'v str> {
    v.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

pub(super) fn in_range(
    v: Option<i64>,
    field: &str,
    lo: i64,
    hi: i64,
    default: i64,
) -> Result<i64, ZegoError> {
    let v = v.unwrap_or(default);
    if v < lo || v > hi {
        return Err(bad(format!("{field} must be within [{lo}, {hi}], not {v}")));
    }
    Ok(v)
}

/// A parameter that is a JSON object (POST body) or its JSON text (how Params keeps it).
pub(super) fn object(p: &Params, key: &str) -> Result<Option<Value>, ZegoError> {
    match p.get(key) {
        None | Some("") => Ok(None),
        Some(text) => serde_json::from_str::<Value>(text)
            .ok()
            .filter(Value::is_object)
            .map(Some)
            .ok_or_else(|| bad(format!("{key} must be an object"))),
    }
}

pub(super) fn objects(p: &Params, key: &str) -> Result<Vec<Value>, ZegoError> {
    p.all(key)
        .iter()
        .enumerate()
        .map(|(i, text)| {
            serde_json::from_str::<Value>(text)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| bad(format!("{key}[{i}] must be an object")))
        })
        .collect()
}

pub(super) fn top_int(p: &Params, key: &str) -> Result<Option<i64>, ZegoError> {
    match p.non_empty(key) {
        None => Ok(None),
        Some(s) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| bad(format!("{key} must be an integer, not {s:?}"))),
    }
}

/// `0xRRGGBBAA` (string) or its decimal value; AA must be 00.
pub(super) fn parse_color(p: &Params) -> Result<u32, ZegoError> {
    let (field, raw) = match (
        p.non_empty("BackGroundColorHex"),
        p.non_empty("BackgroundColor"),
    ) {
        (Some(h), _) => ("BackGroundColorHex", h),
        (None, Some(c)) => ("BackgroundColor", c),
        (None, None) => return Ok(0x000000),
    };
    let value = if let Some(hex) = raw.strip_prefix("0x").or_else(|| raw.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16).ok().filter(|_| hex.len() == 8)
    } else if let Some(hex) = raw.strip_prefix('#') {
        u32::from_str_radix(hex, 16).ok().filter(|_| hex.len() == 8)
    } else {
        raw.parse::<u64>().ok().and_then(|v| u32::try_from(v).ok())
    };
    let Some(rgba) = value else {
        return Err(bad(format!("{field} must be \"0xRRGGBBAA\", not {raw:?}")));
    };
    if rgba & 0xff != 0 {
        return Err(bad(format!(
            "{field}: the alpha byte must be 00 (transparency is not supported), got {raw:?}"
        )));
    }
    Ok(rgba >> 8)
}

pub(super) fn check_image_syntax(uri: &str, field: &str) -> Result<(), ZegoError> {
    if uri.starts_with("http://") || uri.starts_with("https://") || uri.starts_with("preset-id://")
    {
        Ok(())
    } else {
        Err(ZegoError::new(
            MIX_IMAGE_PROTOCOL,
            format!("{field} must be an http(s):// URL or preset-id://NAME, not {uri:?}"),
        ))
    }
}

pub(super) fn rect(v: &Value, field: &str) -> Result<Option<Rect>, ZegoError> {
    let r = match v.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(r) if r.is_object() => r,
        Some(_) => return Err(bad(format!("{field} must be an object"))),
    };
    let (top, left, bottom, right) = (
        int(r, "Top")?,
        int(r, "Left")?,
        int(r, "Bottom")?,
        int(r, "Right")?,
    );
    if top.is_none() && left.is_none() && bottom.is_none() && right.is_none() {
        // An empty RectInfo: heard, not seen.
        return Ok(None);
    }
    let get = |x: Option<i64>| x.unwrap_or(0).clamp(-10_000, 10_000) as i32;
    Ok(Some(Rect {
        layer: int(r, "Layer")?.unwrap_or(0).clamp(-1_000, 1_000) as i32,
        top: get(top),
        left: get(left),
        bottom: get(bottom),
        right: get(right),
    }))
}

pub(super) fn input(v: &Value, i: usize, check_mode: i64) -> Result<MixInput, ZegoError> {
    let at = |f: &str| format!("MixInput[{i}].{f}");
    let source = source(v, &format!("MixInput[{i}]"))?;
    let content = match in_range(int(v, "ContentControl")?, &at("ContentControl"), 0, 2, 0)? {
        0 => Content::AudioVideo,
        1 => Content::AudioOnly,
        _ => Content::VideoOnly,
    };
    let render = match in_range(int(v, "RenderMode")?, &at("RenderMode"), 0, 1, 0)? {
        0 => RenderMode::Crop,
        _ => RenderMode::Fit,
    };
    let volume = in_range(int(v, "Volume")?, &at("Volume"), 0, MAX_VOLUME as i64, 100)? as u32;
    Ok(MixInput {
        source,
        rect: rect(v, "RectInfo")?,
        content,
        volume,
        render,
        crop: None,
        decor: decor(v, i, check_mode)?,
    })
}

/// `Image`, `Label`, `RectInfo.CornerRadius`, `BlurInfo` and `UID` of one input.
fn decor(v: &Value, i: usize, check_mode: i64) -> Result<Decor, ZegoError> {
    let at = |f: &str| format!("MixInput[{i}].{f}");
    let placeholder = match v.get("Image") {
        None | Some(Value::Null) => None,
        Some(img) if !img.is_object() => {
            return Err(bad(format!("{} must be an object", at("Image"))));
        }
        Some(img) => match string(img, "Url") {
            // An empty Url shows the video.
            None => None,
            Some(url) => {
                if check_mode < 2 {
                    check_image_syntax(url, &at("Image.Url"))?;
                }
                let mode =
                    match in_range(int(img, "DisplayMode")?, &at("Image.DisplayMode"), 0, 2, 0)? {
                        0 => PlaceholderMode::Always,
                        1 => PlaceholderMode::CameraOff,
                        _ => PlaceholderMode::NoVideo,
                    };
                Some(Placeholder {
                    image: url.to_string(),
                    mode,
                })
            }
        },
    };
    let corner_radius = match v.get("RectInfo") {
        Some(r) if r.is_object() => in_range(
            int(r, "CornerRadius")?,
            &at("RectInfo.CornerRadius"),
            0,
            MAX_CORNER_RADIUS as i64,
            0,
        )? as u32,
        _ => 0,
    };
    let blur = match v.get("BlurInfo") {
        None | Some(Value::Null) => None,
        Some(b) if !b.is_object() => {
            return Err(bad(format!("{} must be an object", at("BlurInfo"))));
        }
        Some(b) => {
            let pad = |f: &str| -> Result<u32, ZegoError> {
                Ok(in_range(int(b, f)?, &at(&format!("BlurInfo.{f}")), 0, 10_000, 0)? as u32)
            };
            let p = Padding {
                top: pad("TopPadding")?,
                left: pad("LeftPadding")?,
                bottom: pad("BottomPadding")?,
                right: pad("RightPadding")?,
            };
            (p != Padding::default()).then_some(p)
        }
    };
    let sound_level_id = int(v, "SoundLevelId")?
        .map(|id| {
            u32::try_from(id).map_err(|_| {
                bad(format!(
                    "{} must be within [0, 4294967295]",
                    at("SoundLevelId")
                ))
            })
        })
        .transpose()?;
    let uid = match v.get("UID") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return Err(bad(format!("{} must be a string", at("UID")))),
    };
    Ok(Decor {
        placeholder,
        label: label(v, i)?,
        corner_radius,
        blur,
        uid,
        sound_level_id,
    })
}

/// `Label`: text, its place in the tile and its font. Errors are the vendor's text
/// watermark code (110200179).
fn label(v: &Value, i: usize) -> Result<Option<Label>, ZegoError> {
    let at = |f: &str| format!("MixInput[{i}].Label.{f}");
    let lbad = |msg: String| ZegoError::new(MIX_LABEL_BAD, msg);
    let l = match v.get("Label") {
        None | Some(Value::Null) => return Ok(None),
        Some(l) if l.is_object() => l,
        Some(_) => return Err(lbad(format!("MixInput[{i}].Label must be an object"))),
    };
    let relabel = |e: ZegoError| lbad(e.message);
    let text = string(l, "Text").ok_or_else(|| lbad(format!("{} is required", at("Text"))))?;
    if Label::units(text) > MAX_LABEL_UNITS {
        return Err(lbad(format!(
            "{} is too long: at most 300 Latin or 100 other characters",
            at("Text")
        )));
    }
    let left = int(l, "Left").map_err(relabel)?;
    let top = int(l, "Top").map_err(relabel)?;
    let (Some(left), Some(top)) = (left, top) else {
        return Err(lbad(format!(
            "{} and {} are required",
            at("Left"),
            at("Top")
        )));
    };
    let f = match l.get("Font") {
        Some(f) if f.is_object() => f,
        _ => return Err(lbad(format!("{} is required (an object)", at("Font")))),
    };
    let range = |field: &str, lo: i64, hi: i64, default: i64| {
        in_range(
            int(f, field)?,
            &at(&format!("Font.{field}")),
            lo,
            hi,
            default,
        )
        .map_err(relabel)
    };
    let face = range("FontType", 0, FONT_FACES as i64 - 1, 0)? as u8;
    let size = range(
        "FontSize",
        *LABEL_FONT_SIZES.start() as i64,
        *LABEL_FONT_SIZES.end() as i64,
        DEFAULT_LABEL_FONT_SIZE as i64,
    )? as u32;
    // Colours are R + 256·G + 65536·B; white by default.
    let color = range("FontColor", 0, 0xff_ffff, 0xff_ffff)? as u32;
    // Larger is more transparent; opaque by default (the spec's §6.10 recommendation).
    let transparency = range("Transparency", 0, 100, 0)? as u8;
    let border = int(f, "BorderColor").map_err(relabel)?;
    let border_rgb = match border {
        None => None,
        Some(b) if (0..=0xff_ffff).contains(&b) => Some(bgr_to_rgb(b as u32)),
        Some(b) => {
            return Err(lbad(format!(
                "{} must be within [0, 16777215], not {b}",
                at("Font.BorderColor")
            )));
        }
    };
    Ok(Some(Label {
        text: text.to_string(),
        left: left.clamp(-10_000, 10_000) as i32,
        top: top.clamp(-10_000, 10_000) as i32,
        font: Font {
            face,
            size,
            rgb: bgr_to_rgb(color),
            opacity: 100 - transparency,
            border_rgb,
        },
    }))
}

/// The label encoding `R + 256·G + 65536·B` as `0xRRGGBB`.
fn bgr_to_rgb(c: u32) -> u32 {
    let (r, g, b) = (c & 0xff, (c >> 8) & 0xff, (c >> 16) & 0xff);
    (r << 16) | (g << 8) | b
}

pub(super) fn audio_fields(
    v: &Value,
    i: usize,
    default_channels: i64,
) -> Result<(u32, u8, AudioCodec), ZegoError> {
    let at = |f: &str| format!("MixOutput[{i}].{f}");
    // Absent: AAC-LC, which every player and browser decodes (the vendor's default, HE-AAC,
    // must be asked for with 0).
    let codec = match int(v, "AudioCodec")? {
        None | Some(1) => AudioCodec::AacLc,
        Some(0) => AudioCodec::HeAac,
        Some(2) => AudioCodec::Mp3,
        Some(3) => AudioCodec::Opus,
        Some(c) => return Err(bad(format!("{} must be 0–3, not {c}", at("AudioCodec")))),
    };
    let bitrate = in_range(
        int(v, "AudioBitrate")?,
        &at("AudioBitrate"),
        *AUDIO_BITRATES_BPS.start() as i64,
        *AUDIO_BITRATES_BPS.end() as i64,
        48_000,
    )? as u32;
    let channels = in_range(
        int(v, "SoundChannel")?,
        &at("SoundChannel"),
        1,
        2,
        default_channels,
    )? as u8;
    Ok((bitrate, channels, codec))
}

/// Where an output goes: `StreamUrl` (an `rtmp://` URL; it wins) or `StreamId`. `item`
/// names it in messages (`MixOutput[0]`, `TranscodeOutput[1]`).
pub(super) fn target(v: &Value, item: &str) -> Result<Target, ZegoError> {
    match (string(v, "StreamUrl"), string(v, "StreamId")) {
        (Some(url), _) => {
            url_policy::syntax(url, Purpose::MixOutput)
                .map_err(|e| bad(format!("{item}.StreamUrl {e}")))?;
            Ok(Target::Url(url.to_string()))
        }
        (None, Some(id)) => Ok(Target::Stream(id.to_string())),
        (None, None) => Err(bad(format!("{item} needs a StreamId or a StreamUrl"))),
    }
}

/// Where an input comes from: `StreamUrl` (RTMP or HTTP-FLV; it wins) or `StreamId`.
pub(super) fn source(v: &Value, item: &str) -> Result<Source, ZegoError> {
    match (string(v, "StreamUrl"), string(v, "StreamId")) {
        (Some(url), _) => {
            url_policy::syntax(url, Purpose::MixInput)
                .map_err(|e| bad(format!("{item}.StreamUrl {e}")))?;
            Ok(Source::Url(url.to_string()))
        }
        (None, Some(id)) => Ok(Source::Stream(id.to_string())),
        (None, None) => Err(bad(format!("{item} needs a StreamId or a StreamUrl"))),
    }
}

/// Returns the output and its Fps (audio-only outputs have none).
/// An output as read: the output, its Fps, and (VideoEncId 4) its base layer.
#[derive(Debug)]
pub(super) struct WireOutput {
    pub output: MixOutput,
    pub fps: Option<i64>,
    /// H.264 "SVC": the base layer, published beside the output as a rendition of its
    /// own (x264 has no scalable coding; see [`base_layer`]).
    pub base: Option<MixOutput>,
}

/// The suffix of the stream a base layer is published under (`{StreamId}_base`).
pub const BASE_LAYER_SUFFIX: &str = "_base";

/// VideoEncId 4: `ExtraLayers` (exactly one, `VideoBitrate` in bps, below the output's)
/// becomes a second H.264 rendition of the same picture at that bitrate, published as
/// `{StreamId}_base`: the layer a player on a poor link switches to.
fn base_layer(v: &Value, i: usize, main: &MixOutput) -> Result<MixOutput, ZegoError> {
    let at = |f: &str| format!("MixOutput[{i}].{f}");
    let layers = match v.get("ExtraLayers") {
        Some(Value::Array(a)) => a,
        _ => {
            return Err(bad(format!(
                "{} (one base layer) is required with VideoEncId 4",
                at("ExtraLayers")
            )));
        }
    };
    let [layer] = layers.as_slice() else {
        return Err(bad(format!(
            "{} must hold exactly one layer, not {}",
            at("ExtraLayers"),
            layers.len()
        )));
    };
    let Some(video) = main.video else {
        return Err(bad(format!("{} needs a video output", at("ExtraLayers"))));
    };
    let bps = int(layer, "VideoBitrate")?.unwrap_or(0);
    if bps <= 0 || bps >= video.bitrate_bps as i64 {
        return Err(bad(format!(
            "{}[0].VideoBitrate must be above 0 and below the output's {} bps, not {bps}",
            at("ExtraLayers"),
            video.bitrate_bps
        )));
    }
    let Target::Stream(id) = &main.target else {
        return Err(bad(format!(
            "{}: VideoEncId 4 needs a StreamId output (its base layer is published as \
             {{StreamId}}{BASE_LAYER_SUFFIX})",
            at("StreamUrl")
        )));
    };
    Ok(MixOutput {
        target: Target::Stream(format!("{id}{BASE_LAYER_SUFFIX}")),
        video: Some(VideoOut {
            bitrate_bps: bps as u32,
            ..video
        }),
        room: None,
        ..main.clone()
    })
}

pub(super) fn output(v: &Value, i: usize, default_channels: i64) -> Result<WireOutput, ZegoError> {
    let at = |f: &str| format!("MixOutput[{i}].{f}");
    let low_bitrate_hd = match int(v, "LowBitrateHD")? {
        None | Some(0) => false,
        Some(1) => true,
        Some(x) => {
            return Err(bad(format!(
                "{} must be 0 or 1, not {x}",
                at("LowBitrateHD")
            )));
        }
    };
    let enc_id = int(v, "VideoEncId")?;
    let codec = match enc_id {
        None | Some(0) | Some(4) => VideoCodec::H264,
        Some(3) => VideoCodec::H265 { low_bitrate_hd },
        Some(2) => VideoCodec::Vp8,
        Some(c) => {
            return Err(bad(format!(
                "{} must be 0 (H.264), 2 (VP8), 3 (H.265) or 4 (SVC), not {c}",
                at("VideoEncId")
            )));
        }
    };
    if low_bitrate_hd && codec == VideoCodec::H264 {
        return Err(bad(format!(
            "{} needs VideoEncId 3 (H.265)",
            at("LowBitrateHD")
        )));
    }
    let room = match v.get("TargetRoom") {
        None | Some(Value::Null) => None,
        Some(r) if r.is_object() => match (string(r, "RoomId"), string(r, "UserId")) {
            (Some(room_id), Some(user_id)) => {
                ids::validate(IdKind::Room, room_id)
                    .and_then(|_| ids::validate(IdKind::User, user_id))
                    .map_err(|e| bad(format!("{}: {e}", at("TargetRoom"))))?;
                Some(RoomTarget {
                    room_id: room_id.to_string(),
                    user_id: user_id.to_string(),
                })
            }
            (None, None) => None,
            _ => {
                return Err(bad(format!(
                    "{} needs both RoomId and UserId",
                    at("TargetRoom")
                )));
            }
        },
        Some(_) => return Err(bad(format!("{} must be an object", at("TargetRoom")))),
    };
    let target = target(v, &format!("MixOutput[{i}]"))?;
    if codec == VideoCodec::Vp8 && matches!(target, Target::Url(_)) {
        return Err(bad(format!(
            "{}: VideoEncId 2 (VP8) needs a StreamId output: RTMP servers downstream do not \
             take VP8; this server plays it over WHEP and gives its RTMP, HTTP-FLV and HLS \
             players an H.264 rendition",
            at("StreamUrl")
        )));
    }
    let (audio_bitrate_bps, channels, audio_codec) = audio_fields(v, i, default_channels)?;
    let width = int(v, "Width")?.unwrap_or(0);
    let height = int(v, "Height")?.unwrap_or(0);
    let fps = int(v, "Fps")?;
    let video = if width <= 1 && height <= 1 {
        None
    } else {
        // Ranges are core's shared rules (MixSpec::validate), named back by errors.rs.
        let bitrate = int(v, "VideoBitrate")?
            .ok_or_else(|| bad(format!("{} is required (bps)", at("VideoBitrate"))))?;
        let u = |x: i64| x.clamp(0, u32::MAX as i64) as u32;
        Some(VideoOut {
            width: u(width),
            height: u(height),
            bitrate_bps: u(bitrate),
            codec,
        })
    };
    let output = MixOutput {
        target,
        video,
        audio_bitrate_bps,
        channels,
        room,
        audio_codec,
        sample_rate: audio_codec.default_rate(),
    };
    let base = match enc_id {
        Some(4) => Some(base_layer(v, i, &output)?),
        _ => None,
    };
    Ok(WireOutput { output, fps, base })
}

/// The `MixOutput` items (1 to the app's limit) and the top-level default `SoundChannel`.
pub(super) fn output_items(call: &Call) -> Result<(Vec<Value>, i64), ZegoError> {
    let p = call.params;
    let raw = objects(p, "MixOutput")?;
    if raw.is_empty() {
        return Err(bad("MixOutput is required"));
    }
    let max = call.app.config.limits.max_mix_outputs as usize;
    if raw.len() > max {
        return Err(ZegoError::new(
            MIX_TOO_MANY_OUTPUTS,
            format!("{} outputs; at most {max} are allowed", raw.len()),
        ));
    }
    let channels = in_range(top_int(p, "SoundChannel")?, "SoundChannel", 1, 2, 1)?;
    Ok((raw, channels))
}

pub(super) fn max_idle(p: &Params) -> Result<u32, ZegoError> {
    Ok(in_range(
        top_int(p, "MaxIdleTime")?,
        "MaxIdleTime",
        MIN_IDLE_S as i64,
        MAX_IDLE_S as i64,
        MIN_IDLE_S as i64,
    )? as u32)
}

pub(super) fn ex_para(p: &Params) -> Result<Vec<(String, String)>, ZegoError> {
    objects(p, "ExPara")?
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let k = string(o, "Key")
                .ok_or_else(|| ZegoError::new(110200172, format!("ExPara[{i}].Key is required")))?;
            let v = o.get("Value").map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            Ok((k.to_string(), v.unwrap_or_default()))
        })
        .collect()
}

/// `RecvBufferLevel`, `WaitVideoInput`, `AlignmentType` (all fixed once started).
pub(super) fn timing(p: &Params) -> Result<Timing, ZegoError> {
    let recv_buffer_ms = in_range(
        top_int(p, "RecvBufferLevel")?,
        "RecvBufferLevel",
        0,
        MAX_RECV_BUFFER_MS as i64,
        0,
    )? as u32;
    let wait_video = in_range(top_int(p, "WaitVideoInput")?, "WaitVideoInput", 0, 1, 0)? == 1;
    let alignment = match in_range(top_int(p, "AlignmentType")?, "AlignmentType", 0, 2, 0)? {
        0 => Alignment::None,
        1 => Alignment::Listed,
        _ => Alignment::All,
    };
    Ok(Timing {
        recv_buffer_ms,
        wait_video,
        alignment,
    })
}

/// `UserData` (base64, at most 4000 characters) and `SoundLevel` (0/1).
pub(super) fn stream_data(p: &Params) -> Result<StreamData, ZegoError> {
    use base64::Engine as _;
    let user_data = match p.non_empty("UserData") {
        None => None,
        Some(text) if text.len() > 4_000 => {
            return Err(bad(format!(
                "UserData is at most 4000 base64 characters, not {}",
                text.len()
            )));
        }
        Some(text) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| bad("UserData must be base64"))?,
        ),
    };
    let sound_levels = in_range(top_int(p, "SoundLevel")?, "SoundLevel", 0, 1, 0)? == 1;
    // ZEGO has no field for passing the inputs' SEI on.
    Ok(StreamData {
        user_data,
        sound_levels,
        pass_input_sei: false,
        sound_levels_by_stream: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_tile_fields_are_read_as_the_vendor_writes_them() {
        let i = input(
            &json!({"StreamId": "s", "UID": "user-7",
                    "RectInfo": {"Top": 0, "Left": 0, "Bottom": 240, "Right": 320},
                    "Image": {"Url": "http://x/no_camera.png", "DisplayMode": 2},
                    "BlurInfo": {"TopPadding": 10, "LeftPadding": 20},
                    "Label": {"Text": "Hello", "Left": 10, "Top": 12,
                              "Font": {"FontType": 1, "FontSize": 26, "FontColor": 256,
                                       "Transparency": 50, "BorderColor": 255}}}),
            0,
            0,
        )
        .unwrap();
        let d = &i.decor;
        assert_eq!(
            d.placeholder,
            Some(Placeholder {
                image: "http://x/no_camera.png".into(),
                mode: PlaceholderMode::NoVideo
            })
        );
        assert_eq!(d.uid.as_deref(), Some("user-7"));
        assert_eq!(
            d.blur,
            Some(Padding {
                top: 10,
                left: 20,
                bottom: 0,
                right: 0
            })
        );
        let l = d.label.as_ref().unwrap();
        assert_eq!((l.text.as_str(), l.left, l.top), ("Hello", 10, 12));
        // 256 = G 1 in R + 256·G + 65536·B; 255 = pure red.
        assert_eq!(l.font.rgb, 0x000100);
        assert_eq!(l.font.border_rgb, Some(0xff0000));
        assert_eq!((l.font.face, l.font.size, l.font.opacity), (1, 26, 50));

        // Defaults: white, 24 px, opaque, no outline; an empty Url shows the video.
        let i = input(
            &json!({"StreamId": "s", "Image": {"Url": ""},
                    "Label": {"Text": "你好", "Left": 0, "Top": 0, "Font": {}}}),
            0,
            0,
        )
        .unwrap();
        assert!(i.decor.placeholder.is_none());
        let f = i.decor.label.unwrap().font;
        assert_eq!(
            (f.rgb, f.size, f.opacity, f.border_rgb),
            (0xffffff, 24, 100, None)
        );

        // Label errors carry the text watermark code.
        for bad_label in [
            json!({"Left": 0, "Top": 0, "Font": {}}),
            json!({"Text": "a", "Top": 0, "Font": {}}),
            json!({"Text": "a", "Left": 0, "Top": 0}),
            json!({"Text": "a", "Left": 0, "Top": 0, "Font": {"FontSize": 101}}),
            json!({"Text": "a", "Left": 0, "Top": 0, "Font": {"FontType": 4}}),
            json!({"Text": "字".repeat(101), "Left": 0, "Top": 0, "Font": {}}),
        ] {
            let e = input(&json!({"StreamId": "s", "Label": bad_label}), 0, 0).unwrap_err();
            assert_eq!(e.code, MIX_LABEL_BAD, "{}", e.message);
        }
        // 300 Latin characters fit; the image scheme is checked unless CheckImageMode 2.
        let long = "a".repeat(300);
        assert!(
            input(
                &json!({"StreamId": "s", "Label": {"Text": long, "Left": 0, "Top": 0, "Font": {}}}),
                0,
                0
            )
            .is_ok()
        );
        let ftp = json!({"StreamId": "s", "Image": {"Url": "ftp://x/y.png"}});
        assert_eq!(input(&ftp, 0, 0).unwrap_err().code, MIX_IMAGE_PROTOCOL);
        assert!(input(&ftp, 0, 2).is_ok());
        assert!(
            input(
                &json!({"StreamId": "s", "Image": {"Url": "http://x", "DisplayMode": 3}}),
                0,
                0
            )
            .is_err()
        );
        assert!(
            input(&json!({"StreamId": "s", "UID": "u".repeat(64)}), 0, 0).is_ok(),
            "length is core's rule"
        );
    }

    #[test]
    fn timing_fields_and_target_rooms() {
        let t = timing(&params(
            json!({"RecvBufferLevel": 500, "WaitVideoInput": 1, "AlignmentType": 2}),
        ))
        .unwrap();
        assert_eq!(
            t,
            Timing {
                recv_buffer_ms: 500,
                wait_video: true,
                alignment: Alignment::All
            }
        );
        assert_eq!(timing(&params(json!({}))).unwrap(), Timing::default());
        assert!(timing(&params(json!({"RecvBufferLevel": 4001}))).is_err());
        assert!(timing(&params(json!({"AlignmentType": 3}))).is_err());

        let w = output(
            &json!({"StreamId": "out", "Width": 320, "Height": 240, "Fps": 15,
                    "VideoBitrate": 500000, "TargetRoom": {"RoomId": "r1", "UserId": "mixer"},
                    "ExtraLayers": [{"VideoBitrate": 1200000}], "LowBitrateHD": 0}),
            0,
            1,
        )
        .unwrap();
        // ExtraLayers means nothing without VideoEncId 4 (the vendor's own example).
        assert!(w.base.is_none());
        let o = w.output;
        assert_eq!(
            o.room,
            Some(RoomTarget {
                room_id: "r1".into(),
                user_id: "mixer".into()
            })
        );
        let half = output(
            &json!({"StreamId": "out", "Width": 320, "Height": 240, "Fps": 15,
                    "VideoBitrate": 500000, "TargetRoom": {"RoomId": "r1"}}),
            0,
            1,
        );
        assert!(half.unwrap_err().message.contains("TargetRoom"));
    }

    #[test]
    fn svc_publishes_its_base_layer_beside_the_output() {
        let svc = |layers: Value, target: Value| {
            let mut v = json!({"Width": 320, "Height": 240, "Fps": 15, "VideoBitrate": 800000,
                               "VideoEncId": 4, "ExtraLayers": layers});
            if let (Value::Object(m), Value::Object(t)) = (&mut v, target) {
                m.extend(t);
            }
            output(&v, 0, 1)
        };
        let w = svc(json!([{"VideoBitrate": 200000}]), json!({"StreamId": "s"})).unwrap();
        let base = w.base.unwrap();
        assert_eq!(base.target, Target::Stream("s_base".into()));
        assert_eq!(
            base.video.map(|v| (v.width, v.bitrate_bps)),
            Some((320, 200_000))
        );
        assert_eq!(w.output.video.map(|v| v.bitrate_bps), Some(800_000));
        for (layers, target, word) in [
            (json!([]), json!({"StreamId": "s"}), "exactly one"),
            (
                json!([{"VideoBitrate": 900000}]),
                json!({"StreamId": "s"}),
                "below",
            ),
            (json!(null), json!({"StreamId": "s"}), "required"),
            (
                json!([{"VideoBitrate": 1}]),
                json!({"StreamUrl": "rtmp://x/y"}),
                "StreamId",
            ),
        ] {
            let e = svc(layers, target).unwrap_err();
            assert!(e.message.contains(word), "{}", e.message);
        }
    }

    fn params(body: Value) -> Params {
        let mut p = Params::default();
        if let Value::Object(m) = body {
            p.merge_json(m);
        }
        p
    }

    #[test]
    fn background_colour_in_both_spellings() {
        assert_eq!(parse_color(&params(json!({}))).unwrap(), 0);
        let hex = params(json!({"BackGroundColorHex": "0x87CEFA00"}));
        assert_eq!(parse_color(&hex).unwrap(), 0x87cefa);
        // The integer form is the decimal value of 0xRRGGBBAA (beyond int32).
        let int = params(json!({"BackgroundColor": 2278488576u64}));
        assert_eq!(parse_color(&int).unwrap(), 0x87cefa);
        // Hex wins when both are given.
        let both =
            params(json!({"BackGroundColorHex": "0xFF000000", "BackgroundColor": 2278488576u64}));
        assert_eq!(parse_color(&both).unwrap(), 0xff0000);
        let alpha = params(json!({"BackGroundColorHex": "0x87CEFA80"}));
        assert!(parse_color(&alpha).unwrap_err().message.contains("alpha"));
        assert!(parse_color(&params(json!({"BackGroundColorHex": "blue"}))).is_err());
    }

    #[test]
    fn outputs_of_one_pixel_are_audio_only_and_units_are_checked() {
        let WireOutput { output: o, fps, .. } = output(
            &json!({"StreamId": "a", "Width": 1, "Height": 1, "Fps": 1, "VideoBitrate": 1}),
            0,
            1,
        )
        .unwrap();
        assert!(o.video.is_none());
        assert_eq!(fps, Some(1));
        assert_eq!((o.audio_bitrate_bps, o.channels), (48_000, 1));

        let o = output(
            &json!({"StreamUrl": "rtmp://x/y", "StreamId": "ignored", "Width": 640, "Height": 360,
                    "Fps": 15, "VideoBitrate": "800000", "SoundChannel": 2}),
            0,
            1,
        )
        .unwrap()
        .output;
        assert_eq!(o.target, Target::Url("rtmp://x/y".into()));
        assert_eq!(o.video.map(|v| v.bitrate_bps), Some(800_000));
        assert_eq!(o.channels, 2);

        // Sizes and bitrates are core's rules (checked by MixSpec::validate); a missing
        // VideoBitrate is this dialect's.
        let missing = output(&json!({"StreamId": "a", "Width": 640, "Height": 360}), 0, 1);
        assert!(missing.unwrap_err().message.contains("VideoBitrate"));
    }

    #[test]
    fn inputs_read_the_vendors_fields() {
        let i = input(&json!({"StreamId": "s", "RectInfo": {}}), 0, 0).unwrap();
        assert!(i.rect.is_none(), "an empty RectInfo is audio only");
        let i = input(
            &json!({"StreamId": "s", "ContentControl": 2, "RenderMode": 1, "Volume": 0,
                    "RectInfo": {"Top": 10, "Left": 20, "Bottom": 110, "Right": 220, "Layer": 3}}),
            0,
            0,
        )
        .unwrap();
        assert_eq!(i.content, Content::VideoOnly);
        assert_eq!(i.render, RenderMode::Fit);
        assert_eq!(i.volume, 0);
        assert_eq!(
            i.rect.map(|r| (r.layer, r.left, r.top, r.right, r.bottom)),
            Some((3, 20, 10, 220, 110))
        );
        assert!(input(&json!({"StreamId": "s", "Volume": 201}), 0, 0).is_err());
        assert!(input(&json!({"StreamId": "s", "ContentControl": 3}), 0, 0).is_err());
        assert!(input(&json!({"RectInfo": {}}), 0, 0).is_err());
        let i = input(
            &json!({"StreamId": "s", "RectInfo": {"CornerRadius": 8, "Top": 0, "Left": 0,
                    "Bottom": 100, "Right": 100}}),
            0,
            0,
        )
        .unwrap();
        assert_eq!(i.decor.corner_radius, 8);
        let r = input(
            &json!({"StreamId": "s", "RectInfo": {"CornerRadius": 101}}),
            0,
            0,
        );
        assert!(r.unwrap_err().message.contains("CornerRadius"));
    }
}
