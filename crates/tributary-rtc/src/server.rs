//! WHIP sessions on one UDP socket: admission (the live plane's `Authority`, the hub's
//! one-publisher rule), the sans-I/O loop that drives every str0m `Rtc` from one thread,
//! and the ends of a session (DELETE, forbid, idle, ICE loss), each reported to the
//! `Authority` like an RTMP publisher's.
//!
//! The server is ICE-lite with host candidates only: a WHIP client always reaches out to
//! the server, so the server needs no gathering and no trickle (`PATCH` is answered 405,
//! as RFC 9725 allows for servers that do not support it). Beside each UDP candidate it
//! announces a passive TCP one (`tcp`), for clients whose UDP is blocked.

use std::collections::{HashMap, HashSet};
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::config::CryptoProvider;
use str0m::format::Codec;
use str0m::media::{Frequency, KeyframeRequestKind, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive, TcpType};
use str0m::rtp::{Extension, ExtensionMap};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use thiserror::Error;
use tracing::{debug, info, warn};

use tributary_core::CloseReason;
use tributary_live::auth::{
    Attendance, Authority, PlayRequest, PublishRequest, Refusal, join, stream_key,
};
use tributary_live::hub::{Hub, Publisher, Subscription};
use tributary_live::metrics::Protocol as Player;
use tributary_live::slots::{KeyedSlots, Slot};

use crate::egress::Egress;
use crate::gso;
use crate::ingest::Ingest;
use crate::tcp::{TcpConfig, TcpPlane};

/// How often viewers take what their stream sent (their media's added latency).
const VIEWER_FEED: Duration = Duration::from_millis(10);
/// The longest a session goes undriven, whatever its timers say: endings (a kick, a
/// forbid, the API removing a viewer) are noticed when it is driven.
const MAX_IDLE_TURN: Duration = Duration::from_millis(100);

/// Where the ICE-TCP fallback listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpSetting {
    /// No TCP candidate.
    Off,
    /// The UDP socket's IP and port (any free port when that one is taken).
    BesideUdp,
    At(SocketAddr),
}

#[derive(Debug, Clone)]
pub struct RtcConfig {
    /// The one UDP socket every session shares.
    pub udp: SocketAddr,
    /// The ICE-TCP fallback's listener.
    pub tcp: TcpSetting,
    /// Addresses announced as host candidates (for a server behind NAT); empty: the
    /// bound address, or loopback when bound to every interface.
    pub public_ips: Vec<IpAddr>,
    /// A publisher that has sent nothing for this long is ended.
    pub idle_timeout: Duration,
    /// A session that has not delivered media this long after it was accepted is ended.
    pub first_packet_timeout: Duration,
    /// Sessions at most (each holds an `Rtc` and its buffers).
    pub max_sessions: usize,
    /// Sessions (publishers and viewers) at most from one address.
    pub max_sessions_per_ip: usize,
}

impl Default for RtcConfig {
    fn default() -> Self {
        RtcConfig {
            udp: SocketAddr::from(([127, 0, 0, 1], 8443)),
            tcp: TcpSetting::BesideUdp,
            public_ips: Vec::new(),
            idle_timeout: Duration::from_secs(5),
            first_packet_timeout: Duration::from_secs(20),
            max_sessions: 1000,
            max_sessions_per_ip: 50,
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
    #[error("stream {0} is not being published")]
    NotLive(String),
    #[error("the server has no room for another WebRTC session")]
    Full,
    #[error("too many WebRTC sessions from this address")]
    TooMany,
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
    /// The session's place among its address's (given back when it ends).
    _slot: Option<Slot<IpAddr>>,
    rtc: Rtc,
    ending: Ending,
    started: Instant,
    /// When the loop must next drive it: its own next timer, or at once after input.
    next: Instant,
    role: Role,
}

enum Role {
    /// A WHIP publisher.
    Publish {
        req: PublishRequest,
        publisher: Publisher,
        ingest: Ingest,
        last_media: Option<Instant>,
        video: Option<Mid>,
        last_key_request: Option<Instant>,
        /// The stream's readers when last counted, and when: a new one gets a key frame.
        readers: (usize, Instant),
    },
    /// A WHEP viewer: the hub subscription it drains (bounded; a viewer that falls
    /// behind loses whole GOPs there, never the publisher's pace).
    Play {
        sub: Subscription,
        /// Its place in a room when it named one (user-bound token); the API's removal
        /// of the user ends the session.
        attendance: Option<Attendance>,
        egress: Egress,
        video: Option<Mid>,
        audio: Option<Mid>,
        /// The payload types negotiated for H.264, Opus and VP8, found once.
        pts: [Option<Pt>; 3],
        dropped_gops: u64,
        /// DTLS is up: frames written now reach the viewer (until then the hub's queue
        /// holds them, starting at the last key frame).
        connected: bool,
        /// The viewer asked for a key frame (PLI/FIR): passed on to a WHIP publisher.
        wants_key_frame: bool,
        /// The bytes it is sent (`tributary_live_sent_bytes_total{protocol="whep"}`; the
        /// hub counts the viewer itself).
        sent: prometheus_client::metrics::counter::Counter,
    },
}

pub struct RtcServer {
    hub: Hub,
    auth: Arc<dyn Authority>,
    config: RtcConfig,
    local: SocketAddr,
    /// Host candidates: (address, TCP).
    candidates: Vec<(SocketAddr, bool)>,
    crypto: Arc<CryptoProvider>,
    tx: Mutex<Sender<Box<Session>>>,
    /// Live sessions by stream key: their id and how to end them.
    live: Mutex<HashMap<String, (String, Ending)>>,
    /// WHEP viewers by session id: their stream key and how to end them.
    viewers: Mutex<HashMap<String, (String, Ending)>>,
    /// Sessions per client address.
    per_ip: Arc<KeyedSlots<IpAddr>>,
    /// Which stream a viewer of a key reads (the binary's Opus bridge for AAC streams).
    source_for: SourceFor,
    /// Asks the producer of a stream that is not a WHIP publisher (a mix output) for a
    /// key frame; whether it could.
    key_frame_for: KeyFrameFor,
    /// Told the key of each WHIP stream once it is in the hub (the binary starts its AAC
    /// twin for RTMP, HTTP-FLV and HLS players).
    on_publish: OnPublish,
    /// Streams whose WHIP publisher was asked for a key frame from outside (a twin that
    /// starts transcoding); the session loop passes them on.
    key_wanted: Mutex<HashSet<String>>,
    /// The ICE-TCP fallback, unless it is off.
    tcp: Option<TcpPlane>,
}

/// Called with the key of each new WHIP stream.
pub type OnPublish = Arc<dyn Fn(&str) + Send + Sync>;

/// Asks a stream's producer for a key frame (a mix output's encoder).
pub type KeyFrameFor = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Maps a stream key to the key a WebRTC viewer reads (the stream itself, or a stream
/// with its audio in Opus).
pub type SourceFor = Arc<dyn Fn(&str) -> String + Send + Sync>;

impl RtcServer {
    /// Binds the UDP socket and starts the session loop on a thread of its own. `rt` runs
    /// the `Authority`'s blocking calls when sessions end.
    pub fn start(
        config: RtcConfig,
        hub: Hub,
        auth: Arc<dyn Authority>,
        rt: tokio::runtime::Handle,
        source_for: SourceFor,
        key_frame_for: KeyFrameFor,
        on_publish: OnPublish,
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
        let tcp = match config.tcp {
            TcpSetting::Off => None,
            TcpSetting::At(addr) => Some(TcpListener::bind(addr)?),
            TcpSetting::BesideUdp => Some(
                TcpListener::bind(local)
                    .or_else(|_| TcpListener::bind(SocketAddr::new(local.ip(), 0)))?,
            ),
        };
        let tcp = match tcp {
            Some(l) => {
                let doorbell = if local.ip().is_unspecified() {
                    SocketAddr::from(([127, 0, 0, 1], local.port()))
                } else {
                    local
                };
                let plane = TcpPlane::start(
                    l,
                    doorbell,
                    TcpConfig {
                        max_connections: config.max_sessions,
                        max_per_ip: config.max_sessions_per_ip,
                        idle: config.first_packet_timeout.max(Duration::from_secs(30)),
                        write_timeout: Duration::from_secs(5),
                    },
                )?;
                Some(plane)
            }
            None => None,
        };
        let mut candidates: Vec<(SocketAddr, bool)> =
            candidates.into_iter().map(|a| (a, false)).collect();
        if let Some(t) = &tcp {
            let port = t.local_addr().port();
            let tcp_candidates: Vec<(SocketAddr, bool)> = candidates
                .iter()
                .map(|(a, _)| (SocketAddr::new(a.ip(), port), true))
                .collect();
            candidates.extend(tcp_candidates);
        }
        let (tx, rx) = channel();
        let per_ip = KeyedSlots::new(config.max_sessions_per_ip.max(1));
        let server = Arc::new(RtcServer {
            hub,
            auth,
            config,
            local,
            candidates,
            crypto: Arc::new(str0m::crypto::from_feature_flags()),
            tx: Mutex::new(tx),
            live: Mutex::new(HashMap::new()),
            viewers: Mutex::new(HashMap::new()),
            per_ip,
            source_for,
            key_frame_for,
            on_publish,
            key_wanted: Mutex::new(HashSet::new()),
            tcp,
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

    /// The ICE-TCP listener's address, unless TCP is off.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().map(TcpPlane::local_addr)
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
        let slot = self.slot(req.peer)?;
        let key = stream_key(req.app_id, &req.stream_id);
        let (rtc, answer) = self.answer(offer, false)?;
        let publisher = self
            .hub
            .publish(&key, unix_ms())
            .map_err(|_| WhipError::Busy(req.stream_id.clone()))?;
        tributary_live::auth::register(&self.auth, &req)
            .await
            .map_err(WhipError::Refused)?;
        let id = new_session_id();
        let ending = Ending::default();
        self.live()
            .insert(key.clone(), (id.clone(), ending.clone()));
        // A forbid between the first check and the line above found nobody to cut off.
        if self.auth.check_publish(&req).is_err() {
            ending.set(CloseReason::Forbidden);
        }
        info!(stream = %key, room = %req.room_id, user = %req.user_id, session = tag(&id), "WHIP publish accepted");
        let key_for_hook = key.clone();
        let session = Session {
            id: id.clone(),
            key,
            _slot: slot,
            rtc,
            ending,
            started: Instant::now(),
            next: Instant::now(),
            role: Role::Publish {
                req,
                publisher,
                ingest: Ingest::new(),
                last_media: None,
                video: None,
                last_key_request: None,
                readers: (0, Instant::now()),
            },
        };
        if let Err(s) = self.hand_over(session) {
            // The loop is gone (shutting down): give the stream back.
            self.finish(
                *s,
                CloseReason::Disconnected,
                &tokio::runtime::Handle::current(),
            );
            return Err(WhipError::Full);
        }
        (self.on_publish)(&key_for_hook);
        Ok(Accepted {
            session_id: id,
            answer,
        })
    }

    /// A str0m session (ICE-lite, H.264 and Opus, our host candidates) and its answer.
    ///
    /// A viewer's session leaves out transport-wide congestion control: its feedback
    /// would only feed a bandwidth estimate a relayed stream cannot follow (the
    /// publisher sets the bitrate), and handling it was 4 % of the CPU of 100 viewers.
    /// A publisher keeps it: the browser adapts its encoder to our feedback.
    fn answer(&self, offer: &str, viewer: bool) -> Result<(Rtc, String), WhipError> {
        let bad = |e: &dyn std::fmt::Display| WhipError::BadOffer(e.to_string());
        let offer = SdpOffer::from_sdp_string(offer).map_err(|e| bad(&e))?;
        let mut config = str0m::RtcConfig::new()
            .set_crypto_provider(self.crypto.clone())
            .set_ice_lite(true)
            .clear_codecs()
            .enable_h264(true)
            .enable_vp8(true)
            .enable_opus(true);
        if viewer {
            let mut exts = ExtensionMap::empty();
            for (id, ext) in ExtensionMap::standard().iter() {
                if *ext != Extension::TransportSequenceNumber {
                    exts.set(id, ext.clone());
                }
            }
            config = config.set_extension_map(exts);
        }
        let mut rtc = config.build(Instant::now());
        for (addr, tcp) in &self.candidates {
            let c = if *tcp {
                // Passive: the client connects; it is the fallback, so it ranks below UDP.
                Candidate::builder()
                    .tcp()
                    .host(*addr)
                    .tcptype(TcpType::Passive)
                    .build()
            } else {
                Candidate::host(*addr, "udp")
            };
            rtc.add_local_candidate(c.map_err(|e| bad(&e))?);
        }
        let answer = rtc.sdp_api().accept_offer(offer).map_err(|e| bad(&e))?;
        Ok((rtc, answer.to_sdp_string()))
    }

    /// A WHEP viewer of a live stream: checks, answers the offer, subscribes. A viewer
    /// that names its room and user joins that room last, once every other check passed
    /// (a refused viewer leaves no login behind), and holds its attendance until the
    /// session ends.
    pub async fn play(&self, req: PlayRequest, offer: &str) -> Result<Accepted, WhipError> {
        self.auth.check_play(&req).map_err(WhipError::Refused)?;
        if self.viewers().len() + self.live().len() >= self.config.max_sessions {
            return Err(WhipError::Full);
        }
        let slot = self.slot(req.peer)?;
        let key = stream_key(req.app_id, &req.stream_id);
        if self.hub.stream(&key).is_none() {
            // Published on another node: relayed in first (then the Opus source below
            // can be made from the copy).
            let relayed = self
                .hub
                .subscribe_waiting(
                    &key,
                    Player::Internal,
                    tributary_live::rtmp_server::RELAY_WAIT,
                )
                .await;
            if relayed.is_err() {
                return Err(WhipError::NotLive(req.stream_id.clone()));
            }
        }
        let sub = self
            .hub
            .subscribe_exact(&(self.source_for)(&key), Player::Whep)
            .map_err(|_| WhipError::NotLive(req.stream_id.clone()))?;
        let (rtc, answer) = self.answer(offer, true)?;
        let attendance = join(&self.auth, &req).await.map_err(WhipError::Refused)?;
        let id = new_session_id();
        let ending = Ending::default();
        self.viewers()
            .insert(id.clone(), (key.clone(), ending.clone()));
        info!(stream = %key, session = tag(&id), "WHEP viewer accepted");
        let session = Session {
            id: id.clone(),
            key,
            _slot: slot,
            rtc,
            ending,
            started: Instant::now(),
            next: Instant::now(),
            role: Role::Play {
                sub,
                attendance,
                egress: Egress::new(),
                video: None,
                audio: None,
                pts: [None; 3],
                dropped_gops: 0,
                connected: false,
                wants_key_frame: false,
                sent: self.hub.metrics().sent(Player::Whep),
            },
        };
        if self.hand_over(session).is_err() {
            self.viewers().remove(&id);
            return Err(WhipError::Full);
        }
        Ok(Accepted {
            session_id: id,
            answer,
        })
    }

    /// A place for one more session from `peer` (none needed when it is unknown).
    fn slot(&self, peer: Option<SocketAddr>) -> Result<Option<Slot<IpAddr>>, WhipError> {
        match peer {
            None => Ok(None),
            Some(p) => self.per_ip.take(p.ip()).map(Some).ok_or(WhipError::TooMany),
        }
    }

    /// Gives a new session to the loop; back if the loop is gone (shutting down).
    /// (Boxed: a session with its `Rtc` is several KiB.)
    fn hand_over(&self, session: Session) -> Result<(), Box<Session>> {
        self.tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(Box::new(session))
            .map_err(|e| e.0)
    }

    /// Ends the WHEP viewer `id` of `key` (`DELETE`). Whether it was there.
    pub fn stop_viewing(&self, key: &str, id: &str) -> bool {
        match self.viewers().get(id) {
            Some((k, ending)) if k == key => {
                ending.set(CloseReason::Normal);
                true
            }
            _ => false,
        }
    }

    fn viewers(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Ending)>> {
        self.viewers.lock().unwrap_or_else(|e| e.into_inner())
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

    /// Asks the WHIP publisher of `key` for a key frame (PLI, at most one a second);
    /// whether there is one.
    pub fn request_key_frame(&self, key: &str) -> bool {
        if !self.live().contains_key(key) {
            return false;
        }
        self.key_wanted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string());
        true
    }

    /// Keys of the streams published over WebRTC right now.
    pub fn live_keys(&self) -> Vec<String> {
        self.live().keys().cloned().collect()
    }

    fn run(&self, socket: UdpSocket, rx: Receiver<Box<Session>>, rt: tokio::runtime::Handle) {
        let mut sessions: Vec<Session> = Vec::new();
        let mut buf = vec![0u8; 2048];
        let mut out = gso::Sender::new(&socket);
        // Viewers' packets arrive from the hub, not the socket: they are fed every 10 ms.
        let mut next_feed = Instant::now();
        loop {
            while let Ok(s) = rx.try_recv() {
                sessions.push(*s);
            }
            let now = Instant::now();
            let feed = now >= next_feed;
            if feed {
                next_feed = now + VIEWER_FEED;
            }
            // Drive the sessions that are due (their timer, input, the viewers' feed),
            // then end the ones that are done. Driving all of them on every datagram cost
            // each session a full turn per datagram any session received.
            let mut wake = now + MAX_IDLE_TURN;
            let mut i = 0;
            while i < sessions.len() {
                let s = &mut sessions[i];
                // A viewer is fed only when its stream has something for it: an empty
                // turn still cost str0m's timers and a poll of its output.
                let due = now >= s.next
                    || (feed && matches!(&s.role, Role::Play { sub, .. } if sub.has_ready()));
                if !due {
                    wake = wake.min(s.next);
                    i += 1;
                    continue;
                }
                let driven = self.drive(s, &mut out, now);
                if let Err(e) = out.flush() {
                    debug!(session = tag(&s.id), error = %e, "UDP send failed");
                }
                match driven {
                    Ok(t) => {
                        // At least every MAX_IDLE_TURN: endings (kicks, forbids) are
                        // seen when the session is driven.
                        s.next = t.min(now + MAX_IDLE_TURN);
                        wake = wake.min(s.next);
                        i += 1;
                    }
                    Err(reason) => {
                        let s = sessions.swap_remove(i);
                        self.finish(s, reason, &rt);
                    }
                }
            }
            // Viewers' key frame requests go to the stream's WHIP publisher, if it has one.
            let mut wanted: Vec<String> = sessions
                .iter_mut()
                .filter_map(|s| match &mut s.role {
                    Role::Play {
                        wants_key_frame, ..
                    } if *wants_key_frame => {
                        *wants_key_frame = false;
                        Some(s.key.clone())
                    }
                    _ => None,
                })
                .collect();
            wanted.extend(
                self.key_wanted
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .drain(),
            );
            for key in &wanted {
                let publisher = sessions
                    .iter_mut()
                    .find(|s| matches!(s.role, Role::Publish { .. }) && s.key == *key);
                match publisher {
                    Some(s) => {
                        request_key_frame(s);
                        s.next = now;
                    }
                    None => {
                        (self.key_frame_for)(key);
                    }
                }
            }
            if sessions.iter().any(|s| matches!(s.role, Role::Play { .. })) {
                wake = wake.min(next_feed);
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
                    deliver(&mut sessions, Protocol::Udp, source, self.local, &buf[..n]);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => {
                    warn!(error = %e, "RTC socket read failed");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            // Frames from ICE-TCP connections (their readers rang the socket above).
            if let Some(tcp) = &self.tcp {
                while let Some((source, frame)) = tcp.try_recv() {
                    deliver(
                        &mut sessions,
                        Protocol::Tcp,
                        source,
                        tcp.local_addr(),
                        &frame,
                    );
                }
            }
        }
    }

    /// Feeds time in, sends what is due, publishes media (or writes it, for a viewer).
    /// `Ok(next wake-up)`, or why the session ends.
    fn drive(
        &self,
        s: &mut Session,
        udp: &mut gso::Sender,
        now: Instant,
    ) -> Result<Instant, CloseReason> {
        if let Some(r) = s.ending.get() {
            return Err(r);
        }
        if let Role::Play {
            attendance: Some(a),
            ..
        } = &s.role
            && a.ended().is_cancelled()
        {
            info!(session = tag(&s.id), stream = %s.key, "WHEP viewer removed from its room by the API");
            return Err(CloseReason::Kicked);
        }
        let deadline = match &s.role {
            Role::Publish { last_media, .. } => match last_media {
                Some(t) => *t + self.config.idle_timeout,
                None => s.started + self.config.first_packet_timeout,
            },
            // Viewers end with their stream or their connection; one that does not
            // connect in time (the server is ICE-lite: it would wait forever) is ended.
            Role::Play { connected, .. } => {
                if *connected {
                    now + Duration::from_secs(3600)
                } else {
                    s.started + self.config.first_packet_timeout
                }
            }
        };
        if now >= deadline {
            info!(session = tag(&s.id), stream = %s.key, "WebRTC session timed out");
            return Err(CloseReason::Timeout);
        }
        if s.rtc.handle_input(Input::Timeout(now)).is_err() || !s.rtc.is_alive() {
            return Err(CloseReason::Disconnected);
        }
        if let Role::Play { .. } = s.role {
            feed_viewer(s)?;
        }
        loop {
            let out = match s.rtc.poll_output() {
                Ok(o) => o,
                Err(e) => {
                    debug!(session = tag(&s.id), error = %e, "WebRTC session failed");
                    return Err(CloseReason::Disconnected);
                }
            };
            match out {
                Output::Timeout(t) => return Ok(t.min(deadline)),
                Output::Transmit(t) => match (t.proto, &self.tcp) {
                    (Protocol::Tcp, Some(tcp)) => tcp.send(t.destination, &t.contents),
                    // Batched: one send per address per turn where the kernel can.
                    _ => {
                        if let Err(e) = udp.send(t.destination, &t.contents) {
                            debug!(session = tag(&s.id), error = %e, "UDP send failed");
                        }
                    }
                },
                Output::Event(e) => event(s, e)?,
            }
        }
    }

    /// Ends a session: a publisher gives its stream back (the hub's claim, the live
    /// entry, the room: `stream_close`); a viewer its subscription.
    fn finish(&self, s: Session, reason: CloseReason, rt: &tokio::runtime::Handle) {
        let Session {
            id,
            key,
            mut rtc,
            role,
            ..
        } = s;
        rtc.disconnect();
        match role {
            Role::Publish { req, publisher, .. } => {
                drop(publisher);
                {
                    let mut live = self.live();
                    if live.get(&key).is_some_and(|(sid, _)| *sid == id) {
                        live.remove(&key);
                    }
                }
                info!(stream = %key, session = tag(&id), ?reason, "WHIP publish ended");
                let auth = self.auth.clone();
                rt.spawn_blocking(move || auth.unregister_publish(&req, reason));
            }
            Role::Play {
                sub, attendance, ..
            } => {
                drop(sub);
                if let Some(mut a) = attendance {
                    // Leaving writes callbacks: not on this thread.
                    a.set_reason(reason);
                    rt.spawn_blocking(move || drop(a));
                }
                self.viewers().remove(&id);
                info!(stream = %key, session = tag(&id), ?reason, "WHEP viewer ended");
            }
        }
    }
}

fn event(s: &mut Session, e: Event) -> Result<(), CloseReason> {
    match (e, &mut s.role) {
        (Event::IceConnectionStateChange(IceConnectionState::Disconnected), _) => {
            return Err(CloseReason::Disconnected);
        }
        (Event::Connected, role) => {
            if let Role::Play { connected, .. } = role {
                *connected = true;
            }
            info!(session = tag(&s.id), stream = %s.key, "WebRTC peer connected");
        }
        (
            Event::KeyframeRequest(_),
            Role::Play {
                wants_key_frame, ..
            },
        ) => {
            *wants_key_frame = true;
        }
        (Event::MediaAdded(m), Role::Publish { video, .. }) if m.kind == MediaKind::Video => {
            *video = Some(m.mid)
        }
        (Event::MediaAdded(m), Role::Play { video, audio, .. }) => match m.kind {
            MediaKind::Video => *video = Some(m.mid),
            MediaKind::Audio => *audio = Some(m.mid),
        },
        (Event::MediaData(d), Role::Publish { .. }) => {
            let arrival = d
                .network_time
                .saturating_duration_since(s.started)
                .as_millis() as i64;
            let (rtp, rate) = (d.time.numer(), d.time.denom());
            let Role::Publish {
                publisher,
                ingest,
                last_media,
                readers,
                ..
            } = &mut s.role
            else {
                return Ok(());
            };
            let packets = match d.params.spec().codec {
                Codec::H264 => ingest.h264(&d.data, rtp, rate, arrival),
                Codec::Vp8 => ingest.vp8(&d.data, rtp, rate, arrival),
                Codec::Opus => ingest.opus(&d.data, rtp, rate, arrival),
                _ => Vec::new(),
            };
            *last_media = Some(Instant::now());
            for p in packets {
                publisher.send(p);
            }
            let video = matches!(d.params.spec().codec, Codec::H264 | Codec::Vp8);
            // A new reader (a mix input, a twin, a player) starts at a key frame: WebRTC
            // encoders make one only when asked, and the hub's GOP cache gives up on very
            // long GOPs, so a newcomer could otherwise wait for ever. Looked at once a
            // second.
            let joined = video && readers.1.elapsed() >= Duration::from_secs(1) && {
                let n = publisher.stream().subscriber_count();
                let more = n > readers.0;
                *readers = (n, Instant::now());
                more
            };
            let wants_key = video && (joined || !d.contiguous || !ingest.has_key_frame());
            if wants_key {
                request_key_frame(s);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Hands a datagram (UDP) or frame (ICE-TCP) to the session it belongs to; anything
/// that is not STUN, DTLS or RTP, or is for no session, is dropped.
fn deliver(
    sessions: &mut [Session],
    proto: Protocol,
    source: SocketAddr,
    destination: SocketAddr,
    data: &[u8],
) {
    let Ok(contents) = data.try_into() else {
        return;
    };
    let input = Input::Receive(
        Instant::now(),
        Receive {
            proto,
            source,
            destination,
            contents,
        },
    );
    match sessions.iter_mut().find(|s| s.rtc.accepts(&input)) {
        Some(s) => {
            // Its answer (and anything the input released) goes out on the next turn.
            s.next = Instant::now();
            if let Err(e) = s.rtc.handle_input(input) {
                debug!(session = tag(&s.id), error = %e, "WebRTC input refused");
            }
        }
        None => debug!(%source, ?proto, "WebRTC input for no session"),
    }
}

/// Writes what the viewer's stream has sent since the last turn. A stream that ended
/// ends the viewer.
fn feed_viewer(s: &mut Session) -> Result<(), CloseReason> {
    let Role::Play {
        sub,
        egress,
        video,
        audio,
        pts,
        dropped_gops,
        connected,
        sent,
        ..
    } = &mut s.role
    else {
        return Ok(());
    };
    if !*connected {
        return Ok(());
    }
    let mut batch = Vec::new();
    sub.drain_ready(&mut batch, 256);
    if batch.is_empty() && sub.is_finished() {
        return Err(CloseReason::Normal);
    }
    if sub.dropped_gops() != *dropped_gops {
        *dropped_gops = sub.dropped_gops();
        egress.restart();
    }
    let now = Instant::now();
    for p in &batch {
        let Some(f) = egress.frame(p) else { continue };
        let (mid, clock, codec, slot) = match (f.video, f.vp8) {
            (true, false) => (*video, Frequency::NINETY_KHZ, Codec::H264, 0),
            (true, true) => (*video, Frequency::NINETY_KHZ, Codec::Vp8, 2),
            _ => (*audio, Frequency::FORTY_EIGHT_KHZ, Codec::Opus, 1),
        };
        let Some(mid) = mid else {
            debug!(
                session = tag(&s.id),
                video = f.video,
                "no media for a frame"
            );
            continue;
        };
        let Some(w) = s.rtc.writer(mid) else {
            debug!(
                session = tag(&s.id),
                video = f.video,
                "no writer for a frame"
            );
            continue;
        };
        // H.264 needs packetization mode 1 (fragmentation units) for frames over the MTU.
        let found = pts[slot].or_else(|| {
            w.payload_params()
                .filter(|pp| pp.spec().codec == codec)
                .max_by_key(|pp| pp.spec().format.packetization_mode == Some(1))
                .map(|pp| pp.pt())
        });
        let Some(pt) = found else {
            debug!(
                session = tag(&s.id),
                video = f.video,
                "no payload type for a frame"
            );
            continue;
        };
        pts[slot] = Some(pt);
        sent.inc_by(f.data.len() as u64);
        if let Err(e) = w.write(pt, now, MediaTime::new(f.rtp_time, clock), f.data) {
            warn!(session = tag(&s.id), error = %e, "WebRTC write failed");
        }
    }
    Ok(())
}

/// Asks the publisher for a key frame (PLI), at most once a second.
fn request_key_frame(s: &mut Session) {
    let Role::Publish {
        video,
        last_key_request,
        ..
    } = &mut s.role
    else {
        return;
    };
    if last_key_request.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
        return;
    }
    let Some(mid) = *video else { return };
    if let Some(mut w) = s.rtc.writer(mid) {
        let _ = w.request_keyframe(None, KeyframeRequestKind::Pli);
        *last_key_request = Some(Instant::now());
    }
}

/// A session's resource id: 128 random bits, the credential of its `DELETE`.
fn new_session_id() -> String {
    format!(
        "{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    )
}

/// What logs show of a session id: enough to follow it, not enough to delete it.
fn tag(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
