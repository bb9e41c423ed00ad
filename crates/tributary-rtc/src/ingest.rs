//! A WHIP publisher's frames as hub packets (the FLV-tag form every player of the live
//! plane reads). Pure: frames and their times in, packets out.
//!
//! - H.264 arrives as Annex B access units. Its SPS/PPS become an AVC sequence header
//!   (sent again whenever they change); frames become length-prefixed NAL units, and
//!   nothing is sent before the first key frame (a player could not start from it).
//! - VP8 arrives as whole frames and becomes Enhanced RTMP `vp08` (a `vpcC` sequence
//!   start, then coded frames), from the first key frame on. No RTMP player of ours
//!   reads it: RTMP, HTTP-FLV and HLS players get the stream's H.264 twin.
//! - Opus becomes Enhanced RTMP Opus (`[9|type]` + `Opus`), after a sequence header
//!   holding an `OpusHead` for the stereo 48 kHz stream WebRTC negotiates.
//! - Times: each track is anchored once at the arrival of its first frame (ms since the
//!   session began) and then follows its RTP clock, so jitter does not move frames and
//!   both tracks share the arrival clock.

use bytes::{BufMut, Bytes, BytesMut};
use tributary_live::annexb;
use tributary_live::media::{Kind, Packet, vp8_config_record};

/// An RTP clock mapped onto the session's millisecond clock.
#[derive(Debug, Default)]
struct Clock {
    /// (first RTP time, its clock rate, the arrival ms it maps to)
    anchor: Option<(i64, i64, i64)>,
    /// The last time given out.
    last: Option<u32>,
}

impl Clock {
    /// The frame's time in ms, strictly after the track's previous one: players and
    /// muxers refuse a repeated or backward timestamp, and RTP times closer than a
    /// millisecond (or a frame delivered twice) would give one.
    fn ms(&mut self, rtp: u64, rate: u32, arrival_ms: i64) -> u32 {
        let rate = rate.max(1) as i64;
        let rtp = rtp as i64;
        let (first, r, at) = *self.anchor.get_or_insert((rtp, rate, arrival_ms));
        let mut ms = (at + (rtp - first) * 1000 / r).max(0) as u32;
        if let Some(last) = self.last {
            ms = ms.max(last.saturating_add(1));
        }
        self.last = Some(ms);
        ms
    }
}

/// One session's conversion state.
#[derive(Debug, Default)]
pub struct Ingest {
    video: Clock,
    audio: Clock,
    /// The SPS and PPS of the sequence header sent last.
    sets: Option<(Vec<u8>, Vec<u8>)>,
    /// A key frame has gone out since the last sequence header.
    started: bool,
    opus_head_sent: bool,
    /// The VP8 sequence start went out (with the first key frame).
    vp8_started: bool,
    /// Key frames seen (for requesting one until the first arrives).
    key_frames: u64,
}

impl Ingest {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the video has given a key frame yet (until then the session asks for one).
    pub fn has_key_frame(&self) -> bool {
        self.key_frames > 0
    }

    /// An H.264 access unit (Annex B) at RTP time `rtp` (90 kHz), arrived at
    /// `arrival_ms`; the packets to publish, in order.
    pub fn h264(&mut self, au: &[u8], rtp: u64, rate: u32, arrival_ms: i64) -> Vec<Packet> {
        let mut out = Vec::new();
        let nals = annexb::nal_units(au);
        let sps = nals.iter().find(|n| n[0] & 0x1f == 7);
        let pps = nals.iter().find(|n| n[0] & 0x1f == 8);
        let key = nals.iter().any(|n| n[0] & 0x1f == 5);
        let ts = self.video.ms(rtp, rate, arrival_ms);
        if let (Some(sps), Some(pps)) = (sps, pps) {
            let changed = self
                .sets
                .as_ref()
                .is_none_or(|(s, p)| s.as_slice() != *sps || p.as_slice() != *pps);
            if changed && let Some(record) = annexb::avc_config(au) {
                out.push(video_tag(ts, true, 0, &record));
                self.sets = Some((sps.to_vec(), pps.to_vec()));
                self.started = false;
            }
        }
        if key {
            self.key_frames += 1;
        }
        if self.sets.is_none() || (!self.started && !key) {
            return out;
        }
        let frame = annexb::to_avcc(au);
        if !frame.is_empty() {
            self.started = true;
            out.push(video_tag(ts, key, 1, &frame));
        }
        out
    }

    /// A VP8 frame at RTP time `rtp` (90 kHz), arrived at `arrival_ms`.
    pub fn vp8(&mut self, frame: &[u8], rtp: u64, rate: u32, arrival_ms: i64) -> Vec<Packet> {
        let mut out = Vec::new();
        let Some(&tag) = frame.first() else {
            return out;
        };
        let ts = self.video.ms(rtp, rate, arrival_ms);
        // RFC 6386 §9.1: the frame tag's lowest bit is 0 on a key frame.
        let key = tag & 0x01 == 0;
        if key {
            self.key_frames += 1;
        }
        if !self.vp8_started {
            if !key {
                return out;
            }
            self.vp8_started = true;
            out.push(vp8_tag(ts, true, 0, &vp8_config_record()));
        }
        out.push(vp8_tag(ts, key, 1, frame));
        out
    }

    /// An Opus packet at RTP time `rtp` (48 kHz), arrived at `arrival_ms`.
    pub fn opus(&mut self, packet: &[u8], rtp: u64, rate: u32, arrival_ms: i64) -> Vec<Packet> {
        let mut out = Vec::new();
        let ts = self.audio.ms(rtp, rate, arrival_ms);
        if !self.opus_head_sent {
            self.opus_head_sent = true;
            out.push(opus_tag(ts, 0, &opus_head()));
        }
        if !packet.is_empty() {
            out.push(opus_tag(ts, 1, packet));
        }
        out
    }
}

/// RFC 7845 §5.1: version 1, 2 channels, 312 samples of pre-skip (libopus's), 48 kHz,
/// 0 dB, mapping family 0.
fn opus_head() -> Vec<u8> {
    let mut h = Vec::with_capacity(19);
    h.extend_from_slice(b"OpusHead");
    h.push(1);
    h.push(2);
    h.extend_from_slice(&312u16.to_le_bytes());
    h.extend_from_slice(&48_000u32.to_le_bytes());
    h.extend_from_slice(&0i16.to_le_bytes());
    h.push(0);
    h
}

/// A legacy FLV AVC tag body: `kind` 0 sequence header, 1 frame (composition time 0:
/// WebRTC H.264 has no B-frames).
fn video_tag(ts: u32, key: bool, kind: u8, payload: &[u8]) -> Packet {
    let mut b = BytesMut::with_capacity(payload.len() + 5);
    b.put_u8(if key { 0x17 } else { 0x27 });
    b.put_u8(kind);
    b.put_slice(&[0, 0, 0]);
    b.put_slice(payload);
    Packet::new(Kind::Video, ts, b.freeze())
}

/// An Enhanced RTMP `vp08` tag body: `kind` 0 sequence start, 1 coded frame (no
/// composition time: VP8 has no reordering).
fn vp8_tag(ts: u32, key: bool, kind: u8, payload: &[u8]) -> Packet {
    let mut b = BytesMut::with_capacity(payload.len() + 5);
    b.put_u8(0x80 | if key { 0x10 } else { 0x20 } | kind);
    b.put_slice(b"vp08");
    b.put_slice(payload);
    Packet::new(Kind::Video, ts, b.freeze())
}

/// An Enhanced RTMP audio tag body: `kind` 0 sequence start, 1 coded frame.
fn opus_tag(ts: u32, kind: u8, payload: &[u8]) -> Packet {
    let mut b = BytesMut::with_capacity(payload.len() + 5);
    b.put_u8(0x90 | kind);
    b.put_slice(b"Opus");
    b.put_slice(payload);
    Packet::new(Kind::Audio, ts, Bytes::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_live::media::AudioCodec;

    const SPS: [u8; 5] = [0x67, 0x42, 0xc0, 0x1f, 0xda];
    const PPS: [u8; 4] = [0x68, 0xce, 0x3c, 0x80];

    fn au(nals: &[&[u8]]) -> Vec<u8> {
        nals.iter()
            .flat_map(|n| [&[0, 0, 0, 1][..], n].concat())
            .collect()
    }

    #[test]
    fn video_waits_for_its_parameter_sets_and_a_key_frame() {
        let mut i = Ingest::new();
        // A delta frame first: nothing can be played from it.
        assert!(
            i.h264(&au(&[&[0x41, 0x9a]]), 90_000, 90_000, 100)
                .is_empty()
        );
        let out = i.h264(&au(&[&SPS, &PPS, &[0x65, 0x88, 0x80]]), 93_000, 90_000, 140);
        assert_eq!(out.len(), 2);
        assert!(out[0].is_config());
        assert!(out[1].is_key());
        // Anchored at the first frame's arrival, then the RTP clock: 3000/90 = 33 ms.
        assert_eq!((out[0].timestamp, out[1].timestamp), (133, 133));
        assert_eq!(&out[1].data[5..9], &[0, 0, 0, 3]);
        let next = i.h264(&au(&[&[0x41, 0x9a]]), 96_000, 90_000, 999);
        assert_eq!(next.len(), 1);
        assert!(!next[0].is_key() && next[0].timestamp == 166);
        // The same sets again: no new sequence header.
        let again = i.h264(&au(&[&SPS, &PPS, &[0x65, 0x88]]), 99_000, 90_000, 1000);
        assert_eq!(again.len(), 1);
        assert!(i.has_key_frame());
    }

    #[test]
    fn vp8_starts_at_a_key_frame_with_its_sequence_start() {
        use tributary_live::media::VideoCodec;
        let mut i = Ingest::new();
        // An inter frame (tag bit 0 set) first: dropped.
        assert!(i.vp8(&[0x31, 0x01], 90_000, 90_000, 10).is_empty());
        let out = i.vp8(&[0x30, 0x01, 0x9d, 0x01, 0x2a], 93_000, 90_000, 50);
        assert_eq!(out.len(), 2);
        assert!(out[0].is_config());
        assert_eq!(out[0].video_codec(), Some(VideoCodec::Vp8));
        assert!(out[1].is_key());
        assert_eq!(&out[1].data[5..], &[0x30, 0x01, 0x9d, 0x01, 0x2a]);
        let next = i.vp8(&[0x31, 0x02], 96_000, 90_000, 999);
        assert_eq!(next.len(), 1);
        assert!(!next[0].is_key() && !next[0].is_config());
        assert_eq!(next[0].timestamp, out[1].timestamp + 33);
        assert!(i.has_key_frame());
    }

    #[test]
    fn opus_gets_its_head_first() {
        let mut i = Ingest::new();
        let out = i.opus(&[0xfc, 0xff, 0xfe], 48_000, 48_000, 20);
        assert_eq!(out.len(), 2);
        assert!(out[0].is_config());
        assert_eq!(out[0].audio_codec(), Some(AudioCodec::Opus));
        assert_eq!(&out[0].data[5..13], b"OpusHead");
        assert_eq!(&out[1].data[5..], &[0xfc, 0xff, 0xfe]);
        // 960 samples later: 20 ms.
        let out = i.opus(&[1], 48_960, 48_000, 500);
        assert_eq!(out[0].timestamp, 40);
    }

    #[test]
    fn a_track_never_repeats_or_goes_back_in_time() {
        let mut c = Clock::default();
        assert_eq!(c.ms(90_000, 90_000, 5), 5);
        // The same RTP time again (a frame delivered twice): one ms later.
        assert_eq!(c.ms(90_000, 90_000, 40), 6);
        // Less than a ms of RTP time, then a step back: still increasing.
        assert_eq!(c.ms(90_010, 90_000, 41), 7);
        assert_eq!(c.ms(89_000, 90_000, 42), 8);
        // Then the RTP clock again, once it is ahead.
        assert_eq!(c.ms(93_000, 90_000, 70), 38);
    }
}
