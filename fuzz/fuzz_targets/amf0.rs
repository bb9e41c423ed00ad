//! AMF0 decoding, and encode∘decode being stable on whatever decodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_live::amf0;

fuzz_target!(|data: &[u8]| {
    if let Ok(values) = amf0::decode_all(data) {
        let bytes = amf0::encode_all(&values);
        let again = amf0::decode_all(&bytes).expect("what we encode decodes");
        // NaN != NaN: compare the encodings instead of the values.
        assert_eq!(amf0::encode_all(&again), bytes);
    }
});
