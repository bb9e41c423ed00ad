//! Callback payloads as the vendor sends them: a flat JSON object of lower-case keys whose
//! numbers are strings, signed with the app's callback secret.

use serde_json::{Map, Value, json};

use tributary_core::store::{NewCallback, WriteOp};
use tributary_core::{AppConfig, CloseReason, CoreEvent};

use super::signature::sign;
use crate::control::PlayUrls;

/// The vendor's `stream_close` `type` numbers.
pub fn close_type(reason: CloseReason) -> u32 {
    match reason {
        CloseReason::Normal => 0,
        CloseReason::Timeout => 1,
        CloseReason::Kicked | CloseReason::Forbidden => 3,
        CloseReason::Disconnected => 4,
        CloseReason::RoomCleared => 5,
        CloseReason::Deleted => 100,
    }
}

/// The vendor's `room_logout` `reason`: 0 normal, 1 heartbeat timeout, 2 network
/// disconnected, 3 kicked out. A room cleared by CloseRoom kicks everyone out.
pub fn logout_reason(reason: CloseReason) -> u32 {
    match reason {
        CloseReason::Normal | CloseReason::Deleted => 0,
        CloseReason::Timeout => 1,
        CloseReason::Disconnected => 2,
        CloseReason::Kicked | CloseReason::Forbidden | CloseReason::RoomCleared => 3,
    }
}

/// The vendor's `room_close` `close_reason`: 0 normal (CloseRoom included), and 1, 2, 3
/// when the last member timed out, went offline or was kicked out.
pub fn room_close_reason(reason: CloseReason) -> u32 {
    match reason {
        CloseReason::Normal | CloseReason::Deleted | CloseReason::RoomCleared => 0,
        CloseReason::Timeout => 1,
        CloseReason::Disconnected => 2,
        CloseReason::Kicked | CloseReason::Forbidden => 3,
    }
}

/// The body of the callback for an event, or `None` for events that have no callback.
pub fn body_for(
    app: &AppConfig,
    event: &CoreEvent,
    urls: &PlayUrls,
) -> Option<(&'static str, Map<String, Value>)> {
    let app_id = app.app_id;
    match event {
        CoreEvent::StreamAdded { room, stream, .. } => {
            let obj = json!({
                "event": "stream_create",
                "appid": app_id.to_string(),
                "room_id": room.room_id,
                "room_session_id": room.session_id.to_string(),
                "user_id": stream.user_id,
                "user_name": stream.user_name,
                "channel_id": room.room_id,
                "stream_id": stream.stream_id,
                "stream_alias": stream.stream_id,
                "stream_sid": stream.sid(room),
                "title": stream.title,
                "stream_attr": "{\"cid\":0}",
                "stream_seq": room.stream_seq.to_string(),
                "create_time": (stream.create_time_ms / 1000).to_string(),
                "create_time_ms": stream.create_time_ms.to_string(),
                "extra_info": stream.extra_info,
                "recreate": "0",
                "publish_id": stream.user_id,
                "publish_name": stream.user_name,
                "rtmp_url": [urls.rtmp(app_id, &stream.stream_id)],
                "hls_url": [urls.hls(app_id, &stream.stream_id)],
                "hdl_url": [urls.flv(app_id, &stream.stream_id)],
                "pic_url": [],
            });
            Some(("stream_create", into_map(obj)))
        }
        CoreEvent::StreamRemoved {
            room,
            stream,
            reason,
            at_ms,
            ..
        } => {
            let obj = json!({
                "event": "stream_close",
                "appid": app_id.to_string(),
                "room_id": room.room_id,
                "room_session_id": room.session_id.to_string(),
                "user_id": stream.user_id,
                "user_name": stream.user_name,
                "channel_id": room.room_id,
                "type": close_type(*reason).to_string(),
                "stream_id": stream.stream_id,
                "stream_alias": stream.stream_id,
                "stream_sid": stream.sid(room),
                "stream_seq": room.stream_seq.to_string(),
                "third_define_data": "",
                "create_time_ms": stream.create_time_ms.to_string(),
                "destroy_timemillis": at_ms.to_string(),
            });
            Some(("stream_close", into_map(obj)))
        }
        CoreEvent::RoomCreated { room, creator, .. } => {
            let obj = json!({
                "event": "room_create",
                "appid": app_id.to_string(),
                "room_id": room.room_id,
                "room_session_id": room.session_id.to_string(),
                "room_create_time": room.create_time_ms.to_string(),
                "id_name": creator,
            });
            Some(("room_create", into_map(obj)))
        }
        CoreEvent::RoomClosed {
            room,
            reason,
            at_ms,
            quiet: false,
            ..
        } => {
            let obj = json!({
                "event": "room_close",
                "appid": app_id.to_string(),
                "room_id": room.room_id,
                "room_session_id": room.session_id.to_string(),
                "close_reason": room_close_reason(*reason).to_string(),
                "room_close_time": at_ms.to_string(),
            });
            Some(("room_close", into_map(obj)))
        }
        CoreEvent::UserJoined { room, user, .. } => {
            let obj = json!({
                "event": "room_login",
                "appid": app_id.to_string(),
                "room_id": room.room_id,
                "room_name": room.room_id,
                "room_seq": room.session_id.to_string(),
                "user_account": user.user_id,
                "user_nickname": user.user_name,
                "session_id": user.login_ms.to_string(),
                "login_time": user.login_ms.to_string(),
                "user_role": user.role.to_string(),
            });
            Some(("room_login", into_map(obj)))
        }
        CoreEvent::UserLeft {
            room,
            user,
            reason,
            at_ms,
            ..
        } => {
            let obj = json!({
                "event": "room_logout",
                "appid": app_id.to_string(),
                "room_id": room.room_id,
                "room_seq": room.session_id.to_string(),
                "user_account": user.user_id,
                "user_nickname": user.user_name,
                "session_id": user.login_ms.to_string(),
                "login_time": user.login_ms.to_string(),
                "logout_time": at_ms.to_string(),
                "reason": logout_reason(*reason).to_string(),
                "user_role": user.role.to_string(),
            });
            Some(("room_logout", into_map(obj)))
        }
        CoreEvent::StreamForbidden { .. }
        | CoreEvent::StreamResumed { .. }
        | CoreEvent::PublisherKicked { .. }
        | CoreEvent::RoomClosed { quiet: true, .. }
        | CoreEvent::ViewersRemoved { .. } => None,
    }
}

fn into_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Adds `timestamp`, `nonce` and `signature` to a payload.
pub fn sign_payload(app: &AppConfig, body: &mut Map<String, Value>, now_ms: u64) {
    let timestamp = (now_ms / 1000).to_string();
    let nonce = rand::random::<u64>().to_string();
    let signature = sign(&app.callback_secret, &timestamp, &nonce);
    body.insert("timestamp".into(), Value::String(timestamp));
    body.insert("nonce".into(), Value::String(nonce));
    body.insert("signature".into(), Value::String(signature));
}

/// The outbox entries (one per callback URL of the app) announcing an event.
pub fn callbacks_for(
    app: &AppConfig,
    event: &CoreEvent,
    urls: &PlayUrls,
    now_ms: u64,
) -> Vec<WriteOp> {
    let Some((name, mut body)) = body_for(app, event, urls) else {
        return Vec::new();
    };
    // Room callbacks go where the app asked for them (the vendor's console has a URL per
    // callback family); a stream receiver is not sent a login per player.
    let targets = if name.starts_with("room_") {
        &app.room_callback_urls
    } else {
        &app.callback_urls
    };
    if targets.is_empty() {
        return Vec::new();
    }
    sign_payload(app, &mut body, now_ms);
    let text = Value::Object(body).to_string();
    targets
        .iter()
        .map(|url| {
            WriteOp::EnqueueCallback(NewCallback {
                app_id: app.app_id,
                event: name.to_string(),
                url: url.clone(),
                body: text.clone(),
                created_ms: now_ms,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_core::registry::{RoomInfo, StreamInfo, StreamOrigin};

    fn fixture() -> (AppConfig, PlayUrls, RoomInfo, StreamInfo) {
        let mut app = AppConfig::new(42, "s".into(), "cbsecret".into());
        app.callback_urls = vec!["http://a/".into(), "http://b/".into()];
        let urls = PlayUrls {
            rtmp_base: "rtmp://h:1935".into(),
            http_base: "http://h:8080".into(),
        };
        let room = RoomInfo {
            room_id: "r1".into(),
            session_id: 9,
            stream_seq: 3,
            next_number_id: 4,
            create_time_ms: 1,
        };
        let stream = StreamInfo {
            stream_id: "s1".into(),
            room_id: "r1".into(),
            user_id: "u1".into(),
            user_name: "n".into(),
            title: "t".into(),
            extra_info: "x".into(),
            censor_flag: 0,
            number_id: 3,
            create_time_ms: 1_700_000_000_123,
            origin: StreamOrigin::Added,
        };
        (app, urls, room, stream)
    }

    #[test]
    fn stream_close_for_delete_has_type_100_and_string_numbers() {
        let (app, urls, room, stream) = fixture();
        let ev = CoreEvent::StreamRemoved {
            app_id: 42,
            room,
            stream,
            reason: CloseReason::Deleted,
            at_ms: 1_700_000_001_000,
        };
        let ops = callbacks_for(&app, &ev, &urls, 1_700_000_001_000);
        assert_eq!(ops.len(), 2);
        let WriteOp::EnqueueCallback(cb) = &ops[1] else {
            panic!("not a callback")
        };
        assert_eq!(cb.url, "http://b/");
        let v: Value = serde_json::from_str(&cb.body).unwrap();
        assert_eq!(v["event"], "stream_close");
        assert_eq!(v["type"], "100");
        assert_eq!(v["appid"], "42");
        assert_eq!(v["stream_seq"], "3");
        assert_eq!(v["stream_sid"], "9-3");
        assert_eq!(v["timestamp"], "1700000001");
        let sig = sign(
            "cbsecret",
            v["timestamp"].as_str().unwrap(),
            v["nonce"].as_str().unwrap(),
        );
        assert_eq!(v["signature"], sig.as_str());
    }

    #[test]
    fn stream_create_carries_play_urls() {
        let (app, urls, room, stream) = fixture();
        let ev = CoreEvent::StreamAdded {
            app_id: 42,
            room,
            stream,
        };
        let (name, body) = body_for(&app, &ev, &urls).unwrap();
        assert_eq!(name, "stream_create");
        assert_eq!(body["rtmp_url"][0], "rtmp://h:1935/42/s1");
        assert_eq!(body["hdl_url"][0], "http://h:8080/42/s1.flv");
        assert_eq!(body["hls_url"][0], "http://h:8080/42/s1/playlist.m3u8");
        assert_eq!(body["create_time"], "1700000000");
        assert_eq!(body["create_time_ms"], "1700000000123");
    }

    #[test]
    fn no_urls_no_callbacks() {
        let (mut app, urls, _, _) = fixture();
        app.callback_urls.clear();
        let ev = CoreEvent::StreamForbidden {
            app_id: 42,
            stream_id: "x".into(),
            room_id: None,
        };
        assert!(callbacks_for(&app, &ev, &urls, 0).is_empty());
    }
}
