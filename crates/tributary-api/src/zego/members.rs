//! Room membership actions: DescribeUsers, DescribeUserList, KickoutUser, CloseRoom.
//!
//! A user is in a room while they own a stream there (an RTMP or WHIP publish: host,
//! role 1; a stream added by the API: admin, role 4) or view it with a user-bound token
//! (an RTMP, HTTP-FLV, HLS or WHEP player, or the room's event feed: audience, role 2).
//! Decisions where the vendor is silent:
//! - DescribeUserList's `Marker` is `{login_ms}:{user_id}` of the last user returned;
//!   the next page starts after it. An empty Marker ends the list.
//! - KickoutUser takes every stream of those users out of the room (`stream_close` type
//!   3), cuts their publishers and players off, and refuses them in that room for the
//!   app's `kick_refusal_secs` (60 by default), so a client's reconnect does not undo it.
//! - CloseRoom does the same for every member (`stream_close` type 5, "room cleared",
//!   `room_logout` reason 3) without a refusal; mixes reading those streams go on
//!   without them. `room_close` is sent only when `RoomCloseCallback` is true.

use serde_json::{Value, json};

use tributary_core::CloseReason;
use tributary_core::registry::RoomUser;

use super::codes::*;
use super::envelope::Data;
use super::room::room_error;
use super::{Call, required};

/// Users per DescribeUsers call, per KickoutUser call, per DescribeUserList page.
const MAX_DESCRIBED: usize = 10;
const MAX_KICKED: usize = 5;
const MAX_PAGE: usize = 200;
const MAX_REASON: usize = 256;

fn users_param(call: &Call, max: usize, too_many: u64) -> Result<Vec<String>, ZegoError> {
    let users: Vec<String> = call.params.all("UserId").to_vec();
    if users.is_empty() {
        return Err(ZegoError::new(ROOM_BAD_PARAM, "UserId[] is required"));
    }
    if users.len() > max {
        return Err(ZegoError::new(
            too_many,
            format!("UserId[] holds at most {max} users, not {}", users.len()),
        ));
    }
    if users.iter().any(String::is_empty) {
        return Err(ZegoError::new(ROOM_BAD_PARAM, "a UserId is empty"));
    }
    Ok(users)
}

fn reason_param(call: &Call) -> Result<(), ZegoError> {
    match call.params.get("CustomReason") {
        Some(r) if r.len() > MAX_REASON => Err(ZegoError::new(
            ROOM_PARAM_TOO_LONG,
            format!("CustomReason is at most {MAX_REASON} bytes"),
        )),
        _ => Ok(()),
    }
}

fn users(call: &Call, room: &str) -> Result<Vec<RoomUser>, ZegoError> {
    call.control()
        .room_users(call.app.config.app_id, room)
        .map_err(|e| room_error(e, ROOM_LIST_FAILED))
}

pub(super) fn describe_users(call: &Call) -> Result<Data, ZegoError> {
    let room = required(call.params, "RoomId", ROOM_BAD_PARAM)?;
    let asked = users_param(call, MAX_DESCRIBED, ROOM_BAD_PARAM)?;
    let members = users(call, room)?;
    let list: Vec<Value> = asked
        .iter()
        .map(|id| match members.iter().find(|u| &u.user_id == id) {
            Some(u) => {
                json!({"UserId": id, "Status": 1, "LoginTime": u.login_ms, "UserRole": u.role})
            }
            None => json!({"UserId": id, "Status": 0, "LoginTime": 0, "UserRole": 0}),
        })
        .collect();
    Ok(Data::Value(json!({ "UserStatusList": list })))
}

pub(super) fn describe_user_list(call: &Call) -> Result<Data, ZegoError> {
    let p = call.params;
    let room = required(p, "RoomId", ROOM_BAD_PARAM)?;
    let int = |k: &str, default: usize| -> Result<usize, ZegoError> {
        match p.get(k).filter(|v| !v.is_empty()) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| ZegoError::new(ROOM_BAD_PARAM, format!("{k} must be a number"))),
        }
    };
    let descending = match int("Mode", 0)? {
        0 => false,
        1 => true,
        m => {
            return Err(ZegoError::new(
                ROOM_BAD_PARAM,
                format!("Mode must be 0 or 1, not {m}"),
            ));
        }
    };
    let limit = match int("Limit", MAX_PAGE)? {
        0 => MAX_PAGE,
        l if l <= MAX_PAGE => l,
        l => {
            return Err(ZegoError::new(
                ROOM_BAD_PARAM,
                format!("Limit is at most {MAX_PAGE}, not {l}"),
            ));
        }
    };
    let after = match p.get("Marker").filter(|m| !m.is_empty()) {
        None => None,
        Some(m) => {
            let (ms, id) = m
                .split_once(':')
                .and_then(|(ms, id)| Some((ms.parse::<u64>().ok()?, id)))
                .ok_or_else(|| {
                    ZegoError::new(ROOM_BAD_PARAM, "Marker is not one this server gave")
                })?;
            Some((ms, id.to_string()))
        }
    };
    let mut members = users(call, room)?;
    if descending {
        members.reverse();
    }
    let start = match &after {
        None => 0,
        Some((ms, id)) => members
            .iter()
            .position(|u| {
                let k = (u.login_ms, u.user_id.as_str());
                let m = (*ms, id.as_str());
                if descending { k < m } else { k > m }
            })
            .unwrap_or(members.len()),
    };
    let page: Vec<&RoomUser> = members.iter().skip(start).take(limit).collect();
    let more = start + page.len() < members.len();
    let marker = match (more, page.last()) {
        (true, Some(u)) => format!("{}:{}", u.login_ms, u.user_id),
        _ => String::new(),
    };
    let list: Vec<Value> = page
        .iter()
        .map(|u| json!({"UserId": u.user_id, "UserName": u.user_name, "UserRole": u.role}))
        .collect();
    Ok(Data::Value(json!({ "Marker": marker, "UserList": list })))
}

pub(super) fn kickout_user(call: &Call) -> Result<Data, ZegoError> {
    let room = required(call.params, "RoomId", ROOM_BAD_PARAM)?;
    let kicked = users_param(call, MAX_KICKED, ROOM_USER_LIST_TOO_LONG)?;
    reason_param(call)?;
    call.control()
        .clear_users(
            call.app.config.app_id,
            room,
            Some(&kicked),
            CloseReason::Kicked,
            false,
        )
        .map_err(|e| room_error(e, ROOM_DELETE_STREAM_FAILED))?;
    Ok(Data::Absent)
}

pub(super) fn close_room(call: &Call) -> Result<Data, ZegoError> {
    let room = required(call.params, "RoomId", ROOM_BAD_PARAM)?;
    reason_param(call)?;
    let callback = match call.params.non_empty("RoomCloseCallback") {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(v) => {
            return Err(ZegoError::new(
                ROOM_BAD_PARAM,
                format!("RoomCloseCallback must be true or false, not {v:?}"),
            ));
        }
    };
    if users(call, room)?.is_empty() {
        return Err(ZegoError::new(
            ROOM_CLOSE_NOT_FOUND,
            format!("room {room} does not exist"),
        ));
    }
    call.control()
        .clear_users(
            call.app.config.app_id,
            room,
            None,
            CloseReason::RoomCleared,
            callback,
        )
        .map_err(|e| room_error(e, ROOM_DELETE_STREAM_FAILED))?;
    Ok(Data::Absent)
}
