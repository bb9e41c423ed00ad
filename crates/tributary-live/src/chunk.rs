//! The RTMP chunk stream: splitting messages into chunks and joining them back.
//!
//! The reader is sans-I/O: bytes go in through a `BytesMut`, whole messages come out, and
//! nothing is consumed until a complete chunk is there. Everything a peer controls is
//! bounded — message length, the number of chunk streams with a message half-received,
//! and the bytes buffered for them — so a hostile peer gets an error (and its connection
//! closed), never our memory.

use std::collections::HashMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The chunk size every peer starts with.
pub const DEFAULT_CHUNK_SIZE: u32 = 128;

/// Message type ids (RTMP spec §5.4, §7.1).
pub mod msg_type {
    pub const SET_CHUNK_SIZE: u8 = 1;
    pub const ABORT: u8 = 2;
    pub const ACK: u8 = 3;
    pub const USER_CONTROL: u8 = 4;
    pub const WINDOW_ACK_SIZE: u8 = 5;
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    pub const AUDIO: u8 = 8;
    pub const VIDEO: u8 = 9;
    pub const DATA_AMF3: u8 = 15;
    pub const COMMAND_AMF3: u8 = 17;
    pub const DATA_AMF0: u8 = 18;
    pub const COMMAND_AMF0: u8 = 20;
    pub const AGGREGATE: u8 = 22;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub csid: u32,
    pub type_id: u8,
    pub stream_id: u32,
    /// Milliseconds, 32-bit wrapping as on the wire.
    pub timestamp: u32,
    pub payload: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("message of {len} bytes exceeds the limit of {max}")]
    MessageTooLarge { len: u32, max: u32 },
    #[error("chunk of type {fmt} on chunk stream {csid} without a previous header")]
    NoPreviousHeader { fmt: u8, csid: u32 },
    #[error("more than {0} chunk streams with partial messages")]
    TooManyStreams(usize),
    #[error("invalid chunk size {0}")]
    BadChunkSize(u32),
    #[error("message length changed in the middle of a message on chunk stream {0}")]
    LengthChanged(u32),
    #[error("more than {0} bytes of partial messages buffered")]
    TooMuchBuffered(usize),
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest message accepted (the wire allows 16 MiB).
    pub max_message: u32,
    /// Most chunk streams that may be in use at once.
    pub max_streams: usize,
    /// Most bytes of half-received messages held at once, over all chunk streams.
    pub max_buffered: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 8 << 20,
            max_streams: 64,
            max_buffered: 16 << 20,
        }
    }
}

#[derive(Debug, Default, Clone)]
struct StreamState {
    timestamp: u32,
    delta: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    extended: bool,
    /// The message being assembled; empty between messages.
    partial: BytesMut,
    in_progress: bool,
}

/// Reassembles messages from chunks.
#[derive(Debug)]
pub struct ChunkReader {
    chunk_size: u32,
    limits: Limits,
    streams: HashMap<u32, StreamState>,
    /// Bytes held in `partial` buffers.
    buffered: usize,
}

impl ChunkReader {
    pub fn new(limits: Limits) -> Self {
        ChunkReader {
            chunk_size: DEFAULT_CHUNK_SIZE,
            limits,
            streams: HashMap::new(),
            buffered: 0,
        }
    }

    /// Changes the limits (tighter before a connection is authorised, looser after). A
    /// partial message already over the new limits fails when its next chunk comes.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Bytes of half-received messages held now.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Applies the peer's Set Chunk Size.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), ChunkError> {
        // The top bit must be zero; 1 would be absurd but is legal, so only 0 is refused.
        if size == 0 || size > 0x7FFF_FFFF {
            return Err(ChunkError::BadChunkSize(size));
        }
        self.chunk_size = size;
        Ok(())
    }

    /// Drops the partial message of a chunk stream (the peer's Abort message).
    pub fn abort(&mut self, csid: u32) {
        if let Some(s) = self.streams.get_mut(&csid) {
            self.buffered -= s.partial.len().min(self.buffered);
            s.partial.clear();
            s.in_progress = false;
        }
    }

    /// Reads the next whole message from `buf`, consuming only whole chunks. `Ok(None)`
    /// means more bytes are needed.
    pub fn read(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, ChunkError> {
        loop {
            match self.read_chunk(buf)? {
                ChunkOutcome::NeedMore => return Ok(None),
                ChunkOutcome::Partial => continue,
                ChunkOutcome::Message(m) => return Ok(Some(m)),
            }
        }
    }

    fn read_chunk(&mut self, buf: &mut BytesMut) -> Result<ChunkOutcome, ChunkError> {
        let b = &buf[..];
        if b.is_empty() {
            return Ok(ChunkOutcome::NeedMore);
        }
        let fmt = b[0] >> 6;
        let (csid, mut pos) = match b[0] & 0x3F {
            0 => {
                if b.len() < 2 {
                    return Ok(ChunkOutcome::NeedMore);
                }
                (64 + b[1] as u32, 2)
            }
            1 => {
                if b.len() < 3 {
                    return Ok(ChunkOutcome::NeedMore);
                }
                (64 + b[1] as u32 + ((b[2] as u32) << 8), 3)
            }
            n => (n as u32, 1),
        };
        let header_len = [11, 7, 3, 0][fmt as usize];
        if b.len() < pos + header_len {
            return Ok(ChunkOutcome::NeedMore);
        }
        let known = self.streams.contains_key(&csid);
        if !known {
            if fmt != 0 {
                return Err(ChunkError::NoPreviousHeader { fmt, csid });
            }
            if self.streams.len() >= self.limits.max_streams {
                return Err(ChunkError::TooManyStreams(self.limits.max_streams));
            }
        }
        let prev = self.streams.get(&csid).cloned().unwrap_or_default();
        let mut st = prev.clone();
        let u24 = |p: usize| ((b[p] as u32) << 16) | ((b[p + 1] as u32) << 8) | b[p + 2] as u32;
        let mut ts_field = 0;
        if fmt <= 2 {
            ts_field = u24(pos);
        }
        if fmt <= 1 {
            let len = u24(pos + 3);
            if st.in_progress && len != st.length {
                return Err(ChunkError::LengthChanged(csid));
            }
            st.length = len;
            st.type_id = b[pos + 6];
        }
        if fmt == 0 {
            st.stream_id = u32::from_le_bytes([b[pos + 7], b[pos + 8], b[pos + 9], b[pos + 10]]);
        }
        pos += header_len;
        if fmt <= 2 {
            st.extended = ts_field == 0xFF_FFFF;
        }
        let mut ts_value = ts_field;
        if st.extended {
            if b.len() < pos + 4 {
                return Ok(ChunkOutcome::NeedMore);
            }
            ts_value = u32::from_be_bytes([b[pos], b[pos + 1], b[pos + 2], b[pos + 3]]);
            pos += 4;
        }
        if st.length > self.limits.max_message {
            return Err(ChunkError::MessageTooLarge {
                len: st.length,
                max: self.limits.max_message,
            });
        }
        let starts_message = !st.in_progress;
        if starts_message {
            match fmt {
                0 => {
                    st.timestamp = ts_value;
                    st.delta = 0;
                }
                1 | 2 => {
                    st.delta = ts_value;
                    st.timestamp = st.timestamp.wrapping_add(ts_value);
                }
                _ => st.timestamp = st.timestamp.wrapping_add(st.delta),
            }
        }
        let have = st.partial.len() as u32;
        let take = (st.length - have.min(st.length)).min(self.chunk_size) as usize;
        if buf.len() < pos + take {
            return Ok(ChunkOutcome::NeedMore);
        }
        if self.buffered + take > self.limits.max_buffered {
            return Err(ChunkError::TooMuchBuffered(self.limits.max_buffered));
        }
        // The chunk is complete: consume it.
        buf.advance(pos);
        let data = buf.split_to(take);
        if starts_message {
            // Grow with the data, not with what the header claims.
            st.partial = BytesMut::with_capacity((st.length as usize).min(64 << 10));
        }
        st.partial.extend_from_slice(&data);
        self.buffered += take;
        st.in_progress = true;
        let outcome = if st.partial.len() as u32 >= st.length {
            st.in_progress = false;
            self.buffered -= st.partial.len().min(self.buffered);
            let payload = std::mem::take(&mut st.partial).freeze();
            ChunkOutcome::Message(Message {
                csid,
                type_id: st.type_id,
                stream_id: st.stream_id,
                timestamp: st.timestamp,
                payload,
            })
        } else {
            ChunkOutcome::Partial
        };
        self.streams.insert(csid, st);
        Ok(outcome)
    }
}

enum ChunkOutcome {
    NeedMore,
    Partial,
    Message(Message),
}

/// Splits messages into chunks. Every message starts with a type-0 header (absolute
/// timestamp), so the bytes of one message do not depend on what was sent before: the
/// server chunks a media packet once and hands the same bytes to every player.
#[derive(Debug, Clone, Copy)]
pub struct ChunkWriter {
    pub chunk_size: u32,
}

impl ChunkWriter {
    pub fn new(chunk_size: u32) -> Self {
        ChunkWriter { chunk_size }
    }

    fn basic_header(out: &mut BytesMut, fmt: u8, csid: u32) {
        match csid {
            2..=63 => out.put_u8((fmt << 6) | csid as u8),
            64..=319 => {
                out.put_u8(fmt << 6);
                out.put_u8((csid - 64) as u8);
            }
            _ => {
                let c = csid.clamp(320, 65599) - 64;
                out.put_u8((fmt << 6) | 1);
                out.put_u16_le(c as u16);
            }
        }
    }

    pub fn write(
        &self,
        out: &mut BytesMut,
        csid: u32,
        type_id: u8,
        stream_id: u32,
        timestamp: u32,
        payload: &[u8],
    ) {
        let extended = timestamp >= 0xFF_FFFF;
        let ts_field = if extended { 0xFF_FFFF } else { timestamp };
        let len = payload.len().min(0xFF_FFFF);
        out.reserve(len + 16 + len / self.chunk_size.max(1) as usize * 5);
        Self::basic_header(out, 0, csid);
        out.put_uint(ts_field as u64, 3);
        out.put_uint(len as u64, 3);
        out.put_u8(type_id);
        out.put_u32_le(stream_id);
        if extended {
            out.put_u32(timestamp);
        }
        let size = self.chunk_size.max(1) as usize;
        let mut rest = &payload[..len];
        let first = rest.len().min(size);
        out.put_slice(&rest[..first]);
        rest = &rest[first..];
        while !rest.is_empty() {
            Self::basic_header(out, 3, csid);
            if extended {
                out.put_u32(timestamp);
            }
            let n = rest.len().min(size);
            out.put_slice(&rest[..n]);
            rest = &rest[n..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(chunk: u32, ts: u32, len: usize, csid: u32) {
        let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let mut out = BytesMut::new();
        ChunkWriter::new(chunk).write(&mut out, csid, 9, 1, ts, &payload);
        let mut r = ChunkReader::new(Limits::default());
        r.set_chunk_size(chunk).unwrap();
        // Feed byte by byte: the reader must never consume a partial chunk.
        let mut buf = BytesMut::new();
        let mut got = None;
        for b in out.iter() {
            buf.put_u8(*b);
            if let Some(m) = r.read(&mut buf).unwrap() {
                got = Some(m);
            }
        }
        let m = got.expect("a message");
        assert_eq!(m.timestamp, ts);
        assert_eq!(m.csid, csid);
        assert_eq!(m.stream_id, 1);
        assert_eq!(&m.payload[..], &payload[..]);
        assert!(buf.is_empty());
    }

    #[test]
    fn messages_survive_chunking() {
        roundtrip(128, 0, 0, 3);
        roundtrip(128, 1000, 1000, 6);
        roundtrip(4096, 0x0100_0000, 10_000, 70);
        roundtrip(1, 5, 10, 400);
    }

    #[test]
    fn delta_headers_accumulate() {
        // fmt0 ts=100 len=1, then fmt2 delta=40, then fmt3 (reuses delta 40).
        let mut b = BytesMut::new();
        b.put_slice(&[0x04, 0, 0, 100, 0, 0, 1, 8, 1, 0, 0, 0, 0xAA]);
        b.put_slice(&[0x84, 0, 0, 40, 0xBB]);
        b.put_slice(&[0xC4, 0xCC]);
        let mut r = ChunkReader::new(Limits::default());
        let ts: Vec<u32> = std::iter::from_fn(|| r.read(&mut b).unwrap())
            .map(|m| m.timestamp)
            .collect();
        assert_eq!(ts, vec![100, 140, 180]);
    }

    #[test]
    fn hostile_chunks_are_errors() {
        let mut r = ChunkReader::new(Limits::default());
        let mut b = BytesMut::from(&[0x43u8, 0, 0, 0, 0, 0, 1, 8][..]);
        assert!(matches!(
            r.read(&mut b),
            Err(ChunkError::NoPreviousHeader { .. })
        ));
        let mut r = ChunkReader::new(Limits::default());
        let mut b = BytesMut::from(&[0x03u8, 0, 0, 0, 0xFF, 0xFF, 0xFF, 9, 1, 0, 0, 0][..]);
        assert!(matches!(
            r.read(&mut b),
            Err(ChunkError::MessageTooLarge { .. })
        ));
        let mut r = ChunkReader::new(Limits {
            max_message: 1 << 20,
            max_streams: 2,
            max_buffered: 1 << 20,
        });
        let mut b = BytesMut::new();
        for csid in 3..6u8 {
            b.put_slice(&[csid, 0, 0, 0, 0, 0, 1, 8, 1, 0, 0, 0, 1]);
        }
        let mut res = Ok(None);
        for _ in 0..3 {
            res = r.read(&mut b);
        }
        assert_eq!(res, Err(ChunkError::TooManyStreams(2)));
        assert!(r.set_chunk_size(0).is_err());
    }
}
