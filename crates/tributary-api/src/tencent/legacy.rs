//! The legacy API 3.0 signature (`SignatureMethod=HmacSHA1|HmacSHA256`, spec §1): the
//! SDKs still emit it with `ClientProfile(signMethod="HmacSHA256")`. Parameters travel in
//! a form body (or the query); the string to sign is
//! `METHOD + host + "/?" + join("&", sorted("k=v"))` over the *decoded* values, without
//! `Signature`, and the signature is `base64(HMAC(SecretKey, string))`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;

use super::signature::{MAX_SKEW_S, Tc3Error};

fn hmac_b64<M: Mac + hmac::digest::KeyInit>(key: &[u8], msg: &[u8]) -> String {
    let Ok(mut m) = <M as hmac::digest::KeyInit>::new_from_slice(key) else {
        return String::new();
    };
    m.update(msg);
    STANDARD.encode(m.finalize().into_bytes())
}

/// The string the client signed.
pub fn string_to_sign(method: &str, host: &str, params: &[(String, String)]) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .filter(|(k, _)| k != "Signature")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.sort();
    let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{method}{host}/?{}", joined.join("&"))
}

/// Verifies a legacy-signed request (decoded parameters, in any order); returns its SecretId.
pub fn verify(
    method: &str,
    host: &str,
    params: &[(String, String)],
    now_s: i64,
    secret_key: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Tc3Error> {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let signature =
        get("Signature").ok_or_else(|| Tc3Error::Malformed("no Signature parameter".into()))?;
    let secret_id =
        get("SecretId").ok_or_else(|| Tc3Error::Malformed("no SecretId parameter".into()))?;
    let ts_text =
        get("Timestamp").ok_or_else(|| Tc3Error::Malformed("no Timestamp parameter".into()))?;
    let ts: i64 = ts_text
        .parse()
        .map_err(|_| Tc3Error::Malformed(format!("Timestamp {ts_text:?} is not an integer")))?;
    if !tributary_core::replay::within_window(now_s, ts, MAX_SKEW_S) {
        return Err(Tc3Error::Expired { ts, now: now_s });
    }
    let key =
        secret_key(secret_id).ok_or_else(|| Tc3Error::SecretIdNotFound(secret_id.to_string()))?;
    let text = string_to_sign(method, host, params);
    let expected = match get("SignatureMethod").unwrap_or("HmacSHA1") {
        "HmacSHA256" => hmac_b64::<Hmac<sha2::Sha256>>(key.as_bytes(), text.as_bytes()),
        "HmacSHA1" => hmac_b64::<Hmac<sha1::Sha1>>(key.as_bytes(), text.as_bytes()),
        other => {
            return Err(Tc3Error::Malformed(format!(
                "SignatureMethod {other:?} is not HmacSHA1 or HmacSHA256"
            )));
        }
    };
    if bool::from(expected.as_bytes().ct_eq(signature.as_bytes())) {
        Ok(secret_id.to_string())
    } else {
        Err(Tc3Error::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The form body the Python SDK 3.1.195 sent with `signMethod="HmacSHA256"` (spec §7.6).
    const SDK_BODY: &str = "MixStreamSessionId=test_room&InputStreamList.0.InputStreamName=test_stream1&InputStreamList.0.LayoutParams.ImageLayer=1&InputStreamList.1.InputStreamName=test_stream2&InputStreamList.1.LayoutParams.ImageLayer=2&OutputParams.OutputStreamName=test_stream1&MixStreamTemplateId=40&Action=CreateCommonMixStream&RequestClient=SDK_PYTHON_3.1.195&Nonce=788888818051923570&Timestamp=1795315693&Version=2018-08-01&Region=ap-guangzhou&SecretId=AKIDEXAMPLE&SignatureMethod=HmacSHA256&Language=zh-CN&Signature=toO%2FRu%2Fi7NU%2FxVO4k%2FhOEfiDHYVYU8ifjv3CCIule4E%3D";

    fn params(body: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(body.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    fn keys(id: &str) -> Option<String> {
        (id == "AKIDEXAMPLE").then(|| "SecretKeyExample".to_string())
    }

    #[test]
    fn the_python_sdk_request_verifies() {
        let p = params(SDK_BODY);
        assert_eq!(
            verify("POST", "127.0.0.1:18081", &p, 1_795_315_693, &keys),
            Ok("AKIDEXAMPLE".into())
        );
        // Another host, a changed value, an old timestamp, an unknown key.
        assert_eq!(
            verify("POST", "127.0.0.1:18082", &p, 1_795_315_693, &keys),
            Err(Tc3Error::Mismatch)
        );
        let changed = params(&SDK_BODY.replace("MixStreamTemplateId=40", "MixStreamTemplateId=41"));
        assert_eq!(
            verify("POST", "127.0.0.1:18081", &changed, 1_795_315_693, &keys),
            Err(Tc3Error::Mismatch)
        );
        assert!(matches!(
            verify("POST", "127.0.0.1:18081", &p, 1_795_316_000, &keys),
            Err(Tc3Error::Expired { .. })
        ));
        assert!(matches!(
            verify("POST", "127.0.0.1:18081", &p, 1_795_315_693, &|_| None),
            Err(Tc3Error::SecretIdNotFound(_))
        ));
    }

    #[test]
    fn hmac_sha1_is_supported_too() {
        let mut p = params(SDK_BODY);
        p.retain(|(k, _)| k != "Signature" && k != "SignatureMethod");
        p.push(("SignatureMethod".into(), "HmacSHA1".into()));
        let sig = hmac_b64::<Hmac<sha1::Sha1>>(
            b"SecretKeyExample",
            string_to_sign("GET", "live.example", &p).as_bytes(),
        );
        p.push(("Signature".into(), sig));
        assert_eq!(
            verify("GET", "live.example", &p, 1_795_315_693, &keys),
            Ok("AKIDEXAMPLE".into())
        );
    }
}
