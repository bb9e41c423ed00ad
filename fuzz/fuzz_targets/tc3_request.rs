//! TC3-HMAC-SHA256 verification of an arbitrary request: the Authorization header's
//! parsing, the canonical request over any method, query, headers and body, and the
//! legacy form's verification. Never a panic; never accepted without the key's signature.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_api::tencent::{legacy, signature};

fuzz_target!(|data: &[u8]| {
    // Fields separated by 0x00: method, query, authorization, timestamp, host, body.
    let mut parts = data.splitn(6, |&b| b == 0);
    let mut next = || String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let (method, query, auth, ts, host) = (next(), next(), next(), next(), next());
    let body = parts_rest(data);
    let header = |name: &str| match name {
        "authorization" => Some(auth.clone()),
        "x-tc-timestamp" => Some(ts.clone()),
        "host" => Some(host.clone()),
        "content-type" => Some("application/json".to_string()),
        _ => None,
    };
    let req = signature::Request {
        method: &method,
        raw_query: &query,
        header: &header,
        body: &body,
    };
    let key = |id: &str| (id == "AKIDFUZZ").then(|| "fuzz-secret-key".to_string());
    let _ = signature::parse_authorization(&auth);
    let _ = signature::verify(&req, 1_700_000_000, None, &key);
    let _ = signature::verify(&req, i64::MIN, Some("live"), &key);
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let _ = legacy::verify(&method, &host, &pairs, 1_700_000_000, &key);
});

fn parts_rest(data: &[u8]) -> Vec<u8> {
    data.splitn(6, |&b| b == 0).nth(5).unwrap_or_default().to_vec()
}
