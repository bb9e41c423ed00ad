//! The RTMP server: the async shell around [`ServerSession`], one task per connection.
//!
//! A connection does one thing after `connect`: publish one stream or play one stream.
//! Publishing claims the stream in the hub (a second publisher is refused, the first goes
//! on), registers it in its room, and feeds the hub until the publisher stops, times out,
//! drops, or is cut off by a forbid ([`RtmpServer::kick`]). Playing subscribes to the hub
//! and writes what comes out, batched, until the stream ends or the player leaves.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use tributary_core::{AppId, CloseReason};

use crate::auth::{Authority, PlayRequest, PublishRequest, Refusal, stream_key};
use crate::chunk::Limits;
use crate::handshake;
use crate::hub::Hub;
use crate::metrics::Protocol;
use crate::session::{ServerSession, SessionError, SessionEvent, split_stream_name};
use crate::slots::KeyedSlots;
use crate::write_pacer::WritePacer;

#[derive(Debug, Clone)]
pub struct RtmpConfig {
    /// From TCP accept to `publish`/`play`.
    pub handshake_timeout: Duration,
    /// From `publish` to the first media packet.
    pub first_packet_timeout: Duration,
    /// Longest gap between a publisher's packets.
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// Connections from one IP address at most (NATs share addresses: keep it generous).
    pub max_connections_per_ip: usize,
    /// Chunk limits of an accepted publisher.
    pub chunk_limits: Limits,
    /// Chunk limits before `publish` is accepted, and for players (which send only
    /// commands): nobody unauthenticated gets to park megabytes here.
    pub pre_auth_limits: Limits,
    /// Bytes all connections together may hold in read buffers and half-received
    /// messages; the connection that would go past it is dropped.
    pub buffer_budget: usize,
    /// A write the peer does not take within this drops the connection (a peer that
    /// sends and never reads must not pin a slot or dodge a kick).
    pub write_timeout: Duration,
    /// Packets written to a player per socket write.
    pub write_batch: usize,
    /// A player is written at most once per this long (zero: each packet at once); see
    /// [`WritePacer`].
    pub write_coalesce: Duration,
}

impl Default for RtmpConfig {
    fn default() -> Self {
        RtmpConfig {
            handshake_timeout: Duration::from_secs(10),
            first_packet_timeout: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(5),
            max_connections: 10_000,
            max_connections_per_ip: 1_000,
            chunk_limits: Limits::default(),
            pre_auth_limits: Limits {
                max_message: 64 << 10,
                max_streams: 8,
                max_buffered: 256 << 10,
            },
            buffer_budget: 1 << 30,
            write_timeout: Duration::from_secs(30),
            write_batch: 16,
            write_coalesce: Duration::ZERO,
        }
    }
}

/// A player's read buffer once it plays (commands only: pause, close, acks).
const PLAYER_READ_BUFFER: usize = 1024;
/// How long a player of a stream published on another node waits for its relay to
/// start here.
pub const RELAY_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("handshake: {0}")]
    Handshake(#[from] handshake::HandshakeError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("timed out before publish or play")]
    Timeout,
    #[error("application {0:?} is not an app id")]
    BadApp(String),
    #[error("the server's buffer budget is spent; dropping the connection that would exceed it")]
    OverBudget,
}

/// What one connection holds of the global buffer budget; given back on drop.
struct Held<'a> {
    total: &'a AtomicUsize,
    budget: usize,
    mine: usize,
}

impl Held<'_> {
    /// Sets this connection's holding to `bytes`; refuses if that takes the total past
    /// the budget.
    fn set(&mut self, bytes: usize) -> Result<(), ConnError> {
        if bytes > self.mine {
            let more = bytes - self.mine;
            let before = self.total.fetch_add(more, Ordering::Relaxed);
            self.mine = bytes;
            if before + more > self.budget {
                return Err(ConnError::OverBudget);
            }
        } else {
            self.total.fetch_sub(self.mine - bytes, Ordering::Relaxed);
            self.mine = bytes;
        }
        Ok(())
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.total.fetch_sub(self.mine, Ordering::Relaxed);
    }
}

pub struct RtmpServer {
    hub: Hub,
    auth: Arc<dyn Authority>,
    config: RtmpConfig,
    live: Mutex<HashMap<String, CancellationToken>>,
    per_ip: Arc<KeyedSlots<IpAddr>>,
    held: AtomicUsize,
}

impl RtmpServer {
    pub fn new(hub: Hub, auth: Arc<dyn Authority>, config: RtmpConfig) -> Arc<Self> {
        let per_ip = config.max_connections_per_ip;
        Arc::new(RtmpServer {
            hub,
            auth,
            config,
            live: Mutex::new(HashMap::new()),
            per_ip: KeyedSlots::new(per_ip),
            held: AtomicUsize::new(0),
        })
    }

    /// Cuts off the publisher of `key` if there is one. Returns whether there was.
    pub fn kick(&self, key: &str) -> bool {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        match live.get(key) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    /// Keys of the streams published over RTMP right now.
    pub fn live_keys(&self) -> Vec<String> {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.keys().cloned().collect()
    }

    /// Accepts connections until `shutdown`; live connections are cut off then too.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: CancellationToken) {
        let slots = Arc::new(Semaphore::new(self.config.max_connections));
        loop {
            let (sock, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        warn!(error = %e, "RTMP accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                warn!(%peer, "RTMP connection limit reached; closing");
                continue;
            };
            let Some(ip_slot) = self.per_ip.take(peer.ip()) else {
                self.hub.metrics().refused("per_ip_limit");
                debug!(%peer, "RTMP connections per IP at their limit; closing");
                continue;
            };
            self.hub.metrics().connections.inc();
            let this = self.clone();
            let stop = shutdown.child_token();
            tokio::spawn(async move {
                let _permit = permit;
                let _ip_slot = ip_slot;
                tokio::select! {
                    r = this.connection(sock, peer) => {
                        if let Err(e) = r {
                            this.hub.metrics().bad_connections.inc();
                            info!(%peer, error = %e, "RTMP connection closed");
                        }
                    }
                    _ = stop.cancelled() => {}
                }
            });
        }
    }

    fn held(&self) -> Held<'_> {
        Held {
            total: &self.held,
            budget: self.config.buffer_budget,
            mine: 0,
        }
    }

    async fn connection(&self, mut sock: TcpStream, peer: SocketAddr) -> Result<(), ConnError> {
        let _ = sock.set_nodelay(true);
        let deadline = Instant::now() + self.config.handshake_timeout;
        let mut c0c1 = [0u8; 1 + handshake::SIZE];
        timeout_at(deadline, sock.read_exact(&mut c0c1))
            .await
            .map_err(|_| ConnError::Timeout)??;
        let resp = handshake::server_response(&c0c1)?;
        timeout_at(deadline, sock.write_all(&resp))
            .await
            .map_err(|_| ConnError::Timeout)??;
        let mut c2 = [0u8; handshake::SIZE];
        timeout_at(deadline, sock.read_exact(&mut c2))
            .await
            .map_err(|_| ConnError::Timeout)??;

        let mut session = ServerSession::new(self.config.pre_auth_limits);
        let mut buf = BytesMut::with_capacity(16 << 10);
        let mut events = Vec::new();
        let mut app: Option<AppId> = None;
        let w = self.config.write_timeout;
        let mut held = self.held();
        loop {
            let n = timeout_at(deadline, sock.read_buf(&mut buf))
                .await
                .map_err(|_| ConnError::Timeout)??;
            if n == 0 {
                return Ok(());
            }
            session.feed(&mut buf, &mut events)?;
            held.set(buf.len() + session.buffered())?;
            flush(&mut sock, &mut session, w).await?;
            for ev in std::mem::take(&mut events) {
                match ev {
                    SessionEvent::Connect { app: name } => {
                        app = Some(name.parse().map_err(|_| ConnError::BadApp(name.clone()))?);
                    }
                    SessionEvent::Publish { name } => {
                        let app_id = app.ok_or(ConnError::BadApp(String::new()))?;
                        drop(held);
                        return self.publish(sock, peer, session, buf, app_id, &name).await;
                    }
                    SessionEvent::Play { name } => {
                        let app_id = app.ok_or(ConnError::BadApp(String::new()))?;
                        drop(held);
                        return self.play(sock, peer, session, buf, app_id, &name).await;
                    }
                    _ => {}
                }
            }
        }
    }

    async fn refuse(
        &self,
        sock: &mut TcpStream,
        session: &mut ServerSession,
        r: &Refusal,
        key: &str,
    ) -> Result<(), ConnError> {
        self.hub.metrics().refused(r.reason);
        info!(stream = key, reason = r.reason, message = %r.message, "RTMP request refused");
        session.reject(r.status, &r.message);
        // A peer that does not read must not hold us: the status is best effort.
        let _ = flush(sock, session, Duration::from_secs(2)).await;
        Ok(())
    }

    async fn publish(
        &self,
        mut sock: TcpStream,
        peer: SocketAddr,
        mut session: ServerSession,
        mut buf: BytesMut,
        app_id: AppId,
        raw_name: &str,
    ) -> Result<(), ConnError> {
        let (stream_id, params) = split_stream_name(raw_name);
        let param = |k: &str| param(&params, k);
        let req = PublishRequest {
            app_id,
            stream_id: stream_id.clone(),
            room_id: param("room").unwrap_or_default(),
            user_id: param("user").unwrap_or_default(),
            token: param("token"),
            peer: Some(peer),
        };
        let key = stream_key(app_id, &stream_id);
        if let Err(r) = self.auth.check_publish(&req) {
            return self.refuse(&mut sock, &mut session, &r, &key).await;
        }
        let publisher = match self.hub.publish(&key, unix_ms()) {
            Ok(p) => p,
            Err(_) => {
                let r = Refusal::new(
                    "NetStream.Publish.BadName",
                    "already_publishing",
                    format!("stream {stream_id} is already being published"),
                );
                return self.refuse(&mut sock, &mut session, &r, &key).await;
            }
        };
        let registered = crate::auth::register(&self.auth, &req).await;
        if let Err(r) = registered {
            drop(publisher);
            return self.refuse(&mut sock, &mut session, &r, &key).await;
        }

        let cancel = CancellationToken::new();
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone(), cancel.clone());
        // A forbid that came between the first check and the line above found nobody
        // to cut off: check again now that it would.
        if self.auth.check_publish(&req).is_err() {
            cancel.cancel();
        }
        let metrics = self.hub.metrics().clone();
        metrics.publishers.inc();
        info!(stream = %key, room = %req.room_id, user = %req.user_id, %peer, "publish started");
        session.accept_publish(&stream_id);
        session.set_limits(self.config.chunk_limits);
        let mut held = self.held();
        let w = self.config.write_timeout;

        let started = Instant::now();
        let mut last_media: Option<Instant> = None;
        let mut events = Vec::new();
        let reason = 'run: loop {
            if let Err(e) = flush(&mut sock, &mut session, w).await {
                debug!(stream = %key, error = %e, "publisher write failed");
                break CloseReason::Disconnected;
            }
            let deadline = match last_media {
                Some(t) => t + self.config.idle_timeout,
                None => started + self.config.first_packet_timeout,
            };
            tokio::select! {
                _ = cancel.cancelled() => {
                    session.reject("NetStream.Publish.Rejected", "this stream was forbidden by the server API");
                    let _ = flush(&mut sock, &mut session, Duration::from_millis(500)).await;
                    break CloseReason::Forbidden;
                }
                r = timeout_at(deadline, sock.read_buf(&mut buf)) => match r {
                    Err(_) => {
                        info!(stream = %key, got_media = last_media.is_some(), "publisher timed out");
                        break CloseReason::Timeout;
                    }
                    Ok(Ok(0)) | Ok(Err(_)) => break CloseReason::Disconnected,
                    Ok(Ok(_)) => {
                        if let Err(e) = session.feed(&mut buf, &mut events) {
                            warn!(stream = %key, error = %e, "publisher sent bad data; closing");
                            metrics.bad_connections.inc();
                            break CloseReason::Disconnected;
                        }
                        if let Err(e) = held.set(buf.len() + session.buffered()) {
                            warn!(stream = %key, error = %e, "publisher dropped");
                            break CloseReason::Disconnected;
                        }
                        for ev in events.drain(..) {
                            match ev {
                                SessionEvent::Media(p) => {
                                    last_media = Some(Instant::now());
                                    publisher.send(p);
                                }
                                SessionEvent::Unpublish => break 'run CloseReason::Normal,
                                _ => {}
                            }
                        }
                    }
                }
            }
        };
        {
            let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            if live
                .get(&key)
                .is_some_and(|t| t.is_cancelled() == cancel.is_cancelled())
            {
                live.remove(&key);
            }
        }
        drop(publisher);
        metrics.publishers.dec();
        info!(stream = %key, ?reason, "publish ended");
        let auth = self.auth.clone();
        let _ = tokio::task::spawn_blocking(move || auth.unregister_publish(&req, reason)).await;
        Ok(())
    }

    async fn play(
        &self,
        mut sock: TcpStream,
        peer: SocketAddr,
        mut session: ServerSession,
        mut buf: BytesMut,
        app_id: AppId,
        raw_name: &str,
    ) -> Result<(), ConnError> {
        // A player only sends small commands from here on: its 16 KiB handshake-time read
        // buffer would be most of what thousands of players hold.
        if buf.capacity() > PLAYER_READ_BUFFER {
            let mut small = BytesMut::with_capacity(PLAYER_READ_BUFFER.max(buf.len()));
            small.extend_from_slice(&buf);
            buf = small;
        }
        let (stream_id, params) = split_stream_name(raw_name);
        let key = stream_key(app_id, &stream_id);
        let req = PlayRequest {
            app_id,
            stream_id: stream_id.clone(),
            room_id: param(&params, "room").unwrap_or_default(),
            user_id: param(&params, "user").unwrap_or_default(),
            token: param(&params, "token"),
            peer: Some(peer),
            relay: None,
        };
        if let Err(r) = self.auth.check_play(&req) {
            return self.refuse(&mut sock, &mut session, &r, &key).await;
        }
        let mut attendance = match crate::auth::join(&self.auth, &req).await {
            Ok(a) => a,
            Err(r) => return self.refuse(&mut sock, &mut session, &r, &key).await,
        };
        let sub = match self
            .hub
            .subscribe_waiting(&key, Protocol::Rtmp, RELAY_WAIT)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                let r = Refusal::new("NetStream.Play.StreamNotFound", "not_live", e.to_string());
                return self.refuse(&mut sock, &mut session, &r, &key).await;
            }
        };
        session.accept_play(&stream_id);
        let w = self.config.write_timeout;
        flush(&mut sock, &mut session, w).await?;
        debug!(stream = %key, %peer, "RTMP play started");
        let sent = self.hub.metrics().sent(Protocol::Rtmp);
        let mut batch = Vec::with_capacity(self.config.write_batch);
        let mut events = Vec::new();
        let mut pacer = WritePacer::new(self.config.write_coalesce);
        loop {
            // Until the player's next write slot its queue is not listened to: packets
            // arriving meanwhile wait for that write anyway (see `WritePacer`).
            let slot = pacer.next_at(Instant::now());
            tokio::select! {
                _ = tokio::time::sleep_until(slot.unwrap_or_else(Instant::now)), if slot.is_some() => {}
                p = sub.recv(), if slot.is_none() => match p {
                    Some(p) => {
                        batch.push(p);
                        sub.drain_ready(&mut batch, self.config.write_batch);
                        for p in batch.drain(..) {
                            session.write_media(&p);
                        }
                        let n = session.output_len();
                        flush(&mut sock, &mut session, w).await?;
                        pacer.wrote(Instant::now());
                        sent.inc_by(n as u64);
                    }
                    None => {
                        session.end_play(&stream_id);
                        let _ = flush(&mut sock, &mut session, Duration::from_secs(2)).await;
                        break;
                    }
                },
                r = sock.read_buf(&mut buf) => {
                    if r? == 0 {
                        break;
                    }
                    session.feed(&mut buf, &mut events)?;
                    if events.drain(..).any(|e| e == SessionEvent::StopPlay) {
                        if let Some(a) = &mut attendance {
                            a.set_reason(CloseReason::Normal);
                        }
                        break;
                    }
                    flush(&mut sock, &mut session, w).await?;
                }
                _ = crate::auth::removed(&attendance) => {
                    info!(stream = %key, %peer, "player removed from its room by the API");
                    session.end_play(&stream_id);
                    let _ = flush(&mut sock, &mut session, Duration::from_secs(2)).await;
                    break;
                }
            }
        }
        debug!(stream = %key, %peer, dropped_gops = sub.dropped_gops(), "RTMP play ended");
        Ok(())
    }
}

fn param(params: &[(String, String)], key: &str) -> Option<String> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

/// Writes what the session has for the peer, within `limit`.
async fn flush(
    sock: &mut TcpStream,
    session: &mut ServerSession,
    limit: Duration,
) -> std::io::Result<()> {
    if session.has_output() {
        let out = session.take_output();
        timeout(limit, sock.write_all(&out)).await.map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the peer took nothing for {limit:?}"),
            )
        })??;
    }
    Ok(())
}

pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_budget_is_shared_and_given_back() {
        let total = AtomicUsize::new(0);
        let held = |budget| Held {
            total: &total,
            budget,
            mine: 0,
        };
        let mut a = held(100);
        let mut b = held(100);
        assert!(a.set(60).is_ok());
        assert!(matches!(b.set(50), Err(ConnError::OverBudget)));
        // The refused connection is dropped: what it held comes back.
        drop(b);
        assert_eq!(total.load(Ordering::Relaxed), 60);
        assert!(a.set(10).is_ok());
        let mut c = held(100);
        assert!(c.set(90).is_ok());
        drop(a);
        drop(c);
        assert_eq!(total.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_peer_that_never_reads_cannot_hold_a_write() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        // The peer connects and never reads.
        let _peer = TcpStream::connect(addr).await.unwrap();
        let (mut sock, _) = l.accept().await.unwrap();
        let mut session = ServerSession::new(Limits::default());
        let packet = crate::media::Packet::new(
            crate::media::Kind::Video,
            0,
            bytes::Bytes::from(vec![0x27u8; 1 << 20]),
        );
        let started = std::time::Instant::now();
        let mut result = Ok(());
        // Far more than any socket buffer holds.
        for _ in 0..256 {
            session.write_media(&packet);
            result = flush(&mut sock, &mut session, Duration::from_millis(300)).await;
            if result.is_err() {
                break;
            }
        }
        let e = result.expect_err("the write should have timed out");
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(20));
    }
}
