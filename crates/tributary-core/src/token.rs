//! Signed access tokens for the live plane: publish, play and room event feeds.
//!
//! A token is `{expiry}.{hex HMAC-SHA256}` keyed with the app's ServerSecret. The MAC
//! covers a purpose tag, the app id, the stream id, the room, the user and the expiry, so
//! a token minted to publish `s1` into room `r` as user `u` cannot publish anything else,
//! cannot be used to play, and stops working at `expiry` (Unix seconds). The backend
//! mints tokens with the secret it already holds for the server API; nothing is stored.
//! Pure: the caller passes the current time.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::app::AppId;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Publish,
    Play,
    /// Reading a room's event feed (`stream_id` is empty).
    RoomEvents,
}

impl Purpose {
    fn tag(self) -> &'static str {
        match self {
            Purpose::Publish => "publish",
            Purpose::Play => "play",
            Purpose::RoomEvents => "room-events",
        }
    }
}

/// The claims a token is bound to. Empty strings stand for "not part of this token"
/// (e.g. room and user of a play token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims<'a> {
    pub purpose: Purpose,
    pub app_id: AppId,
    pub stream_id: &'a str,
    pub room_id: &'a str,
    pub user_id: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no token")]
    Missing,
    #[error("malformed token")]
    Malformed,
    #[error("token expired at {expiry} (now {now})")]
    Expired { expiry: u64, now: u64 },
    #[error("token signature does not match (wrong secret, stream, room, user or purpose)")]
    BadSignature,
}

fn mac(secret: &str, claims: &Claims<'_>, expiry: u64) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail; the fallback keeps it total.
    let mut m = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return [0; 32],
    };
    // Newline-separated fields: ids cannot contain a newline (see `ids`), so the encoding
    // is unambiguous.
    let msg = format!(
        "tributary-token-v1\n{}\n{}\n{}\n{}\n{}\n{}",
        claims.purpose.tag(),
        claims.app_id,
        claims.stream_id,
        claims.room_id,
        claims.user_id,
        expiry
    );
    m.update(msg.as_bytes());
    m.finalize().into_bytes().into()
}

/// Mints a token valid until `expiry` (Unix seconds).
pub fn mint(secret: &str, claims: &Claims<'_>, expiry: u64) -> String {
    format!("{expiry}.{}", hex::encode(mac(secret, claims, expiry)))
}

/// Checks `token` against the claims at `now` (Unix seconds), in constant time.
pub fn verify(
    secret: &str,
    claims: &Claims<'_>,
    token: Option<&str>,
    now: u64,
) -> Result<(), TokenError> {
    let token = token.filter(|t| !t.is_empty()).ok_or(TokenError::Missing)?;
    let (exp, sig) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let expiry: u64 = exp.parse().map_err(|_| TokenError::Malformed)?;
    let sig = hex::decode(sig).map_err(|_| TokenError::Malformed)?;
    if sig.len() != 32 {
        return Err(TokenError::Malformed);
    }
    let expected = mac(secret, claims, expiry);
    if !bool::from(expected.as_slice().ct_eq(&sig)) {
        return Err(TokenError::BadSignature);
    }
    if now >= expiry {
        return Err(TokenError::Expired { expiry, now });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(purpose: Purpose) -> Claims<'static> {
        Claims {
            purpose,
            app_id: 1,
            stream_id: "s1",
            room_id: "r1",
            user_id: "u1",
        }
    }

    #[test]
    fn round_trip_and_expiry() {
        let t = mint("secret", &claims(Purpose::Publish), 1000);
        assert!(t.starts_with("1000."));
        assert_eq!(
            verify("secret", &claims(Purpose::Publish), Some(&t), 999),
            Ok(())
        );
        assert_eq!(
            verify("secret", &claims(Purpose::Publish), Some(&t), 1000),
            Err(TokenError::Expired {
                expiry: 1000,
                now: 1000
            })
        );
    }

    #[test]
    fn every_claim_is_bound() {
        let t = mint("secret", &claims(Purpose::Publish), 1000);
        let bad = |c: Claims<'_>| verify("secret", &c, Some(&t), 1);
        assert_eq!(bad(claims(Purpose::Play)), Err(TokenError::BadSignature));
        let mut c = claims(Purpose::Publish);
        c.stream_id = "s2";
        assert_eq!(bad(c), Err(TokenError::BadSignature));
        let mut c = claims(Purpose::Publish);
        c.room_id = "r2";
        assert_eq!(bad(c), Err(TokenError::BadSignature));
        let mut c = claims(Purpose::Publish);
        c.user_id = "u2";
        assert_eq!(bad(c), Err(TokenError::BadSignature));
        let mut c = claims(Purpose::Publish);
        c.app_id = 2;
        assert_eq!(bad(c), Err(TokenError::BadSignature));
        assert_eq!(
            verify("other", &claims(Purpose::Publish), Some(&t), 1),
            Err(TokenError::BadSignature)
        );
        // A later expiry with the old MAC does not pass.
        let forged = t.replacen("1000.", "2000.", 1);
        assert_eq!(
            verify("secret", &claims(Purpose::Publish), Some(&forged), 1),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn malformed_tokens() {
        let c = claims(Purpose::Play);
        assert_eq!(verify("s", &c, None, 1), Err(TokenError::Missing));
        assert_eq!(verify("s", &c, Some(""), 1), Err(TokenError::Missing));
        for t in [
            "x",
            "1.",
            "a.00",
            "1.zz",
            "1.00",
            "99999999999999999999999.00",
        ] {
            assert_eq!(
                verify("s", &c, Some(t), 1),
                Err(TokenError::Malformed),
                "{t}"
            );
        }
    }
}
