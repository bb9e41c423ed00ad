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
    match req.purpose {
        Purpose::Publish => {
            let mut q = format!("token={t}");
            if !req.room.is_empty() {
                q = format!("room={}&{q}", enc(req.room));
            }
            if !req.user.is_empty() {
                q = format!("user={}&{q}", enc(req.user));
            }
            vec![format!("{rtmp}/{app_id}/{stream}?{q}")]
        }
        Purpose::Play => vec![
            format!("{rtmp}/{app_id}/{stream}?token={t}"),
            format!("{http}/{app_id}/{stream}.flv?token={t}"),
            format!("{http}/{app_id}/{stream}/playlist.m3u8?token={t}"),
        ],
        Purpose::RoomEvents => vec![format!(
            "{http}/rooms/{}/events?app_id={app_id}&token={t}",
            enc(req.room)
        )],
    }
}
