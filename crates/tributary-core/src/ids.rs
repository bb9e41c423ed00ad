//! Identifier rules: which room, user and stream ids are acceptable.
//!
//! Ids end up in URLs (`rtmp://host/app/{stream}`, `/rooms/{room}/events`), in SQL rows and
//! in callback payloads, so they are checked once, here, on the way in.

use std::fmt;

use crate::error::CoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Stream,
    Room,
    User,
}

impl IdKind {
    /// The longest id of this kind, in bytes.
    pub const fn max_len(self) -> usize {
        match self {
            IdKind::Stream => 256,
            IdKind::Room => 128,
            IdKind::User => 255,
        }
    }
}

impl fmt::Display for IdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdKind::Stream => "StreamId",
            IdKind::Room => "RoomId",
            IdKind::User => "UserId",
        })
    }
}

/// Punctuation the vendor allows in string parameters, minus `/` and `\`: a slash inside
/// a stream id would make `rtmp://host/{app}/{stream}` ambiguous, so no id may hold one.
const ALLOWED_PUNCTUATION: &str = "~!@#$%^&*()_+=-`;',.<>";

/// Checks an id of the given kind: non-empty, short enough, allowed characters only.
pub fn validate(kind: IdKind, id: &str) -> Result<(), CoreError> {
    if id.is_empty() {
        return Err(CoreError::MissingId { kind });
    }
    if id.len() > kind.max_len() {
        return Err(CoreError::IdTooLong {
            kind,
            len: id.len(),
            max: kind.max_len(),
        });
    }
    if let Some(ch) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ALLOWED_PUNCTUATION.contains(*c)))
    {
        return Err(CoreError::IdBadChar { kind, ch });
    }
    Ok(())
}

/// Checks an optional free-text field's length in bytes.
pub fn validate_len(field: &'static str, value: &str, max: usize) -> Result<(), CoreError> {
    if value.len() > max {
        return Err(CoreError::FieldTooLong {
            field,
            len: value.len(),
            max,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_vendor_charset() {
        assert!(validate(IdKind::Stream, "stream_demo-1.a~b!c@d").is_ok());
        assert!(validate(IdKind::Room, "room#1").is_ok());
    }

    #[test]
    fn rejects_empty_long_and_bad_chars() {
        assert_eq!(
            validate(IdKind::Stream, ""),
            Err(CoreError::MissingId {
                kind: IdKind::Stream
            })
        );
        let long = "a".repeat(257);
        assert!(matches!(
            validate(IdKind::Stream, &long),
            Err(CoreError::IdTooLong {
                len: 257,
                max: 256,
                ..
            })
        ));
        assert!(validate(IdKind::Stream, &"a".repeat(256)).is_ok());
        assert!(matches!(
            validate(IdKind::Stream, "a/b"),
            Err(CoreError::IdBadChar { ch: '/', .. })
        ));
        assert!(matches!(
            validate(IdKind::Room, "a b"),
            Err(CoreError::IdBadChar { ch: ' ', .. })
        ));
        assert!(matches!(
            validate(IdKind::User, "é"),
            Err(CoreError::IdBadChar { ch: 'é', .. })
        ));
    }

    #[test]
    fn field_length() {
        assert!(validate_len("ExtraInfo", &"x".repeat(1024), 1024).is_ok());
        assert!(validate_len("ExtraInfo", &"x".repeat(1025), 1024).is_err());
    }
}
