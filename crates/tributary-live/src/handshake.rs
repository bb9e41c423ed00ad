//! The RTMP handshake (simple form: C0/C1/C2 and S0/S1/S2 without digests).
//!
//! The server sends S1 with a zero version field, which tells FFmpeg, librtmp (OBS) and
//! nginx-rtmp peers to skip digest checks; the digest ("complex") handshake only matters
//! to the Flash player, which is gone.

use bytes::{BufMut, BytesMut};

pub const VERSION: u8 = 3;
pub const SIZE: usize = 1536;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("RTMP version {0} not supported (want 3; 6 would be encrypted RTMPE)")]
    Version(u8),
}

fn random_block(epoch: u32) -> BytesMut {
    let mut b = BytesMut::with_capacity(SIZE);
    b.put_u32(epoch);
    b.put_u32(0);
    let mut r = [0u8; SIZE - 8];
    rand::fill(&mut r[..]);
    b.put_slice(&r);
    b
}

/// Server side: given C0+C1 (`1 + SIZE` bytes), returns S0+S1+S2.
pub fn server_response(c0c1: &[u8]) -> Result<BytesMut, HandshakeError> {
    let version = c0c1.first().copied().unwrap_or(0);
    if version != VERSION {
        return Err(HandshakeError::Version(version));
    }
    let c1 = &c0c1[1..(1 + SIZE).min(c0c1.len())];
    let mut out = BytesMut::with_capacity(1 + 2 * SIZE);
    out.put_u8(VERSION);
    out.put_slice(&random_block(0));
    // S2 echoes C1 (its time and random bytes).
    out.put_slice(c1);
    out.resize(1 + 2 * SIZE, 0);
    Ok(out)
}

/// Client side: C0+C1.
pub fn client_hello() -> BytesMut {
    let mut out = BytesMut::with_capacity(1 + SIZE);
    out.put_u8(VERSION);
    out.put_slice(&random_block(0));
    out
}

/// Client side: given S0+S1 (`1 + SIZE` bytes), returns C2.
pub fn client_ack(s0s1: &[u8]) -> Result<BytesMut, HandshakeError> {
    let version = s0s1.first().copied().unwrap_or(0);
    if version != VERSION {
        return Err(HandshakeError::Version(version));
    }
    let mut out = BytesMut::with_capacity(SIZE);
    out.put_slice(&s0s1[1..(1 + SIZE).min(s0s1.len())]);
    out.resize(SIZE, 0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_echoes_c1() {
        let hello = client_hello();
        let resp = server_response(&hello).unwrap();
        assert_eq!(resp.len(), 1 + 2 * SIZE);
        assert_eq!(resp[0], 3);
        assert_eq!(&resp[1 + SIZE..], &hello[1..]);
        assert_eq!(&resp[5..9], &[0, 0, 0, 0], "zero version: no digest");
        assert_eq!(client_ack(&resp[..1 + SIZE]).unwrap(), resp[1..1 + SIZE]);
        assert_eq!(
            server_response(&[6u8; 1537]),
            Err(HandshakeError::Version(6))
        );
    }
}
