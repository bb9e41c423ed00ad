//! StartMix: a new task or a live update of a running one, and its PlayInfo.

use serde_json::{Value, json};

use tributary_core::mix::{MAX_FPS, MixSpec, Overlay, Target};
use tributary_core::mix_task::{MixTask, TaskKind};

use super::errors::*;
use super::mixing;
use super::wire::*;
use crate::cluster::Via;
use crate::mixing::MixControl;
use crate::zego::codes::*;
use crate::zego::envelope::Data;
use crate::zego::{Call, required};

pub(super) fn play_info(call: &Call, task: &MixTask) -> Value {
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
pub(super) fn accept(call: &Call, mixing: &MixControl, task: MixTask) -> Result<Data, ZegoError> {
    if call.via == Via::Client
        && let Some(peer) = mixing.place_elsewhere(call.app.config.app_id, &task)
    {
        return Ok(Data::Elsewhere(peer));
    }
    let (stored, _) = mixing
        .start(call.app.config.app_id, task)
        .map_err(control_error)?;
    Ok(Data::Value(play_info(call, &stored)))
}

pub(in crate::zego) fn start_mix(call: &Call) -> Result<Data, ZegoError> {
    let p = call.params;
    let mixing = mixing(call)?;
    let task_id = required(p, "TaskId", MIX_BAD_PARAM)?.to_string();
    let user_id = required(p, "UserId", MIX_BAD_PARAM)?.to_string();
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
    let check_mode = in_range(top_int(p, "CheckImageMode")?, "CheckImageMode", 0, 2, 0)?;
    let inputs = raw_inputs
        .iter()
        .enumerate()
        .map(|(i, v)| input(v, i, check_mode))
        .collect::<Result<Vec<_>, _>>()?;
    let (raw_outputs, default_channels) = output_items(call)?;
    let mut outputs = Vec::new();
    let mut fps = None;
    for (i, v) in raw_outputs.iter().enumerate() {
        let WireOutput {
            output: o,
            fps: f,
            base,
        } = output(v, i, default_channels)?;
        // Frame rates follow the first video output.
        if o.video.is_some() && fps.is_none() {
            fps = Some(f.ok_or_else(|| bad(format!("MixOutput[{i}].Fps is required")))?);
        }
        outputs.push(o);
        // An SVC output's base layer is a rendition beside it (counted as an output).
        outputs.extend(base);
    }
    let fps = in_range(fps, "MixOutput[0].Fps", 1, MAX_FPS as i64, 1)? as u32;
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
        timing: timing(p)?,
        stream_data: stream_data(p)?,
        bypass: in_range(top_int(p, "ByPass")?, "ByPass", 0, 1, 0)? == 1,
        gop_s: 0,
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
