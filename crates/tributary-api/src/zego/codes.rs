//! The dialect's return codes, and the error type every handler returns.

/// Which code table and `Message` an action uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Room signalling: AddStream, DeleteStream, DescribeSimpleStreamList, DescribeUserNum.
    Room,
    /// Stream mixing and transcoding.
    Mix,
    /// Media service: ForbidRTCStream(s), ResumeRTCStream(s), DescribeRTCStreamState.
    Media,
}

impl Family {
    /// The success `Message`.
    pub fn ok_message(self) -> &'static str {
        match self {
            Family::Room | Family::Mix => "success",
            Family::Media => "ok",
        }
    }

    /// The code for a malformed business parameter.
    pub fn bad_param(self) -> u64 {
        match self {
            Family::Room => ROOM_BAD_PARAM,
            Family::Mix => MIX_BAD_PARAM,
            Family::Media => MEDIA_BAD_PARAM,
        }
    }

    /// The code for a body that is not a JSON object.
    pub fn bad_body(self) -> u64 {
        match self {
            Family::Room => ROOM_DECODE_FAILED,
            Family::Mix => MIX_BAD_PARAM,
            Family::Media => MEDIA_BAD_PARAM,
        }
    }

    /// The code for too many requests of the app.
    pub fn throttled(self) -> u64 {
        match self {
            Family::Room => ROOM_APP_THROTTLED,
            Family::Mix => MIX_OVERLOAD,
            Family::Media => MEDIA_THROTTLED,
        }
    }
}

// Gateway (common parameters).
pub const GW_APPID_FORMAT: u64 = 100000001;
pub const GW_TIMESTAMP_EMPTY: u64 = 100000002;
pub const GW_TIMESTAMP_FORMAT: u64 = 100000003;
pub const GW_SIGNATURE_EXPIRED: u64 = 100000004;
pub const GW_SIGNATURE_ERROR: u64 = 100000005;
pub const GW_ACTION_EMPTY: u64 = 100000006;
pub const GW_ACTION_UNSUPPORTED: u64 = 100000007;
pub const GW_NONCE_EMPTY: u64 = 100000008;
pub const GW_SIGNATURE_EMPTY: u64 = 100000009;
pub const GW_UNKNOWN_APP: u64 = 100000010;
pub const GW_VERSION_EMPTY: u64 = 100000013;
pub const GW_VERSION_UNSUPPORTED: u64 = 100000014;
pub const GW_INTERNAL: u64 = 100000015;
pub const GW_WRONG_ENV: u64 = 100000016;

// Room signalling.
pub const ROOM_BAD_PARAM: u64 = 2;
pub const ROOM_PARAM_TOO_LONG: u64 = 3;
pub const ROOM_DECODE_FAILED: u64 = 8;
pub const ROOM_SET_STREAM_FAILED: u64 = 123;
pub const ROOM_DELETE_STREAM_FAILED: u64 = 124;
pub const ROOM_STREAM_NOT_FOUND: u64 = 138;
pub const ROOM_LIST_FAILED: u64 = 154;
pub const ROOM_APP_THROTTLED: u64 = 206;
pub const ROOM_ROOM_THROTTLED: u64 = 207;
pub const ROOM_STREAM_CONFLICT: u64 = 1012;
/// CloseRoom: the room does not exist.
pub const ROOM_CLOSE_NOT_FOUND: u64 = 5024;
/// KickoutUser: more users than one call may kick.
pub const ROOM_USER_LIST_TOO_LONG: u64 = 50011;

// Mixing.
pub const MIX_FAILED_RETRY: u64 = 110200001;
pub const MIX_BAD_PARAM: u64 = 110200002;
pub const MIX_IN_EQUALS_OUT: u64 = 110200140;
pub const MIX_IMAGE_PROTOCOL: u64 = 110200141;
pub const MIX_IMAGE_FETCH: u64 = 110200142;
pub const MIX_INPUT_MISSING: u64 = 110200150;
/// "Mix input stream error": an input URL this server may not open.
pub const MIX_INPUT_STREAM_ERROR: u64 = 110200153;
/// "Mix output stream error": an output URL this server may not push to.
pub const MIX_OUTPUT_STREAM_ERROR: u64 = 110200154;
pub const MIX_TASK_FAILED: u64 = 110200151;
pub const MIX_TOO_MANY_INPUTS: u64 = 110200158;
pub const MIX_NOT_OWNER: u64 = 110200160;
pub const MIX_BAD_WIDTH: u64 = 110200161;
pub const MIX_WATERMARK_BAD: u64 = 110200170;
pub const MIX_WATERMARK_EMPTY: u64 = 110200171;
pub const MIX_LABEL_BAD: u64 = 110200179;
pub const MIX_TARGET_ROOM: u64 = 110200197;
pub const MIX_DUPLICATE_INPUT: u64 = 110200175;
pub const MIX_DUPLICATE_OUTPUT: u64 = 110200176;
pub const MIX_TOO_MANY_OUTPUTS: u64 = 110200178;
pub const MIX_OVERLOAD: u64 = 110200194;
pub const MIX_TASK_NOT_FOUND: u64 = 110209001;

// Media service.
pub const MEDIA_BAD_PARAM: u64 = 2;
pub const MEDIA_THROTTLED: u64 = 30002;
pub const MEDIA_BAD_STREAM_LIST: u64 = 30006;
pub const MEDIA_BAD_STREAM_ID: u64 = 30009;
pub const MEDIA_STREAM_NOT_FOUND: u64 = 41004;
pub const MEDIA_FORBID_FAILED: u64 = 42001;
pub const MEDIA_RESUME_FAILED: u64 = 42002;
pub const MEDIA_BATCH_FORBID_FAILED: u64 = 42003;
pub const MEDIA_BATCH_RESUME_FAILED: u64 = 42004;

/// A refusal: the code and a Message that says what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZegoError {
    pub code: u64,
    pub message: String,
}

impl ZegoError {
    pub fn new(code: u64, message: impl Into<String>) -> Self {
        ZegoError {
            code,
            message: message.into(),
        }
    }
}
