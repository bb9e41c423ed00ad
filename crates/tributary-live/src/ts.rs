//! An MPEG-TS muxer for HLS: PAT/PMT, PES packetisation with PTS/DTS, PCR, and the
//! conversions FLV payloads need (AVCC → Annex B with parameter sets on key frames,
//! raw AAC → ADTS). H.264 or H.265 video; AAC or MP3 audio.

use bytes::Buf;

pub const PID_PMT: u16 = 0x1000;
pub const PID_VIDEO: u16 = 0x100;
pub const PID_AUDIO: u16 = 0x101;
/// Timed ID3 (HLS timed metadata, stream type 0x15).
pub const PID_ID3: u16 = 0x102;

/// Which elementary stream a PES belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Es {
    Video,
    Audio,
    /// Timed ID3 tags (private stream 1, with a presentation time).
    Id3,
}
const PACKET: usize = 188;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoFormat {
    H264,
    /// HEVC (stream type 0x24), which Safari, hls.js on HEVC-capable browsers and FFmpeg
    /// play from TS segments.
    H265,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioFormat {
    Aac,
    Mp3,
}

/// Parsed AVCDecoderConfigurationRecord.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    pub length_size: usize,
    pub sps: Vec<Vec<u8>>,
    pub pps: Vec<Vec<u8>>,
}

impl AvcConfig {
    pub fn parse(mut b: &[u8]) -> Option<AvcConfig> {
        if b.len() < 6 {
            return None;
        }
        let length_size = (b[4] & 0x03) as usize + 1;
        let nsps = (b[5] & 0x1F) as usize;
        b.advance(6);
        let read_sets = |b: &mut &[u8], n: usize| -> Option<Vec<Vec<u8>>> {
            let mut v = Vec::new();
            for _ in 0..n {
                if b.len() < 2 {
                    return None;
                }
                let len = b.get_u16() as usize;
                if b.len() < len {
                    return None;
                }
                v.push(b[..len].to_vec());
                b.advance(len);
            }
            Some(v)
        };
        let sps = read_sets(&mut b, nsps)?;
        if b.is_empty() {
            return None;
        }
        let npps = b.get_u8() as usize;
        let pps = read_sets(&mut b, npps)?;
        Some(AvcConfig {
            length_size,
            sps,
            pps,
        })
    }

    /// Converts length-prefixed NAL units to an Annex B access unit (with an access unit
    /// delimiter, and SPS/PPS before key frames). `None` if the lengths do not add up.
    pub fn to_annex_b(&self, nalus: &[u8], key: bool) -> Option<Vec<u8>> {
        annex_b(
            self.length_size,
            self.sps.iter().chain(&self.pps),
            &[0x09, 0xF0],
            |h| h[0] & 0x1F == 9,
            nalus,
            key,
        )
    }
}

/// Parsed HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 §8.3.3): the NAL length size
/// and the parameter sets of its arrays (VPS, SPS, PPS, and any SEI kept in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HevcConfig {
    pub length_size: usize,
    pub sets: Vec<Vec<u8>>,
}

impl HevcConfig {
    pub fn parse(b: &[u8]) -> Option<HevcConfig> {
        let length_size = (*b.get(21)? & 0x03) as usize + 1;
        let arrays = *b.get(22)? as usize;
        let mut rest = b.get(23..)?;
        let mut sets = Vec::new();
        for _ in 0..arrays {
            if rest.len() < 3 {
                return None;
            }
            rest.advance(1); // completeness + NAL type
            let n = rest.get_u16() as usize;
            for _ in 0..n {
                if rest.len() < 2 {
                    return None;
                }
                let len = rest.get_u16() as usize;
                let nal = rest.get(..len)?;
                sets.push(nal.to_vec());
                rest.advance(len);
            }
        }
        Some(HevcConfig { length_size, sets })
    }

    /// As [`AvcConfig::to_annex_b`], with H.265's delimiter (type 35) and VPS/SPS/PPS.
    pub fn to_annex_b(&self, nalus: &[u8], key: bool) -> Option<Vec<u8>> {
        let is_aud = |h: &[u8]| (h[0] >> 1) & 0x3F == 35;
        annex_b(
            self.length_size,
            &self.sets,
            &[0x46, 0x01, 0x50],
            is_aud,
            nalus,
            key,
        )
    }
}

/// Length-prefixed NAL units to one Annex B access unit: our delimiter first, then the
/// parameter sets before key frames, then the units (the stream's own delimiters left
/// out). `None` if the lengths do not add up.
fn annex_b<'a>(
    length_size: usize,
    sets: impl IntoIterator<Item = &'a Vec<u8>>,
    aud: &[u8],
    is_aud: impl Fn(&[u8]) -> bool,
    mut nalus: &[u8],
    key: bool,
) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(nalus.len() + 64);
    out.extend_from_slice(&[0, 0, 0, 1]);
    out.extend_from_slice(aud);
    if key {
        for set in sets {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(set);
        }
    }
    while !nalus.is_empty() {
        if nalus.len() < length_size {
            return None;
        }
        let mut len = 0usize;
        for _ in 0..length_size {
            len = (len << 8) | nalus.get_u8() as usize;
        }
        if nalus.len() < len {
            return None;
        }
        let nal = &nalus[..len];
        nalus.advance(len);
        if nal.is_empty() || is_aud(nal) {
            continue; // our own AUD is already there
        }
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
    }
    Some(out)
}

/// The fields of an AudioSpecificConfig an ADTS header needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AacConfig {
    pub object_type: u8,
    pub frequency_index: u8,
    pub channels: u8,
}

impl AacConfig {
    pub fn parse(b: &[u8]) -> Option<AacConfig> {
        if b.len() < 2 {
            return None;
        }
        let frequency_index = ((b[0] & 0x07) << 1) | (b[1] >> 7);
        if frequency_index > 12 {
            return None;
        }
        Some(AacConfig {
            object_type: b[0] >> 3,
            frequency_index,
            channels: (b[1] >> 3) & 0x0F,
        })
    }

    pub fn sample_rate(&self) -> u32 {
        const RATES: [u32; 13] = [
            96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
        ];
        RATES[self.frequency_index.min(12) as usize]
    }

    pub fn adts(&self, frame: &[u8]) -> Vec<u8> {
        // ADTS has 2 bits of profile: HE-AAC (5, 29) is signalled as LC with implicit SBR.
        let profile = if (1..=4).contains(&self.object_type) {
            self.object_type - 1
        } else {
            1
        };
        let len = (frame.len() + 7).min(0x1FFF);
        let ch = self.channels;
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&[
            0xFF,
            0xF1,
            (profile << 6) | (self.frequency_index << 2) | (ch >> 2),
            ((ch & 3) << 6) | (len >> 11) as u8,
            (len >> 3) as u8,
            (((len & 7) << 5) as u8) | 0x1F,
            0xFC,
        ]);
        out.extend_from_slice(&frame[..len - 7]);
        out
    }
}

/// CRC-32/MPEG-2 of PSI sections.
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= (b as u32) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[derive(Debug, Default)]
pub struct TsMuxer {
    cc_pat: u8,
    cc_pmt: u8,
    cc_video: u8,
    cc_audio: u8,
    cc_id3: u8,
}

impl TsMuxer {
    fn section_packet(out: &mut Vec<u8>, pid: u16, cc: &mut u8, section: &[u8]) {
        let start = out.len();
        out.extend_from_slice(&[0x47, 0x40 | (pid >> 8) as u8, pid as u8, 0x10 | *cc, 0]);
        *cc = (*cc + 1) & 0x0F;
        out.extend_from_slice(section);
        let crc = crc32_mpeg2(section);
        out.extend_from_slice(&crc.to_be_bytes());
        out.resize(start + PACKET, 0xFF);
    }

    /// PAT and PMT for the tracks present.
    pub fn write_tables(
        &mut self,
        out: &mut Vec<u8>,
        video: Option<VideoFormat>,
        audio: Option<AudioFormat>,
        id3: bool,
    ) {
        // PAT: one program, PMT on PID_PMT.
        let pat = [
            0x00,
            0xB0,
            13,
            0x00,
            0x01,
            0xC1,
            0x00,
            0x00,
            0x00,
            0x01,
            0xE0 | (PID_PMT >> 8) as u8,
            PID_PMT as u8,
        ];
        Self::section_packet(out, 0, &mut self.cc_pat, &pat);
        let mut streams = Vec::new();
        if let Some(v) = video {
            streams.extend_from_slice(&[
                match v {
                    VideoFormat::H264 => 0x1B,
                    VideoFormat::H265 => 0x24,
                },
                0xE0 | (PID_VIDEO >> 8) as u8,
                PID_VIDEO as u8,
                0xF0,
                0,
            ]);
        }
        if let Some(f) = audio {
            let st = match f {
                AudioFormat::Aac => 0x0F,
                AudioFormat::Mp3 => 0x03,
            };
            streams.extend_from_slice(&[
                st,
                0xE0 | (PID_AUDIO >> 8) as u8,
                PID_AUDIO as u8,
                0xF0,
                0,
            ]);
        }
        if id3 {
            // Metadata stream with the metadata_descriptor FFmpeg and Apple's HLS timed
            // metadata use: application and format 0xFFFF/0xFF + "ID3 ".
            streams.extend_from_slice(&[0x15, 0xE0 | (PID_ID3 >> 8) as u8, PID_ID3 as u8]);
            streams.extend_from_slice(&[0xF0, 15, 0x26, 13, 0xFF, 0xFF]);
            streams.extend_from_slice(b"ID3 ");
            streams.push(0xFF);
            streams.extend_from_slice(b"ID3 ");
            streams.extend_from_slice(&[0x00, 0x0F]);
        }
        let pcr_pid = if video.is_some() {
            PID_VIDEO
        } else {
            PID_AUDIO
        };
        let section_len = 9 + streams.len() + 4;
        let mut pmt = vec![
            0x02,
            0xB0 | (section_len >> 8) as u8,
            section_len as u8,
            0x00,
            0x01,
            0xC1,
            0x00,
            0x00,
            0xE0 | (pcr_pid >> 8) as u8,
            pcr_pid as u8,
            0xF0,
            0x00,
        ];
        pmt.extend_from_slice(&streams);
        Self::section_packet(out, PID_PMT, &mut self.cc_pmt, &pmt);
    }

    fn timestamp(out: &mut Vec<u8>, prefix: u8, t: u64) {
        let t = t & 0x1_FFFF_FFFF;
        out.push((prefix << 4) | (((t >> 30) as u8 & 0x07) << 1) | 1);
        out.push((t >> 22) as u8);
        out.push((((t >> 15) as u8) << 1) | 1);
        out.push((t >> 7) as u8);
        out.push(((t as u8) << 1) | 1);
    }

    /// Writes one PES packet. Times are in 90 kHz units; `pcr` goes into the first TS
    /// packet's adaptation field; `key` marks a random access point.
    #[allow(clippy::too_many_arguments)]
    pub fn write_pes(
        &mut self,
        out: &mut Vec<u8>,
        es: Es,
        pts: u64,
        dts: u64,
        pcr: Option<u64>,
        key: bool,
        payload: &[u8],
    ) {
        let video = es == Es::Video;
        let (pid, stream_id) = match es {
            Es::Video => (PID_VIDEO, 0xE0),
            Es::Audio => (PID_AUDIO, 0xC0),
            Es::Id3 => (PID_ID3, 0xBD),
        };
        let with_dts = video && dts != pts;
        let mut pes = Vec::with_capacity(payload.len() + 19);
        pes.extend_from_slice(&[0, 0, 1, stream_id]);
        let header_data = if with_dts { 10 } else { 5 };
        let pes_len = 3 + header_data + payload.len();
        let pes_len = if video || pes_len > 0xFFFF {
            0
        } else {
            pes_len
        };
        pes.extend_from_slice(&(pes_len as u16).to_be_bytes());
        // Marker bits; ID3 tags are whole units (data_alignment_indicator).
        pes.push(if es == Es::Id3 { 0x84 } else { 0x80 });
        pes.push(if with_dts { 0xC0 } else { 0x80 });
        pes.push(header_data as u8);
        Self::timestamp(&mut pes, if with_dts { 3 } else { 2 }, pts);
        if with_dts {
            Self::timestamp(&mut pes, 1, dts);
        }
        pes.extend_from_slice(payload);

        let cc = match es {
            Es::Video => &mut self.cc_video,
            Es::Audio => &mut self.cc_audio,
            Es::Id3 => &mut self.cc_id3,
        };
        let mut pos = 0;
        let mut first = true;
        while pos < pes.len() {
            let mut af: Vec<u8> = Vec::new();
            if first && (pcr.is_some() || key) {
                af.push(if key { 0x40 } else { 0 } | if pcr.is_some() { 0x10 } else { 0 });
                if let Some(p) = pcr {
                    let base = p & 0x1_FFFF_FFFF;
                    af.extend_from_slice(&[
                        (base >> 25) as u8,
                        (base >> 17) as u8,
                        (base >> 9) as u8,
                        (base >> 1) as u8,
                        (((base & 1) as u8) << 7) | 0x7E,
                        0,
                    ]);
                }
            }
            let mut af_total = if af.is_empty() { 0 } else { 1 + af.len() };
            let remaining = pes.len() - pos;
            let space = 184 - af_total;
            if remaining < space {
                let stuff = space - remaining;
                if af_total == 0 {
                    if stuff >= 2 {
                        af.push(0);
                        af.resize(stuff - 1, 0xFF);
                    }
                    af_total = stuff;
                } else {
                    af.resize(af.len() + stuff, 0xFF);
                    af_total += stuff;
                }
            }
            out.push(0x47);
            out.push(if first { 0x40 } else { 0 } | (pid >> 8) as u8 & 0x1F);
            out.push(pid as u8);
            out.push(if af_total > 0 { 0x30 } else { 0x10 } | *cc);
            *cc = (*cc + 1) & 0x0F;
            if af_total > 0 {
                out.push((af_total - 1) as u8);
                out.extend_from_slice(&af);
            }
            let n = 184 - af_total;
            out.extend_from_slice(&pes[pos..pos + n]);
            pos += n;
            first = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_of_known_pat() {
        // The PAT every ffmpeg-written TS starts with (program 1 → PMT 0x1000).
        let pat = [
            0x00, 0xB0, 0x0D, 0x00, 0x01, 0xC1, 0x00, 0x00, 0x00, 0x01, 0xF0, 0x00,
        ];
        assert_eq!(crc32_mpeg2(&pat), 0x2AB1_04B2);
    }

    #[test]
    fn packets_are_188_bytes_and_payload_survives() {
        for size in [0usize, 1, 100, 170, 171, 172, 173, 183, 184, 1000, 5000] {
            let mut m = TsMuxer::default();
            let mut out = Vec::new();
            m.write_tables(
                &mut out,
                Some(VideoFormat::H264),
                Some(AudioFormat::Aac),
                false,
            );
            let payload: Vec<u8> = (0..size).map(|i| i as u8).collect();
            m.write_pes(&mut out, Es::Video, 9000, 6000, Some(6000), true, &payload);
            m.write_pes(&mut out, Es::Audio, 9000, 9000, None, false, &payload);
            assert_eq!(out.len() % 188, 0, "size {size}");
            // Reassemble the video PES payload.
            let mut video = Vec::new();
            for pkt in out.chunks(188) {
                assert_eq!(pkt[0], 0x47);
                let pid = (((pkt[1] & 0x1F) as u16) << 8) | pkt[2] as u16;
                if pid != PID_VIDEO {
                    continue;
                }
                let start = if pkt[3] & 0x20 != 0 {
                    5 + pkt[4] as usize
                } else {
                    4
                };
                video.extend_from_slice(&pkt[start..]);
            }
            assert_eq!(&video[video.len() - size..], &payload[..], "size {size}");
        }
    }

    #[test]
    fn avc_and_aac_conversions() {
        let cfg = [
            1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, 2, 0x67, 0xAA, 1, 0, 1, 0x68,
        ];
        let avc = AvcConfig::parse(&cfg).unwrap();
        assert_eq!(avc.length_size, 4);
        assert_eq!(avc.sps, vec![vec![0x67, 0xAA]]);
        let au = avc.to_annex_b(&[0, 0, 0, 2, 0x65, 0x11], true).unwrap();
        assert_eq!(
            au,
            vec![
                0, 0, 0, 1, 9, 0xF0, 0, 0, 0, 1, 0x67, 0xAA, 0, 0, 0, 1, 0x68, 0, 0, 0, 1, 0x65,
                0x11
            ]
        );
        assert!(avc.to_annex_b(&[0, 0, 0, 9, 0x65], false).is_none());
        assert!(AvcConfig::parse(&cfg[..9]).is_none());
        let aac = AacConfig::parse(&[0x12, 0x10]).unwrap(); // LC, 44.1 kHz, stereo
        assert_eq!(
            aac,
            AacConfig {
                object_type: 2,
                frequency_index: 4,
                channels: 2
            }
        );
        assert_eq!(aac.sample_rate(), 44100);
        let adts = aac.adts(&[1, 2, 3]);
        assert_eq!(&adts[..7], &[0xFF, 0xF1, 0x50, 0x80, 0x01, 0x5F, 0xFC]);
    }
}
