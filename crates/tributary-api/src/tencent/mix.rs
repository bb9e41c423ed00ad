//! `CreateCommonMixStream` in, a vendor-neutral [`MixSpec`] out (spec §4), so the Tencent
//! dialect drives the same engine as the ZEGO one.
//!
//! The vendor's model: layer 1 is the background (a canvas, or a stream) and sets the
//! output size; geometry is pixels, or a fraction of the background when `0 < v < 1`;
//! a template places the other layers unless they give their own geometry. Features the
//! engine does not have yet are refused with `InvalidParameter` and a Message naming
//! them: portrait segmentation. `MixSei` travels as the user data of tributary's SEI;
//! `PassInputSei` 1 writes the inputs' own user data SEI into the output frames that show
//! them. Stickers (`InputType` 8) are image layers drawn from their `WebPageUrl` (a PNG
//! or JPEG; a web page cannot be rendered here and fails to load).

use serde_json::Value;

use tributary_core::mix::{
    Content, Crop, DEFAULT_SAMPLE_RATE, Field, Item, MixError, MixInput, MixLimits, MixOutput,
    MixSpec, Overlay, Rect, RenderMode, SAMPLE_RATES, Source, StreamData, Target, VideoOut,
};
use tributary_core::url_policy::{self, Purpose};
use tributary_core::watermark::Watermark;

use super::envelope::TcError;
use super::params::number;
use super::templates;

/// A session whose inputs are all gone is cancelled after this long (vendor: 15 min).
pub const IDLE_S: u32 = 900;

/// What a CreateCommonMixStream asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Create {
    /// Start or update the session's mix.
    Mix {
        session_id: String,
        spec: Box<MixSpec>,
    },
    /// A single input without `AllowCopy`: the vendor's way to end a mix.
    Cancel { session_id: String },
}

fn invalid(msg: impl Into<String>) -> TcError {
    TcError::new("InvalidParameter", msg)
}

fn unsupported(what: &str) -> TcError {
    invalid(format!("{what} is not supported by this server yet"))
}

/// Letters, digits and `_`, 1 to 80 bytes.
fn check_name(field: &str, v: &str) -> Result<(), TcError> {
    if v.is_empty() || v.len() > 80 || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(invalid(format!(
            "{field} must be 1 to 80 letters, digits or underscores, not {v:?}"
        )));
    }
    Ok(())
}

fn int(v: &Value, field: &str) -> Result<Option<i64>, TcError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => number(x)
            .filter(|f| f.fract() == 0.0)
            .map(|f| Some(f as i64))
            .ok_or_else(|| invalid(format!("{field} must be an integer"))),
    }
}

fn float(v: &Value, field: &str) -> Result<Option<f64>, TcError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => number(x)
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(Some)
            .ok_or_else(|| invalid(format!("{field} must be a non-negative number"))),
    }
}

fn string<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    v.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Pixels, or a fraction of `of` when strictly between 0 and 1.
fn dim(v: Option<f64>, of: u32) -> Option<u32> {
    v.map(|v| {
        if v > 0.0 && v < 1.0 {
            (v * of as f64).round() as u32
        } else {
            v.round() as u32
        }
    })
}

fn even(v: u32) -> u32 {
    (v & !1).max(2)
}

struct Layer<'a> {
    name: &'a str,
    layer: u32,
    kind: i64,
    params: &'a Value,
    crop: Option<Crop>,
    /// The registered image of an InputType 2 layer.
    mark: Option<Watermark>,
}

/// Where a layer goes when its `LayoutParams` leave a value out.
struct Fallback {
    /// Its own width and height (a stream's picture or crop, a registered image's
    /// percentages), each if known.
    size: (Option<u32>, Option<u32>),
    /// Its own x and y (a registered image's percentages), each if known.
    at: (Option<u32>, Option<u32>),
    /// The size when nothing else gives one.
    default_size: (u32, u32),
}

/// The one placement rule: each of width, height, x and y is the explicit value (pixels,
/// or a fraction of the canvas when < 1), else the template's box, else the layer's own,
/// else the default (position 0).
fn place(
    params: &Value,
    (w, h): (u32, u32),
    tbox: Option<&templates::Placed>,
    fb: Fallback,
) -> Result<Rect, TcError> {
    let bw = dim(float(params, "ImageWidth")?, w)
        .or(tbox.map(|b| b.width))
        .or(fb.size.0)
        .unwrap_or(fb.default_size.0);
    let bh = dim(float(params, "ImageHeight")?, h)
        .or(tbox.map(|b| b.height))
        .or(fb.size.1)
        .unwrap_or(fb.default_size.1);
    let x = dim(float(params, "LocationX")?, w)
        .or(tbox.map(|b| b.x))
        .or(fb.at.0)
        .unwrap_or(0);
    let y = dim(float(params, "LocationY")?, h)
        .or(tbox.map(|b| b.y))
        .or(fb.at.1)
        .unwrap_or(0);
    Ok(Rect {
        layer: 0,
        left: x as i32,
        top: y as i32,
        right: (x + bw) as i32,
        bottom: (y + bh) as i32,
    })
}

/// The template box of a layer: templates place the visual layers in layer order.
fn template_box<'b>(
    visual: &[&Layer],
    boxes: &'b [templates::Placed],
    layer: u32,
) -> Option<&'b templates::Placed> {
    visual
        .iter()
        .position(|v| v.layer == layer)
        .and_then(|i| boxes.get(i))
}

/// Translates the request body (JSON, or rebuilt from a flattened form) under `limits`
/// (the vendor allows 16 inputs). `size_of` gives a live stream's picture size.
pub fn translate(
    body: &Value,
    limits: MixLimits,
    size_of: &dyn Fn(&str) -> Option<(u32, u32)>,
    watermark: &dyn Fn(u64) -> Option<Watermark>,
) -> Result<Create, TcError> {
    let session_id = string(body, "MixStreamSessionId")
        .ok_or_else(|| TcError::new("MissingParameter", "MixStreamSessionId is required"))?
        .to_string();
    check_name("MixStreamSessionId", &session_id)?;
    let list = body
        .get("InputStreamList")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| TcError::new("MissingParameter", "InputStreamList is required"))?;
    let max = limits.max_inputs;
    if list.len() > max {
        return Err(TcError::new(
            "InvalidParameter.InputNumLimitExceeded",
            format!("{} inputs; at most {max} are allowed", list.len()),
        ));
    }
    let control = body.get("ControlParams").cloned().unwrap_or(Value::Null);
    let pass_input_sei = int(&control, "PassInputSei")?.unwrap_or(0) == 1;
    let crop_center = int(&control, "UseMixCropCenter")?.unwrap_or(0) == 1;
    let allow_copy = int(&control, "AllowCopy")?.unwrap_or(0) == 1;
    // Image inputs keep their alpha only when asked (UsePictureTransparent = 1).
    let transparent = int(&control, "UsePictureTransparent")?.unwrap_or(0) == 1;

    let mut layers: Vec<Layer> = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let name = string(item, "InputStreamName")
            .ok_or_else(|| invalid(format!("InputStreamList.{i}.InputStreamName is required")))?;
        check_name("InputStreamName", name)?;
        let params = item
            .get("LayoutParams")
            .filter(|p| p.is_object())
            .ok_or_else(|| {
                TcError::new(
                    "InvalidParameter.InvalidLayerParam",
                    format!("InputStreamList.{i}.LayoutParams is required"),
                )
            })?;
        let layer = int(params, "ImageLayer")?
            .filter(|l| (1..=16).contains(l))
            .ok_or_else(|| {
                TcError::new(
                    "InvalidParameter.InvalidLayerParam",
                    format!("InputStreamList.{i}.LayoutParams.ImageLayer must be within [1, 16]"),
                )
            })? as u32;
        if layers.iter().any(|l| l.layer == layer) {
            return Err(TcError::new(
                "InvalidParameter.InvalidLayerParam",
                format!("ImageLayer {layer} is used twice"),
            ));
        }
        let kind = int(params, "InputType")?.unwrap_or(0);
        match kind {
            0 | 2 | 3 | 4 | 5 | 8 => {}
            k => {
                return Err(invalid(format!(
                    "InputType must be 0, 2, 3, 4, 5 or 8, not {k}"
                )));
            }
        }
        let crop = match item.get("CropParams") {
            Some(c)
                if [
                    "CropWidth",
                    "CropHeight",
                    "CropStartLocationX",
                    "CropStartLocationY",
                ]
                .iter()
                .any(|f| c.get(*f).and_then(number).is_some_and(|v| v != 0.0)) =>
            {
                let get = |f: &str| float(c, f).map(|v| v.unwrap_or(0.0).round() as u32);
                let crop = Crop {
                    x: get("CropStartLocationX")?,
                    y: get("CropStartLocationY")?,
                    width: get("CropWidth")?,
                    height: get("CropHeight")?,
                };
                let too_big = [crop.x, crop.y, crop.width, crop.height]
                    .iter()
                    .any(|v| *v > 2000);
                let outside = size_of(name)
                    .is_some_and(|(sw, sh)| crop.x + crop.width > sw || crop.y + crop.height > sh);
                if crop.width < 2 || crop.height < 2 || too_big || outside {
                    return Err(TcError::new(
                        "InvalidParameter.InvalidCropParam",
                        format!(
                            "InputStreamList.{i}.CropParams: the cropped area must lie inside the source picture"
                        ),
                    ));
                }
                Some(crop)
            }
            _ => None,
        };
        if item
            .get("PortraitSegmentParams")
            .is_some_and(|p| p.as_object().is_some_and(|o| !o.is_empty()))
        {
            return Err(unsupported("PortraitSegmentParams"));
        }
        let mark = if kind == 2 {
            let id = int(params, "WatermarkId")?
                .filter(|id| *id > 0)
                .ok_or_else(|| {
                    TcError::new(
                        "InvalidParameter.InvalidPictureID",
                        format!("InputStreamList.{i}: an image input needs a WatermarkId"),
                    )
                })?;
            Some(watermark(id as u64).ok_or_else(|| {
                TcError::new(
                    "FailedOperation.GetPictureUrlError",
                    format!("watermark {id} does not exist (AddLiveWatermark first)"),
                )
            })?)
        } else if kind == 8 {
            // A sticker: drawn like an image layer from its URL. A PNG or JPEG works (with
            // its alpha); an animated web page cannot be rendered here and fails to load
            // (GetPictureUrlError).
            let url = string(params, "WebPageUrl").ok_or_else(|| {
                TcError::new(
                    "InvalidParameter.InvalidPictureID",
                    format!("InputStreamList.{i}: a sticker (InputType 8) needs a WebPageUrl"),
                )
            })?;
            url_policy::syntax(url, Purpose::Image).map_err(|e| {
                TcError::new(
                    "FailedOperation.GetPictureUrlError",
                    format!("InputStreamList.{i}.LayoutParams.WebPageUrl {e}"),
                )
            })?;
            Some(Watermark {
                id: 0,
                name: name.to_string(),
                picture_url: url.to_string(),
                x_percent: 0,
                y_percent: 0,
                width_percent: 0,
                height_percent: 0,
                created_ms: 0,
            })
        } else {
            None
        };
        layers.push(Layer {
            name,
            layer,
            kind,
            params,
            crop,
            mark,
        });
    }
    layers.sort_by_key(|l| l.layer);

    let visual: Vec<&Layer> = layers.iter().filter(|l| l.kind != 4).collect();
    if list.len() == 1 && !allow_copy {
        return Ok(Create::Cancel { session_id });
    }

    // The background: layer 1, a canvas or a stream, sets the output size.
    let bg = layers.first().filter(|l| l.layer == 1).ok_or_else(|| {
        TcError::new(
            "InvalidParameter.InvalidLayerParam",
            "layer 1 (the background) is missing",
        )
    })?;
    let given = (
        float(bg.params, "ImageWidth")?.filter(|v| *v >= 1.0),
        float(bg.params, "ImageHeight")?.filter(|v| *v >= 1.0),
    );
    let (w, h) = match (bg.kind, given) {
        (4, _) => {
            return Err(TcError::new(
                "InvalidParameter.InvalidBackgroudResolution",
                "layer 1 is audio-only: the background needs a picture",
            ));
        }
        (_, (Some(w), Some(h))) => (w.round() as u32, h.round() as u32),
        (2 | 3 | 8, _) => {
            return Err(TcError::new(
                "InvalidParameter.InvalidBackgroudResolution",
                "a canvas or image background needs ImageWidth and ImageHeight in pixels",
            ));
        }
        _ => size_of(bg.name).ok_or_else(|| {
            TcError::new(
                "FailedOperation.StreamNotExist",
                format!("background stream {} is not being published", bg.name),
            )
        })?,
    };
    if !(2..=3000).contains(&w) || !(2..=3000).contains(&h) {
        return Err(TcError::new(
            "InvalidParameter.InvalidBackgroudResolution",
            format!("the background is {w}×{h}; each side must be within [2, 3000]"),
        ));
    }
    let (w, h) = (even(w), even(h));
    let background_rgb = if bg.kind == 3 {
        parse_color(string(bg.params, "Color").unwrap_or("0x000000"))?
    } else {
        0
    };

    // Template boxes, by position among the visual layers.
    let template = int(body, "MixStreamTemplateId")?.unwrap_or(0);
    let boxes = if template == 0 {
        Vec::new()
    } else {
        templates::layout(template as u32, w, h, visual.len(), bg.kind == 3).map_err(
            |e| match e {
                templates::TemplateError::NotMatchInputNum { .. } => {
                    TcError::new("InvalidParameter.TemplateNotMatchInputNum", e.to_string())
                }
                _ => invalid(e.to_string()),
            },
        )?
    };

    let render = if crop_center {
        RenderMode::Crop
    } else {
        RenderMode::Fit
    };
    let mut inputs = Vec::new();
    let mut images = Vec::new();
    let background_image = if matches!(bg.kind, 2 | 8) {
        bg.mark.as_ref().map(|m| m.picture_url.clone())
    } else {
        None
    };
    for l in &layers {
        if matches!(l.kind, 2 | 8) && l.layer == 1 {
            continue;
        }
        if l.kind == 3 {
            if l.layer == 1 {
                continue;
            }
            return Err(unsupported("a canvas (InputType 3) above layer 1"));
        }
        if let Some(mark) = l.mark.as_ref().filter(|_| matches!(l.kind, 2 | 8)) {
            let tbox = template_box(&visual, &boxes, l.layer);
            let pct = |p: i64, of: u32| (p > 0).then(|| of * p as u32 / 100);
            let registered = Fallback {
                size: (pct(mark.width_percent, w), pct(mark.height_percent, h)),
                at: (pct(mark.x_percent, w), pct(mark.y_percent, h)),
                default_size: (w / 4, h / 4),
            };
            let rect = place(l.params, (w, h), tbox, registered)?;
            images.push(Overlay {
                opaque: !transparent && l.kind == 2,
                image: mark.picture_url.clone(),
                rect: Rect {
                    layer: l.layer as i32,
                    right: rect.right.max(rect.left + 2),
                    bottom: rect.bottom.max(rect.top + 2),
                    ..rect
                },
            });
            continue;
        }
        let source = Source::Stream(l.name.to_string());
        if l.kind == 4 {
            inputs.push(MixInput {
                source,
                rect: None,
                content: Content::AudioOnly,
                volume: 100,
                render,
                crop: None,
                decor: Default::default(),
            });
            continue;
        }
        let rect = if l.layer == 1 {
            Rect {
                layer: 1,
                left: 0,
                top: 0,
                right: w as i32,
                bottom: h as i32,
            }
        } else {
            let own = l
                .crop
                .map(|c| (c.width, c.height))
                .or_else(|| size_of(l.name));
            let stream = Fallback {
                size: (own.map(|s| s.0), own.map(|s| s.1)),
                at: (None, None),
                default_size: (w, h),
            };
            Rect {
                layer: l.layer as i32,
                ..place(
                    l.params,
                    (w, h),
                    template_box(&visual, &boxes, l.layer),
                    stream,
                )?
            }
        };
        inputs.push(MixInput {
            source,
            rect: Some(rect),
            content: if l.kind == 5 {
                Content::VideoOnly
            } else {
                Content::AudioVideo
            },
            volume: 100,
            render,
            crop: l.crop,
            decor: Default::default(),
        });
    }

    let (output, fps) = output(body, &layers)?;
    let spec = MixSpec {
        inputs,
        outputs: vec![MixOutput {
            video: Some(VideoOut {
                width: w,
                height: h,
                bitrate_bps: output.1,
                codec: Default::default(),
            }),
            ..output.0
        }],
        fps,
        background_rgb,
        background_image,
        watermark: None,
        images,
        max_idle_s: IDLE_S,
        lenient_images: false,
        timing: Default::default(),
        stream_data: StreamData {
            user_data: mix_sei(body)?,
            sound_levels: false,
            pass_input_sei,
            sound_levels_by_stream: false,
        },
        // A single input with AllowCopy = 1 is passed through as it is.
        bypass: allow_copy,
        gop_s: match body.get("OutputParams").map(|o| int(o, "OutputStreamGop")) {
            Some(Ok(Some(g))) if (1..=10).contains(&g) => g as u32,
            Some(Ok(Some(g))) => {
                return Err(invalid(format!(
                    "OutputParams.OutputStreamGop must be within [1, 10] seconds, not {g}"
                )));
            }
            Some(Err(e)) => return Err(e),
            _ => 0,
        },
    };
    spec.validate(limits).map_err(spec_error)?;
    Ok(Create::Mix {
        session_id,
        spec: Box::new(spec),
    })
}

/// `OutputParams.MixSei`: a custom string players receive in the output's SEI. It travels
/// as the user data record of tributary's SEI (`docs/SEI.md`), its UTF-8 bytes as given.
fn mix_sei(body: &Value) -> Result<Option<Vec<u8>>, TcError> {
    let Some(text) = body.get("OutputParams").and_then(|o| string(o, "MixSei")) else {
        return Ok(None);
    };
    if text.len() > tributary_core::mix::MAX_USER_DATA {
        return Err(invalid(format!(
            "OutputParams.MixSei is at most {} bytes",
            tributary_core::mix::MAX_USER_DATA
        )));
    }
    Ok(Some(text.as_bytes().to_vec()))
}

/// Core's shared rules, in this dialect's names and codes.
fn spec_error(e: MixError) -> TcError {
    let (code, message) = match &e {
        MixError::TooManyInputs { .. } => ("InvalidParameter.InputNumLimitExceeded", e.to_string()),
        MixError::InputIsOutput(_) => ("InvalidParameter.InvalidOutputType", e.to_string()),
        MixError::Invalid {
            item,
            field,
            reason,
        } => {
            let (code, name) = match field {
                Field::Width => (
                    "InvalidParameter.InvalidBackgroudResolution",
                    "the background width",
                ),
                Field::Height => (
                    "InvalidParameter.InvalidBackgroudResolution",
                    "the background height",
                ),
                Field::Rect => ("InvalidParameter.InvalidLayerParam", "LayoutParams"),
                Field::ImageLayer => (
                    "InvalidParameter.InvalidLayerParam",
                    "an image layer's LayoutParams",
                ),
                Field::VideoBitrate => ("InvalidParameter", "OutputParams.OutputStreamBitRate"),
                Field::AudioBitrate => ("InvalidParameter", "OutputParams.OutputAudioBitRate"),
                Field::Channels => ("InvalidParameter", "OutputParams.OutputAudioChannels"),
                Field::Fps => ("InvalidParameter", "OutputParams.OutputStreamFrameRate"),
                Field::Gop => ("InvalidParameter", "OutputParams.OutputStreamGop"),
                Field::SampleRate => ("InvalidParameter", "OutputParams.OutputAudioSampleRate"),
                other => ("InvalidParameter", other.neutral_name()),
            };
            let at = match item {
                Item::Input(i) => format!("input layer {}: ", i + 1),
                _ => String::new(),
            };
            (code, format!("{at}{name} {reason}"))
        }
        _ => ("InvalidParameter", e.to_string()),
    };
    TcError::new(code, message)
}

/// `0xRRGGBB` (also `#RRGGBB`).
fn parse_color(c: &str) -> Result<u32, TcError> {
    let hex = c
        .strip_prefix("0x")
        .or_else(|| c.strip_prefix("0X"))
        .or_else(|| c.strip_prefix('#'))
        .unwrap_or(c);
    u32::from_str_radix(hex, 16)
        .ok()
        .filter(|_| hex.len() == 6)
        .ok_or_else(|| invalid(format!("Color must be 0xRRGGBB, not {c:?}")))
}

/// The output (without its size) with its video bitrate in bps, and the frame rate.
fn output(body: &Value, layers: &[Layer]) -> Result<((MixOutput, u32), u32), TcError> {
    let o = body
        .get("OutputParams")
        .filter(|o| o.is_object())
        .ok_or_else(|| TcError::new("MissingParameter", "OutputParams is required"))?;
    let name = string(o, "OutputStreamName").ok_or_else(|| {
        TcError::new(
            "MissingParameter",
            "OutputParams.OutputStreamName is required",
        )
    })?;
    check_name("OutputStreamName", name)?;
    let is_input = layers.iter().any(|l| l.name == name);
    let replace = match int(o, "OutputStreamType")?.unwrap_or(0) {
        0 if is_input => true,
        0 => {
            return Err(TcError::new(
                "InvalidParameter.InvalidOutputType",
                "OutputStreamType 0 needs OutputStreamName to be one of the inputs",
            ));
        }
        1 if is_input => {
            return Err(TcError::new(
                "InvalidParameter.InvalidOutputType",
                "OutputStreamType 1 needs an OutputStreamName that is not an input",
            ));
        }
        1 => false,
        t => return Err(invalid(format!("OutputStreamType must be 0 or 1, not {t}"))),
    };
    let kbps = int(o, "OutputStreamBitRate")?.unwrap_or(1500);
    if !(10..=10_000).contains(&kbps) {
        return Err(TcError::new(
            "InvalidParameter.InvalidBitrate",
            format!("OutputStreamBitRate is in kbps and must be within [10, 10000], not {kbps}"),
        ));
    }
    // OutputStreamGop: read by `translate` (core checks 1–10 s).
    let fps = int(o, "OutputStreamFrameRate")?.unwrap_or(25);
    if !(1..=60).contains(&fps) {
        return Err(invalid(format!(
            "OutputStreamFrameRate must be within [1, 60], not {fps}"
        )));
    }
    let akbps = int(o, "OutputAudioBitRate")?.unwrap_or(64);
    if !(8..=320).contains(&akbps) {
        return Err(invalid(format!(
            "OutputAudioBitRate is in kbps and must be within [8, 320], not {akbps}"
        )));
    }
    // Empty means "auto": the mix's own rate.
    let sample_rate = match int(o, "OutputAudioSampleRate")? {
        None => DEFAULT_SAMPLE_RATE,
        Some(r) if SAMPLE_RATES.iter().any(|&x| x as i64 == r) => r as u32,
        Some(r) => {
            return Err(invalid(format!(
                "OutputAudioSampleRate must be one of {SAMPLE_RATES:?} Hz, not {r}"
            )));
        }
    };
    let channels = int(o, "OutputAudioChannels")?.unwrap_or(2);
    if !(1..=2).contains(&channels) {
        return Err(invalid(format!(
            "OutputAudioChannels must be 1 or 2, not {channels}"
        )));
    }
    // MixSei is read by `mix_sei` (it becomes the task's user data).
    Ok((
        (
            MixOutput {
                target: if replace {
                    Target::Replace(name.to_string())
                } else {
                    Target::Stream(name.to_string())
                },
                video: None,
                audio_bitrate_bps: akbps as u32 * 1000,
                channels: channels as u8,
                room: None,
                audio_codec: Default::default(),
                sample_rate,
            },
            kbps as u32 * 1000,
        ),
        fps as u32,
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sizes(name: &str) -> Option<(u32, u32)> {
        match name {
            "test_stream1" => Some((1280, 720)),
            "test_stream2" | "test_stream3" => Some((640, 360)),
            _ => None,
        }
    }

    fn marks(id: u64) -> Option<Watermark> {
        (id == 7).then(|| Watermark {
            id: 7,
            name: "logo".into(),
            picture_url: "http://img.example/logo.png".into(),
            x_percent: 80,
            y_percent: 10,
            width_percent: 10,
            height_percent: 0,
            created_ms: 0,
        })
    }

    fn mix(body: Value) -> Result<MixSpec, TcError> {
        match translate(
            &body,
            MixLimits {
                max_inputs: 16,
                max_outputs: 3,
            },
            &sizes,
            &marks,
        )? {
            Create::Mix { spec, .. } => Ok(*spec),
            Create::Cancel { .. } => panic!("a cancel"),
        }
    }

    fn rect(s: &MixSpec, i: usize) -> (i32, i32, i32, i32, i32) {
        let r = s.inputs[i].rect.unwrap();
        (r.layer, r.left, r.top, r.right, r.bottom)
    }

    #[test]
    fn mix_sei_becomes_the_tasks_user_data() {
        let s = mix(json!({"MixStreamSessionId": "room",
            "InputStreamList": [
                {"InputStreamName": "test_stream1", "LayoutParams": {"ImageLayer": 1}},
                {"InputStreamName": "test_stream2", "LayoutParams": {"ImageLayer": 2}}],
            "OutputParams": {"OutputStreamName": "mix_out", "OutputStreamType": 1, "MixSei": "custom_sei"}}))
        .unwrap();
        assert_eq!(
            s.stream_data.user_data.as_deref(),
            Some(b"custom_sei".as_slice())
        );
    }

    #[test]
    fn stickers_are_image_layers_placed_like_any_layer() {
        let s = mix(json!({"MixStreamSessionId": "room",
            "InputStreamList": [
                {"InputStreamName": "test_stream1", "LayoutParams": {"ImageLayer": 1, "ImageHeight": 720, "ImageWidth": 1280}},
                {"InputStreamName": "sticker1", "LayoutParams": {"ImageLayer": 2, "InputType": 8,
                    "WebPageUrl": "https://cdn.example.com/s.png", "ImageWidth": 0.25, "ImageHeight": 0.25,
                    "LocationX": 0.5, "LocationY": 10}}],
            "OutputParams": {"OutputStreamName": "mix_out", "OutputStreamType": 1}}))
        .unwrap();
        assert_eq!(s.images.len(), 1);
        let img = &s.images[0];
        assert_eq!(img.image, "https://cdn.example.com/s.png");
        assert!(!img.opaque, "a sticker keeps its alpha");
        let r = img.rect;
        assert_eq!(
            (r.layer, r.left, r.top, r.right, r.bottom),
            (2, 640, 10, 960, 190)
        );
        let no_url = mix(json!({"MixStreamSessionId": "room",
            "InputStreamList": [
                {"InputStreamName": "test_stream1", "LayoutParams": {"ImageLayer": 1}},
                {"InputStreamName": "sticker1", "LayoutParams": {"ImageLayer": 2, "InputType": 8}}],
            "OutputParams": {"OutputStreamName": "mix_out", "OutputStreamType": 1}}));
        assert_eq!(
            no_url.unwrap_err().code,
            "InvalidParameter.InvalidPictureID"
        );
        let file = mix(json!({"MixStreamSessionId": "room",
            "InputStreamList": [
                {"InputStreamName": "test_stream1", "LayoutParams": {"ImageLayer": 1}},
                {"InputStreamName": "sticker1", "LayoutParams": {"ImageLayer": 2, "InputType": 8,
                    "WebPageUrl": "file:///etc/passwd"}}],
            "OutputParams": {"OutputStreamName": "mix_out", "OutputStreamType": 1}}));
        assert_eq!(file.unwrap_err().code, "FailedOperation.GetPictureUrlError");
    }

    #[test]
    fn the_documented_custom_layout() {
        // Official example 2, with a new output stream.
        let s = mix(json!({"MixStreamSessionId": "test_room",
            "InputStreamList": [
                {"InputStreamName": "test_stream1", "LayoutParams": {"ImageLayer": 1, "ImageHeight": 720, "ImageWidth": 1280}},
                {"InputStreamName": "test_stream2", "LayoutParams": {"ImageLayer": 2, "ImageHeight": 320, "ImageWidth": 240, "LocationX": 100, "LocationY": 100}}],
            "OutputParams": {"OutputStreamName": "mix_out", "OutputStreamType": 1}}))
        .unwrap();
        assert_eq!(s.canvas(), Some((1280, 720)));
        assert_eq!(rect(&s, 0), (1, 0, 0, 1280, 720));
        assert_eq!(rect(&s, 1), (2, 100, 100, 340, 420));
        assert_eq!(s.outputs[0].target, Target::Stream("mix_out".into()));
        assert_eq!(s.outputs[0].video.map(|v| v.bitrate_bps), Some(1_500_000));
        assert_eq!(s.fps, 25);
        assert_eq!(s.max_idle_s, 900);
    }

    #[test]
    fn a_canvas_template_and_fractions() {
        // The best-practice GET example: template 390 on a 1920×1080 black canvas.
        let s = mix(
            json!({"MixStreamSessionId": "test_room", "MixStreamTemplateId": "390",
            "OutputParams": {"OutputStreamName": "pk", "OutputStreamType": "1"},
            "InputStreamList": [
                {"InputStreamName": "canvas1", "LayoutParams": {"ImageLayer": "1", "InputType": "3",
                    "ImageWidth": "1920", "ImageHeight": "1080", "Color": "0x000000"}},
                {"InputStreamName": "test_stream2", "LayoutParams": {"ImageLayer": "2"}},
                {"InputStreamName": "test_stream3", "LayoutParams": {"ImageLayer": "3"}}]}),
        )
        .unwrap();
        assert_eq!(s.canvas(), Some((1920, 1080)));
        assert_eq!(s.background_rgb, 0);
        assert_eq!(
            s.inputs.len(),
            2,
            "the canvas is the background, not an input"
        );
        assert_eq!(rect(&s, 0), (2, 20, 270, 980, 810));
        assert_eq!(rect(&s, 1), (3, 960, 270, 1920, 810));

        // Fractions are of the background; an audio-only guest has no rect.
        let s = mix(json!({"MixStreamSessionId": "s1",
            "OutputParams": {"OutputStreamName": "o", "OutputStreamType": 1, "OutputStreamBitRate": 800},
            "ControlParams": {"UseMixCropCenter": 1},
            "InputStreamList": [
                {"InputStreamName": "c", "LayoutParams": {"ImageLayer": 1, "InputType": 3, "ImageWidth": 1280, "ImageHeight": 720, "Color": "0x99CCFF"}},
                {"InputStreamName": "test_stream2", "LayoutParams": {"ImageLayer": 2, "ImageWidth": 0.5, "ImageHeight": 0.99, "LocationX": 0, "LocationY": 0.01}},
                {"InputStreamName": "guest", "LayoutParams": {"ImageLayer": 3, "InputType": 4}}]}))
        .unwrap();
        assert_eq!(s.background_rgb, 0x99ccff);
        assert_eq!(rect(&s, 0), (2, 0, 7, 640, 720));
        assert_eq!(s.inputs[0].render, RenderMode::Crop);
        assert!(s.inputs[1].rect.is_none());
        assert_eq!(s.inputs[1].content, Content::AudioOnly);
        assert_eq!(s.outputs[0].video.map(|v| v.bitrate_bps), Some(800_000));
    }

    #[test]
    fn the_vendors_rules_and_our_refusals() {
        let base = || {
            json!({"MixStreamSessionId": "s",
                "OutputParams": {"OutputStreamName": "o", "OutputStreamType": 1},
                "InputStreamList": [
                    {"InputStreamName": "test_stream1", "LayoutParams": {"ImageLayer": 1}},
                    {"InputStreamName": "test_stream2", "LayoutParams": {"ImageLayer": 2}}]})
        };
        let code = |v: Value| {
            translate(
                &v,
                MixLimits {
                    max_inputs: 16,
                    max_outputs: 3,
                },
                &sizes,
                &marks,
            )
            .unwrap_err()
            .code
        };
        // The background's own size when it gives none.
        assert_eq!(mix(base()).unwrap().canvas(), Some((1280, 720)));

        let mut v = base();
        v["MixStreamTemplateId"] = json!(410);
        assert_eq!(code(v), "InvalidParameter.TemplateNotMatchInputNum");
        let mut v = base();
        v["InputStreamList"][1]["LayoutParams"]["ImageLayer"] = json!(1);
        assert_eq!(code(v), "InvalidParameter.InvalidLayerParam");
        let mut v = base();
        v["InputStreamList"][0]["InputStreamName"] = json!("offline");
        assert_eq!(code(v), "FailedOperation.StreamNotExist");
        let mut v = base();
        v["OutputParams"]["OutputStreamType"] = json!(0);
        assert!(
            translate(&v, MixLimits::default(), &sizes, &marks)
                .unwrap_err()
                .message
                .contains("OutputStreamType 0")
        );
        // The vendor's default: the mix takes over an input's name (A+B→A).
        let mut v = base();
        v["OutputParams"] = json!({"OutputStreamName": "test_stream1"});
        assert_eq!(
            mix(v).unwrap().outputs[0].target,
            Target::Replace("test_stream1".into())
        );
        let mut v = base();
        v["OutputParams"]["OutputStreamName"] = json!("test_stream2");
        assert_eq!(code(v), "InvalidParameter.InvalidOutputType");
        let mut v = base();
        v["OutputParams"]["OutputStreamBitRate"] = json!(20000);
        assert_eq!(code(v), "InvalidParameter.InvalidBitrate");
        let mut v = base();
        // Crop: inside the source, and the layer's default size is the crop's.
        v["InputStreamList"][1]["CropParams"] = json!({"CropWidth": 320, "CropHeight": 180,
            "CropStartLocationX": 160, "CropStartLocationY": 90});
        let s = mix(v).unwrap();
        assert_eq!(
            s.inputs[1].crop,
            Some(Crop {
                x: 160,
                y: 90,
                width: 320,
                height: 180
            })
        );
        assert_eq!(rect(&s, 1), (2, 0, 0, 320, 180));
        let mut v = base();
        v["InputStreamList"][1]["CropParams"] =
            json!({"CropWidth": 600, "CropHeight": 180, "CropStartLocationX": 100});
        assert_eq!(code(v), "InvalidParameter.InvalidCropParam");
        let mut v = base();
        v["InputStreamList"][1]["LayoutParams"]["InputType"] = json!(2);
        assert_eq!(code(v.clone()), "InvalidParameter.InvalidPictureID");
        v["InputStreamList"][1]["LayoutParams"]["WatermarkId"] = json!(8);
        assert_eq!(code(v.clone()), "FailedOperation.GetPictureUrlError");
        // A registered image: placed by its own percentages when the layer gives none.
        v["InputStreamList"][1]["LayoutParams"]["WatermarkId"] = json!(7);
        let s = mix(v).unwrap();
        assert_eq!(s.inputs.len(), 1);
        assert_eq!(s.images.len(), 1);
        assert_eq!(s.images[0].image, "http://img.example/logo.png");
        assert!(
            s.images[0].opaque,
            "alpha only with UsePictureTransparent = 1"
        );
        let r = s.images[0].rect;
        assert_eq!(
            (r.layer, r.left, r.top, r.right - r.left),
            (2, 1024, 72, 128)
        );
        let mut v = base();
        v["InputStreamList"] = json!((0..17).map(|i| json!({"InputStreamName": format!("s{i}"), "LayoutParams": {"ImageLayer": i + 1}})).collect::<Vec<_>>());
        assert_eq!(code(v), "InvalidParameter.InputNumLimitExceeded");
        let mut v = base();
        v["MixStreamSessionId"] = json!("bad id!");
        assert_eq!(code(v), "InvalidParameter");
        assert_eq!(code(json!({"InputStreamList": []})), "MissingParameter");

        // One input without AllowCopy is a cancel; with it, a mix of one.
        let mut v = base();
        v["InputStreamList"] =
            json!([{"InputStreamName": "test_stream1", "LayoutParams": {"ImageLayer": 1}}]);
        assert_eq!(
            translate(&v, MixLimits::default(), &sizes, &marks),
            Ok(Create::Cancel {
                session_id: "s".into()
            })
        );
        v["ControlParams"] = json!({"AllowCopy": 1});
        assert!(matches!(
            translate(&v, MixLimits::default(), &sizes, &marks),
            Ok(Create::Mix { .. })
        ));
    }
}
