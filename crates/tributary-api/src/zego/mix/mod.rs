//! The mixing actions: StartMix, StopMix, GetMixTaskInfo, StartAutoMix, StopAutoMix,
//! StartCloudTranscode, StopCloudTranscode.
//!
//! Wire fields in, a vendor-neutral [`MixTask`] out. Fields the engine does not implement
//! yet are refused with 110200002 and a Message naming them, never silently dropped.
//! Decisions where the vendor is silent or contradicts itself (see the spec §6, §8):
//! - `AudioCodec` absent means AAC-LC (what every player decodes); 0 is HE-AAC, 2 MP3;
//!   3 is Opus at 48 kHz (Enhanced RTMP). `VideoEncId` 3 is H.265 (Enhanced RTMP); 2 is VP8
//!   (Enhanced RTMP `vp08`, StreamId outputs only: WHEP viewers get it as it is, other
//!   players an H.264 twin); 4 is SVC as a base-layer rendition (see `wire`).
//! - A `Sequence` not greater than the task's last one is refused with 110200002 and a
//!   Message saying so; nothing is applied.
//! - An output of `Width` and `Height` ≤ 1 is audio-only (the vendor's 1×1 convention).
//! - `Fps` may go up to 60 (the vendor's default cap is 20, raised by support).
//! - StartAutoMix outputs: `StreamUrl` wins over `StreamId`, as in StartMix.
//!
//! One concept per file: `wire` (the request's fields → core types, refusals by name),
//! `start` (StartMix: start or live update, PlayInfo), `auto` (StartAutoMix/StopAutoMix),
//! `stop` (StopMix, GetMixTaskInfo), `transcode` (StartCloudTranscode/StopCloudTranscode),
//! `errors` (core and engine errors → ZEGO codes).

mod auto;
mod errors;
mod start;
mod stop;
mod transcode;
mod wire;

pub(super) use auto::{start_auto_mix, stop_auto_mix};
pub(super) use start::start_mix;
pub(super) use stop::{get_mix_task_info, stop_mix};
pub(super) use transcode::{start_cloud_transcode, stop_cloud_transcode};

use super::Call;
use super::codes::{GW_ACTION_UNSUPPORTED, ZegoError};
use crate::mixing::MixControl;

/// The task a mix action is about, when it names one.
pub(super) fn task_of(action: super::Action, p: &super::params::Params) -> Option<String> {
    use super::Action::*;
    match action {
        StartMix | StopMix | GetMixTaskInfo | StartAutoMix | StopAutoMix | StartCloudTranscode
        | StopCloudTranscode => p.non_empty("TaskId").map(str::to_string),
        _ => None,
    }
}

pub(super) fn mixing<'a>(call: &'a Call) -> Result<&'a MixControl, ZegoError> {
    call.api
        .mixing
        .as_deref()
        .ok_or_else(|| ZegoError::new(GW_ACTION_UNSUPPORTED, "this node runs no mixing engine"))
}
