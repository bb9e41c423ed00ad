//! Inputs given as a URL (`StreamUrl`), pulled on a thread of their own and re-opened
//! with back-off when the source is unreachable or ends. Each successful open is a new
//! track.
//!
//! Every attempt goes through the URL policy: the host is resolved, every address
//! checked, and the connection made to a checked address.
//! - RTMP: FFmpeg's demuxer, handed the checked address (never the name) with the
//!   original URL as `tcUrl`, RTMP/TCP and FLV only, and an interrupt that fires when
//!   the task stops (a hung server never keeps the thread).
//! - HTTP(S)-FLV: our own reader ([`crate::net`] client, redirects checked, the FLV tag
//!   reader with its size limit), so FFmpeg's HTTP client and its unchecked redirects
//!   are never used.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tracing::{debug, info, warn};
use tributary_core::url_policy::{self, Purpose, Scheme, UrlPolicy, redact};
use tributary_live::dial;
use tributary_live::flv::FlvReader;

use crate::codec::Demuxer;
use crate::input::{AudioCodec, InputMsg, VideoCodecIn, from_flv, offer};

/// Network reads give up after this.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest FLV tag accepted from a pulled stream.
const MAX_TAG: usize = 16 << 20;

/// How one attempt ended.
enum Ended {
    /// The source ended or failed after it was opened: reconnect soon.
    AfterOpen,
    /// It could not be opened: back off.
    Failed(String),
    /// The task is gone.
    Stop,
}

pub(crate) fn run(
    url: &str,
    policy: &UrlPolicy,
    tx: &SyncSender<InputMsg>,
    stop: &Arc<AtomicBool>,
    dropped: &AtomicU64,
) {
    let shown = redact(url);
    let checked = match url_policy::syntax(url, Purpose::MixInput) {
        Ok(u) => u,
        Err(e) => {
            warn!(url = %shown, error = %e, "mix input URL refused");
            return;
        }
    };
    let mut backoff = Duration::from_millis(500);
    while !stop.load(Ordering::Relaxed) {
        let ended = match checked.scheme {
            Scheme::Rtmp => rtmp(url, &checked, policy, tx, stop, dropped),
            Scheme::Http | Scheme::Https => http_flv(url, policy, tx, stop, dropped),
        };
        match ended {
            Ended::Stop => return,
            Ended::AfterOpen => {
                debug!(url = %shown, "mix input URL ended");
                backoff = Duration::from_millis(500);
            }
            Ended::Failed(e) => {
                debug!(url = %shown, error = %e, "mix input URL not reachable; retrying");
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
        sleep_unless_stopped(backoff, stop);
    }
}

fn rtmp(
    url: &str,
    checked: &url_policy::CheckedUrl,
    policy: &UrlPolicy,
    tx: &SyncSender<InputMsg>,
    stop: &Arc<AtomicBool>,
    dropped: &AtomicU64,
) -> Ended {
    let addrs = match dial::resolve_blocking(policy, &checked.host, checked.port) {
        Ok(a) => a,
        Err(e) => return Ended::Failed(e.to_string()),
    };
    let Some(addr) = addrs.first() else {
        return Ended::Failed("no address".into());
    };
    let pinned = checked.with_addr(*addr);
    // tcUrl: the URL up to the app (the first path segment), as the tenant wrote it.
    let path = &checked.path_and_query;
    let app_end = path[1..].find(['/', '?']).map_or(path.len(), |i| i + 1);
    let tc_url = format!("rtmp://{}{}", checked.authority(), &path[..app_end]);
    let (mut demux, info) = match Demuxer::open_rtmp(&pinned, &tc_url, READ_TIMEOUT, stop.clone()) {
        Ok(d) => d,
        Err(e) => return Ended::Failed(e.to_string()),
    };
    info!(url = %redact(url), "mix input URL opened");
    let mut ok = offer(tx, InputMsg::NewTrack, dropped);
    if let Some(avcc) = info.avcc {
        ok &= offer(
            tx,
            InputMsg::VideoConfig(VideoCodecIn::H264, Bytes::from(avcc)),
            dropped,
        );
    }
    match info.audio {
        Some((true, asc)) => {
            ok &= offer(
                tx,
                InputMsg::AudioConfig(AudioCodec::Aac(Bytes::from(asc))),
                dropped,
            )
        }
        Some((false, _)) => ok &= offer(tx, InputMsg::AudioConfig(AudioCodec::Mp3), dropped),
        None => {}
    }
    if !ok {
        return Ended::Stop;
    }
    while !stop.load(Ordering::Relaxed) {
        let Some(p) = demux.read() else { break };
        let msg = if p.video {
            InputMsg::Video {
                dts: p.dts_ms,
                pts: p.pts_ms,
                data: Bytes::from(p.data),
            }
        } else {
            InputMsg::Audio {
                pts: p.pts_ms,
                data: Bytes::from(p.data),
            }
        };
        if !offer(tx, msg, dropped) {
            return Ended::Stop;
        }
    }
    Ended::AfterOpen
}

/// One HTTP-FLV attempt on a small runtime of this thread's own.
fn http_flv(
    url: &str,
    policy: &UrlPolicy,
    tx: &SyncSender<InputMsg>,
    stop: &AtomicBool,
    dropped: &AtomicU64,
) -> Ended {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return Ended::Failed(e.to_string()),
    };
    rt.block_on(async {
        let client = match crate::net::client(policy, Purpose::MixInput, None) {
            Ok(c) => c,
            Err(e) => return Ended::Failed(e.to_string()),
        };
        let mut resp = match client.get(url).send().await {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => return Ended::Failed(format!("HTTP {}", r.status())),
            Err(e) => return Ended::Failed(e.without_url().to_string()),
        };
        info!(url = %redact(url), "mix input URL opened");
        if !offer(tx, InputMsg::NewTrack, dropped) {
            return Ended::Stop;
        }
        let mut reader = FlvReader::new(MAX_TAG);
        let mut buf = BytesMut::new();
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ended::Stop;
            }
            // Wake up now and then to notice a stop even when nothing arrives.
            let chunk = match tokio::time::timeout(Duration::from_millis(500), resp.chunk()).await
            {
                Err(_) => continue,
                Ok(Ok(Some(c))) => c,
                Ok(Ok(None)) | Ok(Err(_)) => return Ended::AfterOpen,
            };
            buf.extend_from_slice(&chunk);
            loop {
                match reader.read(&mut buf) {
                    Ok(Some(p)) => {
                        if let Some(msg) = from_flv(&p)
                            && !offer(tx, msg, dropped)
                        {
                            return Ended::Stop;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        warn!(url = %redact(url), error = %e, "mix input sent bad FLV; reconnecting");
                        return Ended::AfterOpen;
                    }
                }
            }
        }
    })
}

fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let step = Duration::from_millis(100);
    let mut left = d;
    while !left.is_zero() && !stop.load(Ordering::Relaxed) {
        let s = left.min(step);
        std::thread::sleep(s);
        left -= s;
    }
}
