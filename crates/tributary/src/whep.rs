//! WHEP (the playback twin of WHIP): `POST /whep/{AppId}/{streamId}` with a recvonly SDP
//! offer answers `201 Created`, the answer and a `Location` to `DELETE`. A play token is
//! needed when `--play-token` is on (`Authorization: Bearer`, or `?token=`), as for the
//! other players. The stream must be live (`404` otherwise); the viewer starts at its
//! last key frame.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use serde::Deserialize;

use tributary_live::auth::PlayRequest;
use tributary_rtc::RtcServer;

use crate::whip::{answered, ended, no_trickle, offer_of, preflight};

#[derive(Debug, Default, Deserialize)]
struct Who {
    token: Option<String>,
    /// A viewer that names its room and user (with a token bound to them) is a member.
    #[serde(default)]
    room: String,
    #[serde(default)]
    user: String,
}

pub fn router(rtc: Arc<RtcServer>) -> Router {
    Router::new()
        .route("/whep/{app}/{stream}", post(play).options(preflight))
        .route(
            "/whep/{app}/{stream}/{session}",
            axum::routing::delete(end)
                .patch(no_trickle)
                .options(preflight),
        )
        .with_state(rtc)
}

async fn play(
    State(rtc): State<Arc<RtcServer>>,
    Path((app, stream)): Path<(String, String)>,
    Query(who): Query<Who>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (app_id, offer, bearer) = match offer_of(&app, &headers, &body) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let req = PlayRequest {
        app_id,
        stream_id: stream.clone(),
        room_id: who.room,
        user_id: who.user,
        token: bearer.or(who.token),
        peer: peer.map(|e| e.0.0),
        relay: None,
    };
    answered(rtc.play(req, offer).await, "whep", app_id, &stream)
}

async fn end(
    State(rtc): State<Arc<RtcServer>>,
    Path((app, stream, session)): Path<(String, String, String)>,
) -> Response {
    ended(&app, &stream, |key| rtc.stop_viewing(key, &session))
}
