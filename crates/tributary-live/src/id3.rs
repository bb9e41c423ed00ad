//! Timed script data as ID3 for HLS: an FLV data message (`name, {…}`) becomes an
//! ID3v2.4 tag with one `TXXX` frame, description = the message name, value = its
//! properties as JSON. hls.js hands such frames to the page (`FRAG_PARSING_METADATA`:
//! `{key: "TXXX", info: name, data: json}`), Safari exposes them as cues, FFmpeg as a
//! `timed_id3` stream.

use serde_json::{Map, Value};

use crate::amf0::{self, Amf0};

/// The ID3 tag for a timed data packet's AMF0 body; `None` if it does not decode as a
/// name and properties.
pub fn from_script_data(body: &[u8]) -> Option<Vec<u8>> {
    let values = amf0::decode_all(body).ok()?;
    let name = values.first()?.as_str()?;
    let props = values.get(1).map_or(Value::Null, json);
    Some(txxx_tag(name, &props.to_string()))
}

/// AMF0 as JSON (dates as their millisecond number, undefined as null).
pub fn json(v: &Amf0) -> Value {
    match v {
        Amf0::Number(n) | Amf0::Date(n) => {
            serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number)
        }
        Amf0::Bool(b) => Value::Bool(*b),
        Amf0::String(s) => Value::String(s.clone()),
        Amf0::Object(kv) | Amf0::EcmaArray(kv) => Value::Object(
            kv.iter()
                .map(|(k, v)| (k.clone(), json(v)))
                .collect::<Map<_, _>>(),
        ),
        Amf0::StrictArray(a) => Value::Array(a.iter().map(json).collect()),
        Amf0::Null | Amf0::Undefined => Value::Null,
    }
}

/// 28 bits as ID3's "syncsafe" integer (7 bits per byte).
fn syncsafe(n: usize) -> [u8; 4] {
    let n = n.min(0x0FFF_FFFF) as u32;
    [
        (n >> 21) as u8 & 0x7F,
        (n >> 14) as u8 & 0x7F,
        (n >> 7) as u8 & 0x7F,
        n as u8 & 0x7F,
    ]
}

/// An ID3v2.4 tag holding one UTF-8 `TXXX` frame.
pub fn txxx_tag(description: &str, value: &str) -> Vec<u8> {
    let mut frame = Vec::with_capacity(description.len() + value.len() + 2);
    frame.push(0x03); // UTF-8
    frame.extend_from_slice(description.as_bytes());
    frame.push(0);
    frame.extend_from_slice(value.as_bytes());
    let mut tag = Vec::with_capacity(frame.len() + 20);
    tag.extend_from_slice(b"ID3\x04\x00\x00");
    tag.extend_from_slice(&syncsafe(frame.len() + 10));
    tag.extend_from_slice(b"TXXX");
    tag.extend_from_slice(&syncsafe(frame.len()));
    tag.extend_from_slice(&[0, 0]);
    tag.extend_from_slice(&frame);
    tag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_data_becomes_one_txxx_frame() {
        let body = amf0::encode_all(&[
            Amf0::str("onTributaryData"),
            Amf0::EcmaArray(vec![("payload".into(), Amf0::str("AQID"))]),
        ]);
        let tag = from_script_data(&body).unwrap();
        assert_eq!(&tag[..6], b"ID3\x04\x00\x00");
        let value = br#"{"payload":"AQID"}"#;
        let frame_len = 1 + "onTributaryData".len() + 1 + value.len();
        assert_eq!(&tag[6..10], &syncsafe(frame_len + 10));
        assert_eq!(&tag[10..14], b"TXXX");
        assert_eq!(&tag[14..18], &[0, 0, 0, frame_len as u8]);
        assert!(tag.ends_with(b"onTributaryData\x00{\"payload\":\"AQID\"}"));
        assert_eq!(syncsafe(200), [0, 0, 1, 0x48]);
        assert_eq!(from_script_data(&[0xff]), None);
    }
}
