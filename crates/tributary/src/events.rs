//! The room event feed: `GET /rooms/{roomId}/events?app_id=…&token=…` as Server-Sent
//! Events. It carries what changes a room's stream list — streams added (AddStream or a
//! publish), deleted (DeleteStream), removed (a publisher left, with why) and forbidden —
//! in commit order, each with the room's `stream_seq`, so a client can tell whether it
//! missed something and re-list; and who comes and goes (`user_joined`, `user_left`,
//! `room_closed`). The token is a room-events token minted with the app's ServerSecret
//! (`tributary url events`). A feed opened with `&user=…` and a token bound to that user
//! makes the user a member of the room (audience) for as long as it is open; KickoutUser
//! and CloseRoom end it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use tributary_api::ControlPlane;
use tributary_api::clock::now_ms;
use tributary_core::registry::StreamOrigin;
use tributary_core::token::{self, Claims, Purpose};
use tributary_core::{AppId, CloseReason, CoreEvent};
use tributary_live::auth::removed;
use tributary_live::slots::KeyedSlots;

use crate::viewers::Viewers;

#[derive(Clone)]
struct FeedState {
    control: Arc<ControlPlane>,
    viewers: Arc<Viewers>,
    /// Open feeds per app: each holds a broadcast receiver and a connection.
    feeds: Arc<KeyedSlots<AppId>>,
}

/// The feed's route; at most `max_per_app` feeds of one app are open at once (429 past it).
pub fn router(control: Arc<ControlPlane>, viewers: Arc<Viewers>, max_per_app: usize) -> Router {
    Router::new()
        .route("/rooms/{room}/events", get(feed))
        .with_state(FeedState {
            control,
            viewers,
            feeds: KeyedSlots::new(max_per_app),
        })
}

fn reason_name(r: CloseReason) -> &'static str {
    match r {
        CloseReason::Normal => "normal",
        CloseReason::Timeout => "timeout",
        CloseReason::Kicked => "kicked",
        CloseReason::Disconnected => "disconnected",
        CloseReason::RoomCleared => "room_cleared",
        CloseReason::Deleted => "deleted",
        CloseReason::Forbidden => "forbidden",
    }
}

/// The SSE event for a core event, if it concerns `room` of `app`.
fn to_event(app: AppId, room: &str, ev: &CoreEvent) -> Option<Event> {
    let (name, data) = match ev {
        CoreEvent::StreamAdded {
            app_id,
            room: r,
            stream,
        } if *app_id == app && r.room_id == room => (
            "stream_added",
            json!({
                "room_id": r.room_id, "stream_id": stream.stream_id, "user_id": stream.user_id,
                "stream_seq": r.stream_seq, "stream_number_id": stream.number_id,
                "stream_sid": stream.sid(r), "create_time": stream.create_time_ms,
                "origin": match stream.origin {
                    StreamOrigin::Published => "published",
                    StreamOrigin::Mix => "mix",
                    StreamOrigin::Added => "api",
                },
                "title": stream.title, "extra_info": stream.extra_info,
            }),
        ),
        CoreEvent::StreamRemoved {
            app_id,
            room: r,
            stream,
            reason,
            at_ms,
        } if *app_id == app && r.room_id == room => (
            if *reason == CloseReason::Deleted {
                "stream_deleted"
            } else {
                "stream_removed"
            },
            json!({
                "room_id": r.room_id, "stream_id": stream.stream_id, "user_id": stream.user_id,
                "stream_seq": r.stream_seq, "stream_number_id": stream.number_id,
                "reason": reason_name(*reason), "time": at_ms,
            }),
        ),
        CoreEvent::StreamForbidden {
            app_id,
            stream_id,
            room_id: Some(r),
        } if *app_id == app && r == room => (
            "stream_forbidden",
            json!({ "room_id": r, "stream_id": stream_id, "time": now_ms() }),
        ),
        CoreEvent::UserJoined {
            app_id,
            room: r,
            user,
        } if *app_id == app && r.room_id == room => (
            "user_joined",
            json!({
                "room_id": r.room_id, "user_id": user.user_id, "user_name": user.user_name,
                "role": user.role, "time": user.login_ms,
            }),
        ),
        CoreEvent::UserLeft {
            app_id,
            room: r,
            user,
            reason,
            at_ms,
        } if *app_id == app && r.room_id == room => (
            "user_left",
            json!({
                "room_id": r.room_id, "user_id": user.user_id, "role": user.role,
                "reason": reason_name(*reason), "time": at_ms,
            }),
        ),
        CoreEvent::RoomClosed {
            app_id,
            room: r,
            reason,
            at_ms,
            ..
        } if *app_id == app && r.room_id == room => (
            "room_closed",
            json!({ "room_id": r.room_id, "reason": reason_name(*reason), "time": at_ms }),
        ),
        _ => return None,
    };
    let mut e = Event::default().event(name).data(data.to_string());
    if let Some(seq) = data.get("stream_seq").and_then(|v| v.as_u64()) {
        e = e.id(seq.to_string());
    }
    Some(e)
}

async fn feed(
    State(FeedState {
        control,
        viewers,
        feeds,
    }): State<FeedState>,
    Path(room): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(app_id) = q.get("app_id").and_then(|a| a.parse::<AppId>().ok()) else {
        return (StatusCode::BAD_REQUEST, "app_id is required\n").into_response();
    };
    let Some(app) = control.app(app_id) else {
        return (StatusCode::NOT_FOUND, "unknown app\n").into_response();
    };
    let user = q.get("user").cloned().unwrap_or_default();
    let claims = Claims {
        purpose: Purpose::RoomEvents,
        app_id,
        stream_id: "",
        room_id: &room,
        user_id: &user,
    };
    if let Err(e) = token::verify(
        &app.config.server_secret,
        &claims,
        q.get("token").map(String::as_str),
        now_ms() / 1000,
    ) {
        return (StatusCode::FORBIDDEN, format!("{e}\n")).into_response();
    }
    let Some(slot) = feeds.take(app_id) else {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            "too many open event feeds for this app\n",
        )
            .into_response();
    };
    // Subscribe before reading the room so nothing falls between the two (the user's
    // own join is the feed's first event after `ready`).
    let rx = control.subscribe();
    let attendance = if user.is_empty() {
        None
    } else {
        let (v, r, u) = (viewers.clone(), room.clone(), user.clone());
        match tokio::task::spawn_blocking(move || v.join(app_id, &r, &u)).await {
            Ok(Ok(a)) => Some(a),
            Ok(Err(e)) => return (StatusCode::FORBIDDEN, format!("{e}\n")).into_response(),
            Err(e) => {
                return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response();
            }
        }
    };
    let seq = control
        .list_streams(app_id, &room)
        .ok()
        .map(|l| l.len())
        .unwrap_or(0);
    let hello = Event::default()
        .event("ready")
        .data(json!({ "room_id": room, "streams": seq }).to_string());
    let first = futures_util::stream::once(async move { Ok::<Event, Infallible>(hello) });
    // The attendance and the slot live in the stream's state: both go when the client
    // does, and a removal by the API ends the stream.
    let rest = futures_util::stream::unfold(
        (rx, room, slot, attendance),
        move |(mut rx, room, slot, attendance)| async move {
            loop {
                let got = tokio::select! {
                    got = rx.recv() => got,
                    _ = removed(&attendance) => return None,
                };
                match got {
                    Ok(ev) => {
                        if let Some(e) = to_event(app_id, &room, &ev) {
                            return Some((
                                Ok::<Event, Infallible>(e),
                                (rx, room, slot, attendance),
                            ));
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        // Tell the client it must re-list the room.
                        let e = Event::default()
                            .event("lagged")
                            .data(json!({ "missed": n }).to_string());
                        return Some((Ok(e), (rx, room, slot, attendance)));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        },
    );
    Sse::new(futures_util::StreamExt::chain(first, rest))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
