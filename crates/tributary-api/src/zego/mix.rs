//! The mixing actions: StartMix, StopMix, GetMixTaskInfo, StartAutoMix, StopAutoMix.
//!
//! Wire fields in, a vendor-neutral [`MixTask`] out. Fields the engine does not implement
//! yet are refused with 110200002 and a Message naming them, never silently dropped.
//! Decisions where the vendor is silent or contradicts itself (see the spec §6, §8):
//! - `AudioCodec` absent means AAC-LC (the vendor's default HE-AAC is not implemented);
//!   an explicit 0, 2 or 3 is refused.
//! - A `Sequence` not greater than the task's last one is refused with 110200002 and a
//!   Message saying so; nothing is applied.
//! - An output of `Width` and `Height` ≤ 1 is audio-only (the vendor's 1×1 convention).
//! - `Fps` may go up to 60 (the vendor's default cap is 20, raised by support).
//! - StartAutoMix outputs: `StreamUrl` wins over `StreamId`, as in StartMix.

use serde_json::{Value, json};

use tributary_core::mix::{
    Content, MixError, MixInput, MixOutput, MixSpec, Overlay, Rect, RenderMode, Source, Target,
    VideoOut,
};
use tributary_core::mix_task::{AutoExtra, MAX_AUTO_EXTRAS, MixTask, TaskError, TaskKind};
use tributary_core::url_policy::{self, Purpose};

use super::codes::*;
use super::envelope::Data;
use super::params::Params;
use super::{Call, required};
use crate::control::ControlError;
use crate::mixing::{EngineRefusal, MixControl, MixControlError, StopReason};

fn bad(msg: impl Into<String>) -> ZegoError {
    ZegoError::new(MIX_BAD_PARAM, msg)
}

fn mixing<'a>(call: &'a Call) -> Result<&'a MixControl, ZegoError> {
    call.api
        .mixing
        .as_deref()
        .ok_or_else(|| ZegoError::new(GW_ACTION_UNSUPPORTED, "this node runs no mixing engine"))
}

/// An integer field: a JSON number, or a string of digits (GET query values).
fn int(v: &Value, field: &str) -> Result<Option<i64>, ZegoError> {
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

fn string<'v>(v: &'v Value, field: &str) -> Option<&'v str> {
    v.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn in_range(v: Option<i64>, field: &str, lo: i64, hi: i64, default: i64) -> Result<i64, ZegoError> {
    let v = v.unwrap_or(default);
    if v < lo || v > hi {
        return Err(bad(format!("{field} must be within [{lo}, {hi}], not {v}")));
    }
    Ok(v)
}

/// Refuses a field the engine does not implement yet when it asks for something.
fn refuse_if_set(v: &Value, field: &str, what: &str) -> Result<(), ZegoError> {
    let set = match v.get(field) {
        None | Some(Value::Null) => false,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::String(s)) => !s.is_empty() && s != "0",
        Some(Value::Bool(b)) => *b,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => o.values().any(|x| match x {
            Value::Number(n) => n.as_f64() != Some(0.0),
            Value::String(s) => !s.is_empty(),
            Value::Null => false,
            _ => true,
        }),
    };
    if set {
        return Err(bad(format!(
            "{field} ({what}) is not supported by this server yet; leave it out"
        )));
    }
    Ok(())
}

/// A parameter that is a JSON object (POST body) or its JSON text (how Params keeps it).
fn object(p: &Params, key: &str) -> Result<Option<Value>, ZegoError> {
    match p.get(key) {
        None | Some("") => Ok(None),
        Some(text) => serde_json::from_str::<Value>(text)
            .ok()
            .filter(Value::is_object)
            .map(Some)
            .ok_or_else(|| bad(format!("{key} must be an object"))),
    }
}

fn objects(p: &Params, key: &str) -> Result<Vec<Value>, ZegoError> {
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

fn top_int(p: &Params, key: &str) -> Result<Option<i64>, ZegoError> {
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
fn parse_color(p: &Params) -> Result<u32, ZegoError> {
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

fn check_image_syntax(uri: &str, field: &str) -> Result<(), ZegoError> {
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

fn rect(v: &Value, field: &str) -> Result<Option<Rect>, ZegoError> {
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

fn input(v: &Value, i: usize) -> Result<MixInput, ZegoError> {
    let at = |f: &str| format!("MixInput[{i}].{f}");
    let source = match (string(v, "StreamUrl"), string(v, "StreamId")) {
        (Some(url), _) => {
            url_policy::syntax(url, Purpose::MixInput)
                .map_err(|e| bad(format!("{} {e}", at("StreamUrl"))))?;
            Source::Url(url.to_string())
        }
        (None, Some(id)) => Source::Stream(id.to_string()),
        (None, None) => {
            return Err(bad(format!(
                "MixInput[{i}] needs a StreamId or a StreamUrl"
            )));
        }
    };
    if let Some(img) = v.get("Image")
        && string(img, "Url").is_some()
    {
        return Err(bad(format!(
            "{} (placeholder images) is not supported by this server yet; leave it out",
            at("Image")
        )));
    }
    refuse_if_set(v, "Label", "text watermarks")
        .map_err(|e| bad(format!("MixInput[{i}].{}", e.message)))?;
    refuse_if_set(v, "BlurInfo", "blurred margins")
        .map_err(|e| bad(format!("MixInput[{i}].{}", e.message)))?;
    refuse_if_set(v, "UID", "user ids in SEI")
        .map_err(|e| bad(format!("MixInput[{i}].{}", e.message)))?;
    if let Some(r) = v.get("RectInfo") {
        refuse_if_set(r, "CornerRadius", "rounded corners")
            .map_err(|e| bad(format!("MixInput[{i}].RectInfo.{}", e.message)))?;
    }
    let content = match in_range(int(v, "ContentControl")?, &at("ContentControl"), 0, 2, 0)? {
        0 => Content::AudioVideo,
        1 => Content::AudioOnly,
        _ => Content::VideoOnly,
    };
    let render = match in_range(int(v, "RenderMode")?, &at("RenderMode"), 0, 1, 0)? {
        0 => RenderMode::Crop,
        _ => RenderMode::Fit,
    };
    let volume = in_range(int(v, "Volume")?, &at("Volume"), 0, 200, 100)? as u32;
    Ok(MixInput {
        source,
        rect: rect(v, "RectInfo")?,
        content,
        volume,
        render,
        crop: None,
    })
}

fn audio_fields(v: &Value, i: usize, default_channels: i64) -> Result<(u32, u8), ZegoError> {
    let at = |f: &str| format!("MixOutput[{i}].{f}");
    match int(v, "AudioCodec")? {
        None | Some(1) => {}
        Some(c @ (0 | 2 | 3)) => {
            let name = ["HE-AAC", "", "MP3", "Opus"][c as usize];
            return Err(bad(format!(
                "{} = {c} ({name}) is not supported by this server yet; use 1 (AAC-LC)",
                at("AudioCodec")
            )));
        }
        Some(c) => return Err(bad(format!("{} must be 0–3, not {c}", at("AudioCodec")))),
    }
    let bitrate = in_range(
        int(v, "AudioBitrate")?,
        &at("AudioBitrate"),
        8_000,
        320_000,
        48_000,
    )? as u32;
    let channels = in_range(
        int(v, "SoundChannel")?,
        &at("SoundChannel"),
        1,
        2,
        default_channels,
    )? as u8;
    Ok((bitrate, channels))
}

fn target(v: &Value, i: usize) -> Result<Target, ZegoError> {
    match (string(v, "StreamUrl"), string(v, "StreamId")) {
        (Some(url), _) => {
            url_policy::syntax(url, Purpose::MixOutput)
                .map_err(|e| bad(format!("MixOutput[{i}].StreamUrl {e}")))?;
            Ok(Target::Url(url.to_string()))
        }
        (None, Some(id)) => Ok(Target::Stream(id.to_string())),
        (None, None) => Err(bad(format!(
            "MixOutput[{i}] needs a StreamId or a StreamUrl"
        ))),
    }
}

/// Returns the output and its Fps (audio-only outputs have none).
fn output(
    v: &Value,
    i: usize,
    default_channels: i64,
) -> Result<(MixOutput, Option<i64>), ZegoError> {
    let at = |f: &str| format!("MixOutput[{i}].{f}");
    match int(v, "VideoEncId")? {
        None | Some(0) => {}
        Some(c) => {
            return Err(bad(format!(
                "{} = {c} (VP8/H.265/SVC) is not supported by this server yet; use 0 (H.264)",
                at("VideoEncId")
            )));
        }
    }
    for (f, what) in [
        ("ExtraLayers", "SVC layers"),
        ("LowBitrateHD", "H.265 low-bitrate HD"),
        ("TargetRoom", "registering the output in a room"),
    ] {
        refuse_if_set(v, f, what).map_err(|e| bad(format!("MixOutput[{i}].{}", e.message)))?;
    }
    let target = target(v, i)?;
    let (audio_bitrate_bps, channels) = audio_fields(v, i, default_channels)?;
    let width = int(v, "Width")?.unwrap_or(0);
    let height = int(v, "Height")?.unwrap_or(0);
    let fps = int(v, "Fps")?;
    let video = if width <= 1 && height <= 1 {
        None
    } else {
        if !(0..=3000).contains(&width) || width % 2 != 0 {
            return Err(ZegoError::new(
                MIX_BAD_WIDTH,
                format!(
                    "{} must be an even number within [0, 3000], not {width}",
                    at("Width")
                ),
            ));
        }
        if !(2..=3000).contains(&height) || height % 2 != 0 {
            return Err(bad(format!(
                "{} must be an even number within [0, 3000], not {height}",
                at("Height")
            )));
        }
        let bitrate = int(v, "VideoBitrate")?
            .ok_or_else(|| bad(format!("{} is required (bps)", at("VideoBitrate"))))?;
        if !(10_000..=50_000_000).contains(&bitrate) {
            return Err(bad(format!(
                "{} is in bps and must be within [10000, 50000000], not {bitrate}",
                at("VideoBitrate")
            )));
        }
        Some(VideoOut {
            width: width as u32,
            height: height as u32,
            bitrate_bps: bitrate as u32,
        })
    };
    Ok((
        MixOutput {
            target,
            video,
            audio_bitrate_bps,
            channels,
        },
        fps,
    ))
}

/// The `MixOutput` items (1 to the app's limit) and the top-level default `SoundChannel`.
fn output_items(call: &Call) -> Result<(Vec<Value>, i64), ZegoError> {
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

fn max_idle(p: &Params) -> Result<u32, ZegoError> {
    Ok(in_range(top_int(p, "MaxIdleTime")?, "MaxIdleTime", 90, 14_400, 90)? as u32)
}

fn ex_para(p: &Params) -> Result<Vec<(String, String)>, ZegoError> {
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

fn top_level_refusals(p: &Params) -> Result<(), ZegoError> {
    for (f, what) in [
        ("ByPass", "single-stream pass-through"),
        ("UserData", "SEI user data"),
        ("SoundLevel", "sound levels in SEI"),
        ("AlignmentType", "NTP alignment"),
        ("RecvBufferLevel", "a minimum pull buffer"),
        ("WaitVideoInput", "waiting for video"),
    ] {
        if let Some(v) = p.non_empty(f)
            && v != "0"
        {
            return Err(bad(format!(
                "{f} ({what}) is not supported by this server yet; leave it out"
            )));
        }
    }
    Ok(())
}

fn spec_error(e: MixError) -> ZegoError {
    let code = match &e {
        MixError::TooManyInputs { .. } => MIX_TOO_MANY_INPUTS,
        MixError::TooManyOutputs { .. } => MIX_TOO_MANY_OUTPUTS,
        MixError::DuplicateInput(_) => MIX_DUPLICATE_INPUT,
        MixError::DuplicateOutput(_) => MIX_DUPLICATE_OUTPUT,
        MixError::InputIsOutput(_) => MIX_IN_EQUALS_OUT,
        MixError::BadWidth { .. } => MIX_BAD_WIDTH,
        MixError::BadWatermark(_) => MIX_WATERMARK_BAD,
        _ => MIX_BAD_PARAM,
    };
    ZegoError::new(code, e.to_string())
}

fn control_error(e: MixControlError) -> ZegoError {
    match e {
        MixControlError::Rule(TaskError::Spec(s)) => spec_error(s),
        MixControlError::Rule(r @ TaskError::NotOwner { .. }) => {
            ZegoError::new(MIX_NOT_OWNER, r.to_string())
        }
        MixControlError::Rule(r @ TaskError::NotFound(_)) => {
            ZegoError::new(MIX_TASK_NOT_FOUND, r.to_string())
        }
        MixControlError::Rule(r @ TaskError::OutputTaken { .. }) => {
            ZegoError::new(MIX_DUPLICATE_OUTPUT, r.to_string())
        }
        MixControlError::Rule(r @ TaskError::TooManyTasks { .. }) => {
            ZegoError::new(MIX_OVERLOAD, r.to_string())
        }
        MixControlError::Rule(r) => ZegoError::new(MIX_BAD_PARAM, r.to_string()),
        MixControlError::Engine(EngineRefusal::OverBudget(m)) => ZegoError::new(MIX_OVERLOAD, m),
        MixControlError::Engine(EngineRefusal::InputMissing(m)) => {
            ZegoError::new(MIX_INPUT_MISSING, m)
        }
        MixControlError::Engine(EngineRefusal::ImageReference(m)) => {
            ZegoError::new(MIX_IMAGE_PROTOCOL, m)
        }
        MixControlError::Engine(EngineRefusal::ImageLoad(m)) => ZegoError::new(MIX_IMAGE_FETCH, m),
        MixControlError::Engine(EngineRefusal::InputUrl(m)) => {
            ZegoError::new(MIX_INPUT_STREAM_ERROR, m)
        }
        MixControlError::Engine(EngineRefusal::OutputUrl(m)) => {
            ZegoError::new(MIX_OUTPUT_STREAM_ERROR, m)
        }
        MixControlError::Control(ControlError::UnknownApp(id)) => {
            ZegoError::new(GW_UNKNOWN_APP, format!("unknown AppId {id}"))
        }
        MixControlError::Control(e) => ZegoError::new(MIX_FAILED_RETRY, e.to_string()),
        MixControlError::Store(e) => {
            tracing::error!(error = %e, "store write failed");
            ZegoError::new(MIX_FAILED_RETRY, "the task could not be saved; retry")
        }
    }
}

fn play_info(call: &Call, task: &MixTask) -> Value {
    let urls = call.control().play_urls();
    let app_id = call.app.config.app_id;
    let infos: Vec<Value> = task
        .spec
        .outputs
        .iter()
        .map(|o| match &o.target {
            Target::Stream(id) | Target::Replace(id) => json!({
                "StreamId": id,
                "RTMP": urls.rtmp(app_id, id),
                "HLS": urls.hls(app_id, id),
                "FLV": urls.flv(app_id, id),
                "Status": 0,
                "UserName": "",
            }),
            Target::Url(u) => json!({
                "StreamId": "", "RTMP": u, "HLS": "", "FLV": "", "Status": 0, "UserName": "",
            }),
        })
        .collect();
    json!({
        "UserId": task.user_id,
        "Sequence": task.sequence.unwrap_or(0),
        "RoomId": task.room_id,
        "PlayInfo": infos,
    })
}

/// Starts or updates the task; the reply carries its play URLs.
fn accept(call: &Call, mixing: &MixControl, task: MixTask) -> Result<Data, ZegoError> {
    let (stored, _) = mixing
        .start(call.app.config.app_id, task)
        .map_err(control_error)?;
    Ok(Data::Value(play_info(call, &stored)))
}

pub(super) fn start_mix(call: &Call) -> Result<Data, ZegoError> {
    let p = call.params;
    let mixing = mixing(call)?;
    let task_id = required(p, "TaskId", MIX_BAD_PARAM)?.to_string();
    let user_id = required(p, "UserId", MIX_BAD_PARAM)?.to_string();
    top_level_refusals(p)?;
    if p.get("MixInput").is_none() {
        return Err(bad("MixInput is required"));
    }
    let raw_inputs = objects(p, "MixInput")?;
    let max_inputs = call.app.config.limits.max_mix_inputs as usize;
    if raw_inputs.len() > max_inputs {
        return Err(ZegoError::new(
            MIX_TOO_MANY_INPUTS,
            format!(
                "{} inputs; at most {max_inputs} are allowed",
                raw_inputs.len()
            ),
        ));
    }
    let inputs = raw_inputs
        .iter()
        .enumerate()
        .map(|(i, v)| input(v, i))
        .collect::<Result<Vec<_>, _>>()?;
    let (raw_outputs, default_channels) = output_items(call)?;
    let mut outputs = Vec::new();
    let mut fps = None;
    for (i, v) in raw_outputs.iter().enumerate() {
        let (o, f) = output(v, i, default_channels)?;
        // Frame rates follow the first video output.
        if o.video.is_some() && fps.is_none() {
            fps = Some(f.ok_or_else(|| bad(format!("MixOutput[{i}].Fps is required")))?);
        }
        outputs.push(o);
    }
    let fps = in_range(fps, "MixOutput[0].Fps", 1, 60, 1)? as u32;
    let check_mode = in_range(top_int(p, "CheckImageMode")?, "CheckImageMode", 0, 2, 0)?;
    let background_image = p.non_empty("BackgroundImage").map(str::to_string);
    if let Some(uri) = &background_image
        && check_mode < 2
    {
        check_image_syntax(uri, "BackgroundImage")?;
    }
    let watermark = match object(p, "WaterMark")? {
        None => None,
        Some(w) => {
            let Some(image) = string(&w, "Image") else {
                return Err(ZegoError::new(
                    MIX_WATERMARK_EMPTY,
                    "WaterMark.Image is required",
                ));
            };
            if check_mode < 2 {
                check_image_syntax(image, "WaterMark.Image")?;
            }
            let r = rect(&w, "RectInfo")?
                .filter(|r| !r.is_empty())
                .ok_or_else(|| {
                    ZegoError::new(
                        MIX_WATERMARK_BAD,
                        "WaterMark.RectInfo needs Top, Left, Bottom and Right with Right > Left and Bottom > Top",
                    )
                })?;
            Some(Overlay {
                image: image.to_string(),
                rect: r,
                opaque: false,
            })
        }
    };
    let spec = MixSpec {
        inputs,
        outputs,
        fps,
        background_rgb: parse_color(p)?,
        background_image,
        watermark,
        images: Vec::new(),
        max_idle_s: max_idle(p)?,
        lenient_images: check_mode > 0,
    };
    let now = call.now_ms;
    let task = MixTask {
        task_id,
        user_id,
        room_id: p.get("RoomId").unwrap_or_default().to_string(),
        sequence: top_int(p, "Sequence")?,
        kind: TaskKind::Manual,
        spec,
        ex_para: ex_para(p)?,
        started_ms: now,
        updated_ms: now,
    };
    accept(call, mixing, task)
}

pub(super) fn stop_mix(call: &Call) -> Result<Data, ZegoError> {
    let p = call.params;
    let mixing = mixing(call)?;
    let task_id = required(p, "TaskId", MIX_BAD_PARAM)?;
    mixing
        .stop(
            call.app.config.app_id,
            task_id,
            p.non_empty("UserId"),
            top_int(p, "Sequence")?,
            StopReason::Requested,
        )
        .map_err(control_error)?;
    Ok(Data::Absent)
}

pub(super) fn get_mix_task_info(call: &Call) -> Result<Data, ZegoError> {
    let p = call.params;
    let mixing = mixing(call)?;
    let task_id = required(p, "TaskId", MIX_BAD_PARAM)?;
    let task = mixing
        .get(call.app.config.app_id, task_id)
        .map_err(|e| control_error(e.into()))?
        .ok_or_else(|| {
            ZegoError::new(MIX_TASK_NOT_FOUND, format!("task {task_id} does not exist"))
        })?;
    let duration = call.now_ms.saturating_sub(task.started_ms) / 1000;
    Ok(Data::Value(json!({
        "TaskInfo": {"TaskId": task.task_id, "MixDuration": duration}
    })))
}

pub(super) fn start_auto_mix(call: &Call) -> Result<Data, ZegoError> {
    let p = call.params;
    let mixing = mixing(call)?;
    let task_id = required(p, "TaskId", MIX_BAD_PARAM)?.to_string();
    let user_id = required(p, "UserId", MIX_BAD_PARAM)?.to_string();
    let room_id = required(p, "RoomId", MIX_BAD_PARAM)?.to_string();
    top_level_refusals(p)?;
    let raw_extras = objects(p, "ExtraMixInput")?;
    if raw_extras.len() > MAX_AUTO_EXTRAS {
        return Err(ZegoError::new(
            MIX_TOO_MANY_INPUTS,
            format!(
                "{} ExtraMixInput items; at most {MAX_AUTO_EXTRAS}",
                raw_extras.len()
            ),
        ));
    }
    let mut extras = Vec::new();
    for (i, v) in raw_extras.iter().enumerate() {
        let remove = in_range(
            int(v, "ModifyType")?,
            &format!("ExtraMixInput[{i}].ModifyType"),
            0,
            1,
            0,
        )? == 1;
        let source = match (remove, string(v, "StreamUrl"), string(v, "StreamId")) {
            (true, _, Some(id)) => Source::Stream(id.to_string()),
            (true, _, None) => {
                return Err(bad(format!(
                    "ExtraMixInput[{i}]: ModifyType 1 needs a StreamId"
                )));
            }
            (false, Some(url), _) => {
                url_policy::syntax(url, Purpose::MixInput)
                    .map_err(|e| bad(format!("ExtraMixInput[{i}].StreamUrl {e}")))?;
                Source::Url(url.to_string())
            }
            (false, None, Some(id)) => Source::Stream(id.to_string()),
            (false, None, None) => {
                return Err(bad(format!(
                    "ExtraMixInput[{i}] needs a StreamId or a StreamUrl"
                )));
            }
        };
        let volume = in_range(
            int(v, "Volume")?,
            &format!("ExtraMixInput[{i}].Volume"),
            0,
            200,
            100,
        )? as u32;
        extras.push(AutoExtra {
            source,
            volume,
            remove,
        });
    }
    let (raw_outputs, default_channels) = output_items(call)?;
    let outputs = raw_outputs
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let (bitrate, channels) = audio_fields(v, i, default_channels)?;
            Ok(MixOutput {
                target: target(v, i)?,
                video: None,
                audio_bitrate_bps: bitrate,
                channels,
            })
        })
        .collect::<Result<Vec<_>, ZegoError>>()?;
    let now = call.now_ms;
    let task = MixTask {
        task_id,
        user_id,
        room_id,
        sequence: top_int(p, "Sequence")?,
        kind: TaskKind::Auto { extras },
        spec: MixSpec {
            inputs: Vec::new(),
            outputs,
            fps: 1,
            background_rgb: 0,
            background_image: None,
            watermark: None,
            images: Vec::new(),
            max_idle_s: max_idle(p)?,
            lenient_images: false,
        },
        ex_para: ex_para(p)?,
        started_ms: now,
        updated_ms: now,
    };
    accept(call, mixing, task)
}

pub(super) fn stop_auto_mix(call: &Call) -> Result<Data, ZegoError> {
    let p = call.params;
    let mixing = mixing(call)?;
    let task_id = required(p, "TaskId", MIX_BAD_PARAM)?;
    let room_id = required(p, "RoomId", MIX_BAD_PARAM)?;
    let app_id = call.app.config.app_id;
    if let Some(t) = mixing
        .get(app_id, task_id)
        .map_err(|e| control_error(e.into()))?
        && t.room_id != room_id
    {
        return Err(bad(format!(
            "task {task_id} mixes room {:?}, not {room_id:?}",
            t.room_id
        )));
    }
    mixing
        .stop(
            app_id,
            task_id,
            p.non_empty("UserId"),
            top_int(p, "Sequence")?,
            StopReason::Requested,
        )
        .map_err(control_error)?;
    Ok(Data::Absent)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let (o, fps) = output(
            &json!({"StreamId": "a", "Width": 1, "Height": 1, "Fps": 1, "VideoBitrate": 1}),
            0,
            1,
        )
        .unwrap();
        assert!(o.video.is_none());
        assert_eq!(fps, Some(1));
        assert_eq!((o.audio_bitrate_bps, o.channels), (48_000, 1));

        let (o, _) = output(
            &json!({"StreamUrl": "rtmp://x/y", "StreamId": "ignored", "Width": 640, "Height": 360,
                    "Fps": 15, "VideoBitrate": "800000", "SoundChannel": 2}),
            0,
            1,
        )
        .unwrap();
        assert_eq!(o.target, Target::Url("rtmp://x/y".into()));
        assert_eq!(o.video.map(|v| v.bitrate_bps), Some(800_000));
        assert_eq!(o.channels, 2);

        let kbps = output(
            &json!({"StreamId": "a", "Width": 640, "Height": 360, "VideoBitrate": 800}),
            0,
            1,
        );
        assert!(kbps.unwrap_err().message.contains("bps"));
        let odd = output(
            &json!({"StreamId": "a", "Width": 641, "Height": 360, "VideoBitrate": 800000}),
            0,
            1,
        );
        assert_eq!(odd.unwrap_err().code, MIX_BAD_WIDTH);
    }

    #[test]
    fn inputs_read_the_vendors_fields() {
        let i = input(&json!({"StreamId": "s", "RectInfo": {}}), 0).unwrap();
        assert!(i.rect.is_none(), "an empty RectInfo is audio only");
        let i = input(
            &json!({"StreamId": "s", "ContentControl": 2, "RenderMode": 1, "Volume": 0,
                    "RectInfo": {"Top": 10, "Left": 20, "Bottom": 110, "Right": 220, "Layer": 3}}),
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
        assert!(input(&json!({"StreamId": "s", "Volume": 201}), 0).is_err());
        assert!(input(&json!({"StreamId": "s", "ContentControl": 3}), 0).is_err());
        assert!(input(&json!({"RectInfo": {}}), 0).is_err());
        // A zero CornerRadius asks for nothing and is accepted.
        assert!(
            input(
                &json!({"StreamId": "s", "RectInfo": {"CornerRadius": 0}}),
                0
            )
            .is_ok()
        );
        let r = input(
            &json!({"StreamId": "s", "RectInfo": {"CornerRadius": 8}}),
            0,
        );
        assert!(r.unwrap_err().message.contains("CornerRadius"));
    }
}
