//! The callback signature: `sha1` of the lexicographically sorted
//! `[callback_secret, timestamp, nonce]`, concatenated, lowercase hex. It differs from the
//! API request signature on purpose (different secret, different hash).

use sha1::{Digest, Sha1};

pub fn sign(callback_secret: &str, timestamp: &str, nonce: &str) -> String {
    let mut parts = [callback_secret, timestamp, nonce];
    parts.sort_unstable();
    let mut h = Sha1::new();
    for p in parts {
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_vector() {
        // zego-server-api.md §5.2
        assert_eq!(
            sign("secret", "1470820198", "123412"),
            "5bd59fd62953a8059fb7eaba95720f66d19e4517"
        );
    }
}
