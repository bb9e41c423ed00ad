//! Requests signed the way Tencent Cloud's SDKs sign them (TC3-HMAC-SHA256), computed
//! independently of the server's code.

use std::process::Command;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Server;

pub const SECRET_ID: &str = "AKIDEXAMPLE";
pub const SECRET_KEY: &str = "SecretKeyExample";

pub fn hmac256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

pub fn utc_date(ts: u64) -> String {
    let out = Command::new("date")
        .args(["-u", "-d", &format!("@{ts}"), "+%Y-%m-%d"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A TC3-signed request: POST with a JSON body, or GET with a flattened query.
pub fn tc3(
    s: &Server,
    action: &str,
    key: &str,
    ts: u64,
    get_query: Option<&str>,
    body: &str,
) -> (String, Value) {
    let host = s.base.trim_start_matches("http://").to_string();
    let (method, query, payload, ctype) = match get_query {
        Some(q) => ("GET", q, "", "application/x-www-form-urlencoded"),
        None => ("POST", "", body, "application/json"),
    };
    let canonical = format!(
        "{method}\n/\n{query}\ncontent-type:{ctype}\nhost:{host}\n\ncontent-type;host\n{}",
        hex::encode(Sha256::digest(payload.as_bytes()))
    );
    let date = utc_date(ts);
    let to_sign = format!(
        "TC3-HMAC-SHA256\n{ts}\n{date}/live/tc3_request\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let k = hmac256(format!("TC3{key}").as_bytes(), date.as_bytes());
    let k = hmac256(&k, b"live");
    let k = hmac256(&k, b"tc3_request");
    let sig = hex::encode(hmac256(&k, to_sign.as_bytes()));
    let auth = format!(
        "TC3-HMAC-SHA256 Credential={SECRET_ID}/{date}/live/tc3_request, SignedHeaders=content-type;host, Signature={sig}"
    );
    let client = reqwest::blocking::Client::new();
    let url = if query.is_empty() {
        format!("{}/", s.base)
    } else {
        format!("{}/?{query}", s.base)
    };
    let req = if method == "GET" {
        client.get(url)
    } else {
        client.post(url).body(payload.to_string())
    };
    let resp = req
        .header("Content-Type", ctype)
        .header("X-TC-Action", action)
        .header("X-TC-Version", "2018-08-01")
        .header("X-TC-Timestamp", ts.to_string())
        .header("Authorization", auth)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    (ct, resp.json().unwrap())
}
