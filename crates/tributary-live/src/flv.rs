//! FLV framing: the file header and tags for HTTP-FLV, and a tag reader (tests, fuzzing,
//! and anything that pulls FLV).

use bytes::{BufMut, Bytes, BytesMut};

use crate::media::{Kind, Packet};

/// The 9-byte FLV header plus the first PreviousTagSize (0).
pub fn header(has_audio: bool, has_video: bool) -> Bytes {
    let flags = (u8::from(has_audio) << 2) | u8::from(has_video);
    Bytes::from(vec![b'F', b'L', b'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0])
}

/// Appends one tag (header, body, PreviousTagSize).
pub fn write_tag(out: &mut BytesMut, p: &Packet) {
    let tag_type = match p.kind {
        Kind::Audio => 8,
        Kind::Video => 9,
        Kind::Meta => 18,
    };
    let len = p.data.len().min(0xFF_FFFF);
    out.reserve(len + 15);
    out.put_u8(tag_type);
    out.put_uint(len as u64, 3);
    out.put_uint(u64::from(p.timestamp & 0xFF_FFFF), 3);
    out.put_u8((p.timestamp >> 24) as u8);
    out.put_uint(0, 3);
    out.put_slice(&p.data[..len]);
    out.put_u32(len as u32 + 11);
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlvError {
    #[error("not an FLV stream")]
    NotFlv,
    #[error("FLV tag of {0} bytes exceeds the limit")]
    TooLarge(usize),
}

/// Reads an FLV byte stream incrementally: header first, then tags.
#[derive(Debug, Default)]
pub struct FlvReader {
    header_done: bool,
    max_tag: usize,
}

impl FlvReader {
    pub fn new(max_tag: usize) -> Self {
        FlvReader {
            header_done: false,
            max_tag,
        }
    }

    /// The next packet, `Ok(None)` when more bytes are needed. Unknown tag types are
    /// skipped.
    pub fn read(&mut self, buf: &mut BytesMut) -> Result<Option<Packet>, FlvError> {
        loop {
            if !self.header_done {
                if buf.len() < 9 {
                    return Ok(None);
                }
                if &buf[..3] != b"FLV" {
                    return Err(FlvError::NotFlv);
                }
                let offset = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) as usize;
                if !(9..=1024).contains(&offset) {
                    return Err(FlvError::NotFlv);
                }
                if buf.len() < offset + 4 {
                    return Ok(None);
                }
                let _ = buf.split_to(offset + 4);
                self.header_done = true;
            }
            if buf.len() < 11 {
                return Ok(None);
            }
            let tag_type = buf[0] & 0x1F;
            let len = ((buf[1] as usize) << 16) | ((buf[2] as usize) << 8) | buf[3] as usize;
            if len > self.max_tag {
                return Err(FlvError::TooLarge(len));
            }
            if buf.len() < 11 + len + 4 {
                return Ok(None);
            }
            let ts = ((buf[7] as u32) << 24)
                | ((buf[4] as u32) << 16)
                | ((buf[5] as u32) << 8)
                | buf[6] as u32;
            let _ = buf.split_to(11);
            let data = buf.split_to(len).freeze();
            let _ = buf.split_to(4);
            let kind = match tag_type {
                8 => Kind::Audio,
                9 => Kind::Video,
                18 => Kind::Meta,
                _ => continue,
            };
            return Ok(Some(Packet::new(kind, ts, data)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read() {
        let mut out = BytesMut::from(&header(true, true)[..]);
        let a = Packet::new(Kind::Audio, 0x0123_4567, Bytes::from_static(&[0xAF, 1, 2]));
        let v = Packet::new(Kind::Video, 40, Bytes::from_static(&[0x17, 1, 0, 0, 0]));
        write_tag(&mut out, &a);
        write_tag(&mut out, &v);
        let mut r = FlvReader::new(1 << 20);
        assert_eq!(r.read(&mut out).unwrap(), Some(a));
        assert_eq!(r.read(&mut out).unwrap(), Some(v));
        assert_eq!(r.read(&mut out).unwrap(), None);
        assert_eq!(
            FlvReader::new(10).read(&mut BytesMut::from(&b"GIF89a...."[..])),
            Err(FlvError::NotFlv)
        );
    }
}
