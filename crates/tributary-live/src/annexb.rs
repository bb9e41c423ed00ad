//! H.264 byte-stream (Annex B, what x264 emits) to the FLV/RTMP form (AVCC: length-prefixed
//! NAL units plus an `AVCDecoderConfigurationRecord`).

/// The NAL units of an Annex B buffer, start codes removed.
pub fn nal_units(buf: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut start: Option<usize> = None;
    while i + 3 <= buf.len() {
        let sc3 = buf[i] == 0 && buf[i + 1] == 0 && buf[i + 2] == 1;
        if sc3 {
            if let Some(s) = start {
                out.push(trim_trailing_zeros(&buf[s..i]));
            }
            i += 3;
            start = Some(i);
        } else {
            i += 1;
        }
    }
    if let Some(s) = start
        && s < buf.len()
    {
        out.push(&buf[s..]);
    }
    out.retain(|n| !n.is_empty());
    out
}

/// A 4-byte start code leaves one zero before the next NAL's 3-byte code.
fn trim_trailing_zeros(nal: &[u8]) -> &[u8] {
    let mut end = nal.len();
    while end > 0 && nal[end - 1] == 0 {
        end -= 1;
    }
    &nal[..end]
}

/// An access unit as 4-byte length-prefixed NAL units. Parameter sets and AUDs are left
/// out: they travel in the sequence header.
pub fn to_avcc(buf: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(buf.len() + 16);
    for nal in nal_units(buf) {
        let kind = nal[0] & 0x1f;
        if matches!(kind, 7..=9) {
            continue;
        }
        out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        out.extend_from_slice(nal);
    }
    out
}

/// Builds the `AVCDecoderConfigurationRecord` from Annex B SPS/PPS (x264's global
/// header). `None` if there is no SPS or PPS.
pub fn avc_config(headers: &[u8]) -> Option<Vec<u8>> {
    let nals = nal_units(headers);
    let sps: Vec<&[u8]> = nals.iter().copied().filter(|n| n[0] & 0x1f == 7).collect();
    let pps: Vec<&[u8]> = nals.iter().copied().filter(|n| n[0] & 0x1f == 8).collect();
    let first = sps.first()?;
    if pps.is_empty() || first.len() < 4 {
        return None;
    }
    let mut out = vec![
        1,
        first[1],
        first[2],
        first[3],
        0xff,
        0xe0 | sps.len() as u8,
    ];
    for s in &sps {
        out.extend_from_slice(&(s.len() as u16).to_be_bytes());
        out.extend_from_slice(s);
    }
    out.push(pps.len() as u8);
    for p in &pps {
        out.extend_from_slice(&(p.len() as u16).to_be_bytes());
        out.extend_from_slice(p);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_both_start_codes_and_builds_avcc() {
        let sps = [0x67, 0x64, 0x00, 0x1f, 0xac];
        let pps = [0x68, 0xee, 0x3c, 0x80];
        let idr = [0x65, 0x88, 0x84, 0x00, 0x21];
        let mut buf = vec![0, 0, 0, 1];
        buf.extend_from_slice(&sps);
        buf.extend_from_slice(&[0, 0, 0, 1]);
        buf.extend_from_slice(&pps);
        buf.extend_from_slice(&[0, 0, 1]);
        buf.extend_from_slice(&idr);
        assert_eq!(nal_units(&buf), vec![&sps[..], &pps[..], &idr[..]]);

        let avcc = to_avcc(&buf);
        assert_eq!(&avcc[..4], &[0, 0, 0, 5]);
        assert_eq!(&avcc[4..], &idr);

        let cfg = avc_config(&buf).unwrap();
        assert_eq!(&cfg[..6], &[1, 0x64, 0x00, 0x1f, 0xff, 0xe1]);
        assert_eq!(&cfg[6..8], &[0, 5]);
        assert_eq!(cfg[13], 1);
        assert_eq!(avc_config(&[0, 0, 1, 0x65, 1]), None);
    }
}
