//! Core rule errors and engine refusals → the ZEGO mixing codes.

use tributary_core::mix::{Field, Item, MixError};
use tributary_core::mix_task::TaskError;

use crate::control::ControlError;
use crate::mixing::{EngineRefusal, MixControlError};
use crate::zego::codes::*;

/// The ZEGO name of a core field.
fn field_name(field: Field) -> &'static str {
    match field {
        Field::Volume => "Volume",
        Field::Rect => "RectInfo",
        Field::CornerRadius => "RectInfo.CornerRadius",
        Field::Uid => "UID",
        Field::Label => "Label",
        Field::Blur => "BlurInfo",
        Field::Width => "Width",
        Field::Height => "Height",
        Field::VideoBitrate => "VideoBitrate",
        Field::AudioBitrate => "AudioBitrate",
        Field::Channels => "SoundChannel",
        Field::OutputUrl => "StreamUrl",
        Field::Replaced => "StreamId",
        Field::TargetRoom => "TargetRoom",
        Field::Fps => "Fps",
        Field::MaxIdleTime => "MaxIdleTime",
        Field::RecvBuffer => "RecvBufferLevel",
        Field::Watermark => "WaterMark.RectInfo",
        Field::ImageLayer => "image layer",
        Field::UserData => "UserData",
        Field::SoundLevelId => "SoundLevelId",
        Field::Gop => "GOP",
        Field::SampleRate => "AudioCodec",
        Field::VideoCodec => "VideoEncId",
    }
}

pub(super) fn spec_error(e: MixError) -> ZegoError {
    let code = match &e {
        MixError::TooManyInputs { .. } => MIX_TOO_MANY_INPUTS,
        MixError::TooManyOutputs { .. } => MIX_TOO_MANY_OUTPUTS,
        MixError::DuplicateInput(_) => MIX_DUPLICATE_INPUT,
        MixError::DuplicateOutput(_) => MIX_DUPLICATE_OUTPUT,
        MixError::InputIsOutput(_) => MIX_IN_EQUALS_OUT,
        // The vendor documents 110200161 for the width; the height obeys the same rule and
        // gets the same code.
        MixError::Invalid {
            field: Field::Width | Field::Height,
            ..
        } => MIX_BAD_WIDTH,
        MixError::Invalid {
            field: Field::Watermark,
            ..
        } => MIX_WATERMARK_BAD,
        MixError::Invalid {
            field: Field::Label,
            ..
        } => MIX_LABEL_BAD,
        _ => MIX_BAD_PARAM,
    };
    let message = match &e {
        MixError::Invalid {
            item,
            field,
            reason,
        } => {
            let prefix = match item {
                Item::Task => String::new(),
                Item::Input(i) => format!("MixInput[{i}]."),
                Item::Output(i) => format!("MixOutput[{i}]."),
            };
            format!("{prefix}{} {reason}", field_name(*field))
        }
        other => other.to_string(),
    };
    ZegoError::new(code, message)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(item: Item, field: Field) -> MixError {
        MixError::Invalid {
            item,
            field,
            reason: "must be within [a, b], not c".into(),
        }
    }

    #[test]
    fn core_fields_get_the_vendors_names_and_codes() {
        let w = spec_error(invalid(Item::Output(1), Field::Width));
        let h = spec_error(invalid(Item::Output(0), Field::Height));
        assert_eq!((w.code, h.code), (MIX_BAD_WIDTH, MIX_BAD_WIDTH));
        assert_eq!(w.message, "MixOutput[1].Width must be within [a, b], not c");
        assert_eq!(
            h.message,
            "MixOutput[0].Height must be within [a, b], not c"
        );
        let l = spec_error(invalid(Item::Input(2), Field::Label));
        assert_eq!(l.code, MIX_LABEL_BAD);
        assert!(l.message.starts_with("MixInput[2].Label "));
        let r = spec_error(invalid(Item::Input(0), Field::CornerRadius));
        assert_eq!(r.code, MIX_BAD_PARAM);
        assert!(r.message.starts_with("MixInput[0].RectInfo.CornerRadius "));
        assert_eq!(
            spec_error(invalid(Item::Task, Field::Watermark)).code,
            MIX_WATERMARK_BAD
        );
        let t = spec_error(invalid(Item::Task, Field::RecvBuffer));
        assert!(t.message.starts_with("RecvBufferLevel "), "{}", t.message);
    }
}
