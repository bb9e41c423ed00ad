//! `tributary url publish|play|events`: mints signed live URLs with the app's
//! ServerSecret, the way a backend would (see `tributary_core::token`).

use tributary_core::AppConfig;
use tributary_core::token::{self, Claims, Purpose};

use crate::config::Config;

pub struct UrlRequest<'a> {
    pub purpose: Purpose,
    pub stream: &'a str,
    pub room: &'a str,
    pub user: &'a str,
    pub expiry: u64,
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The URLs for one request, one per line.
pub fn urls(cfg: &Config, app: &AppConfig, req: &UrlRequest<'_>) -> Vec<String> {
    let claims = Claims {
        purpose: req.purpose,
        app_id: app.app_id,
        stream_id: req.stream,
        room_id: req.room,
        user_id: req.user,
    };
    let t = enc(&token::mint(&app.server_secret, &claims, req.expiry));
    let rtmp = cfg
        .public_rtmp_url
        .clone()
        .unwrap_or_else(|| format!("rtmp://{}", cfg.rtmp));
    let http = cfg
        .public_http_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", cfg.http));
    let (app_id, stream) = (app.app_id, enc(req.stream));
    // What the token is bound to travels beside it: the server checks the token against
    // exactly these, and a player or feed that names its room and user is a member.
    let mut q = String::new();
    if !req.user.is_empty() {
        q.push_str(&format!("user={}&", enc(req.user)));
    }
    if !req.room.is_empty() && req.purpose != Purpose::RoomEvents {
        q.push_str(&format!("room={}&", enc(req.room)));
    }
    q.push_str(&format!("token={t}"));
    match req.purpose {
        Purpose::Publish => vec![format!("{rtmp}/{app_id}/{stream}?{q}")],
        Purpose::Play => vec![
            format!("{rtmp}/{app_id}/{stream}?{q}"),
            format!("{http}/{app_id}/{stream}.flv?{q}"),
            format!("{http}/{app_id}/{stream}/playlist.m3u8?{q}"),
            format!("{http}/whep/{app_id}/{stream}?{q}"),
        ],
        Purpose::RoomEvents => vec![format!(
            "{http}/rooms/{}/events?app_id={app_id}&{q}",
            enc(req.room)
        )],
    }
}
