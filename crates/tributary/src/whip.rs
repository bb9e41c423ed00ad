//! WHIP (RFC 9725) over the API's HTTP server: `POST /whip/{AppId}/{streamId}` with an
//! SDP offer and `Authorization: Bearer <publish token>` (the same token as an RTMP
//! publish: `?room=&user=` name the room and user it binds) answers `201 Created` with
//! the SDP answer and a `Location` to `DELETE` when done. Trickle ICE is not offered
//! (`PATCH` → 405): the server is ICE-lite and lists its candidates in the answer.
//! Browsers get CORS headers and an `OPTIONS` preflight.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;

use tributary_core::AppId;
use tributary_live::auth::{PublishRequest, stream_key};
use tributary_rtc::{RtcServer, WhipError};

/// An SDP offer is a few KiB; this leaves room for many codecs and candidates.
const MAX_OFFER: usize = 64 * 1024;

#[derive(Debug, Default, Deserialize)]
struct Who {
    room: Option<String>,
    user: Option<String>,
    /// For clients that cannot set a header.
    token: Option<String>,
}

pub fn router(rtc: Arc<RtcServer>) -> Router {
    Router::new()
        .route("/whip/{app}/{stream}", post(publish).options(preflight))
        .route(
            "/whip/{app}/{stream}/{session}",
            axum::routing::delete(end)
                .patch(no_trickle)
                .options(preflight),
        )
        .with_state(rtc)
}

pub(crate) fn cors(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location"),
    );
    r
}

pub(crate) fn plain(status: StatusCode, msg: impl Into<String>) -> Response {
    cors((status, format!("{}\n", msg.into())).into_response())
}

pub(crate) async fn preflight() -> Response {
    let mut r = cors(StatusCode::NO_CONTENT.into_response());
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, DELETE, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type"),
    );
    r
}

pub(crate) async fn no_trickle() -> Response {
    plain(
        StatusCode::METHOD_NOT_ALLOWED,
        "trickle ICE is not supported: the answer lists every server candidate",
    )
}

async fn publish(
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
    let req = PublishRequest {
        app_id,
        stream_id: stream.clone(),
        room_id: who.room.unwrap_or_default(),
        user_id: who.user.unwrap_or_default(),
        token: bearer.or(who.token),
        peer: peer.map(|e| e.0.0),
    };
    answered(rtc.publish(req, offer).await, "whip", app_id, &stream)
}

/// The offer of a WHIP/WHEP POST: the app, the SDP (checked: type, size, UTF-8) and the
/// bearer token.
pub(crate) fn offer_of<'a>(
    app: &str,
    headers: &HeaderMap,
    body: &'a Bytes,
) -> Result<(AppId, &'a str, Option<String>), Box<Response>> {
    let Ok(app_id) = app.parse::<AppId>() else {
        return Err(Box::new(plain(
            StatusCode::NOT_FOUND,
            format!("unknown app {app:?}"),
        )));
    };
    let sdp = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/sdp"));
    if !sdp {
        return Err(Box::new(plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the offer must be sent as Content-Type: application/sdp",
        )));
    }
    if body.len() > MAX_OFFER {
        return Err(Box::new(plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the SDP offer is too large",
        )));
    }
    let Ok(offer) = std::str::from_utf8(body) else {
        return Err(Box::new(plain(
            StatusCode::BAD_REQUEST,
            "the SDP offer is not UTF-8",
        )));
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    Ok((app_id, offer, bearer))
}

/// `201 Created` with the answer and the resource, or the error's status.
pub(crate) fn answered(
    result: Result<tributary_rtc::Accepted, WhipError>,
    kind: &str,
    app_id: AppId,
    stream: &str,
) -> Response {
    match result {
        Ok(a) => {
            let location = format!("/{kind}/{app_id}/{stream}/{}", a.session_id);
            let mut r = cors((StatusCode::CREATED, a.answer).into_response());
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/sdp"),
            );
            if let Ok(v) = HeaderValue::from_str(&location) {
                h.insert(header::LOCATION, v);
            }
            r
        }
        Err(WhipError::Refused(r)) => {
            let status = match r.reason {
                "missing_token" | "expired_token" | "bad_token" => StatusCode::UNAUTHORIZED,
                "unknown_app" => StatusCode::NOT_FOUND,
                "bad_id" => StatusCode::BAD_REQUEST,
                _ => StatusCode::FORBIDDEN,
            };
            plain(status, r.message)
        }
        Err(e @ WhipError::Busy(_)) => plain(StatusCode::CONFLICT, e.to_string()),
        Err(e @ WhipError::NotLive(_)) => plain(StatusCode::NOT_FOUND, e.to_string()),
        Err(e @ WhipError::BadOffer(_)) => plain(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e @ WhipError::Full) => plain(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e @ WhipError::TooMany) => plain(StatusCode::TOO_MANY_REQUESTS, e.to_string()),
    }
}

/// Ends the session.
async fn end(
    State(rtc): State<Arc<RtcServer>>,
    Path((app, stream, session)): Path<(String, String, String)>,
) -> Response {
    ended(&app, &stream, |key| rtc.end(key, &session))
}

/// A `DELETE` of a WHIP/WHEP resource: `200` when `end(stream key)` found the session,
/// `404` otherwise. The resource's unguessable id is its credential.
pub(crate) fn ended(app: &str, stream: &str, end: impl FnOnce(&str) -> bool) -> Response {
    match app.parse::<AppId>() {
        Ok(app_id) if end(&stream_key(app_id, stream)) => cors(StatusCode::OK.into_response()),
        _ => plain(StatusCode::NOT_FOUND, "no such session"),
    }
}
