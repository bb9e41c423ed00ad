//! Room signalling actions: AddStream, DeleteStream, DescribeSimpleStreamList,
//! DescribeUserNum. All four share the app's one rooms-and-streams registry.
//!
//! AddStream creates the room when it does not exist (the vendor does this only when
//! support enables it; a self-hosted server has no reason to refuse), and a room closes
//! when its last stream leaves.

use serde_json::{Value, json};

use tributary_core::registry::{NewStream, StreamOrigin};
use tributary_core::{CloseReason, CoreError};

use super::codes::*;
use super::envelope::Data;
use super::{Call, required};
use crate::control::ControlError;

/// Maps a control-plane error of a room action; `store_code` is the action's own
/// "failed to save" code.
pub(super) fn room_error(e: ControlError, store_code: u64) -> ZegoError {
    match e {
        ControlError::Rule(rule) => {
            let code = match &rule {
                CoreError::IdTooLong { .. } | CoreError::FieldTooLong { .. } => ROOM_PARAM_TOO_LONG,
                CoreError::StreamOwnedByOther { .. } | CoreError::StreamInOtherRoom { .. } => {
                    ROOM_STREAM_CONFLICT
                }
                CoreError::StreamNotFound { .. } => ROOM_STREAM_NOT_FOUND,
                CoreError::RoomFull { .. } | CoreError::TooManyRooms { .. } => store_code,
                _ => ROOM_BAD_PARAM,
            };
            ZegoError::new(code, rule.to_string())
        }
        ControlError::Store(s) => {
            tracing::error!(error = %s, "store write failed");
            ZegoError::new(store_code, "the change could not be saved; retry")
        }
        ControlError::UnknownApp(id) => {
            ZegoError::new(GW_UNKNOWN_APP, format!("unknown AppId {id}"))
        }
    }
}

pub(super) fn add_stream(call: &Call) -> Result<Data, ZegoError> {
    let p = call.params;
    let censor_flag = match p.non_empty("CensorFlag") {
        None => 0,
        Some("0") => 0,
        Some("1") => 1,
        Some(v) => {
            return Err(ZegoError::new(
                ROOM_BAD_PARAM,
                format!("CensorFlag must be 0 or 1, not {v:?}"),
            ));
        }
    };
    let req = NewStream {
        room_id: required(p, "RoomId", ROOM_BAD_PARAM)?.to_string(),
        user_id: required(p, "UserId", ROOM_BAD_PARAM)?.to_string(),
        stream_id: required(p, "StreamId", ROOM_BAD_PARAM)?.to_string(),
        user_name: p.get("UserName").unwrap_or_default().to_string(),
        title: p.get("StreamTitle").unwrap_or_default().to_string(),
        extra_info: p.get("ExtraInfo").unwrap_or_default().to_string(),
        censor_flag,
        origin: StreamOrigin::Added,
    };
    call.control()
        .add_stream(call.app.config.app_id, req)
        .map_err(|e| room_error(e, ROOM_SET_STREAM_FAILED))?;
    Ok(Data::Absent)
}

pub(super) fn delete_stream(call: &Call) -> Result<Data, ZegoError> {
    let p = call.params;
    let room_id = required(p, "RoomId", ROOM_BAD_PARAM)?;
    required(p, "UserId", ROOM_BAD_PARAM)?;
    let stream_id = required(p, "StreamId", ROOM_BAD_PARAM)?;
    call.control()
        .remove_stream(
            call.app.config.app_id,
            room_id,
            stream_id,
            CloseReason::Deleted,
        )
        .map_err(|e| room_error(e, ROOM_DELETE_STREAM_FAILED))?;
    Ok(Data::Absent)
}

pub(super) fn describe_simple_stream_list(call: &Call) -> Result<Data, ZegoError> {
    let room_id = required(call.params, "RoomId", ROOM_BAD_PARAM)?;
    call.api.gateway.throttle_room(
        call.app,
        super::Action::DescribeSimpleStreamList,
        room_id,
        call.now_ms,
    )?;
    let streams = call
        .control()
        .list_streams_everywhere(call.app.config.app_id, room_id)
        .map_err(|e| room_error(e, ROOM_LIST_FAILED))?;
    let list: Vec<Value> = streams
        .iter()
        .map(|s| {
            json!({
                "StreamId": s.stream_id,
                "UserId": s.user_id,
                "UserName": s.user_name,
                "CreateTime": s.create_time_ms,
                "StreamNumberId": s.number_id,
            })
        })
        .collect();
    Ok(Data::Value(json!({ "StreamList": list })))
}

pub(super) fn describe_user_num(call: &Call) -> Result<Data, ZegoError> {
    let rooms = call.params.all("RoomId");
    if rooms.is_empty() || rooms.len() > 10 {
        return Err(ZegoError::new(
            ROOM_BAD_PARAM,
            format!("RoomId[] must hold 1 to 10 room ids, not {}", rooms.len()),
        ));
    }
    if let Some(empty) = rooms.iter().position(String::is_empty) {
        return Err(ZegoError::new(
            ROOM_BAD_PARAM,
            format!("RoomId[{empty}] is empty"),
        ));
    }
    let counts = call
        .control()
        .user_counts(call.app.config.app_id, rooms)
        .map_err(|e| room_error(e, ROOM_LIST_FAILED))?;
    let list: Vec<Value> = rooms
        .iter()
        .zip(counts)
        .map(
            |(room, c)| json!({ "RoomId": room, "UserCount": c.users, "AdminUserCount": c.admins }),
        )
        .collect();
    Ok(Data::Value(json!({ "UserCountList": list })))
}
