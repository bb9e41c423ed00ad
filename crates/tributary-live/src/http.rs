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
use crate::hub::Hub;
use crate::metrics::Protocol;

#[derive(Clone)]
pub struct LiveHttp {
    pub hub: Hub,
    pub hls: Hls,
    pub auth: Arc<dyn Authority>,
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
) -> Result<AppId, Box<Response>> {
    let app_id: AppId = app
        .parse()
        .map_err(|_| Box::new(plain(StatusCode::NOT_FOUND, "no such app\n")))?;
    let req = PlayRequest {
        app_id,
        stream_id: stream.to_string(),
        token: q.get("token").cloned(),
        peer: None,
    };
    s.auth.check_play(&req).map_err(|r| {
        s.hub.metrics().refused(r.reason);
        Box::new(plain(StatusCode::FORBIDDEN, format!("{}\n", r.message)))
    })?;
    Ok(app_id)
}

async fn flv_stream(
    State(s): State<LiveHttp>,
    Path((app, file)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(stream) = file.strip_suffix(".flv") else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let app_id = match check(&s, &app, stream, &q) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let sub = match s.hub.subscribe(&stream_key(app_id, stream), Protocol::Flv) {
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
    let tags = futures_util::stream::unfold((sub, Vec::new()), move |(sub, mut batch)| {
        let sent = sent.clone();
        async move {
            let p = sub.recv().await?;
            batch.push(p);
            sub.drain_ready(&mut batch, 64);
            let mut out = BytesMut::new();
            for p in batch.drain(..) {
                flv::write_tag(&mut out, &p);
            }
            sent.inc_by(out.len() as u64);
            Some((Ok::<Bytes, Infallible>(out.freeze()), (sub, batch)))
        }
    });
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
    let app_id = match check(&s, &app, &stream, &q) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let key = s.hub.resolve(&stream_key(app_id, &stream));
    let sent = s.hub.metrics().sent(Protocol::Hls);
    if file == "playlist.m3u8" || file == "index.m3u8" {
        let query = q
            .get("token")
            .map(|t| {
                let enc: String = form_urlencoded::byte_serialize(t.as_bytes()).collect();
                format!("?token={enc}")
            })
            .unwrap_or_default();
        let Some(text) = s.hls.playlist(&key, &query) else {
            return plain(StatusCode::NOT_FOUND, "stream is not live\n");
        };
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
