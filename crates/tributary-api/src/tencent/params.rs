//! Request parameters in the three shapes the SDKs send (spec §1): a JSON body (TC3 POST,
//! the default), a flattened query (TC3 GET: `InputStreamList.0.LayoutParams.ImageLayer=1`)
//! and a flattened form body (legacy signature). All become one JSON object; flattened
//! values stay strings and are coerced where they are read.

use serde_json::{Map, Value};

/// Most array index accepted in a flattened key (the largest list, InputStreamList, takes
/// 16): a key like `A.999999999.B` must not allocate a huge array.
const MAX_INDEX: usize = 64;
/// Most dot-separated parts in a flattened key: the deepest real one
/// (`InputStreamList.0.LayoutParams.ImageLayer`) has four. Deeper keys are refused before
/// anything recursive sees them (a 60,000-part key must be an error, not a stack overflow).
const MAX_DEPTH: usize = 8;
/// Longest flattened key.
const MAX_KEY_LEN: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    #[error("the parameter {0:?} is not a valid flattened name")]
    BadKey(String),
    #[error("the parameter {key:?} has index {index}; at most {MAX_INDEX} is accepted")]
    IndexTooLarge { key: String, index: usize },
    #[error("the parameter {0:?} is given twice or conflicts with another")]
    Conflict(String),
    #[error(
        "a parameter name has {parts} parts or {len} bytes; at most {MAX_DEPTH} parts and {MAX_KEY_LEN} bytes are accepted"
    )]
    TooDeep { parts: usize, len: usize },
}

/// Rebuilds the object from flattened `(key, value)` pairs, skipping the transport's own
/// parameters (`skip`).
pub fn unflatten<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    skip: &[&str],
) -> Result<Value, ParamsError> {
    let mut root = Value::Object(Map::new());
    for (key, value) in pairs {
        if skip.contains(&key) {
            continue;
        }
        let parts: Vec<&str> = key.split('.').take(MAX_DEPTH + 1).collect();
        if parts.len() > MAX_DEPTH || key.len() > MAX_KEY_LEN {
            return Err(ParamsError::TooDeep {
                parts: key.split('.').count(),
                len: key.len(),
            });
        }
        if parts.iter().any(|p| p.is_empty()) {
            return Err(ParamsError::BadKey(key.to_string()));
        }
        insert(&mut root, &parts, key, value)?;
    }
    Ok(root)
}

fn insert(node: &mut Value, parts: &[&str], key: &str, value: &str) -> Result<(), ParamsError> {
    let Some((first, rest)) = parts.split_first() else {
        return Err(ParamsError::BadKey(key.to_string()));
    };
    let next_is_index = rest.first().is_some_and(|p| p.parse::<usize>().is_ok());
    let child_default = || {
        if next_is_index {
            Value::Array(Vec::new())
        } else {
            Value::Object(Map::new())
        }
    };
    let slot: &mut Value = match node {
        Value::Object(map) => {
            if rest.is_empty() {
                if map.contains_key(*first) {
                    return Err(ParamsError::Conflict(key.to_string()));
                }
                map.insert(first.to_string(), Value::String(value.to_string()));
                return Ok(());
            }
            map.entry(first.to_string()).or_insert_with(child_default)
        }
        Value::Array(items) => {
            let index: usize = first
                .parse()
                .map_err(|_| ParamsError::BadKey(key.to_string()))?;
            if index >= MAX_INDEX {
                return Err(ParamsError::IndexTooLarge {
                    key: key.to_string(),
                    index,
                });
            }
            while items.len() <= index {
                items.push(Value::Null);
            }
            if rest.is_empty() {
                if !items[index].is_null() {
                    return Err(ParamsError::Conflict(key.to_string()));
                }
                items[index] = Value::String(value.to_string());
                return Ok(());
            }
            if items[index].is_null() {
                items[index] = child_default();
            }
            &mut items[index]
        }
        _ => return Err(ParamsError::Conflict(key.to_string())),
    };
    insert(slot, rest, key, value)
}

/// A number given as a JSON number or (flattened forms) a string.
pub fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_and_long_keys_are_clear_errors() {
        let deep = vec!["A"; 60_000].join(".");
        assert!(matches!(
            unflatten([(deep.as_str(), "1")], &[]),
            Err(ParamsError::TooDeep { parts: 60_000, .. })
        ));
        let deep_indexed = format!("A{}", ".0".repeat(9));
        assert!(matches!(
            unflatten([(deep_indexed.as_str(), "1")], &[]),
            Err(ParamsError::TooDeep { .. })
        ));
        let long = "A".repeat(MAX_KEY_LEN + 1);
        assert!(unflatten([(long.as_str(), "1")], &[]).is_err());
        assert!(unflatten([("A.B.C.D.E.F.G.H", "1")], &[]).is_ok());
    }

    #[test]
    fn the_sdk_get_query_rebuilds_the_json_body() {
        let query = "MixStreamSessionId=test_room&InputStreamList.0.InputStreamName=canvas1&InputStreamList.0.LayoutParams.ImageLayer=1&InputStreamList.0.LayoutParams.InputType=3&InputStreamList.0.LayoutParams.Color=0x000000&InputStreamList.1.InputStreamName=test_stream1&InputStreamList.1.LayoutParams.ImageHeight=0.99&InputStreamList.1.CropParams.CropWidth=640&OutputParams.OutputStreamName=mix_out&MixStreamTemplateId=0&ControlParams.AllowCopy=0";
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let v = unflatten(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), &[]).unwrap();
        assert_eq!(v["MixStreamSessionId"], "test_room");
        assert_eq!(v["InputStreamList"][0]["LayoutParams"]["InputType"], "3");
        assert_eq!(v["InputStreamList"][1]["InputStreamName"], "test_stream1");
        assert_eq!(
            number(&v["InputStreamList"][1]["LayoutParams"]["ImageHeight"]),
            Some(0.99)
        );
        assert_eq!(v["InputStreamList"][1]["CropParams"]["CropWidth"], "640");
        assert_eq!(v["OutputParams"]["OutputStreamName"], "mix_out");
        assert_eq!(number(&v["MixStreamTemplateId"]), Some(0.0));
    }

    #[test]
    fn transport_parameters_are_skipped_and_bad_keys_refused() {
        let v = unflatten(
            [
                ("Action", "CancelCommonMixStream"),
                ("Signature", "x"),
                ("MixStreamSessionId", "s"),
            ],
            &["Action", "Signature"],
        )
        .unwrap();
        assert_eq!(v, serde_json::json!({"MixStreamSessionId": "s"}));
        assert!(matches!(
            unflatten([("A..B", "1")], &[]),
            Err(ParamsError::BadKey(_))
        ));
        assert!(matches!(
            unflatten([("A.100000000.B", "1")], &[]),
            Err(ParamsError::IndexTooLarge { .. })
        ));
        assert!(matches!(
            unflatten([("A", "1"), ("A", "2")], &[]),
            Err(ParamsError::Conflict(_))
        ));
        assert!(matches!(
            unflatten([("A", "1"), ("A.B", "2")], &[]),
            Err(ParamsError::Conflict(_))
        ));
        assert_eq!(number(&serde_json::json!(5)), Some(5.0));
        assert_eq!(number(&serde_json::json!("x")), None);
    }
}
