//! Hub packets as WebRTC frames for a WHEP viewer. Pure: FLV-form packets in, frames
//! (what str0m's writer packetizes) out.
//!
//! - H.264 (legacy FLV AVC) goes out as it was published: length-prefixed units become
//!   Annex B, with the SPS/PPS of the last sequence header before every key frame (a
//!   viewer that joins or loses packets can start at any key frame). Nothing is sent
//!   before the first key frame.
//! - VP8 (Enhanced RTMP `vp08`) goes out frame by frame as it is, from a key frame on.
//! - Opus (Enhanced RTMP) goes out as it is. Other audio (AAC, MP3) is not sent from
//!   here: WebRTC players decode Opus only, so viewers of such a stream read its Opus
//!   bridge instead (the mixer's `bridge`, through the server's `SourceFor`).
//! - Times: the packet's milliseconds on the RTP clocks (90 kHz, 48 kHz).

use tributary_live::media::{AudioCodec, Kind, Packet, VideoCodec};
use tributary_live::ts::AvcConfig;

/// A frame to write: video or audio, its RTP time (in the track's clock units) and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub video: bool,
    /// VP8 rather than H.264 (video only).
    pub vp8: bool,
    pub rtp_time: u64,
    pub data: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct Egress {
    avc: Option<AvcConfig>,
    /// A key frame went out since the stream (or a gap) began.
    started: bool,
}

impl Egress {
    pub fn new() -> Self {
        Self::default()
    }

    /// After frames were lost (a slow viewer): wait for the next key frame.
    pub fn restart(&mut self) {
        self.started = false;
    }

    pub fn frame(&mut self, p: &Packet) -> Option<Frame> {
        match p.kind {
            Kind::Video if p.video_codec() == Some(VideoCodec::Vp8) => {
                // [1|type|kind]["vp08"] + the frame; kind 1 = a coded frame.
                if p.is_config() || p.data[0] & 0x0f != 1 {
                    return None;
                }
                let key = p.is_key();
                if !self.started && !key {
                    return None;
                }
                self.started = true;
                Some(Frame {
                    video: true,
                    vp8: true,
                    rtp_time: u64::from(p.timestamp) * 90,
                    data: p.data.get(5..)?.to_vec(),
                })
            }
            Kind::Video if p.video_codec() != Some(VideoCodec::H264) || p.data[0] & 0x80 != 0 => {
                None
            }
            Kind::Video if p.is_config() => {
                self.avc = p.data.get(5..).and_then(AvcConfig::parse);
                self.started = false;
                None
            }
            Kind::Video => {
                let avc = self.avc.as_ref()?;
                if p.data.get(1) != Some(&1) {
                    return None;
                }
                let key = p.is_key();
                if !self.started && !key {
                    return None;
                }
                let au = avc.to_annex_b(p.data.get(5..)?, key)?;
                self.started = true;
                let pts = (i64::from(p.timestamp) + i64::from(p.composition_time())).max(0);
                Some(Frame {
                    video: true,
                    vp8: false,
                    rtp_time: pts as u64 * 90,
                    data: au,
                })
            }
            Kind::Audio if p.audio_codec() == Some(AudioCodec::Opus) && !p.is_config() => {
                // [9|1]["Opus"] + the packet.
                (p.data[0] & 0x0f == 1).then(|| Frame {
                    video: false,
                    vp8: false,
                    rtp_time: u64::from(p.timestamp) * 48,
                    data: p.data.get(5..).unwrap_or_default().to_vec(),
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn video(ts: u32, body: &[u8]) -> Packet {
        Packet::new(Kind::Video, ts, Bytes::copy_from_slice(body))
    }

    #[test]
    fn h264_starts_at_a_key_frame_with_its_parameter_sets() {
        let mut e = Egress::new();
        // avcC: version, profile, compat, level, 4-byte lengths, 1 SPS, 1 PPS.
        let mut cfg = vec![
            0x17, 0, 0, 0, 0, 1, 0x42, 0xc0, 0x1f, 0xff, 0xe1, 0, 2, 0x67, 0x42,
        ];
        cfg.extend_from_slice(&[1, 0, 2, 0x68, 0xce]);
        assert_eq!(e.frame(&video(0, &cfg)), None);
        assert_eq!(
            e.frame(&video(40, &[0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41])),
            None
        );
        let key = e
            .frame(&video(80, &[0x17, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88]))
            .unwrap();
        assert!(key.video);
        assert_eq!(key.rtp_time, 80 * 90);
        assert!(key.data.windows(5).any(|w| w == [0, 0, 1, 0x67, 0x42]));
        assert!(key.data.ends_with(&[0, 0, 0, 1, 0x65, 0x88]));
        let delta = e.frame(&video(120, &[0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41]));
        assert!(delta.is_some());
        e.restart();
        assert_eq!(
            e.frame(&video(160, &[0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41])),
            None
        );
    }

    #[test]
    fn vp8_frames_pass_from_a_key_frame() {
        let mut e = Egress::new();
        let start = video(0, b"\x90vp08\x01\x00\x00\x00");
        assert_eq!(e.frame(&start), None);
        assert_eq!(e.frame(&video(33, b"\xa1vp08\x31\x02")), None);
        let key = e.frame(&video(66, b"\x91vp08\x30\x01\x9d")).unwrap();
        assert!(key.video && key.vp8);
        assert_eq!(
            (key.rtp_time, key.data.as_slice()),
            (66 * 90, &[0x30, 1, 0x9d][..])
        );
        assert!(e.frame(&video(99, b"\xa1vp08\x31\x02")).is_some());
    }

    #[test]
    fn opus_passes_and_aac_does_not() {
        let mut e = Egress::new();
        let opus = Packet::new(Kind::Audio, 20, Bytes::from_static(b"\x91Opus\xfc\x01"));
        let f = e.frame(&opus).unwrap();
        assert_eq!(
            (f.video, f.rtp_time, f.data.as_slice()),
            (false, 960, &[0xfc, 1][..])
        );
        let head = Packet::new(Kind::Audio, 0, Bytes::from_static(b"\x90OpusOpusHead"));
        assert_eq!(e.frame(&head), None);
        let aac = Packet::new(Kind::Audio, 20, Bytes::from_static(&[0xaf, 1, 0x21]));
        assert_eq!(e.frame(&aac), None);
    }
}
