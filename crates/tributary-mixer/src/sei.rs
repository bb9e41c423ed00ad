//! tributary's SEI message: user data, sound levels and layout carried in H.264 output
//! frames as one `user_data_unregistered` SEI NAL unit. The byte format is specified in
//! `docs/SEI.md` (stable, versioned); this module writes it.
//!
//! Payload: the 16-byte [`UUID`], a version byte ([`VERSION`]), then records
//! `tag (u8) · length (u16, big-endian) · value`. Readers skip tags they do not know.

/// Identifies tributary's SEI among others in a stream.
pub const UUID: [u8; 16] = [
    0x7d, 0x0b, 0x1f, 0x6a, 0x2c, 0x4e, 0x4b, 0x8e, 0x9a, 0x51, 0x3f, 0x6c, 0x2e, 0x8d, 0x4b, 0x17,
];
pub const VERSION: u8 = 1;

/// The task's user data, as given.
pub const TAG_USER_DATA: u8 = 0x01;
/// Sound levels: `(sound_level_id u32, level u8)` per input.
pub const TAG_SOUND_LEVELS: u8 = 0x02;
/// Layout: per visible input `left, top, right, bottom (i16 each), uid_len u8, uid`.
pub const TAG_LAYOUT: u8 = 0x03;
/// Sound levels keyed by stream id (auto-mixes): `(id_len u8, id, level u8)` per input.
pub const TAG_STREAM_LEVELS: u8 = 0x04;

/// Records for one frame.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    pub user_data: Option<&'a [u8]>,
    pub sound_levels: Option<&'a [(u32, u8)]>,
    /// An already encoded layout record value (see [`layout`]).
    pub layout: Option<&'a [u8]>,
    /// An already encoded stream-keyed levels record value (see [`stream_levels`]).
    pub stream_levels: Option<&'a [u8]>,
}

impl Message<'_> {
    pub fn is_empty(&self) -> bool {
        self.user_data.is_none()
            && self.sound_levels.is_none()
            && self.layout.is_none()
            && self.stream_levels.is_none()
    }

    /// The SEI payload (UUID, version, records). A record value over 65535 bytes is cut
    /// (user data is at most 3000 bytes; a layout of 9 inputs well under 1 KiB).
    pub fn payload(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&UUID);
        out.push(VERSION);
        let mut record = |tag: u8, value: &[u8]| {
            let value = &value[..value.len().min(u16::MAX as usize)];
            out.push(tag);
            out.extend_from_slice(&(value.len() as u16).to_be_bytes());
            out.extend_from_slice(value);
        };
        if let Some(d) = self.user_data {
            record(TAG_USER_DATA, d);
        }
        if let Some(levels) = self.sound_levels {
            let mut v = Vec::with_capacity(levels.len() * 5);
            for (id, level) in levels {
                v.extend_from_slice(&id.to_be_bytes());
                v.push(*level);
            }
            record(TAG_SOUND_LEVELS, &v);
        }
        if let Some(l) = self.layout {
            record(TAG_LAYOUT, l);
        }
        if let Some(l) = self.stream_levels {
            record(TAG_STREAM_LEVELS, l);
        }
        out
    }
}

/// The stream-keyed levels record's value (ids cut at 255 bytes; stream ids are ≤ 256).
pub fn stream_levels<'a>(levels: impl IntoIterator<Item = (&'a str, u8)>) -> Vec<u8> {
    let mut v = Vec::new();
    for (id, level) in levels {
        let id = &id.as_bytes()[..id.len().min(255)];
        v.push(id.len() as u8);
        v.extend_from_slice(id);
        v.push(level);
    }
    v
}

/// The layout record's value: each input's rect and user id.
pub fn layout<'a>(tiles: impl IntoIterator<Item = (i32, i32, i32, i32, &'a str)>) -> Vec<u8> {
    let mut v = Vec::new();
    for (left, top, right, bottom, uid) in tiles {
        for c in [left, top, right, bottom] {
            v.extend_from_slice(&(c.clamp(i16::MIN as i32, i16::MAX as i32) as i16).to_be_bytes());
        }
        let uid = &uid.as_bytes()[..uid.len().min(255)];
        v.push(uid.len() as u8);
        v.extend_from_slice(uid);
    }
    v
}

/// An H.264 SEI NAL unit (header byte included, no start code or length) holding one
/// `user_data_unregistered` message with `payload`: size coded in 255-steps,
/// emulation-prevention bytes inserted, RBSP trailing bits.
pub fn h264_nal(payload: &[u8]) -> Vec<u8> {
    h264_nal_of(5, payload)
}

/// An H.264 SEI NAL unit holding one message of `payload_type` (4 registered, 5
/// unregistered user data, …) with `payload`.
pub fn h264_nal_of(payload_type: u8, payload: &[u8]) -> Vec<u8> {
    let mut rbsp = Vec::with_capacity(payload.len() + 8);
    rbsp.push(payload_type);
    let mut size = payload.len();
    while size >= 255 {
        rbsp.push(0xff);
        size -= 255;
    }
    rbsp.push(size as u8);
    rbsp.extend_from_slice(payload);
    rbsp.push(0x80); // rbsp_stop_one_bit + alignment
    let mut nal = Vec::with_capacity(rbsp.len() + rbsp.len() / 64 + 1);
    nal.push(0x06); // forbidden 0, nal_ref_idc 0, type 6 (SEI)
    let mut zeros = 0;
    for b in rbsp {
        if zeros >= 2 && b <= 3 {
            nal.push(3);
            zeros = 0;
        }
        nal.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    nal
}

/// `avcc` (4-byte length-prefixed NAL units of one frame) with the SEI unit placed first,
/// after an access unit delimiter if the frame starts with one.
pub fn prepend_to_avcc(avcc: &[u8], nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(avcc.len() + nal.len() + 4);
    let mut rest = avcc;
    if let Some(len) = rest
        .get(..4)
        .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
        && rest.get(4).is_some_and(|h| h & 0x1f == 9)
        && rest.len() >= 4 + len
    {
        out.extend_from_slice(&rest[..4 + len]);
        rest = &rest[4 + len..];
    }
    out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
    out.extend_from_slice(nal);
    out.extend_from_slice(rest);
    out
}

/// A NAL unit's payload with its emulation-prevention bytes removed (`00 00 03` →
/// `00 00`): the RBSP readers parse.
pub fn unescape(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut zeros = 0;
    for &x in b {
        if zeros >= 2 && x == 3 {
            zeros = 0;
            continue;
        }
        out.push(x);
        zeros = if x == 0 { zeros + 1 } else { 0 };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_sizes_and_zero_runs_survive_the_nal_coding() {
        // Zeros in the data need emulation prevention; 300 bytes need a 255-step size.
        let data = vec![0u8; 300];
        let levels = [(1u32, 0u8), (0x0000_0003, 100)];
        let msg = Message {
            user_data: Some(&data),
            sound_levels: Some(&levels),
            layout: None,
            stream_levels: None,
        };
        let payload = msg.payload();
        let nal = h264_nal(&payload);
        assert!(
            !nal.windows(3)
                .any(|w| w == [0, 0, 0] || w == [0, 0, 1] || w == [0, 0, 2])
        );
        let rbsp = unescape(&nal[1..]);
        assert_eq!(rbsp[0], 5);
        let (size, at) = {
            let (mut size, mut i) = (0usize, 1);
            while rbsp[i] == 0xff {
                size += 255;
                i += 1;
            }
            (size + rbsp[i] as usize, i + 1)
        };
        assert_eq!(size, payload.len());
        assert_eq!(&rbsp[at..at + size], &payload[..]);
        assert_eq!(rbsp[at + size], 0x80);
        assert_eq!(&payload[..16], &UUID);
        assert_eq!(payload[16], VERSION);
        assert_eq!(payload[17], TAG_USER_DATA);
        assert_eq!(u16::from_be_bytes([payload[18], payload[19]]), 300);
        let levels_at = 20 + 300;
        assert_eq!(payload[levels_at], TAG_SOUND_LEVELS);
        assert_eq!(&payload[levels_at + 3..], &[0, 0, 0, 1, 0, 0, 0, 0, 3, 100]);
    }

    #[test]
    fn the_sei_goes_first_or_after_the_delimiter() {
        let frame = [0, 0, 0, 2, 0x65, 0xaa];
        let sei = [0x06, 5, 1, 0x80];
        assert_eq!(
            prepend_to_avcc(&frame, &sei),
            [0, 0, 0, 4, 0x06, 5, 1, 0x80, 0, 0, 0, 2, 0x65, 0xaa]
        );
        let with_aud = [0, 0, 0, 2, 0x09, 0xf0, 0, 0, 0, 1, 0x65];
        let out = prepend_to_avcc(&with_aud, &sei);
        assert_eq!(&out[..6], &[0, 0, 0, 2, 0x09, 0xf0]);
        assert_eq!(&out[6..14], &[0, 0, 0, 4, 0x06, 5, 1, 0x80]);
        let l = layout([(0, 0, 160, 120, "u1")]);
        assert_eq!(l, [0, 0, 0, 0, 0, 160, 0, 120, 2, b'u', b'1']);
    }
}
