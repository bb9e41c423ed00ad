//! The server side of an RTMP connection after the handshake, sans-I/O.
//!
//! Bytes go in ([`ServerSession::feed`]); what the peer asked for comes out as
//! [`SessionEvent`]s; replies accumulate in an output buffer the caller writes to the
//! socket. Protocol housekeeping (chunk size, acknowledgements, pings) is handled here;
//! decisions (may this stream be published? played?) are the caller's, answered with
//! `accept_*`/`reject_*`.

use bytes::{Buf, BufMut, BytesMut};

use crate::amf0::{self, Amf0, Amf0Error};
use crate::chunk::{ChunkError, ChunkReader, ChunkWriter, Limits, Message, msg_type};
use crate::media::{Kind, Packet};

/// Chunk size the server sends with (nginx-rtmp's default; FFmpeg, OBS and browsers'
/// flash-less players all accept it).
pub const OUT_CHUNK_SIZE: u32 = 4096;
/// A session's output buffer starts at this size and is let go once it grew past
/// `OUT_KEEP` (see [`ServerSession::take_output`]).
const OUT_INITIAL: usize = 8192;
const OUT_KEEP: usize = 32 << 10;
const WINDOW_ACK_SIZE: u32 = 2_500_000;
/// The message stream id handed out by `createStream`.
pub const MEDIA_STREAM_ID: u32 = 1;

const CSID_CONTROL: u32 = 2;
const CSID_COMMAND: u32 = 3;
const CSID_AUDIO: u32 = 4;
const CSID_DATA: u32 = 5;
const CSID_VIDEO: u32 = 6;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    #[error("bad AMF0 in {0}: {1}")]
    Amf(&'static str, #[source] Amf0Error),
    #[error("{0}")]
    Protocol(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// `connect` with its application name (`tcUrl`'s path, before any `?`).
    Connect { app: String },
    /// `publish` with the stream name as sent (stream key, query included).
    Publish { name: String },
    /// `play` with the stream name as sent.
    Play { name: String },
    /// A media or metadata packet of the stream being published.
    Media(Packet),
    /// The publisher said it is done (FCUnpublish / deleteStream / closeStream).
    Unpublish,
    /// The player stopped (deleteStream / closeStream).
    StopPlay,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Idle,
    Publishing,
    Playing,
}

pub struct ServerSession {
    reader: ChunkReader,
    writer: ChunkWriter,
    out: BytesMut,
    role: Role,
    connected: bool,
    received: u64,
    acked: u64,
    peer_window: u32,
}

fn status(level: &str, code: &str, description: &str) -> Amf0 {
    Amf0::object([
        ("level", Amf0::str(level)),
        ("code", Amf0::str(code)),
        ("description", Amf0::str(description)),
    ])
}

impl ServerSession {
    pub fn new(limits: Limits) -> ServerSession {
        ServerSession {
            reader: ChunkReader::new(limits),
            writer: ChunkWriter::new(OUT_CHUNK_SIZE),
            out: BytesMut::with_capacity(OUT_INITIAL),
            role: Role::Idle,
            connected: false,
            received: 0,
            acked: 0,
            peer_window: 0,
        }
    }

    /// Changes the chunk limits (see [`ChunkReader::set_limits`]).
    pub fn set_limits(&mut self, limits: Limits) {
        self.reader.set_limits(limits);
    }

    /// Bytes of half-received messages held now.
    pub fn buffered(&self) -> usize {
        self.reader.buffered()
    }

    /// Bytes to send to the peer (taken; the buffer is left empty). A buffer that grew
    /// past 32 KiB (a joining player's GOP burst) is let go with it rather than kept for
    /// every later, smaller write: thousands of players would otherwise each hold their
    /// largest burst for ever.
    pub fn take_output(&mut self) -> BytesMut {
        if self.out.capacity() > OUT_KEEP {
            std::mem::replace(&mut self.out, BytesMut::with_capacity(OUT_INITIAL))
        } else {
            self.out.split()
        }
    }

    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Processes every complete message in `buf`.
    pub fn feed(
        &mut self,
        buf: &mut BytesMut,
        events: &mut Vec<SessionEvent>,
    ) -> Result<(), SessionError> {
        let before = buf.len();
        while let Some(msg) = self.reader.read(buf)? {
            self.handle(msg, events)?;
        }
        self.received += (before - buf.len()) as u64;
        if self.peer_window > 0 && self.received - self.acked >= u64::from(self.peer_window) {
            self.acked = self.received;
            let mut b = BytesMut::new();
            b.put_u32(self.received as u32);
            self.control(msg_type::ACK, &b);
        }
        Ok(())
    }

    fn control(&mut self, type_id: u8, payload: &[u8]) {
        self.writer
            .write(&mut self.out, CSID_CONTROL, type_id, 0, 0, payload);
    }

    fn user_control(&mut self, event: u16, data: &[u8]) {
        let mut b = BytesMut::new();
        b.put_u16(event);
        b.put_slice(data);
        self.control(msg_type::USER_CONTROL, &b);
    }

    fn command(&mut self, stream_id: u32, values: &[Amf0]) {
        let payload = amf0::encode_all(values);
        self.writer.write(
            &mut self.out,
            CSID_COMMAND,
            msg_type::COMMAND_AMF0,
            stream_id,
            0,
            &payload,
        );
    }

    fn on_status(&mut self, level: &str, code: &str, description: &str) {
        self.command(
            MEDIA_STREAM_ID,
            &[
                Amf0::str("onStatus"),
                Amf0::Number(0.0),
                Amf0::Null,
                status(level, code, description),
            ],
        );
    }

    fn handle(&mut self, msg: Message, events: &mut Vec<SessionEvent>) -> Result<(), SessionError> {
        let mut p = &msg.payload[..];
        match msg.type_id {
            msg_type::SET_CHUNK_SIZE => {
                if p.len() < 4 {
                    return Err(SessionError::Protocol("short Set Chunk Size".into()));
                }
                self.reader.set_chunk_size(p.get_u32() & 0x7FFF_FFFF)?;
            }
            msg_type::ABORT if p.len() >= 4 => self.reader.abort(p.get_u32()),
            msg_type::WINDOW_ACK_SIZE if p.len() >= 4 => self.peer_window = p.get_u32(),
            msg_type::USER_CONTROL if p.len() >= 6 => {
                let event = p.get_u16();
                // Ping request → ping response with the same time.
                if event == 6 {
                    let t = p.get_u32();
                    self.user_control(7, &t.to_be_bytes());
                }
            }
            msg_type::ACK
            | msg_type::SET_PEER_BANDWIDTH
            | msg_type::ABORT
            | msg_type::USER_CONTROL => {}
            msg_type::COMMAND_AMF0 => self.command_message(p, events)?,
            // AMF3 command messages carry AMF0 after a format byte.
            msg_type::COMMAND_AMF3 if !p.is_empty() => self.command_message(&p[1..], events)?,
            msg_type::DATA_AMF0 | msg_type::DATA_AMF3 => {
                let body = if msg.type_id == msg_type::DATA_AMF3 && !p.is_empty() {
                    &p[1..]
                } else {
                    p
                };
                self.data_message(body, events)?;
            }
            msg_type::AUDIO | msg_type::VIDEO
                if self.role == Role::Publishing && !msg.payload.is_empty() =>
            {
                let kind = if msg.type_id == msg_type::AUDIO {
                    Kind::Audio
                } else {
                    Kind::Video
                };
                events.push(SessionEvent::Media(Packet::new(
                    kind,
                    msg.timestamp,
                    msg.payload,
                )));
            }
            // Media before publish, aggregates and unknown types are ignored: peers send
            // odd things and none of them hurts.
            _ => {}
        }
        Ok(())
    }

    fn data_message(
        &mut self,
        p: &[u8],
        events: &mut Vec<SessionEvent>,
    ) -> Result<(), SessionError> {
        if self.role != Role::Publishing {
            return Ok(());
        }
        let values = amf0::decode_all(p).map_err(|e| SessionError::Amf("data message", e))?;
        let mut it = values.into_iter();
        let mut first = it.next();
        if first.as_ref().and_then(Amf0::as_str) == Some("@setDataFrame") {
            first = it.next();
        }
        if first.as_ref().and_then(Amf0::as_str) == Some("onMetaData")
            && let Some(props) = it.next()
        {
            events.push(SessionEvent::Media(Packet::metadata(props)));
        }
        Ok(())
    }

    fn command_message(
        &mut self,
        p: &[u8],
        events: &mut Vec<SessionEvent>,
    ) -> Result<(), SessionError> {
        let values = amf0::decode_all(p).map_err(|e| SessionError::Amf("command", e))?;
        let name = values.first().and_then(Amf0::as_str).unwrap_or_default();
        let tid = values.get(1).and_then(Amf0::as_f64).unwrap_or(0.0);
        let arg = |i: usize| {
            values
                .get(i)
                .and_then(Amf0::as_str)
                .unwrap_or_default()
                .to_string()
        };
        match name {
            "connect" => {
                if self.connected {
                    return Err(SessionError::Protocol("connect sent twice".into()));
                }
                let app = values
                    .get(2)
                    .and_then(|o| o.get("app"))
                    .and_then(Amf0::as_str)
                    .unwrap_or_default();
                let app = app.split('?').next().unwrap_or_default().trim_matches('/');
                self.connected = true;
                events.push(SessionEvent::Connect {
                    app: app.to_string(),
                });
                // Housekeeping first, then the result, as servers usually do.
                self.control(msg_type::WINDOW_ACK_SIZE, &WINDOW_ACK_SIZE.to_be_bytes());
                let mut bw = WINDOW_ACK_SIZE.to_be_bytes().to_vec();
                bw.push(2);
                self.control(msg_type::SET_PEER_BANDWIDTH, &bw);
                self.control(msg_type::SET_CHUNK_SIZE, &OUT_CHUNK_SIZE.to_be_bytes());
                self.command(
                    0,
                    &[
                        Amf0::str("_result"),
                        Amf0::Number(tid),
                        Amf0::object([
                            ("fmsVer", Amf0::str("FMS/3,0,1,123")),
                            ("capabilities", Amf0::Number(31.0)),
                        ]),
                        Amf0::object([
                            ("level", Amf0::str("status")),
                            ("code", Amf0::str("NetConnection.Connect.Success")),
                            ("description", Amf0::str("Connection succeeded.")),
                            ("objectEncoding", Amf0::Number(0.0)),
                        ]),
                    ],
                );
            }
            _ if !self.connected => {
                return Err(SessionError::Protocol(format!("{name:?} before connect")));
            }
            "createStream" => self.command(
                0,
                &[
                    Amf0::str("_result"),
                    Amf0::Number(tid),
                    Amf0::Null,
                    Amf0::Number(f64::from(MEDIA_STREAM_ID)),
                ],
            ),
            "releaseStream" | "FCPublish" | "getStreamLength" if tid > 0.0 => self.command(
                0,
                &[
                    Amf0::str("_result"),
                    Amf0::Number(tid),
                    Amf0::Null,
                    Amf0::Undefined,
                ],
            ),
            "publish" => {
                if self.role != Role::Idle {
                    return Err(SessionError::Protocol(
                        "publish on a busy connection".into(),
                    ));
                }
                events.push(SessionEvent::Publish { name: arg(3) });
            }
            "play" => {
                if self.role != Role::Idle {
                    return Err(SessionError::Protocol("play on a busy connection".into()));
                }
                events.push(SessionEvent::Play { name: arg(3) });
            }
            "FCUnpublish" | "deleteStream" | "closeStream" => match self.role {
                Role::Publishing => {
                    self.role = Role::Idle;
                    events.push(SessionEvent::Unpublish);
                }
                Role::Playing => {
                    self.role = Role::Idle;
                    events.push(SessionEvent::StopPlay);
                }
                Role::Idle => {}
            },
            // _checkbw, pause, receiveAudio, … : nothing to do for live.
            _ => {}
        }
        Ok(())
    }

    pub fn accept_publish(&mut self, name: &str) {
        self.role = Role::Publishing;
        self.on_status(
            "status",
            "NetStream.Publish.Start",
            &format!("{name} is now published."),
        );
    }

    /// Refuses a publish (or cuts one off) with an error status; the caller then closes.
    pub fn reject(&mut self, code: &str, description: &str) {
        self.role = Role::Idle;
        self.on_status("error", code, description);
    }

    pub fn accept_play(&mut self, name: &str) {
        self.role = Role::Playing;
        // Stream Begin, then the statuses players wait for.
        self.user_control(0, &MEDIA_STREAM_ID.to_be_bytes());
        self.on_status(
            "status",
            "NetStream.Play.Reset",
            &format!("Playing and resetting {name}."),
        );
        self.on_status(
            "status",
            "NetStream.Play.Start",
            &format!("Started playing {name}."),
        );
        let payload = amf0::encode_all(&[
            Amf0::str("|RtmpSampleAccess"),
            Amf0::Bool(true),
            Amf0::Bool(true),
        ]);
        self.writer.write(
            &mut self.out,
            CSID_DATA,
            msg_type::DATA_AMF0,
            MEDIA_STREAM_ID,
            0,
            &payload,
        );
    }

    /// Tells a player the stream ended (Stream EOF + Play.UnpublishNotify/Stop).
    pub fn end_play(&mut self, name: &str) {
        self.user_control(1, &MEDIA_STREAM_ID.to_be_bytes());
        self.on_status(
            "status",
            "NetStream.Play.UnpublishNotify",
            &format!("{name} is now unpublished."),
        );
        self.on_status(
            "status",
            "NetStream.Play.Stop",
            &format!("Stopped playing {name}."),
        );
        self.role = Role::Idle;
    }

    /// Queues a media packet for a player.
    pub fn write_media(&mut self, p: &Packet) {
        let (csid, type_id) = match p.kind {
            Kind::Audio => (CSID_AUDIO, msg_type::AUDIO),
            Kind::Video => (CSID_VIDEO, msg_type::VIDEO),
            Kind::Meta => (CSID_DATA, msg_type::DATA_AMF0),
        };
        self.writer.write(
            &mut self.out,
            csid,
            type_id,
            MEDIA_STREAM_ID,
            p.timestamp,
            &p.data,
        );
    }

    pub fn output_len(&self) -> usize {
        self.out.len()
    }
}

/// Splits a stream name `name?room=R&user=U&token=T` into the name and its parameters.
pub fn split_stream_name(raw: &str) -> (String, Vec<(String, String)>) {
    let (name, query) = raw.split_once('?').unwrap_or((raw, ""));
    let params = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    (name.to_string(), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(values: &[Amf0], stream_id: u32) -> BytesMut {
        let mut out = BytesMut::new();
        ChunkWriter::new(128).write(
            &mut out,
            3,
            msg_type::COMMAND_AMF0,
            stream_id,
            0,
            &amf0::encode_all(values),
        );
        out
    }

    #[test]
    fn a_burst_does_not_leave_a_big_buffer_behind() {
        let mut s = ServerSession::new(Limits::default());
        let big = Packet::new(Kind::Video, 0, bytes::Bytes::from(vec![0x27u8; 200 << 10]));
        s.write_media(&big);
        let burst = s.take_output();
        assert!(burst.len() > 200 << 10);
        drop(burst); // written to the socket
        // The next, ordinary write does not grow back into the burst's allocation.
        let frame = Packet::new(Kind::Video, 40, bytes::Bytes::from(vec![0x27u8; 20 << 10]));
        s.write_media(&frame);
        assert!(s.out.capacity() <= OUT_KEEP, "kept {}", s.out.capacity());
        assert!(s.take_output().len() > 20 << 10);
    }

    #[test]
    fn publish_flow() {
        let mut s = ServerSession::new(Limits::default());
        let mut ev = Vec::new();
        let mut buf = cmd(
            &[
                Amf0::str("connect"),
                Amf0::Number(1.0),
                Amf0::object([("app", Amf0::str("12345"))]),
            ],
            0,
        );
        buf.extend_from_slice(&cmd(
            &[Amf0::str("createStream"), Amf0::Number(2.0), Amf0::Null],
            0,
        ));
        buf.extend_from_slice(&cmd(
            &[
                Amf0::str("publish"),
                Amf0::Number(3.0),
                Amf0::Null,
                Amf0::str("s1?room=r&token=t"),
                Amf0::str("live"),
            ],
            1,
        ));
        s.feed(&mut buf, &mut ev).unwrap();
        assert_eq!(
            ev,
            vec![
                SessionEvent::Connect {
                    app: "12345".into()
                },
                SessionEvent::Publish {
                    name: "s1?room=r&token=t".into()
                }
            ]
        );
        s.accept_publish("s1");
        assert!(s.has_output());
        // Media is now reported.
        let mut media = BytesMut::new();
        ChunkWriter::new(128).write(&mut media, 6, msg_type::VIDEO, 1, 40, &[0x17, 1, 0, 0, 0]);
        ev.clear();
        s.feed(&mut media, &mut ev).unwrap();
        assert!(matches!(&ev[0], SessionEvent::Media(p) if p.is_key() && p.timestamp == 40));
        let (name, params) = split_stream_name("s1?room=r%20x&token=t");
        assert_eq!(name, "s1");
        assert_eq!(params[0], ("room".into(), "r x".into()));
    }

    #[test]
    fn commands_before_connect_are_refused() {
        let mut s = ServerSession::new(Limits::default());
        let mut buf = cmd(
            &[
                Amf0::str("play"),
                Amf0::Number(1.0),
                Amf0::Null,
                Amf0::str("x"),
            ],
            0,
        );
        assert!(s.feed(&mut buf, &mut Vec::new()).is_err());
    }
}
