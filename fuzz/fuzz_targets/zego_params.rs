//! ZEGO request parameters: a query (`X[]`, `X%5B%5D`, repeated `X` arrays) merged with a
//! JSON body, then the gateway's action parsing. The first 0xFF byte splits query from body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_api::zego::gateway::parse_action;
use tributary_api::zego::params::Params;

fuzz_target!(|data: &[u8]| {
    let (query, body) = match data.iter().position(|&b| b == 0xFF) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let query = String::from_utf8_lossy(query);
    let mut p = Params::from_query(&query);
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(body) {
        p.merge_json(map);
    }
    let _ = parse_action(&p);
    for key in ["Action", "AppId", "StreamId", "RoomId", "Sequence", "MixInput"] {
        let all = p.all(key);
        if let Some(first) = p.get(key) {
            assert_eq!(all.first().map(String::as_str), Some(first));
        }
        let _ = p.non_empty(key);
    }
});
