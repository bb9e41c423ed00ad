//! The API request signature, version 2.0:
//! `lowercase_hex(md5(AppId + SignatureNonce + ServerSecret + Timestamp))`.

use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

pub fn sign(app_id: u32, nonce: &str, server_secret: &str, timestamp: &str) -> String {
    let mut h = Md5::new();
    h.update(app_id.to_string().as_bytes());
    h.update(nonce.as_bytes());
    h.update(server_secret.as_bytes());
    h.update(timestamp.as_bytes());
    hex::encode(h.finalize())
}

/// Compares a received signature with the expected one in constant time, so timing does
/// not reveal how many leading characters were right. Upper-case hex is accepted too.
pub fn verify(expected: &str, received: &str) -> bool {
    let received = received.to_ascii_lowercase();
    expected.as_bytes().ct_eq(received.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_vector() {
        // zego-server-api.md §1.4
        let s = sign(
            12345,
            "4fd24687296dd9f3",
            "9193cc662a4c0ec135ec71fb57194b38",
            "1615186943",
        );
        assert_eq!(s, "43e5cfcca828314675f91b001390566a");
        assert!(verify(&s, "43E5CFCCA828314675F91B001390566A"));
        assert!(!verify(&s, "43e5cfcca828314675f91b001390566b"));
        assert!(!verify(&s, ""));
    }
}
