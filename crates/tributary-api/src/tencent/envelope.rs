//! Replies as the SDKs parse them (spec §0 rules 2–4, §3): always HTTP 200, the
//! `Content-Type` exactly `application/json` (with a charset the Python SDK silently takes
//! an error for a success), and a `RequestId` in every reply, errors included.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// A fresh request id in the vendor's UUID form.
pub fn new_request_id() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex::encode(b);
    format!(
        "{}-{}-4{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[16..20],
        &h[20..32]
    )
}

/// An error code and message of the dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcError {
    pub code: &'static str,
    pub message: String,
}

impl TcError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        TcError {
            code,
            message: message.into(),
        }
    }
}

/// `{"Response": {…fields, "RequestId"}}` or `{"Response": {"Error": {…}, "RequestId"}}`.
pub fn body(result: Result<Map<String, Value>, TcError>, request_id: &str) -> Value {
    let mut response = match result {
        Ok(fields) => fields,
        Err(e) => {
            let mut m = Map::new();
            m.insert(
                "Error".into(),
                json!({"Code": e.code, "Message": e.message}),
            );
            m
        }
    };
    response.insert("RequestId".into(), Value::from(request_id));
    json!({ "Response": response })
}

pub fn reply(result: Result<Map<String, Value>, TcError>, request_id: &str) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body(result, request_id).to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_and_error_shapes() {
        let ok = body(Ok(Map::new()), "r1");
        assert_eq!(ok, json!({"Response": {"RequestId": "r1"}}));
        let err = body(
            Err(TcError::new(
                "InvalidParameter.CancelSessionNotExist",
                "The canceled session does not exist.",
            )),
            "r2",
        );
        assert_eq!(
            err,
            json!({"Response": {"Error": {"Code": "InvalidParameter.CancelSessionNotExist",
                                           "Message": "The canceled session does not exist."},
                                 "RequestId": "r2"}})
        );
        let id = new_request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
        assert_eq!(&id[14..15], "4");
    }

    #[test]
    fn the_content_type_has_no_charset() {
        let r = reply(Ok(Map::new()), "r");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some("application/json")
        );
    }
}
