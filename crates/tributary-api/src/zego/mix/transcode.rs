//! StartCloudTranscode / StopCloudTranscode (spec §3.6): one input, 1..n renditions.
//!
//! A transcode is a one-input task whose outputs are its renditions: the input fills the
//! canvas of the largest rendition (fitted, never cropped), decoded once; each output
//! scales that canvas and encodes it. Sizes come from the templates (a short edge) or
//! `TemplateConfig`, against the input's live size. Decisions where the vendor is silent:
//! - "Same as the input" frame rate is the rate the stream announces (or shows), else 25;
//!   every rendition shares it, as the vendor requires.
//! - "Same as the input" bitrate (`VideoBitrate` 0) is the 720p template's 1.5 Mb/s.
//! - Renditions of another aspect than the largest one are scaled to it (stretched): give
//!   them the input's aspect (templates and `ShortEdgeAdaption` do).
//! - Audio: AAC-LC 64 kb/s stereo in every rendition (the templates' codec).
//! - `VideoEncId` 0 ("same as the input") encodes H.264, which every player reads; 2 is
//!   H.265 (Enhanced RTMP), with `LowBitrateHD` as StartMix's.

use serde_json::Value;

use tributary_core::mix::{
    AudioCodec, Content, DEFAULT_SAMPLE_RATE, MixInput, MixOutput, MixSpec, Rect, RenderMode,
    Source, Target, VideoCodec, VideoOut,
};
use tributary_core::mix_task::{MixTask, TaskKind};

use super::errors::*;
use super::mixing;
use super::wire::*;
use crate::cluster::Via;
use crate::zego::codes::*;
use crate::zego::envelope::Data;
use crate::zego::{Call, required};

/// Templates 0–3: short edge (px) and bitrate (bps).
const TEMPLATES: [(u32, u32); 4] = [
    (360, 600_000),
    (540, 1_000_000),
    (720, 1_500_000),
    (1080, 2_000_000),
];
const DEFAULT_FPS: u32 = 25;
const AUDIO_BPS: u32 = 64_000;

/// One rendition asked for.
struct Rendition {
    target: Target,
    width: u32,
    height: u32,
    bitrate: u32,
    codec: VideoCodec,
}

/// `(w, h)` with `short` as its short edge and the input's orientation and aspect.
fn by_short_edge(short: u32, input: (u32, u32)) -> (u32, u32) {
    let (iw, ih) = (input.0.max(2) as u64, input.1.max(2) as u64);
    let even = |v: u64| ((v + 1) & !1).clamp(2, 3000) as u32;
    if iw >= ih {
        (even(short as u64 * iw / ih), even(short as u64))
    } else {
        (even(short as u64), even(short as u64 * ih / iw))
    }
}

fn rendition(
    v: &Value,
    i: usize,
    input: Option<(u32, u32)>,
    fps: &mut Option<u32>,
    gop: &mut Option<u32>,
) -> Result<Rendition, ZegoError> {
    let at = |f: &str| format!("TranscodeOutput[{i}].{f}");
    let target = target(v, &format!("TranscodeOutput[{i}]"))?;
    let template =
        int(v, "TemplateId")?.ok_or_else(|| bad(format!("{} is required", at("TemplateId"))))?;
    let need_input = || {
        input.ok_or_else(|| {
            bad(format!(
                "{}: the input's size is not known (a StreamUrl input): use TemplateId 4 \
                 with Width and Height",
                at("TemplateId")
            ))
        })
    };
    let (width, height, bitrate, codec) = match template {
        0..=3 => {
            let (short, bps) = TEMPLATES[template as usize];
            let (w, h) = by_short_edge(short, need_input()?);
            (w, h, bps, VideoCodec::H264)
        }
        4 => {
            let c = match v.get("TemplateConfig") {
                Some(c) if c.is_object() => c,
                _ => {
                    return Err(bad(format!(
                        "{} is required with TemplateId 4",
                        at("TemplateConfig")
                    )));
                }
            };
            let cat = |f: &str| at(&format!("TemplateConfig.{f}"));
            let h265 = in_range(int(c, "VideoEncId")?, &cat("VideoEncId"), 0, 2, 0)? == 2;
            let low_bitrate_hd =
                in_range(int(c, "LowBitrateHD")?, &cat("LowBitrateHD"), 0, 1, 0)? == 1;
            if low_bitrate_hd && !h265 {
                return Err(bad(format!(
                    "{} needs H.265 (VideoEncId 2)",
                    cat("LowBitrateHD")
                )));
            }
            let codec = if h265 {
                VideoCodec::H265 { low_bitrate_hd }
            } else {
                VideoCodec::H264
            };
            let f = in_range(int(c, "Fps")?, &cat("Fps"), 0, 60, 0)? as u32;
            if f > 0 {
                match fps {
                    Some(prev) if *prev != f => {
                        return Err(bad(format!(
                            "{}: all outputs must share one frame rate ({prev} and {f})",
                            cat("Fps")
                        )));
                    }
                    _ => *fps = Some(f),
                }
            }
            let g = in_range(int(c, "GOP")?, &cat("GOP"), 0, 10, 0)? as u32;
            if g > 0 {
                *gop = Some(g);
            }
            let w = in_range(int(c, "Width")?, &cat("Width"), 0, 3000, 0)? as u32;
            let h = in_range(int(c, "Height")?, &cat("Height"), 0, 3000, 0)? as u32;
            let short_edge = in_range(
                int(c, "ShortEdgeAdaption")?,
                &cat("ShortEdgeAdaption"),
                0,
                1,
                0,
            )? == 1;
            let (w, h) = if w == 0 && h == 0 {
                need_input()?
            } else if short_edge {
                by_short_edge(w.max(2), need_input()?)
            } else {
                (w, h)
            };
            let bps = in_range(
                int(c, "VideoBitrate")?,
                &cat("VideoBitrate"),
                0,
                50_000_000,
                0,
            )? as u32;
            (w, h, if bps == 0 { TEMPLATES[2].1 } else { bps }, codec)
        }
        t => {
            return Err(bad(format!("{} must be 0–4, not {t}", at("TemplateId"))));
        }
    };
    Ok(Rendition {
        target,
        width,
        height,
        bitrate,
        codec,
    })
}

pub(in crate::zego) fn start_cloud_transcode(call: &Call) -> Result<Data, ZegoError> {
    let p = call.params;
    let mixing = mixing(call)?;
    let app_id = call.app.config.app_id;
    let task_id = required(p, "TaskId", MIX_BAD_PARAM)?.to_string();
    let user_id = required(p, "UserId", MIX_BAD_PARAM)?.to_string();
    let input = object(p, "TranscodeInput")?.ok_or_else(|| bad("TranscodeInput is required"))?;
    let source = source(&input, "TranscodeInput")?;
    let (size, announced_fps) = match &source {
        Source::Stream(id) => {
            // Published on another node: the transcode runs there.
            if call.via == Via::Client
                && mixing.stream_size(app_id, id).is_none()
                && let Some(peer) = mixing.origin_elsewhere(app_id, id)
            {
                return Ok(Data::Elsewhere(peer));
            }
            let size = mixing.stream_size(app_id, id).ok_or_else(|| {
                ZegoError::new(
                    MIX_INPUT_MISSING,
                    format!("input stream {id} is not being published"),
                )
            })?;
            (Some(size), mixing.stream_fps(app_id, id))
        }
        Source::Url(_) => (None, None),
    };
    let raw = objects(p, "TranscodeOutput")?;
    if raw.is_empty() {
        return Err(bad("TranscodeOutput is required"));
    }
    let max = call.app.config.limits.max_mix_outputs as usize;
    if raw.len() > max {
        return Err(ZegoError::new(
            MIX_TOO_MANY_OUTPUTS,
            format!("{} outputs; at most {max} are allowed", raw.len()),
        ));
    }
    let (mut fps, mut gop) = (None, None);
    let mut renditions = raw
        .iter()
        .enumerate()
        .map(|(i, v)| rendition(v, i, size, &mut fps, &mut gop))
        .collect::<Result<Vec<_>, _>>()?;
    // The largest rendition is the canvas the others are scaled from.
    renditions.sort_by_key(|r| std::cmp::Reverse(r.width as u64 * r.height as u64));
    let (cw, ch) = (renditions[0].width, renditions[0].height);
    let fps = fps.unwrap_or_else(|| {
        announced_fps
            .map(|f| f.round().clamp(1.0, 60.0) as u32)
            .unwrap_or(DEFAULT_FPS)
    });
    let inputs = vec![MixInput {
        source,
        rect: Some(Rect {
            layer: 0,
            left: 0,
            top: 0,
            right: cw as i32,
            bottom: ch as i32,
        }),
        content: Content::AudioVideo,
        volume: 100,
        render: RenderMode::Fit,
        crop: None,
        decor: Default::default(),
    }];
    let outputs = renditions
        .into_iter()
        .map(|r| MixOutput {
            target: r.target,
            video: Some(VideoOut {
                width: r.width,
                height: r.height,
                bitrate_bps: r.bitrate,
                codec: r.codec,
            }),
            audio_bitrate_bps: AUDIO_BPS,
            channels: 2,
            room: None,
            audio_codec: AudioCodec::AacLc,
            sample_rate: DEFAULT_SAMPLE_RATE,
        })
        .collect();
    let spec = MixSpec {
        max_idle_s: max_idle(p)?,
        gop_s: gop.unwrap_or(0),
        ..MixSpec::new(inputs, outputs, fps)
    };
    let now = call.now_ms;
    let task = MixTask {
        task_id,
        user_id,
        room_id: String::new(),
        sequence: top_int(p, "Sequence")?,
        kind: TaskKind::Transcode,
        spec,
        ex_para: Vec::new(),
        started_ms: now,
        updated_ms: now,
    };
    if call.via == Via::Client
        && let Some(peer) = mixing.place_elsewhere(app_id, &task)
    {
        return Ok(Data::Elsewhere(peer));
    }
    mixing.start(app_id, task).map_err(control_error)?;
    Ok(Data::Absent)
}

pub(in crate::zego) fn stop_cloud_transcode(call: &Call) -> Result<Data, ZegoError> {
    let mixing = mixing(call)?;
    let task_id = required(call.params, "TaskId", MIX_BAD_PARAM)?;
    let is_transcode = mixing
        .get(call.app.config.app_id, task_id)
        .map_err(|e| control_error(e.into()))?
        .is_some_and(|t| t.is_transcode());
    if !is_transcode {
        return Err(ZegoError::new(
            MIX_TASK_NOT_FOUND,
            format!("transcode task {task_id} does not exist"),
        ));
    }
    super::stop::stop_requested(call, mixing, task_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_edges_follow_the_inputs_orientation_and_aspect() {
        assert_eq!(by_short_edge(360, (1280, 720)), (640, 360));
        assert_eq!(by_short_edge(720, (720, 1280)), (720, 1280));
        assert_eq!(by_short_edge(540, (640, 480)), (720, 540));
        assert_eq!(by_short_edge(360, (1000, 700)), (514, 360));
        // Odd results round up to even.
        assert_eq!(by_short_edge(360, (1280, 718)), (642, 360));
    }
}
