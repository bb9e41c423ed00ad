//! Tencent parameters: a flattened form (`InputStreamList.0.LayoutParams.ImageLayer=1`,
//! TC3 GET and the legacy form) rebuilt into JSON, or a JSON body; then the
//! CreateCommonMixStream translation to a mix spec on whatever came out.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tributary_api::tencent::{mix, params};
use tributary_core::mix::MixLimits;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let value = if mode & 1 == 0 {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(rest)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        match params::unflatten(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), &["Action"]) {
            Ok(v) => v,
            Err(_) => return,
        }
    } else {
        match serde_json::from_slice::<Value>(rest) {
            Ok(v) => v,
            Err(_) => return,
        }
    };
    let _ = mix::translate(&value, MixLimits::default(), &|_| Some((640, 480)), &|_| None);
});
