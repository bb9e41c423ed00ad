//! An FLV byte stream, its tags fed to the HLS segmenter (AVC/AAC config parsing, AVCC →
//! Annex B, ADTS, TS muxing) and to FLV re-muxing.
#![no_main]

use std::time::Duration;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tributary_live::flv::{self, FlvReader};
use tributary_live::hls::Segmenter;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    let mut reader = FlvReader::new(1 << 20);
    let mut seg = Segmenter::new(Duration::from_millis(500), 3);
    let mut out = BytesMut::new();
    while let Ok(Some(p)) = reader.read(&mut buf) {
        seg.push(&p);
        flv::write_tag(&mut out, &p);
        let _ = p.composition_time();
    }
    seg.finish();
    let _ = seg.playlist("");
});
