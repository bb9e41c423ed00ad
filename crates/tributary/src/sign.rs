//! Signed request URLs for the ZEGO dialect, for people and scripts calling the API.

use tributary_api::zego::signature;
use tributary_core::AppConfig;

/// A complete signed URL: `{base}/?Action=…&<params>&AppId=…&SignatureNonce=…&Timestamp=…
/// &Signature=…&SignatureVersion=2.0` (plus `IsTest=true` for a test app).
pub fn signed_url(
    base: &str,
    app: &AppConfig,
    action: &str,
    params: &[(String, String)],
    now_secs: u64,
) -> String {
    let nonce = hex::encode(rand::random::<[u8; 8]>());
    let ts = now_secs.to_string();
    let sig = signature::sign(app.app_id, &nonce, &app.server_secret, &ts);
    let mut q = form_urlencoded_pairs(&[("Action", action)]);
    for (k, v) in params {
        q.push('&');
        q.push_str(&form_urlencoded_pairs(&[(k.as_str(), v.as_str())]));
    }
    let app_id = app.app_id.to_string();
    q.push('&');
    q.push_str(&form_urlencoded_pairs(&[
        ("AppId", app_id.as_str()),
        ("SignatureNonce", nonce.as_str()),
        ("Timestamp", ts.as_str()),
        ("Signature", sig.as_str()),
        ("SignatureVersion", "2.0"),
    ]));
    if app.is_test {
        q.push_str("&IsTest=true");
    }
    format!("{}/?{}", base.trim_end_matches('/'), q)
}

/// Percent-encodes pairs; brackets in keys (`StreamId[]`) stay readable.
fn form_urlencoded_pairs(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k).replace("%5B%5D", "[]"), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_carries_a_valid_signature() {
        let app = AppConfig::new(12345, "secret".into(), "cb".into());
        let url = signed_url(
            "http://h:1/",
            &app,
            "ForbidRTCStreams",
            &[("StreamId[]".into(), "a b".into())],
            1_700_000_000,
        );
        assert!(
            url.starts_with("http://h:1/?Action=ForbidRTCStreams&StreamId[]=a%20b&AppId=12345&")
        );
        let q = url.split_once('?').unwrap().1;
        let get = |k: &str| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                .unwrap()
                .to_string()
        };
        let expected = signature::sign(12345, &get("SignatureNonce"), "secret", "1700000000");
        assert_eq!(get("Signature"), expected);
        assert_eq!(get("SignatureVersion"), "2.0");
    }
}
