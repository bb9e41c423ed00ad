//! StartAutoMix (the audio of a whole room, following joins and leaves) and StopAutoMix.

use tributary_core::mix::{MixOutput, MixSpec, Source, StreamData};
use tributary_core::mix_task::{AutoExtra, MAX_AUTO_EXTRAS, MixTask, TaskKind};
use tributary_core::url_policy::{self, Purpose};

use super::errors::*;
use super::mixing;
use super::start::accept;
use super::wire::*;
use crate::zego::codes::*;
use crate::zego::envelope::Data;
use crate::zego::{Call, required};

pub(in crate::zego) fn start_auto_mix(call: &Call) -> Result<Data, ZegoError> {
    let p = call.params;
    let mixing = mixing(call)?;
    let task_id = required(p, "TaskId", MIX_BAD_PARAM)?.to_string();
    let user_id = required(p, "UserId", MIX_BAD_PARAM)?.to_string();
    let room_id = required(p, "RoomId", MIX_BAD_PARAM)?.to_string();
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
            tributary_core::mix::MAX_VOLUME as i64,
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
            let (bitrate, channels, audio_codec) = audio_fields(v, i, default_channels)?;
            Ok(MixOutput {
                target: target(v, &format!("MixOutput[{i}]"))?,
                video: None,
                audio_bitrate_bps: bitrate,
                channels,
                room: None,
                audio_codec,
                sample_rate: audio_codec.default_rate(),
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
            max_idle_s: max_idle(p)?,
            timing: timing(p)?,
            // Audio-only outputs carry it as timed script data / ID3. The vendor keys an
            // auto-mix's levels by stream id (onAutoMixerSoundLevelUpdate), and so do we.
            stream_data: {
                let d = stream_data(p)?;
                StreamData {
                    sound_levels: false,
                    sound_levels_by_stream: d.sound_levels,
                    ..d
                }
            },
            ..MixSpec::new(Vec::new(), outputs, 1)
        },
        ex_para: ex_para(p)?,
        started_ms: now,
        updated_ms: now,
    };
    accept(call, mixing, task)
}

pub(in crate::zego) fn stop_auto_mix(call: &Call) -> Result<Data, ZegoError> {
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
    super::stop::stop_requested(call, mixing, task_id)
}
