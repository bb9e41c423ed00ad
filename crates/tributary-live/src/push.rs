//! The RTMP push client: forwards one hub stream to an external `rtmp://` URL, and keeps
//! doing so — it waits for the source to go live, reconnects with exponential back-off
//! when the target drops or refuses, and stops only when told. The mixer's URL outputs
//! and configured relays use it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use tributary_core::url_policy::{self, Purpose, UrlPolicy, redact};

use crate::amf0::{self, Amf0};
use crate::chunk::{ChunkReader, ChunkWriter, Limits, msg_type};
use crate::dial;
use crate::handshake;
use crate::hub::{Hub, HubEvent, Subscription};
use crate::media::Kind;
use crate::metrics::Protocol;

#[derive(Debug, Clone)]
pub struct PushConfig {
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Connect, handshake and `publish` must finish within this.
    pub setup_timeout: Duration,
    /// A write the target does not take within this ends the connection (a target that
    /// stops reading must not pin the push forever).
    pub write_timeout: Duration,
    /// Which addresses the target may resolve to.
    pub policy: UrlPolicy,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            setup_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            policy: UrlPolicy::default(),
        }
    }
}

/// Where to push: `rtmp://host[:port]/app/stream[?query]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub app: String,
    /// Stream name with its query (tokens live there).
    pub stream: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an rtmp://host[:port]/app/stream URL: {0}")]
pub struct BadUrl(pub String);

impl Target {
    /// Parses the URL's syntax (the URL policy's); its addresses are checked when it is
    /// connected, on every attempt.
    pub fn parse(url: &str) -> Result<Target, BadUrl> {
        let bad = || BadUrl(redact(url));
        let u = url_policy::syntax(url, Purpose::MixOutput).map_err(|_| bad())?;
        let path = u.path_and_query.strip_prefix('/').ok_or_else(bad)?;
        let (app, stream) = path.split_once('/').ok_or_else(bad)?;
        if app.is_empty() || stream.is_empty() {
            return Err(bad());
        }
        Ok(Target {
            host: u.host,
            port: u.port,
            app: app.to_string(),
            stream: stream.to_string(),
        })
    }

    fn tc_url(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("rtmp://{host}:{}/{}", self.port, self.app)
    }
}

/// What a push is doing, for introspection and tests.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum PushState {
    WaitingForSource,
    Connecting,
    Pushing,
    Retrying { attempt: u32, last_error: String },
    Stopped,
}

pub struct PushHandle {
    cancel: CancellationToken,
    state: Arc<Mutex<PushState>>,
}

impl PushHandle {
    pub fn state(&self) -> PushState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    pub fn stop(&self) {
        self.cancel.cancel();
    }
}

impl Drop for PushHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Starts pushing hub stream `key` to `target` until the handle is stopped or dropped.
pub fn spawn(hub: Hub, key: String, target: Target, config: PushConfig) -> PushHandle {
    let cancel = CancellationToken::new();
    let state = Arc::new(Mutex::new(PushState::WaitingForSource));
    let handle = PushHandle {
        cancel: cancel.clone(),
        state: state.clone(),
    };
    tokio::spawn(async move {
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = run(hub, &key, &target, &config, &state) => {}
        }
        *state.lock().unwrap_or_else(|e| e.into_inner()) = PushState::Stopped;
    });
    handle
}

fn set(state: &Mutex<PushState>, s: PushState) {
    *state.lock().unwrap_or_else(|e| e.into_inner()) = s;
}

async fn run(hub: Hub, key: &str, target: &Target, config: &PushConfig, state: &Mutex<PushState>) {
    let mut attempt = 0u32;
    let mut events = hub.events();
    loop {
        // Wait for the source.
        let sub = loop {
            match hub.subscribe(key, Protocol::Push) {
                Ok(s) => break s,
                Err(_) => {
                    set(state, PushState::WaitingForSource);
                    match events.recv().await {
                        Ok(HubEvent::Published(k)) if k == key => {}
                        Ok(_) | Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => return,
                    }
                }
            }
        };
        set(state, PushState::Connecting);
        let started = Instant::now();
        let result = push_once(&hub, sub, target, config, state).await;
        let err = match result {
            Ok(()) => {
                info!(stream = key, target = %target.tc_url(), "source ended; push waits for it");
                attempt = 0;
                continue;
            }
            Err(e) => e,
        };
        if started.elapsed() > Duration::from_secs(30) {
            attempt = 0;
        }
        attempt += 1;
        let backoff = config
            .min_backoff
            .saturating_mul(1 << (attempt - 1).min(16))
            .min(config.max_backoff);
        warn!(stream = key, target = %target.tc_url(), attempt, error = %err, ?backoff, "push failed; retrying");
        set(
            state,
            PushState::Retrying {
                attempt,
                last_error: err.clone(),
            },
        );
        tokio::time::sleep(backoff).await;
    }
}

struct Conn {
    sock: TcpStream,
    write_timeout: Duration,
    reader: ChunkReader,
    writer: ChunkWriter,
    buf: BytesMut,
    out: BytesMut,
}

impl Conn {
    fn command(&mut self, stream_id: u32, values: &[Amf0]) {
        let payload = amf0::encode_all(values);
        self.writer.write(
            &mut self.out,
            3,
            msg_type::COMMAND_AMF0,
            stream_id,
            0,
            &payload,
        );
    }

    async fn flush(&mut self) -> Result<(), String> {
        if !self.out.is_empty() {
            let out = self.out.split();
            timeout(self.write_timeout, self.sock.write_all(&out))
                .await
                .map_err(|_| format!("the target took no data for {:?}", self.write_timeout))?
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Reads until a command with one of `names` arrives; returns its values.
    async fn expect(&mut self, names: &[&str]) -> Result<Vec<Amf0>, String> {
        loop {
            while let Some(m) = self.reader.read(&mut self.buf).map_err(|e| e.to_string())? {
                match m.type_id {
                    msg_type::SET_CHUNK_SIZE if m.payload.len() >= 4 => {
                        let n = u32::from_be_bytes([
                            m.payload[0],
                            m.payload[1],
                            m.payload[2],
                            m.payload[3],
                        ]);
                        self.reader
                            .set_chunk_size(n & 0x7FFF_FFFF)
                            .map_err(|e| e.to_string())?;
                    }
                    msg_type::COMMAND_AMF0 => {
                        let v = amf0::decode_all(&m.payload).map_err(|e| e.to_string())?;
                        let name = v.first().and_then(Amf0::as_str).unwrap_or_default();
                        if name == "_error" {
                            return Err(describe(&v));
                        }
                        if name == "onStatus" {
                            let level =
                                v.get(3).and_then(|o| o.get("level")).and_then(Amf0::as_str);
                            if level == Some("error") {
                                return Err(describe(&v));
                            }
                        }
                        if names.contains(&name) {
                            return Ok(v);
                        }
                    }
                    _ => {}
                }
            }
            let n = self
                .sock
                .read_buf(&mut self.buf)
                .await
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("the server closed the connection".into());
            }
        }
    }
}

fn describe(v: &[Amf0]) -> String {
    let info = v.get(3);
    let code = info
        .and_then(|o| o.get("code"))
        .and_then(Amf0::as_str)
        .unwrap_or("?");
    let desc = info
        .and_then(|o| o.get("description"))
        .and_then(Amf0::as_str)
        .unwrap_or("");
    format!("refused: {code} {desc}")
}

async fn setup(target: &Target, config: &PushConfig) -> Result<(Conn, u32), String> {
    let mut sock = dial::connect(
        &config.policy,
        &target.host,
        target.port,
        config.setup_timeout,
    )
    .await
    .map_err(|e| e.to_string())?;
    let _ = sock.set_nodelay(true);
    sock.write_all(&handshake::client_hello())
        .await
        .map_err(|e| e.to_string())?;
    let mut s0s1 = vec![0u8; 1 + handshake::SIZE];
    sock.read_exact(&mut s0s1)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let c2 = handshake::client_ack(&s0s1).map_err(|e| e.to_string())?;
    let mut s2 = vec![0u8; handshake::SIZE];
    sock.read_exact(&mut s2)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    sock.write_all(&c2).await.map_err(|e| e.to_string())?;
    let mut c = Conn {
        sock,
        write_timeout: config.write_timeout,
        reader: ChunkReader::new(Limits::default()),
        writer: ChunkWriter::new(crate::chunk::DEFAULT_CHUNK_SIZE),
        buf: BytesMut::with_capacity(8192),
        out: BytesMut::new(),
    };
    // Our chunk size first, so media goes in few chunks.
    let size: u32 = 4096;
    c.writer.write(
        &mut c.out,
        2,
        msg_type::SET_CHUNK_SIZE,
        0,
        0,
        &size.to_be_bytes(),
    );
    c.writer = ChunkWriter::new(size);
    c.command(
        0,
        &[
            Amf0::str("connect"),
            Amf0::Number(1.0),
            Amf0::object([
                ("app", Amf0::str(&target.app)),
                ("type", Amf0::str("nonprivate")),
                ("flashVer", Amf0::str("FMLE/3.0 (compatible; tributary)")),
                ("tcUrl", Amf0::str(&target.tc_url())),
            ]),
        ],
    );
    c.flush().await?;
    c.expect(&["_result"]).await?;
    c.command(
        0,
        &[
            Amf0::str("releaseStream"),
            Amf0::Number(2.0),
            Amf0::Null,
            Amf0::str(&target.stream),
        ],
    );
    c.command(
        0,
        &[
            Amf0::str("FCPublish"),
            Amf0::Number(3.0),
            Amf0::Null,
            Amf0::str(&target.stream),
        ],
    );
    c.command(
        0,
        &[Amf0::str("createStream"), Amf0::Number(4.0), Amf0::Null],
    );
    c.flush().await?;
    let stream_id = loop {
        let v = c.expect(&["_result"]).await?;
        if v.get(1).and_then(Amf0::as_f64) == Some(4.0) {
            break v.get(3).and_then(Amf0::as_f64).unwrap_or(1.0) as u32;
        }
    };
    c.command(
        stream_id,
        &[
            Amf0::str("publish"),
            Amf0::Number(5.0),
            Amf0::Null,
            Amf0::str(&target.stream),
            Amf0::str("live"),
        ],
    );
    c.flush().await?;
    loop {
        let v = c.expect(&["onStatus"]).await?;
        let code = v.get(3).and_then(|o| o.get("code")).and_then(Amf0::as_str);
        if code == Some("NetStream.Publish.Start") {
            break;
        }
    }
    Ok((c, stream_id))
}

/// One connection's life: `Ok` when the source ended, `Err` when the target failed.
async fn push_once(
    hub: &Hub,
    sub: Subscription,
    target: &Target,
    config: &PushConfig,
    state: &Mutex<PushState>,
) -> Result<(), String> {
    let (mut c, stream_id) = timeout(config.setup_timeout, setup(target, config))
        .await
        .map_err(|_| "timed out setting up".to_string())??;
    set(state, PushState::Pushing);
    info!(stream = %sub.stream().key(), target = %target.tc_url(), "pushing");
    let sent = hub.metrics().sent(Protocol::Push);
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            p = sub.recv() => {
                let Some(p) = p else {
                    // Tell the target we are done, best effort.
                    c.command(stream_id, &[Amf0::str("FCUnpublish"), Amf0::Number(6.0), Amf0::Null, Amf0::str(&target.stream)]);
                    c.command(0, &[Amf0::str("deleteStream"), Amf0::Number(7.0), Amf0::Null, Amf0::Number(f64::from(stream_id))]);
                    let _ = timeout(Duration::from_secs(2), c.flush()).await;
                    return Ok(());
                };
                batch.push(p);
                sub.drain_ready(&mut batch, 64);
                for p in batch.drain(..) {
                    match p.kind {
                        Kind::Audio => c.writer.write(&mut c.out, 4, msg_type::AUDIO, stream_id, p.timestamp, &p.data),
                        Kind::Video => c.writer.write(&mut c.out, 6, msg_type::VIDEO, stream_id, p.timestamp, &p.data),
                        Kind::Meta if !p.is_metadata() => c.writer.write(&mut c.out, 5, msg_type::DATA_AMF0, stream_id, p.timestamp, &p.data),
                        Kind::Meta => {
                            let mut body = BytesMut::new();
                            amf0::encode(&mut body, &Amf0::str("@setDataFrame"));
                            body.put_slice(&p.data);
                            c.writer.write(&mut c.out, 5, msg_type::DATA_AMF0, stream_id, 0, &body);
                        }
                    }
                }
                let n = c.out.len();
                c.flush().await?;
                sent.inc_by(n as u64);
            }
            r = c.sock.read_buf(&mut c.buf) => {
                match r {
                    Ok(0) => return Err("the target closed the connection".into()),
                    Err(e) => return Err(e.to_string()),
                    Ok(_) => {
                        // Statuses (an error ends the push) and housekeeping.
                        while let Some(m) = c.reader.read(&mut c.buf).map_err(|e| e.to_string())? {
                            if m.type_id == msg_type::COMMAND_AMF0
                                && let Ok(v) = amf0::decode_all(&m.payload)
                                && v.get(3).and_then(|o| o.get("level")).and_then(Amf0::as_str) == Some("error")
                            {
                                return Err(describe(&v));
                            }
                            if m.type_id == msg_type::SET_CHUNK_SIZE && m.payload.len() >= 4 {
                                let n = u32::from_be_bytes([m.payload[0], m.payload[1], m.payload[2], m.payload[3]]);
                                c.reader.set_chunk_size(n & 0x7FFF_FFFF).map_err(|e| e.to_string())?;
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            Target::parse("rtmp://example.com/live/key?x=1").unwrap(),
            Target {
                host: "example.com".into(),
                port: 1935,
                app: "live".into(),
                stream: "key?x=1".into()
            }
        );
        assert_eq!(Target::parse("rtmp://h:19350/a/b/c").unwrap().stream, "b/c");
        assert_eq!(
            Target::parse("rtmp://[::1]:1/a/b").unwrap().tc_url(),
            "rtmp://[::1]:1/a"
        );
        for bad in [
            "file:///a/b",
            "rtmp://u:p@h/a/b",
            "http://h/a/b",
            "rtmp://h/a",
            "rtmp://h:x/a/b",
            "rtmp:///a/b",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
