//! H.265 byte-stream (Annex B, what x265 emits) to the form Enhanced RTMP carries: 4-byte
//! length-prefixed NAL units plus an `HEVCDecoderConfigurationRecord` (ISO/IEC 14496-15
//! §8.3.3), and the H.265 form of our SEI unit.
//!
//! The record's profile, tier, level and constraint bytes are copied from the SPS (the
//! first 12 bytes of its `profile_tier_level`, after emulation-prevention bytes are
//! removed); chroma format and bit depth are those of every picture we encode (4:2:0,
//! 8-bit), which is what `VideoEncoder` asks x265 for.

use crate::annexb::nal_units;
use crate::sei::unescape;

const VPS: u8 = 32;
const SPS: u8 = 33;
const PPS: u8 = 34;
const AUD: u8 = 35;
/// Prefix SEI.
const SEI: u8 = 39;

/// The NAL unit type of an H.265 NAL (from its 2-byte header).
pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| (b >> 1) & 0x3f)
}

/// An access unit as 4-byte length-prefixed NAL units; parameter sets and delimiters are
/// left out (they travel in the sequence header).
pub fn to_length_prefixed(buf: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(buf.len() + 16);
    for nal in nal_units(buf) {
        if matches!(nal_type(nal), VPS | SPS | PPS | AUD) {
            continue;
        }
        out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        out.extend_from_slice(nal);
    }
    out
}

/// Builds the `HEVCDecoderConfigurationRecord` from Annex B VPS/SPS/PPS (x265's global
/// header). `None` without all three, or with an SPS too short for its profile.
pub fn hvcc_config(headers: &[u8]) -> Option<Vec<u8>> {
    let nals = nal_units(headers);
    let of = |t: u8| -> Vec<&[u8]> {
        nals.iter()
            .copied()
            .filter(|n| nal_type(n) == t && n.len() >= 2)
            .collect()
    };
    let (vps, sps, pps) = (of(VPS), of(SPS), of(PPS));
    if vps.is_empty() || pps.is_empty() {
        return None;
    }
    let rbsp = unescape(sps.first()?);
    // [2 NAL header][1: vps id, max sub-layers, nesting][12: general profile_tier_level]
    let ptl = rbsp.get(3..15)?;
    let mut out = Vec::with_capacity(64);
    out.push(1); // configurationVersion
    out.extend_from_slice(ptl); // profile space/tier/idc, compat flags, constraints, level
    out.extend_from_slice(&[0xf0, 0x00]); // min_spatial_segmentation_idc 0
    out.push(0xfc); // parallelismType 0
    out.push(0xfc | 1); // chroma_format_idc 1 (4:2:0)
    out.push(0xf8); // bit_depth_luma_minus8 0
    out.push(0xf8); // bit_depth_chroma_minus8 0
    out.extend_from_slice(&[0, 0]); // avgFrameRate unspecified
    // constantFrameRate 0, numTemporalLayers 1, temporalIdNested 1, lengthSizeMinusOne 3
    out.push((1 << 3) | (1 << 2) | 3);
    out.push(3);
    for (t, set) in [(VPS, &vps), (SPS, &sps), (PPS, &pps)] {
        out.push(0x80 | t); // array_completeness 1
        out.extend_from_slice(&(set.len() as u16).to_be_bytes());
        for n in set.iter() {
            out.extend_from_slice(&(n.len() as u16).to_be_bytes());
            out.extend_from_slice(n);
        }
    }
    Some(out)
}

/// An H.265 prefix SEI NAL unit (2-byte header, layer 0, temporal id 0) holding the same
/// `user_data_unregistered` message [`crate::sei::h264_nal`] makes for H.264.
pub fn sei_nal(payload: &[u8]) -> Vec<u8> {
    sei_nal_of(5, payload)
}

/// An H.265 prefix SEI NAL unit holding one message of `payload_type` with `payload`.
pub fn sei_nal_of(payload_type: u8, payload: &[u8]) -> Vec<u8> {
    let h264 = crate::sei::h264_nal_of(payload_type, payload);
    // Same SEI message syntax and escaping; only the NAL header differs.
    let mut nal = Vec::with_capacity(h264.len() + 1);
    nal.extend_from_slice(&[SEI << 1, 1]);
    nal.extend_from_slice(h264.get(1..).unwrap_or_default());
    nal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_copies_the_profile_and_lists_the_sets() {
        let vps = [0x40, 0x01, 0x0c, 0x01];
        // NAL header, then vps id 0 / 1 sub-layer / nested, then profile_tier_level:
        // Main (space 0, tier 0, idc 1), compat 0x60000000 (escaped: 00 00 03 00),
        // constraints 0x900000000000, level 60.
        let sps = [
            0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00,
            0x00, 0x00, 0x3c, 0xa0,
        ];
        let pps = [0x44, 0x01, 0xc1, 0x72];
        let mut buf = Vec::new();
        for n in [&vps[..], &sps[..], &pps[..]] {
            buf.extend_from_slice(&[0, 0, 0, 1]);
            buf.extend_from_slice(n);
        }
        let rec = hvcc_config(&buf).unwrap();
        assert_eq!(
            &rec[..13],
            &[1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 0x3c]
        );
        assert_eq!(rec[21], 0x0f, "4-byte lengths, one temporal layer");
        assert_eq!(rec[22], 3);
        assert_eq!(&rec[23..26], &[0x80 | VPS, 0, 1]);
        assert_eq!(&rec[26..28], &[0, 4]);
        assert_eq!(&rec[28..32], &vps);
        assert_eq!(hvcc_config(&buf[..buf.len() - 8]), None, "no PPS");
    }

    #[test]
    fn frames_keep_slices_and_drop_parameter_sets() {
        let mut buf = vec![0, 0, 0, 1, 0x46, 0x01, 0x50]; // AUD
        buf.extend_from_slice(&[0, 0, 0, 1, 0x40, 0x01, 0x0c]); // VPS
        buf.extend_from_slice(&[0, 0, 1, 0x26, 0x01, 0xaf, 0x10]); // IDR slice
        assert_eq!(
            to_length_prefixed(&buf),
            [0, 0, 0, 4, 0x26, 0x01, 0xaf, 0x10]
        );
        let sei = sei_nal(b"x");
        assert_eq!(&sei[..3], &[0x4e, 0x01, 5]);
        assert_eq!(nal_type(&sei), SEI);
    }
}
