//! Core rule errors and engine refusals → the ZEGO mixing codes.

use tributary_core::mix::MixError;
use tributary_core::mix_task::TaskError;

use crate::control::ControlError;
use crate::mixing::{EngineRefusal, MixControlError};
use crate::zego::codes::*;

pub(super) fn spec_error(e: MixError) -> ZegoError {
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

pub(super) fn control_error(e: MixControlError) -> ZegoError {
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
        MixControlError::Engine(EngineRefusal::Internal(m)) => ZegoError::new(MIX_FAILED_RETRY, m),
        MixControlError::Engine(EngineRefusal::Label(m)) => ZegoError::new(MIX_LABEL_BAD, m),
        MixControlError::Control(ControlError::UnknownApp(id)) => {
            ZegoError::new(GW_UNKNOWN_APP, format!("unknown AppId {id}"))
        }
        MixControlError::Control(e) => ZegoError::new(MIX_FAILED_RETRY, e.to_string()),
        e @ MixControlError::TargetRoomMissing { .. } => {
            ZegoError::new(MIX_TARGET_ROOM, e.to_string())
        }
        MixControlError::Store(e) => {
            tracing::error!(error = %e, "store write failed");
            ZegoError::new(MIX_FAILED_RETRY, "the task could not be saved; retry")
        }
    }
}
