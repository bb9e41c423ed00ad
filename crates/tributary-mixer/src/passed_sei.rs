//! Tencent's `PassInputSei`: the SEI messages an input's publisher put in its frames,
//! read from its (length-prefixed) frames so the mix can write them into its own frames
//! at the time the input's frame is shown.
//!
//! Only user data travels: `user_data_registered_itu_t_t35` (type 4: captions, HDR10+)
//! and `user_data_unregistered` (type 5: what apps insert). Timing and structure messages
//! (buffering period, picture timing, recovery point, …) describe the input's encoding,
//! not ours, and are left out, as are x264's encoder banner and tributary's own message
//! (a mix of a mix says only what it itself knows: one tributary SEI per frame).

use crate::sei::{UUID, unescape};

/// x264's "encoder settings" banner (`x264 - core … options: …`).
const X264_UUID: [u8; 16] = [
    0xdc, 0x45, 0xe9, 0xbd, 0xe6, 0xd9, 0x48, 0xb7, 0x96, 0x2c, 0xd8, 0x20, 0xd9, 0x23, 0xee, 0xef,
];

/// Messages taken from one frame at most; more are dropped.
pub const MAX_PER_FRAME: usize = 8;
/// Bytes of one message at most (a caption packet is tens of bytes, app data a few KiB).
pub const MAX_PAYLOAD: usize = 4096;

/// One message to pass on, as the publisher wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassedSei {
    pub payload_type: u8,
    pub payload: Vec<u8>,
}

/// The user data SEI messages in a frame of `length_size`-prefixed NAL units (H.264, or
/// H.265 when `hevc`). Malformed units are skipped, never trusted for lengths.
pub fn read(frame: &[u8], length_size: usize, hevc: bool) -> Vec<PassedSei> {
    let mut out = Vec::new();
    let mut rest = frame;
    while rest.len() > length_size && (1..=4).contains(&length_size) {
        let len = rest[..length_size]
            .iter()
            .fold(0usize, |n, b| (n << 8) | *b as usize);
        let Some(nal) = rest.get(length_size..length_size + len) else {
            break;
        };
        rest = &rest[length_size + len..];
        let (is_sei, header) = match (hevc, nal.first()) {
            (false, Some(b)) => (b & 0x1f == 6, 1),
            (true, Some(b)) => (matches!((b >> 1) & 0x3f, 39 | 40), 2),
            _ => continue,
        };
        if is_sei && let Some(body) = nal.get(header..) {
            messages(&unescape(body), &mut out);
        }
    }
    out
}

/// Reads the `sei_message`s of an SEI RBSP (type and size in 255-steps).
fn messages(mut rbsp: &[u8], out: &mut Vec<PassedSei>) {
    // Stop at the trailing bits (0x80) or when the data runs out.
    while rbsp.len() > 1 && out.len() < MAX_PER_FRAME {
        let (Some(kind), Some(size)) = (read_value(&mut rbsp), read_value(&mut rbsp)) else {
            return;
        };
        let Some(payload) = rbsp.get(..size) else {
            return;
        };
        rbsp = &rbsp[size..];
        let ours_or_x264 = kind == 5
            && payload
                .get(..16)
                .is_some_and(|u| u == UUID || u == X264_UUID);
        if matches!(kind, 4 | 5) && !ours_or_x264 && size <= MAX_PAYLOAD {
            out.push(PassedSei {
                payload_type: kind as u8,
                payload: payload.to_vec(),
            });
        }
    }
}

/// A value coded in 255-steps (`ff ff … last`).
fn read_value(b: &mut &[u8]) -> Option<usize> {
    let mut v = 0usize;
    loop {
        let (&x, tail) = b.split_first()?;
        *b = tail;
        v += x as usize;
        if x != 0xff {
            return Some(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(nals: &[Vec<u8>]) -> Vec<u8> {
        let mut f = Vec::new();
        for n in nals {
            f.extend_from_slice(&(n.len() as u32).to_be_bytes());
            f.extend_from_slice(n);
        }
        f
    }

    #[test]
    fn user_data_is_read_back_and_the_rest_left_out() {
        let app = [[0x11u8; 16].as_slice(), b"lyrics 00:01"].concat();
        let mut banner = X264_UUID.to_vec();
        banner.extend_from_slice(b"x264 - core 164");
        let f = frame(&[
            crate::sei::h264_nal_of(5, &app),
            crate::sei::h264_nal_of(5, &banner),
            crate::sei::h264_nal_of(1, &[0, 0, 0]), // picture timing
            crate::sei::h264_nal_of(4, &[0xb5, 0, 0x31]),
            vec![0x65, 0x88, 0x80], // a slice
        ]);
        let got = read(&f, 4, false);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].payload, app);
        assert_eq!(got[1].payload_type, 4);
        // The same in H.265 prefix SEI units.
        let f = frame(&[crate::hevc::sei_nal_of(5, &app), vec![0x26, 0x01, 0xaf]]);
        assert_eq!(read(&f, 4, true)[0].payload, app);
        // A length past the end, or garbage, reads nothing and does not panic.
        assert!(read(&[0, 0, 0, 9, 6, 5], 4, false).is_empty());
        assert!(read(&[0, 0, 0, 3, 6, 0xff, 0xff], 4, false).is_empty());
        assert!(read(&[1, 2, 3], 0, false).is_empty());
    }
}
