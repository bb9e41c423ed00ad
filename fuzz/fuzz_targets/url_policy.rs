//! The URL policy on arbitrary strings: parsing never panics, a refused literal address is
//! never accepted, and redaction never leaks the query or a path past the first segment.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_core::url_policy::{self, Purpose, UrlPolicy, redact};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let policy = UrlPolicy::default();
    for purpose in [Purpose::MixInput, Purpose::MixOutput, Purpose::Image, Purpose::Relay] {
        if let Ok(u) = policy.parse(s, purpose) {
            if let Some(ip) = u.ip() {
                assert!(url_policy::classify(ip).is_none(), "{s} reached {ip}");
            }
            assert!(u.path_and_query.starts_with('/'));
        }
        let _ = url_policy::syntax(s, purpose);
    }
    let r = redact(s);
    if let Some((_, after)) = r.split_once("://") {
        if let Some((_, q)) = after.split_once('?') {
            assert_eq!(q, "***", "{s} -> {r}");
        }
        // At most the first path segment survives; the rest are masked.
        for seg in after.split('/').skip(2) {
            assert!(seg == "***" || seg.starts_with("***?"), "{s} -> {r}");
        }
    }
});
