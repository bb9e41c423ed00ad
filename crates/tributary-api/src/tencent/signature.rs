//! TC3-HMAC-SHA256, verified the way the Tencent Cloud SDKs force on a server (spec
//! `tencent-live-api.md` §0 and §2): everything is taken from the raw request as sent —
//! `SignedHeaders` from the Authorization header, header values lower-cased and trimmed,
//! the raw query string and the raw body bytes — and never re-serialised.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The payload hash of `X-TC-Content-SHA256: UNSIGNED-PAYLOAD`.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Timestamps further than this from the server's clock are refused.
pub const MAX_SKEW_S: i64 = 300;

/// Why a request's signature was not accepted; each maps to an `AuthFailure.*` code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Tc3Error {
    #[error("the Authorization header is missing or not TC3-HMAC-SHA256: {0}")]
    Malformed(String),
    #[error("X-TC-Timestamp {ts} is more than {MAX_SKEW_S} s from the server's time {now}")]
    Expired { ts: i64, now: i64 },
    #[error("SecretId {0} is not known")]
    SecretIdNotFound(String),
    #[error("the credential scope's service is {got:?}, expected {expected:?}")]
    WrongService { got: String, expected: String },
    #[error(
        "The provided credentials could not be validated. Please check your signature is correct."
    )]
    Mismatch,
}

/// The parts of the `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub secret_id: String,
    pub date: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Parses `TC3-HMAC-SHA256 Credential=ID/DATE/SERVICE/tc3_request, SignedHeaders=a;b, Signature=HEX`.
pub fn parse_authorization(value: &str) -> Result<Authorization, Tc3Error> {
    let rest = value
        .trim()
        .strip_prefix("TC3-HMAC-SHA256")
        .ok_or_else(|| Tc3Error::Malformed("it does not start with TC3-HMAC-SHA256".into()))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for item in rest.split(',') {
        let Some((k, v)) = item.trim().split_once('=') else {
            continue;
        };
        match k.trim() {
            "Credential" => credential = Some(v.trim()),
            "SignedHeaders" => signed = Some(v.trim()),
            "Signature" => signature = Some(v.trim()),
            _ => {}
        }
    }
    let (Some(credential), Some(signed), Some(signature)) = (credential, signed, signature) else {
        return Err(Tc3Error::Malformed(
            "Credential, SignedHeaders and Signature are all required".into(),
        ));
    };
    let parts: Vec<&str> = credential.split('/').collect();
    let [secret_id, date, service, "tc3_request"] = parts.as_slice() else {
        return Err(Tc3Error::Malformed(
            "Credential must be SecretId/Date/Service/tc3_request".into(),
        ));
    };
    let signed_headers: Vec<String> = signed
        .split(';')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    if !signed_headers.iter().any(|h| h == "host")
        || !signed_headers.iter().any(|h| h == "content-type")
    {
        return Err(Tc3Error::Malformed(
            "SignedHeaders must include content-type and host".into(),
        ));
    }
    Ok(Authorization {
        secret_id: secret_id.to_string(),
        date: date.to_string(),
        service: service.to_string(),
        signed_headers,
        signature: signature.to_ascii_lowercase(),
    })
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length; this cannot fail.
    let mut m = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

/// The canonical request: method, `/`, the raw query, the signed headers as
/// `name:lower(trim(value))` lines, the signed header names, the payload hash.
pub fn canonical_request(
    method: &str,
    raw_query: &str,
    signed_headers: &[String],
    header: &dyn Fn(&str) -> Option<String>,
    payload_hash: &str,
) -> String {
    let mut s = format!("{method}\n/\n{raw_query}\n");
    for h in signed_headers {
        let v = header(h).unwrap_or_default();
        s.push_str(h);
        s.push(':');
        s.push_str(&v.trim().to_ascii_lowercase());
        s.push('\n');
    }
    s.push('\n');
    s.push_str(&signed_headers.join(";"));
    s.push('\n');
    s.push_str(payload_hash);
    s
}

/// The hex signature of a canonical request.
pub fn sign(
    secret_key: &str,
    date: &str,
    service: &str,
    timestamp: &str,
    canonical: &str,
) -> String {
    let to_sign = format!(
        "TC3-HMAC-SHA256\n{timestamp}\n{date}/{service}/tc3_request\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let k_date = hmac(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let k_service = hmac(&k_date, service.as_bytes());
    let k_signing = hmac(&k_service, b"tc3_request");
    hex::encode(hmac(&k_signing, to_sign.as_bytes()))
}

/// One request as received.
pub struct Request<'a> {
    pub method: &'a str,
    /// The query string after `?`, exactly as sent (empty for none).
    pub raw_query: &'a str,
    /// Header lookup by lower-case name (first value).
    pub header: &'a dyn Fn(&str) -> Option<String>,
    pub body: &'a [u8],
}

/// Verifies a request; returns the SecretId it was signed with.
///
/// `secret_key` looks up a SecretId; `service` is the scope's service to require (None:
/// take it as given — the Node SDK puts the endpoint's first label there). Both Host
/// variants are tried, as sent and without its port (the Node SDK signs the latter).
pub fn verify(
    req: &Request,
    now_s: i64,
    service: Option<&str>,
    secret_key: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Tc3Error> {
    let auth = (req.header)("authorization")
        .ok_or_else(|| Tc3Error::Malformed("no Authorization header".into()))
        .and_then(|v| parse_authorization(&v))?;
    let ts_text = (req.header)("x-tc-timestamp")
        .ok_or_else(|| Tc3Error::Malformed("no X-TC-Timestamp header".into()))?;
    let ts: i64 = ts_text.trim().parse().map_err(|_| {
        Tc3Error::Malformed(format!("X-TC-Timestamp {ts_text:?} is not an integer"))
    })?;
    if !tributary_core::replay::within_window(now_s, ts, MAX_SKEW_S) {
        return Err(Tc3Error::Expired { ts, now: now_s });
    }
    if let Some(expected) = service
        && expected != auth.service
    {
        return Err(Tc3Error::WrongService {
            got: auth.service.clone(),
            expected: expected.to_string(),
        });
    }
    let key = secret_key(&auth.secret_id)
        .ok_or_else(|| Tc3Error::SecretIdNotFound(auth.secret_id.clone()))?;
    let payload_hash = match (req.header)("x-tc-content-sha256") {
        Some(v) if v.trim() == UNSIGNED_PAYLOAD => sha256_hex(UNSIGNED_PAYLOAD.as_bytes()),
        _ => sha256_hex(req.body),
    };
    let host = (req.header)("host").unwrap_or_default();
    let mut hosts = vec![host.clone()];
    if let Some((name, port)) = host.rsplit_once(':')
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
    {
        hosts.push(name.to_string());
    }
    let mut ok = false;
    for h in hosts {
        let lookup = |name: &str| {
            if name == "host" {
                Some(h.clone())
            } else {
                (req.header)(name)
            }
        };
        let canonical = canonical_request(
            req.method,
            req.raw_query,
            &auth.signed_headers,
            &lookup,
            &payload_hash,
        );
        let expected = sign(&key, &auth.date, &auth.service, ts_text.trim(), &canonical);
        // Constant time over the whole value; `|` so every variant is computed.
        ok |= bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes()));
    }
    if ok {
        Ok(auth.secret_id)
    } else {
        Err(Tc3Error::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        move |name: &str| {
            owned
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    fn ch() -> Vec<String> {
        vec!["content-type".to_string(), "host".to_string()]
    }

    #[test]
    fn official_get_vector() {
        let h = headers(&[
            ("content-type", "application/x-www-form-urlencoded"),
            ("host", "cvm.tencentcloudapi.com"),
        ]);
        let canonical = canonical_request("GET", "Limit=10&Offset=0", &ch(), &h, &sha256_hex(b""));
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "91c9c192c14460df6c1ffc69e34e6c5e90708de2a6d282cccf957dbf1aa7f3a7"
        );
        assert_eq!(
            sign(
                "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
                "2018-10-09",
                "cvm",
                "1539084154",
                &canonical
            ),
            "5da7a33f6993f0614b047e5df4582db9e9bf4672ba50567dba16c6ccf174c474"
        );
    }

    #[test]
    fn official_post_vector() {
        let body = r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
        assert_eq!(
            sha256_hex(body.as_bytes()),
            "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        let h = headers(&[
            ("content-type", "application/json; charset=utf-8"),
            ("host", "cvm.tencentcloudapi.com"),
        ]);
        let canonical = canonical_request("POST", "", &ch(), &h, &sha256_hex(body.as_bytes()));
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(
            sign(
                "Gu5t9xGARNpq86cd98joQYCN3*******",
                "2019-02-25",
                "cvm",
                "1551113065",
                &canonical
            ),
            "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
        );
    }

    fn sdk_request<'a>(
        method: &'a str,
        query: &'a str,
        body: &'a [u8],
        header: &'a dyn Fn(&str) -> Option<String>,
    ) -> Request<'a> {
        Request {
            method,
            raw_query: query,
            header,
            body,
        }
    }

    fn keys(id: &str) -> Option<String> {
        (id == "AKIDEXAMPLE").then(|| "SecretKeyExample".to_string())
    }

    #[test]
    fn python_sdk_vectors_verify_and_fail_as_they_should() {
        let auth = |sig: &str| {
            format!(
                "TC3-HMAC-SHA256 Credential=AKIDEXAMPLE/2023-11-14/live/tc3_request, SignedHeaders=content-type;host, Signature={sig}"
            )
        };
        let body = br#"{"MixStreamSessionId": "test_room"}"#;
        assert_eq!(body.len(), 35);
        assert_eq!(
            sha256_hex(body),
            "cb50f4935fd8fb5fd452e78e7d571c9d6b4a2a60d2e582a551bc796a3ce70351"
        );
        let post_auth = auth("66521eb1b478a57b8c1a4510797f8876c97526e5865c69bdf25b15a5a2a024bc");
        let h = headers(&[
            ("Content-Type", "application/json"),
            ("Host", "127.0.0.1:18087"),
            ("X-TC-Timestamp", "1700000000"),
            ("Authorization", &post_auth),
        ]);
        let req = sdk_request("POST", "", body, &h);
        assert_eq!(
            verify(&req, 1_700_000_100, Some("live"), &keys),
            Ok("AKIDEXAMPLE".into())
        );
        // Outside ±300 s, an unknown key, another service, a changed byte.
        assert!(matches!(
            verify(&req, 1_700_000_301, None, &keys),
            Err(Tc3Error::Expired { .. })
        ));
        assert_eq!(
            verify(&req, 1_700_000_000, None, &|_| None),
            Err(Tc3Error::SecretIdNotFound("AKIDEXAMPLE".into()))
        );
        assert!(matches!(
            verify(&req, 1_700_000_000, Some("cvm"), &keys),
            Err(Tc3Error::WrongService { .. })
        ));
        let tampered = br#"{"MixStreamSessionId": "test_rooM"}"#;
        let req = sdk_request("POST", "", tampered, &h);
        assert_eq!(
            verify(&req, 1_700_000_000, None, &keys),
            Err(Tc3Error::Mismatch)
        );

        let get_auth = auth("ec93e9558b1dccd652e625d8205b64d391f409af2d7e203d301d2223da9c4184");
        let h = headers(&[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Host", "127.0.0.1:18087"),
            ("X-TC-Timestamp", "1700000000"),
            ("Authorization", &get_auth),
        ]);
        let req = sdk_request("GET", "MixStreamSessionId=test_room", b"", &h);
        assert_eq!(
            verify(&req, 1_700_000_000, None, &keys),
            Ok("AKIDEXAMPLE".into())
        );
    }

    #[test]
    fn the_python_sdk_create_request_verifies() {
        // Spec §7.3: a full CreateCommonMixStream as the Python SDK 3.1.195 sent it.
        let body = include_bytes!("../../testdata/tencent_sdk_create.json");
        assert_eq!(
            sha256_hex(body),
            "e089f1dd706169d9b7a73f796f6e70271ad818d2e26f61430ccf24977bc0154b"
        );
        let auth = "TC3-HMAC-SHA256 Credential=AKIDEXAMPLE/2026-11-22/live/tc3_request, SignedHeaders=content-type;host, Signature=d89769e3d212e062e34c02db5aae6b7c9f93a10857f694f0118a97c7bd4dacf3";
        let h = headers(&[
            ("Content-Type", "application/json"),
            ("Host", "127.0.0.1:18086"),
            ("X-TC-Action", "CreateCommonMixStream"),
            ("X-TC-Timestamp", "1795315902"),
            ("Authorization", auth),
        ]);
        let req = sdk_request("POST", "", body, &h);
        assert_eq!(
            verify(&req, 1_795_315_902, Some("live"), &keys),
            Ok("AKIDEXAMPLE".into())
        );
    }

    #[test]
    fn host_without_port_and_unsigned_payload_are_accepted() {
        // What the Node SDK does: it signs the host without the port, sends it with.
        let h0 = headers(&[("content-type", "application/json"), ("host", "127.0.0.1")]);
        let canonical = canonical_request(
            "POST",
            "",
            &ch(),
            &h0,
            &sha256_hex(UNSIGNED_PAYLOAD.as_bytes()),
        );
        let sig = sign("k", "2023-11-14", "127", "1700000000", &canonical);
        let auth = format!(
            "TC3-HMAC-SHA256 Credential=id/2023-11-14/127/tc3_request, SignedHeaders=content-type;host, Signature={sig}"
        );
        let h = headers(&[
            ("content-type", "application/json"),
            ("host", "127.0.0.1:9000"),
            ("x-tc-timestamp", "1700000000"),
            ("x-tc-content-sha256", "UNSIGNED-PAYLOAD"),
            ("authorization", &auth),
        ]);
        let req = Request {
            method: "POST",
            raw_query: "",
            header: &h,
            body: b"{\"any\": \"body\"}",
        };
        assert_eq!(
            verify(&req, 1_700_000_000, None, &|id: &str| (id == "id")
                .then(|| "k".to_string())),
            Ok("id".into())
        );
    }

    #[test]
    fn malformed_authorization_is_refused() {
        for bad in [
            "",
            "HMAC-SHA256 Credential=a/b/c/tc3_request, SignedHeaders=content-type;host, Signature=x",
            "TC3-HMAC-SHA256 Credential=a/b/c/other, SignedHeaders=content-type;host, Signature=x",
            "TC3-HMAC-SHA256 Credential=a/b/c/tc3_request, SignedHeaders=host, Signature=x",
            "TC3-HMAC-SHA256 Credential=a/b/c/tc3_request, Signature=x",
        ] {
            assert!(
                matches!(parse_authorization(bad), Err(Tc3Error::Malformed(_))),
                "{bad}"
            );
        }
        let a = parse_authorization(
            "TC3-HMAC-SHA256 Credential=AKID/2023-11-14/live/tc3_request, SignedHeaders=content-type;host;x-tc-action, Signature=ABC",
        )
        .unwrap();
        assert_eq!(a.secret_id, "AKID");
        assert_eq!(a.service, "live");
        assert_eq!(a.signed_headers, ["content-type", "host", "x-tc-action"]);
        assert_eq!(a.signature, "abc");
    }
}
