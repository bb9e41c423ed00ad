//! AMF0, the value encoding of RTMP commands and FLV script data.
//!
//! Only what RTMP peers send in practice is decoded (numbers, booleans, strings, objects,
//! ECMA and strict arrays, null/undefined, dates, long strings); references, AMF3
//! switches and the rest are refused. Decoding is bounded: nesting depth and element
//! counts are capped, and every length is checked against the bytes that are really
//! there, so hostile input costs at most its own size.

use bytes::{BufMut, BytesMut};

/// Deepest nesting accepted (objects inside objects). Real peers use 2.
const MAX_DEPTH: usize = 16;

#[derive(Debug, Clone, PartialEq)]
pub enum Amf0 {
    Number(f64),
    Bool(bool),
    String(String),
    Object(Vec<(String, Amf0)>),
    Null,
    Undefined,
    EcmaArray(Vec<(String, Amf0)>),
    StrictArray(Vec<Amf0>),
    Date(f64),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Amf0Error {
    #[error("AMF0 value truncated")]
    Truncated,
    #[error("AMF0 marker {0:#04x} not supported")]
    Unsupported(u8),
    #[error("AMF0 nesting deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("AMF0 string is not UTF-8")]
    BadString,
}

impl Amf0 {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf0::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Amf0::Number(n) => Some(*n),
            _ => None,
        }
    }
    /// A property of an object or ECMA array.
    pub fn get(&self, key: &str) -> Option<&Amf0> {
        match self {
            Amf0::Object(p) | Amf0::EcmaArray(p) => {
                p.iter().find(|(k, _)| k == key).map(|(_, v)| v)
            }
            _ => None,
        }
    }
    pub fn object<const N: usize>(props: [(&str, Amf0); N]) -> Amf0 {
        Amf0::Object(props.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }
    pub fn str(s: &str) -> Amf0 {
        Amf0::String(s.to_string())
    }
}

/// Decodes every value in `buf`.
pub fn decode_all(mut buf: &[u8]) -> Result<Vec<Amf0>, Amf0Error> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        out.push(decode(&mut buf, 0)?);
    }
    Ok(out)
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8], Amf0Error> {
    if buf.len() < n {
        return Err(Amf0Error::Truncated);
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

fn u8_(buf: &mut &[u8]) -> Result<u8, Amf0Error> {
    Ok(take(buf, 1)?[0])
}
fn u16_(buf: &mut &[u8]) -> Result<u16, Amf0Error> {
    let b = take(buf, 2)?;
    Ok(u16::from_be_bytes([b[0], b[1]]))
}
fn u32_(buf: &mut &[u8]) -> Result<u32, Amf0Error> {
    let b = take(buf, 4)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}
fn f64_(buf: &mut &[u8]) -> Result<f64, Amf0Error> {
    let b = take(buf, 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Ok(f64::from_be_bytes(a))
}
fn utf8(b: &[u8]) -> Result<String, Amf0Error> {
    String::from_utf8(b.to_vec()).map_err(|_| Amf0Error::BadString)
}
fn short_string(buf: &mut &[u8]) -> Result<String, Amf0Error> {
    let n = u16_(buf)? as usize;
    utf8(take(buf, n)?)
}

/// Properties up to the object-end marker (`00 00 09`).
fn properties(buf: &mut &[u8], depth: usize) -> Result<Vec<(String, Amf0)>, Amf0Error> {
    let mut props = Vec::new();
    loop {
        let key = short_string(buf)?;
        if key.is_empty() && buf.first() == Some(&0x09) {
            *buf = &buf[1..];
            return Ok(props);
        }
        // Every property is at least 3 bytes, so this loop ends with the input.
        let value = decode(buf, depth + 1)?;
        props.push((key, value));
    }
}

fn decode(buf: &mut &[u8], depth: usize) -> Result<Amf0, Amf0Error> {
    if depth > MAX_DEPTH {
        return Err(Amf0Error::TooDeep);
    }
    let marker = u8_(buf)?;
    Ok(match marker {
        0x00 => Amf0::Number(f64_(buf)?),
        0x01 => Amf0::Bool(u8_(buf)? != 0),
        0x02 => Amf0::String(short_string(buf)?),
        0x03 => Amf0::Object(properties(buf, depth)?),
        0x05 => Amf0::Null,
        0x06 => Amf0::Undefined,
        0x08 => {
            // The count is only a hint (encoders get it wrong); the end marker decides.
            let _count = u32_(buf)?;
            Amf0::EcmaArray(properties(buf, depth)?)
        }
        0x0A => {
            let n = u32_(buf)? as usize;
            // Each element takes at least one byte: a count larger than what is left is a lie.
            if n > buf.len() {
                return Err(Amf0Error::Truncated);
            }
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(decode(buf, depth + 1)?);
            }
            Amf0::StrictArray(items)
        }
        0x0B => {
            let ms = f64_(buf)?;
            let _tz = u16_(buf)?;
            Amf0::Date(ms)
        }
        0x0C => {
            let n = u32_(buf)? as usize;
            Amf0::String(utf8(take(buf, n)?)?)
        }
        other => return Err(Amf0Error::Unsupported(other)),
    })
}

fn put_key(out: &mut BytesMut, s: &str) {
    let b = s.as_bytes();
    let n = b.len().min(u16::MAX as usize);
    out.put_u16(n as u16);
    out.put_slice(&b[..n]);
}

pub fn encode(out: &mut BytesMut, v: &Amf0) {
    match v {
        Amf0::Number(n) => {
            out.put_u8(0x00);
            out.put_f64(*n);
        }
        Amf0::Bool(b) => {
            out.put_u8(0x01);
            out.put_u8(u8::from(*b));
        }
        Amf0::String(s) if s.len() <= u16::MAX as usize => {
            out.put_u8(0x02);
            put_key(out, s);
        }
        Amf0::String(s) => {
            out.put_u8(0x0C);
            out.put_u32(s.len() as u32);
            out.put_slice(s.as_bytes());
        }
        Amf0::Object(props) => {
            out.put_u8(0x03);
            for (k, v) in props {
                put_key(out, k);
                encode(out, v);
            }
            out.put_slice(&[0, 0, 9]);
        }
        Amf0::Null => out.put_u8(0x05),
        Amf0::Undefined => out.put_u8(0x06),
        Amf0::EcmaArray(props) => {
            out.put_u8(0x08);
            out.put_u32(props.len() as u32);
            for (k, v) in props {
                put_key(out, k);
                encode(out, v);
            }
            out.put_slice(&[0, 0, 9]);
        }
        Amf0::StrictArray(items) => {
            out.put_u8(0x0A);
            out.put_u32(items.len() as u32);
            for v in items {
                encode(out, v);
            }
        }
        Amf0::Date(ms) => {
            out.put_u8(0x0B);
            out.put_f64(*ms);
            out.put_u16(0);
        }
    }
}

pub fn encode_all(values: &[Amf0]) -> BytesMut {
    let mut out = BytesMut::new();
    for v in values {
        encode(&mut out, v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let values = vec![
            Amf0::str("connect"),
            Amf0::Number(1.0),
            Amf0::object([
                ("app", Amf0::str("live")),
                ("flag", Amf0::Bool(true)),
                ("nested", Amf0::EcmaArray(vec![("x".into(), Amf0::Null)])),
            ]),
            Amf0::StrictArray(vec![Amf0::Undefined, Amf0::Date(5.0)]),
            Amf0::String("é".repeat(40_000)),
        ];
        let bytes = encode_all(&values);
        assert_eq!(decode_all(&bytes).unwrap(), values);
    }

    #[test]
    fn hostile_input_is_an_error() {
        assert_eq!(decode_all(&[0x02, 0x00]), Err(Amf0Error::Truncated));
        assert_eq!(
            decode_all(&[0x0A, 0xFF, 0xFF, 0xFF, 0xFF]),
            Err(Amf0Error::Truncated)
        );
        assert_eq!(decode_all(&[0x07, 0, 0]), Err(Amf0Error::Unsupported(7)));
        assert_eq!(decode_all(&[0x02, 0, 1, 0xFF]), Err(Amf0Error::BadString));
        let deep = [0x0Au8, 0, 0, 0, 1].repeat(100);
        assert_eq!(decode_all(&deep), Err(Amf0Error::TooDeep));
        // An object without its end marker.
        assert_eq!(
            decode_all(&[0x03, 0, 1, b'a', 0x05]),
            Err(Amf0Error::Truncated)
        );
    }
}
