//! Inputs given as a URL (`StreamUrl`): pulled with FFmpeg's demuxer on a thread of their
//! own, re-opened with back-off when the source is unreachable or ends. Each successful
//! open is a new track.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::Duration;

use bytes::Bytes;
use tracing::{debug, info};

use crate::codec::Demuxer;
use crate::input::{AudioCodec, InputMsg, offer};

pub(crate) fn run(url: &str, tx: &SyncSender<InputMsg>, stop: &AtomicBool, dropped: &AtomicU64) {
    let mut backoff = Duration::from_millis(500);
    while !stop.load(Ordering::Relaxed) {
        let (mut demux, info) = match Demuxer::open(url, Duration::from_secs(5)) {
            Ok(d) => d,
            Err(e) => {
                debug!(url, error = %e, "mix input URL not reachable; retrying");
                sleep_unless_stopped(backoff, stop);
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        info!(url, "mix input URL opened");
        backoff = Duration::from_millis(500);
        let mut ok = offer(tx, InputMsg::NewTrack, dropped);
        if let Some(avcc) = info.avcc {
            ok &= offer(tx, InputMsg::VideoConfig(Bytes::from(avcc)), dropped);
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
            return;
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
                return;
            }
        }
        debug!(url, "mix input URL ended");
        sleep_unless_stopped(backoff, stop);
    }
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
