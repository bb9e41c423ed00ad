//! The unit the hub moves: one encoded packet, FLV-tag-like.
//!
//! `data` is exactly the body of an FLV tag (= the payload of an RTMP audio/video/data
//! message), so RTMP and HTTP-FLV players are fed without re-encoding and the bytes are
//! shared (`Bytes`) between every subscriber. The flags the hub and the segmenter need
//! (key frame, codec config) are read once, when the packet is made.

use bytes::Bytes;

use crate::amf0::{self, Amf0};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Audio,
    Video,
    /// Script data: AMF0 `"onMetaData", {…}` (the stream's description), or timed data
    /// of another name that travels in order with the media ([`Packet::data`]).
    Meta,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub kind: Kind,
    /// Decode timestamp in milliseconds (RTMP/FLV time base).
    pub timestamp: u32,
    pub data: Bytes,
    key: bool,
    config: bool,
}

/// FLV video codec ids and Enhanced RTMP FourCCs we name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum VideoCodec {
    H264,
    H265,
    Av1,
    Vp8,
    Vp9,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum AudioCodec {
    Aac,
    Mp3,
    Opus,
    Other,
}

impl Packet {
    pub fn new(kind: Kind, timestamp: u32, data: Bytes) -> Packet {
        let (key, config) = match kind {
            Kind::Video => video_flags(&data),
            Kind::Audio => (false, audio_is_config(&data)),
            Kind::Meta => (false, false),
        };
        Packet {
            kind,
            timestamp,
            data,
            key,
            config,
        }
    }

    /// A metadata packet from the properties of `@setDataFrame`/`onMetaData`.
    pub fn metadata(props: Amf0) -> Packet {
        let data = amf0::encode_all(&[Amf0::str("onMetaData"), props]).freeze();
        Packet::new(Kind::Meta, 0, data)
    }

    /// Timed script data: AMF0 `name, {…}` at `timestamp` (cue points, a mix's stream
    /// data for audio-only outputs). Players get it in order with the media; it is not
    /// cached for late joiners as metadata is.
    pub fn data(name: &str, props: Amf0, timestamp: u32) -> Packet {
        let data = amf0::encode_all(&[Amf0::str(name), props]).freeze();
        Packet::new(Kind::Meta, timestamp, data)
    }

    /// Whether this is the stream's `onMetaData` (not timed data).
    pub fn is_metadata(&self) -> bool {
        const NAME: &[u8] = b"\x02\x00\x0aonMetaData";
        self.kind == Kind::Meta && self.data.starts_with(NAME)
    }

    /// A video key frame (random access point).
    pub fn is_key(&self) -> bool {
        self.key
    }

    /// A codec configuration record (AVC/HEVC sequence header, AAC AudioSpecificConfig,
    /// Enhanced RTMP SequenceStart): decoders need it before any frame.
    pub fn is_config(&self) -> bool {
        self.config
    }

    pub fn video_codec(&self) -> Option<VideoCodec> {
        let b0 = *self.data.first()?;
        if self.kind != Kind::Video {
            return None;
        }
        Some(if b0 & 0x80 != 0 {
            match self.data.get(1..5)? {
                b"avc1" => VideoCodec::H264,
                b"hvc1" => VideoCodec::H265,
                b"av01" => VideoCodec::Av1,
                b"vp08" => VideoCodec::Vp8,
                b"vp09" => VideoCodec::Vp9,
                _ => VideoCodec::Other,
            }
        } else {
            match b0 & 0x0F {
                7 => VideoCodec::H264,
                12 => VideoCodec::H265,
                _ => VideoCodec::Other,
            }
        })
    }

    pub fn audio_codec(&self) -> Option<AudioCodec> {
        if self.kind != Kind::Audio {
            return None;
        }
        let b0 = *self.data.first()?;
        Some(match b0 >> 4 {
            10 => AudioCodec::Aac,
            2 | 14 => AudioCodec::Mp3,
            9 if self.data.get(1..5) == Some(b"Opus") => AudioCodec::Opus,
            _ => AudioCodec::Other,
        })
    }

    /// For H.264 in legacy FLV: the composition time offset (pts − dts) in ms.
    pub fn composition_time(&self) -> i32 {
        match self.data.get(2..5) {
            Some(c) if self.kind == Kind::Video && self.data[0] & 0x80 == 0 => {
                let v = ((c[0] as i32) << 16) | ((c[1] as i32) << 8) | c[2] as i32;
                // Sign-extend 24 bits.
                (v << 8) >> 8
            }
            _ => 0,
        }
    }
}

/// The `VPCodecConfigurationRecord` of a VP8 stream's Enhanced RTMP sequence start (ISO/IEC
/// 14496-15 VP codec mapping): version 1, profile 0, level 0 (unknown), 8 bits, 4:2:0,
/// limited range, BT.709, no initialization data. VP8 carries everything else in its
/// frames.
pub fn vp8_config_record() -> Vec<u8> {
    vec![1, 0, 0, 0, 0, 0, 0x82, 1, 1, 1, 0, 0]
}

fn video_flags(data: &[u8]) -> (bool, bool) {
    let Some(&b0) = data.first() else {
        return (false, false);
    };
    if b0 & 0x80 != 0 {
        // Enhanced RTMP: [1 IsExHeader][3 FrameType][4 PacketType][FourCC]…
        let frame_type = (b0 >> 4) & 0x07;
        let packet_type = b0 & 0x0F;
        (frame_type == 1 && packet_type != 0, packet_type == 0)
    } else {
        let frame_type = b0 >> 4;
        let codec = b0 & 0x0F;
        let config = matches!(codec, 7 | 12) && data.get(1) == Some(&0);
        (frame_type == 1 && !config, config)
    }
}

fn audio_is_config(data: &[u8]) -> bool {
    match data.first() {
        Some(b0) if b0 >> 4 == 10 => data.get(1) == Some(&0),
        // Enhanced audio: [4 format=9][4 PacketType][FourCC]; SequenceStart = 0.
        Some(b0) if b0 >> 4 == 9 => b0 & 0x0F == 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_codecs() {
        let p = |k, d: &'static [u8]| Packet::new(k, 0, Bytes::from_static(d));
        let avc_cfg = p(Kind::Video, &[0x17, 0, 0, 0, 0, 1]);
        assert!(avc_cfg.is_config() && !avc_cfg.is_key());
        assert_eq!(avc_cfg.video_codec(), Some(VideoCodec::H264));
        let idr = p(Kind::Video, &[0x17, 1, 0, 0, 0x28]);
        assert!(idr.is_key() && !idr.is_config());
        assert_eq!(idr.composition_time(), 40);
        let inter = p(Kind::Video, &[0x27, 1, 0xFF, 0xFF, 0xF6]);
        assert!(!inter.is_key());
        assert_eq!(inter.composition_time(), -10);
        let aac_cfg = p(Kind::Audio, &[0xAF, 0, 0x12, 0x10]);
        assert!(aac_cfg.is_config());
        assert_eq!(aac_cfg.audio_codec(), Some(AudioCodec::Aac));
        assert_eq!(
            p(Kind::Audio, &[0x2F, 0xFF]).audio_codec(),
            Some(AudioCodec::Mp3)
        );
        let vp8_key = p(Kind::Video, &[0x91, b'v', b'p', b'0', b'8', 0x10]);
        assert!(vp8_key.is_key() && !vp8_key.is_config());
        assert_eq!(vp8_key.video_codec(), Some(VideoCodec::Vp8));
        let hevc_ex = p(Kind::Video, &[0x90, b'h', b'v', b'c', b'1']);
        assert!(!hevc_ex.is_key() && hevc_ex.is_config());
        assert_eq!(hevc_ex.video_codec(), Some(VideoCodec::H265));
        assert!(!p(Kind::Video, &[]).is_key());
    }
}
