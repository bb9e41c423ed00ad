//! StopMix and GetMixTaskInfo.

use serde_json::json;

use super::errors::*;
use super::mixing;
use super::wire::*;
use crate::mixing::{MixControl, StopReason};
use crate::zego::codes::*;
use crate::zego::envelope::Data;
use crate::zego::{Call, required};

pub(in crate::zego) fn stop_mix(call: &Call) -> Result<Data, ZegoError> {
    let task_id = required(call.params, "TaskId", MIX_BAD_PARAM)?;
    stop_requested(call, mixing(call)?, task_id)
}

/// Stops `task_id` as the request's `UserId` and `Sequence` ask (owner and order rules
/// apply); StopAutoMix ends here too.
pub(super) fn stop_requested(
    call: &Call,
    mixing: &MixControl,
    task_id: &str,
) -> Result<Data, ZegoError> {
    let p = call.params;
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

pub(in crate::zego) fn get_mix_task_info(call: &Call) -> Result<Data, ZegoError> {
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
