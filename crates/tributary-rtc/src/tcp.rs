//! ICE-TCP, the fallback for clients whose UDP is blocked: the server also announces a
//! passive TCP host candidate (RFC 6544), and each TCP connection to it carries STUN,
//! DTLS and SRTP framed by a 2-byte length (RFC 4571).
//!
//! The session loop stays on its one thread and one UDP socket. Each connection has a
//! reader thread that hands whole frames to the loop through a bounded queue (and rings
//! the loop's UDP socket with a one-byte datagram so it wakes at once), and a writer
//! thread draining a bounded queue of frames the loop wants sent. A full queue drops the
//! frame, as a lossy network would: media over TCP must not stall the loop. Connections
//! are capped in total and per address; one that sends nothing for `idle` is closed.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::{debug, info, warn};

use tributary_live::slots::KeyedSlots;

/// Frames waiting for the loop, from every connection together.
const INBOUND: usize = 4096;
/// Frames waiting to be written, per connection.
const OUTBOUND: usize = 512;

#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// Connections at most.
    pub max_connections: usize,
    /// Connections at most from one address.
    pub max_per_ip: usize,
    /// A connection silent this long is closed (ICE consent checks come every few
    /// seconds on a live one).
    pub idle: Duration,
    /// A write that takes longer than this closes the connection.
    pub write_timeout: Duration,
}

/// The TCP side of the WebRTC plane: where frames arrive from and go to.
pub struct TcpPlane {
    local: SocketAddr,
    /// Only the session loop reads it; the lock makes the plane shareable.
    inbound: Mutex<Receiver<(SocketAddr, Vec<u8>)>>,
    writers: Arc<Mutex<HashMap<SocketAddr, SyncSender<Vec<u8>>>>>,
}

impl TcpPlane {
    /// Listens on `listener`; readers ring `doorbell` (the loop's UDP address) on each frame.
    pub fn start(
        listener: TcpListener,
        doorbell: SocketAddr,
        config: TcpConfig,
    ) -> std::io::Result<TcpPlane> {
        let local = listener.local_addr()?;
        let (tx, inbound) = sync_channel(INBOUND);
        let writers: Arc<Mutex<HashMap<SocketAddr, SyncSender<Vec<u8>>>>> = Arc::default();
        let w = writers.clone();
        std::thread::Builder::new()
            .name("rtc-tcp".into())
            .spawn(move || accept(listener, tx, w, doorbell, config))?;
        info!(%local, "WebRTC ICE-TCP listening");
        Ok(TcpPlane {
            local,
            inbound: Mutex::new(inbound),
            writers,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The next frame that arrived, if any: (the peer, the frame).
    pub fn try_recv(&self) -> Option<(SocketAddr, Vec<u8>)> {
        self.inbound
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .try_recv()
            .ok()
    }

    /// Queues a frame for the connection from `peer`; dropped when there is none or its
    /// queue is full.
    pub fn send(&self, peer: SocketAddr, frame: &[u8]) {
        let writers = self.writers.lock().unwrap_or_else(|e| e.into_inner());
        let Some(w) = writers.get(&peer) else {
            debug!(%peer, "TCP frame for no connection");
            return;
        };
        if let Err(TrySendError::Full(_)) = w.try_send(frame.to_vec()) {
            debug!(%peer, "TCP peer is not keeping up; frame dropped");
        }
    }
}

fn accept(
    listener: TcpListener,
    inbound: SyncSender<(SocketAddr, Vec<u8>)>,
    writers: Arc<Mutex<HashMap<SocketAddr, SyncSender<Vec<u8>>>>>,
    doorbell: SocketAddr,
    config: TcpConfig,
) {
    let per_ip: Arc<KeyedSlots<IpAddr>> = KeyedSlots::new(config.max_per_ip.max(1));
    for conn in listener.incoming() {
        let sock = match conn {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "ICE-TCP accept failed");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let Ok(peer) = sock.peer_addr() else {
            continue;
        };
        let full =
            writers.lock().unwrap_or_else(|e| e.into_inner()).len() >= config.max_connections;
        let Some(slot) = per_ip.take(peer.ip()).filter(|_| !full) else {
            debug!(%peer, "ICE-TCP connection refused: too many");
            continue;
        };
        let (wtx, wrx) = sync_channel::<Vec<u8>>(OUTBOUND);
        writers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(peer, wtx);
        let (inbound, writers, config) = (inbound.clone(), writers.clone(), config.clone());
        let spawned = std::thread::Builder::new()
            .name("rtc-tcp-conn".into())
            .spawn(move || {
                let _slot = slot;
                serve(sock, peer, &inbound, wrx, doorbell, &config);
                writers
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&peer);
                debug!(%peer, "ICE-TCP connection closed");
            });
        if let Err(e) = spawned {
            warn!(error = %e, "cannot serve an ICE-TCP connection");
        }
    }
}

/// Reads frames until the peer goes or falls silent; a writer thread sends meanwhile.
fn serve(
    sock: TcpStream,
    peer: SocketAddr,
    inbound: &SyncSender<(SocketAddr, Vec<u8>)>,
    outbound: Receiver<Vec<u8>>,
    doorbell: SocketAddr,
    config: &TcpConfig,
) {
    let _ = sock.set_nodelay(true);
    if sock.set_read_timeout(Some(config.idle)).is_err()
        || sock.set_write_timeout(Some(config.write_timeout)).is_err()
    {
        return;
    }
    let Ok(mut writer) = sock.try_clone() else {
        return;
    };
    let bell = UdpSocket::bind(SocketAddr::new(
        if doorbell.is_ipv4() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
        },
        0,
    ))
    .ok();
    let writing = std::thread::Builder::new()
        .name("rtc-tcp-write".into())
        .spawn(move || {
            let mut out = Vec::with_capacity(2048);
            while let Ok(frame) = outbound.recv() {
                out.clear();
                out.extend_from_slice(&frame_header(frame.len()));
                out.extend_from_slice(&frame);
                if writer.write_all(&out).is_err() {
                    let _ = writer.shutdown(std::net::Shutdown::Both);
                    return;
                }
            }
        });
    if writing.is_err() {
        return;
    }
    let mut reader = sock;
    let mut buf = Vec::new();
    loop {
        match read_frame(&mut reader, &mut buf) {
            Ok(true) => match inbound.try_send((peer, buf.clone())) {
                Ok(()) => {
                    if let Some(b) = &bell {
                        let _ = b.send_to(&[0], doorbell);
                    }
                }
                Err(TrySendError::Full(_)) => debug!(%peer, "WebRTC loop busy; TCP frame dropped"),
                Err(TrySendError::Disconnected(_)) => return,
            },
            Ok(false) => {} // an empty frame: nothing to pass on
            Err(e) => {
                if !matches!(e.kind(), ErrorKind::UnexpectedEof) {
                    debug!(%peer, error = %e, "ICE-TCP read ended");
                }
                let _ = reader.shutdown(std::net::Shutdown::Both);
                return;
            }
        }
    }
}

/// RFC 4571: each frame is preceded by its length, 16 bits, network order. Frames come
/// from the loop's transmits, which stay under an MTU.
fn frame_header(len: usize) -> [u8; 2] {
    (len.min(u16::MAX as usize) as u16).to_be_bytes()
}

/// Reads one RFC 4571 frame into `buf`; `Ok(false)` for an empty one.
fn read_frame(r: &mut impl Read, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut len = [0u8; 2];
    r.read_exact(&mut len)?;
    let len = u16::from_be_bytes(len) as usize;
    buf.clear();
    buf.resize(len, 0);
    r.read_exact(buf)?;
    Ok(len > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_length_prefixed_both_ways() {
        let mut wire = Vec::new();
        for f in [&b"stun"[..], b"", b"dtls record"] {
            wire.extend_from_slice(&frame_header(f.len()));
            wire.extend_from_slice(f);
        }
        let mut r = std::io::Cursor::new(wire);
        let mut buf = Vec::new();
        assert!(read_frame(&mut r, &mut buf).unwrap());
        assert_eq!(buf, b"stun");
        assert!(!read_frame(&mut r, &mut buf).unwrap());
        assert!(read_frame(&mut r, &mut buf).unwrap());
        assert_eq!(buf, b"dtls record");
        // A frame cut short is an error, not a short frame.
        let mut cut = std::io::Cursor::new(vec![0, 9, 1, 2]);
        assert!(read_frame(&mut cut, &mut buf).is_err());
    }
}
