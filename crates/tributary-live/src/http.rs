//! HTTP playback and introspection: HTTP-FLV (`/{app}/{stream}.flv`), HLS
//! (`/{app}/{stream}/playlist.m3u8`, `/{app}/{stream}/{n}.ts`) and a JSON view of a live
//! stream (`/api/streams/{app}/{stream}`). CORS is open so browser players (mpegts.js,
//! hls.js) on another origin can read them.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::{Bytes, BytesMut};

use tributary_core::AppId;

use crate::auth::{Authority, PlayRequest, stream_key};
use crate::flv;
use crate::hls::Hls;
use crate::hls_audience::{HlsAudience, Presence};
use crate::hub::Hub;
use crate::metrics::Protocol;
use crate::write_pacer::WritePacer;

#[derive(Clone)]
pub struct LiveHttp {
    pub hub: Hub,
    pub hls: Hls,
    pub auth: Arc<dyn Authority>,
    /// HTTP-FLV players are written at most once per this long (see
    /// `RtmpConfig::write_coalesce`).
    pub write_coalesce: std::time::Duration,
    /// HLS players that are room members (see [`HlsAudience`]).
    pub audience: Arc<HlsAudience>,
}

pub fn router(state: LiveHttp) -> Router {
    Router::new()
        .route("/{app}/{file}", get(flv_stream))
        .route("/{app}/{stream}/{file}", get(hls_file))
        .route("/api/streams", get(list_streams))
        .route("/api/streams/{app}/{stream}", get(stream_info))
        .with_state(state)
}

fn plain(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut r = (status, msg.into()).into_response();
    cors(&mut r);
    r
}

fn cors(r: &mut Response) {
    r.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
}

fn check(
    s: &LiveHttp,
    app: &str,
    stream: &str,
    q: &HashMap<String, String>,
) -> Result<PlayRequest, Box<Response>> {
    let app_id: AppId = app
        .parse()
        .map_err(|_| Box::new(plain(StatusCode::NOT_FOUND, "no such app\n")))?;
    let field = |k: &str| q.get(k).cloned().unwrap_or_default();
    let req = PlayRequest {
        app_id,
        stream_id: stream.to_string(),
        room_id: field("room"),
        user_id: field("user"),
        token: q.get("token").cloned(),
        peer: None,
        relay: q.get("relay").cloned(),
    };
    s.auth
        .check_play(&req)
        .map_err(|r| refused(s, r.reason, &r.message))?;
    Ok(req)
}

fn refused(s: &LiveHttp, reason: &'static str, message: &str) -> Box<Response> {
    s.hub.metrics().refused(reason);
    Box::new(plain(StatusCode::FORBIDDEN, format!("{message}\n")))
}

/// Makes an HLS player that names a room and user a member at its first playlist fetch
/// and renews it at every later one.
async fn attend_hls(s: &LiveHttp, req: &PlayRequest) -> Result<(), Box<Response>> {
    if !req.names_a_member() {
        return Ok(());
    }
    let now = tokio::time::Instant::now();
    let (app, stream, room, user) = (req.app_id, &req.stream_id, &req.room_id, &req.user_id);
    match s.audience.touch(app, stream, room, user, now) {
        Presence::Renewed => Ok(()),
        Presence::Removed => Err(refused(s, "removed", "removed from the room by the server")),
        Presence::New => match crate::auth::join(&s.auth, req).await {
            Ok(Some(a)) => {
                s.audience.admit(app, stream, room, user, a, now);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(r) => Err(refused(s, r.reason, &r.message)),
        },
    }
}

async fn flv_stream(
    State(s): State<LiveHttp>,
    Path((app, file)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(stream) = file.strip_suffix(".flv") else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let req = match check(&s, &app, stream, &q) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let app_id = req.app_id;
    let attendance = match crate::auth::join(&s.auth, &req).await {
        Ok(a) => a,
        Err(r) => return *refused(&s, r.reason, &r.message),
    };
    let key = stream_key(app_id, stream);
    // Another node's relay reads only what is published here (no relay of a relay).
    let sub = if req.relay.is_some() {
        s.hub.subscribe(&key, Protocol::Flv)
    } else {
        s.hub
            .subscribe_waiting(&key, Protocol::Flv, crate::rtmp_server::RELAY_WAIT)
            .await
    };
    let sub = match sub {
        Ok(sub) => sub,
        Err(e) => return plain(StatusCode::NOT_FOUND, format!("{e}\n")),
    };
    let (video, audio) = sub.stream().codecs();
    let has_video = video.is_some() || audio.is_none();
    let has_audio = audio.is_some() || video.is_none();
    let sent = s.hub.metrics().sent(Protocol::Flv);
    let header = flv::header(has_audio, has_video);
    sent.inc_by(header.len() as u64);
    let first = futures_util::stream::once(async move { Ok::<Bytes, Infallible>(header) });
    // The attendance lives in the stream's state: the player leaves its room when the
    // response ends, and a removal by the API ends the response.
    let tags = futures_util::stream::unfold(
        (
            sub,
            Vec::new(),
            attendance,
            WritePacer::new(s.write_coalesce),
        ),
        move |(sub, mut batch, attendance, mut pacer)| {
            let sent = sent.clone();
            async move {
                // The slot first, then the queue: packets arriving meanwhile wait for
                // this write anyway and need not wake the player (see `WritePacer`).
                let next = async {
                    pacer.ready().await;
                    sub.recv().await
                };
                let p = tokio::select! {
                    p = next => p?,
                    _ = crate::auth::removed(&attendance) => return None,
                };
                batch.push(p);
                sub.drain_ready(&mut batch, 256);
                let mut out = BytesMut::new();
                for p in batch.drain(..) {
                    flv::write_tag(&mut out, &p);
                }
                sent.inc_by(out.len() as u64);
                pacer.wrote(tokio::time::Instant::now());
                Some((
                    Ok::<Bytes, Infallible>(out.freeze()),
                    (sub, batch, attendance, pacer),
                ))
            }
        },
    );
    let mut r = Response::new(Body::from_stream(futures_util::StreamExt::chain(
        first, tags,
    )));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("video/x-flv"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    cors(&mut r);
    r
}

async fn hls_file(
    State(s): State<LiveHttp>,
    Path((app, stream, file)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let req = match check(&s, &app, &stream, &q) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let key = s.hub.resolve(&stream_key(req.app_id, &stream));
    let sent = s.hub.metrics().sent(Protocol::Hls);
    if file == "playlist.m3u8" || file == "index.m3u8" {
        // Segment fetches carry what the token is bound to, so they pass the same check.
        let query = {
            let mut query = form_urlencoded::Serializer::new(String::new());
            for k in ["token", "room", "user"] {
                if let Some(v) = q.get(k) {
                    query.append_pair(k, v);
                }
            }
            match query.finish() {
                q if q.is_empty() => q,
                q => format!("?{q}"),
            }
        };
        let Some(text) = s.hls.playlist(&key, &query) else {
            return plain(StatusCode::NOT_FOUND, "stream is not live\n");
        };
        if let Err(r) = attend_hls(&s, &req).await {
            return *r;
        }
        sent.inc_by(text.len() as u64);
        let mut r = text.into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/vnd.apple.mpegurl"),
        );
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        cors(&mut r);
        return r;
    }
    let Some(seq) = file.strip_suffix(".ts").and_then(|n| n.parse::<u64>().ok()) else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let Some(data) = s.hls.segment(&key, seq) else {
        return plain(
            StatusCode::NOT_FOUND,
            "no such segment (expired or not yet made)\n",
        );
    };
    sent.inc_by(data.len() as u64);
    let mut r = Response::new(Body::from(data));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp2t"));
    cors(&mut r);
    r
}

async fn list_streams(State(s): State<LiveHttp>) -> Response {
    let mut r = axum::Json(s.hub.keys()).into_response();
    cors(&mut r);
    r
}

async fn stream_info(
    State(s): State<LiveHttp>,
    Path((app, stream)): Path<(String, String)>,
) -> Response {
    let Ok(app_id) = app.parse::<AppId>() else {
        return plain(StatusCode::NOT_FOUND, "no such app\n");
    };
    match s.hub.stream(&stream_key(app_id, &stream)) {
        Some(st) => {
            let mut r = axum::Json(st.stats()).into_response();
            cors(&mut r);
            r
        }
        None => plain(StatusCode::NOT_FOUND, "stream is not live\n"),
    }
}
