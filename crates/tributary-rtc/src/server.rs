//! WHIP sessions on one UDP socket: admission (the live plane's `Authority`, the hub's
//! one-publisher rule), the sans-I/O loop that drives every str0m `Rtc` from one thread,
//! and the ends of a session (DELETE, forbid, idle, ICE loss), each reported to the
//! `Authority` like an RTMP publisher's.
//!
//! The server is ICE-lite with host candidates only: a WHIP client always reaches out to
//! the server, so the server needs no gathering and no trickle (`PATCH` is answered 405,
//! as RFC 9725 allows for servers that do not support it).

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::config::CryptoProvider;
use str0m::format::Codec;
use str0m::media::{KeyframeRequestKind, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use thiserror::Error;
use tracing::{debug, info, warn};

use tributary_core::CloseReason;
use tributary_live::auth::{Authority, PublishRequest, Refusal, stream_key};
use tributary_live::hub::{Hub, Publisher};

use crate::ingest::Ingest;

#[derive(Debug, Clone)]
pub struct RtcConfig {
    /// The one UDP socket every session shares.
    pub udp: SocketAddr,
    /// Addresses announced as host candidates (for a server behind NAT); empty: the
    /// bound address, or loopback when bound to every interface.
    pub public_ips: Vec<IpAddr>,
    /// A publisher that has sent nothing for this long is ended.
    pub idle_timeout: Duration,
    /// A session that has not delivered media this long after it was accepted is ended.
    pub first_packet_timeout: Duration,
    /// Sessions at most (each holds an `Rtc` and its buffers).
    pub max_sessions: usize,
}

impl Default for RtcConfig {
    fn default() -> Self {
        RtcConfig {
            udp: SocketAddr::from(([127, 0, 0, 1], 8443)),
            public_ips: Vec::new(),
            idle_timeout: Duration::from_secs(5),
            first_packet_timeout: Duration::from_secs(20),
            max_sessions: 1000,
        }
    }
}

#[derive(Debug, Error)]
pub enum WhipError {
    #[error("the SDP offer was not accepted: {0}")]
    BadOffer(String),
    #[error("{}", .0.message)]
    Refused(Refusal),
    #[error("stream {0} is already being published")]
    Busy(String),
    #[error("the server has no room for another WebRTC session")]
    Full,
}

/// A session accepted: its id (the WHIP resource) and the SDP answer.
#[derive(Debug)]
pub struct Accepted {
    pub session_id: String,
    pub answer: String,
}

/// Asks a live session to end, and says why (forbid or DELETE).
#[derive(Debug, Clone, Default)]
struct Ending(Arc<Mutex<Option<CloseReason>>>);

impl Ending {
    fn set(&self, r: CloseReason) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        g.get_or_insert(r);
    }
    fn get(&self) -> Option<CloseReason> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Session {
    id: String,
    key: String,
    req: PublishRequest,
    rtc: Rtc,
    publisher: Publisher,
    ingest: Ingest,
    ending: Ending,
    started: Instant,
    last_media: Option<Instant>,
    video: Option<Mid>,
    last_key_request: Option<Instant>,
}

pub struct RtcServer {
    hub: Hub,
    auth: Arc<dyn Authority>,
    config: RtcConfig,
    local: SocketAddr,
    candidates: Vec<SocketAddr>,
    crypto: Arc<CryptoProvider>,
    tx: Mutex<Sender<Session>>,
    /// Live sessions by stream key: their id and how to end them.
    live: Mutex<HashMap<String, (String, Ending)>>,
}

impl RtcServer {
    /// Binds the UDP socket and starts the session loop on a thread of its own. `rt` runs
    /// the `Authority`'s blocking calls when sessions end.
    pub fn start(
        config: RtcConfig,
        hub: Hub,
        auth: Arc<dyn Authority>,
        rt: tokio::runtime::Handle,
    ) -> std::io::Result<Arc<RtcServer>> {
        let socket = UdpSocket::bind(config.udp)?;
        let local = socket.local_addr()?;
        let candidates = if !config.public_ips.is_empty() {
            config
                .public_ips
                .iter()
                .map(|ip| SocketAddr::new(*ip, local.port()))
                .collect()
        } else if local.ip().is_unspecified() {
            vec![SocketAddr::from(([127, 0, 0, 1], local.port()))]
        } else {
            vec![local]
        };
        let (tx, rx) = channel();
        let server = Arc::new(RtcServer {
            hub,
            auth,
            config,
            local,
            candidates,
            crypto: Arc::new(str0m::crypto::from_feature_flags()),
            tx: Mutex::new(tx),
            live: Mutex::new(HashMap::new()),
        });
        let s = server.clone();
        std::thread::Builder::new()
            .name("rtc-udp".into())
            .spawn(move || s.run(socket, rx, rt))?;
        Ok(server)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Ending)>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A WHIP publish: checks, claims the stream, answers the offer, registers it in its
    /// room, and hands the session to the loop.
    pub async fn publish(&self, req: PublishRequest, offer: &str) -> Result<Accepted, WhipError> {
        self.auth.check_publish(&req).map_err(WhipError::Refused)?;
        if self.live().len() >= self.config.max_sessions {
            return Err(WhipError::Full);
        }
        let key = stream_key(req.app_id, &req.stream_id);
        let offer =
            SdpOffer::from_sdp_string(offer).map_err(|e| WhipError::BadOffer(e.to_string()))?;
        let mut rtc = str0m::RtcConfig::new()
            .set_crypto_provider(self.crypto.clone())
            .set_ice_lite(true)
            .clear_codecs()
            .enable_h264(true)
            .enable_opus(true)
            .build(Instant::now());
        for addr in &self.candidates {
            let c =
                Candidate::host(*addr, "udp").map_err(|e| WhipError::BadOffer(e.to_string()))?;
            rtc.add_local_candidate(c);
        }
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| WhipError::BadOffer(e.to_string()))?;
        let publisher = self
            .hub
            .publish(&key, unix_ms())
            .map_err(|_| WhipError::Busy(req.stream_id.clone()))?;
        let auth = self.auth.clone();
        let req2 = req.clone();
        tokio::task::spawn_blocking(move || auth.register_publish(&req2))
            .await
            .unwrap_or_else(|e| {
                Err(Refusal::new(
                    "NetStream.Publish.Rejected",
                    "internal",
                    format!("registration failed: {e}"),
                ))
            })
            .map_err(WhipError::Refused)?;
        let id = format!(
            "{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>()
        );
        let ending = Ending::default();
        self.live()
            .insert(key.clone(), (id.clone(), ending.clone()));
        // A forbid between the first check and the line above found nobody to cut off.
        if self.auth.check_publish(&req).is_err() {
            ending.set(CloseReason::Forbidden);
        }
        info!(stream = %key, room = %req.room_id, user = %req.user_id, session = %id, "WHIP publish accepted");
        let session = Session {
            id: id.clone(),
            key,
            req,
            rtc,
            publisher,
            ingest: Ingest::new(),
            ending,
            started: Instant::now(),
            last_media: None,
            video: None,
            last_key_request: None,
        };
        let sent = self
            .tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(session);
        if let Err(e) = sent {
            // The loop is gone (shutting down): give the stream back.
            let s = e.0;
            self.finish(
                s,
                CloseReason::Disconnected,
                &tokio::runtime::Handle::current(),
            );
            return Err(WhipError::Full);
        }
        Ok(Accepted {
            session_id: id,
            answer: answer.to_sdp_string(),
        })
    }

    /// Ends the session `id` of `app/stream` (WHIP `DELETE`). Whether it was live.
    pub fn end(&self, key: &str, id: &str) -> bool {
        match self.live().get(key) {
            Some((sid, ending)) if sid == id => {
                ending.set(CloseReason::Normal);
                true
            }
            _ => false,
        }
    }

    /// Cuts off the WebRTC publisher of `key` (a forbid). Whether there was one.
    pub fn kick(&self, key: &str) -> bool {
        match self.live().get(key) {
            Some((_, ending)) => {
                ending.set(CloseReason::Forbidden);
                true
            }
            None => false,
        }
    }

    /// Keys of the streams published over WebRTC right now.
    pub fn live_keys(&self) -> Vec<String> {
        self.live().keys().cloned().collect()
    }

    fn run(&self, socket: UdpSocket, rx: Receiver<Session>, rt: tokio::runtime::Handle) {
        let mut sessions: Vec<Session> = Vec::new();
        let mut buf = vec![0u8; 2048];
        loop {
            while let Ok(s) = rx.try_recv() {
                sessions.push(s);
            }
            let now = Instant::now();
            // Drive every session, then end the ones that are done.
            let mut wake = now + Duration::from_millis(100);
            let mut i = 0;
            while i < sessions.len() {
                match self.drive(&mut sessions[i], &socket, now) {
                    Ok(t) => {
                        wake = wake.min(t);
                        i += 1;
                    }
                    Err(reason) => {
                        let s = sessions.swap_remove(i);
                        self.finish(s, reason, &rt);
                    }
                }
            }
            let wait = wake
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            if socket.set_read_timeout(Some(wait)).is_err() {
                std::thread::sleep(wait);
                continue;
            }
            match socket.recv_from(&mut buf) {
                Ok((n, source)) => {
                    let Ok(contents) = buf[..n].try_into() else {
                        continue; // not STUN, DTLS or RTP
                    };
                    let input = Input::Receive(
                        Instant::now(),
                        Receive {
                            proto: Protocol::Udp,
                            source,
                            destination: self.local,
                            contents,
                        },
                    );
                    if let Some(s) = sessions.iter_mut().find(|s| s.rtc.accepts(&input)) {
                        if let Err(e) = s.rtc.handle_input(input) {
                            debug!(session = %s.id, error = %e, "WebRTC input refused");
                        }
                    } else {
                        debug!(%source, "UDP datagram for no session");
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => {
                    warn!(error = %e, "RTC socket read failed");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }

    /// Feeds time in, sends what is due, publishes media. `Ok(next wake-up)`, or why the
    /// session ends.
    fn drive(
        &self,
        s: &mut Session,
        socket: &UdpSocket,
        now: Instant,
    ) -> Result<Instant, CloseReason> {
        if let Some(r) = s.ending.get() {
            return Err(r);
        }
        let deadline = match s.last_media {
            Some(t) => t + self.config.idle_timeout,
            None => s.started + self.config.first_packet_timeout,
        };
        if now >= deadline {
            info!(session = %s.id, stream = %s.key, got_media = s.last_media.is_some(), "WebRTC publisher timed out");
            return Err(CloseReason::Timeout);
        }
        if s.rtc.handle_input(Input::Timeout(now)).is_err() || !s.rtc.is_alive() {
            return Err(CloseReason::Disconnected);
        }
        loop {
            let out = match s.rtc.poll_output() {
                Ok(o) => o,
                Err(e) => {
                    debug!(session = %s.id, error = %e, "WebRTC session failed");
                    return Err(CloseReason::Disconnected);
                }
            };
            match out {
                Output::Timeout(t) => return Ok(t.min(deadline)),
                Output::Transmit(t) => {
                    if let Err(e) = socket.send_to(&t.contents, t.destination) {
                        debug!(session = %s.id, error = %e, "UDP send failed");
                    }
                }
                Output::Event(e) => self.event(s, e)?,
            }
        }
    }

    fn event(&self, s: &mut Session, e: Event) -> Result<(), CloseReason> {
        match e {
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                return Err(CloseReason::Disconnected);
            }
            Event::Connected => {
                info!(session = %s.id, stream = %s.key, "WebRTC publisher connected")
            }
            Event::MediaAdded(m) if m.kind == MediaKind::Video => s.video = Some(m.mid),
            Event::MediaData(d) => {
                let arrival = d
                    .network_time
                    .saturating_duration_since(s.started)
                    .as_millis() as i64;
                let (rtp, rate) = (d.time.numer(), d.time.denom());
                let packets = match d.params.spec().codec {
                    Codec::H264 => {
                        let p = s.ingest.h264(&d.data, rtp, rate, arrival);
                        if !d.contiguous || !s.ingest.has_key_frame() {
                            request_key_frame(s);
                        }
                        p
                    }
                    Codec::Opus => s.ingest.opus(&d.data, rtp, rate, arrival),
                    _ => Vec::new(),
                };
                s.last_media = Some(Instant::now());
                for p in packets {
                    s.publisher.send(p);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Gives the stream back: the hub's claim, the live entry, the room (`stream_close`).
    fn finish(&self, s: Session, reason: CloseReason, rt: &tokio::runtime::Handle) {
        let Session {
            id,
            key,
            req,
            mut rtc,
            publisher,
            ..
        } = s;
        rtc.disconnect();
        drop(publisher);
        {
            let mut live = self.live();
            if live.get(&key).is_some_and(|(sid, _)| *sid == id) {
                live.remove(&key);
            }
        }
        info!(stream = %key, session = %id, ?reason, "WHIP publish ended");
        let auth = self.auth.clone();
        rt.spawn_blocking(move || auth.unregister_publish(&req, reason));
    }
}

/// Asks the publisher for a key frame (PLI), at most once a second.
fn request_key_frame(s: &mut Session) {
    if s.last_key_request
        .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
    {
        return;
    }
    let Some(mid) = s.video else { return };
    if let Some(mut w) = s.rtc.writer(mid) {
        let _ = w.request_keyframe(None, KeyframeRequestKind::Pli);
        s.last_key_request = Some(Instant::now());
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
