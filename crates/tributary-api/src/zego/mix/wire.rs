//! StartMix / StartAutoMix wire fields → core types. Unimplemented fields are refused by
//! name (110200002), never dropped.

use serde_json::Value;

use tributary_core::mix::{
    Content, MixInput, MixOutput, Rect, RenderMode, Source, Target, VideoOut,
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

/// Refuses a field the engine does not implement yet when it asks for something.
pub(super) fn refuse_if_set(v: &Value, field: &str, what: &str) -> Result<(), ZegoError> {
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

pub(super) fn input(v: &Value, i: usize) -> Result<MixInput, ZegoError> {
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

pub(super) fn audio_fields(
    v: &Value,
    i: usize,
    default_channels: i64,
) -> Result<(u32, u8), ZegoError> {
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

pub(super) fn target(v: &Value, i: usize) -> Result<Target, ZegoError> {
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
pub(super) fn output(
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
    Ok(in_range(top_int(p, "MaxIdleTime")?, "MaxIdleTime", 90, 14_400, 90)? as u32)
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

pub(super) fn top_level_refusals(p: &Params) -> Result<(), ZegoError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
