//! Request parameters: the query string, and for POST a JSON-object body.
//!
//! Array parameters arrive three ways and mean the same: `StreamId[]=a&StreamId[]=b`, the
//! percent-encoded `StreamId%5B%5D=a` (Go's `url.Values.Encode()`), and plain repeated
//! `StreamId=a&StreamId=b`. Keys are decoded first, then a trailing `[]` is dropped.

use std::collections::HashMap;

use serde_json::Value;

#[derive(Debug, Default, Clone)]
pub struct Params {
    map: HashMap<String, Vec<String>>,
}

impl Params {
    pub fn from_query(raw: &str) -> Self {
        let mut p = Params::default();
        for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
            p.push(&k, v.into_owned());
        }
        p
    }

    fn push(&mut self, key: &str, value: String) {
        let key = key.strip_suffix("[]").unwrap_or(key);
        self.map.entry(key.to_string()).or_default().push(value);
    }

    /// Adds a JSON object's fields; they replace query parameters of the same name.
    /// Strings stay as they are, numbers and booleans become their JSON text, arrays give
    /// one value per element, objects their JSON text; `null` is absent.
    pub fn merge_json(&mut self, body: serde_json::Map<String, Value>) {
        for (k, v) in body {
            let key = k.strip_suffix("[]").unwrap_or(&k).to_string();
            let values: Vec<String> = match v {
                Value::Null => continue,
                Value::Array(items) => items.into_iter().filter_map(scalar).collect(),
                other => scalar(other).into_iter().collect(),
            };
            self.map.insert(key, values);
        }
    }

    /// The first value of a parameter.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map
            .get(key)
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    /// The first value, with an empty string counted as absent.
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// Every value of a parameter (an array parameter).
    pub fn all(&self, key: &str) -> &[String] {
        self.map.get(key).map(Vec::as_slice).unwrap_or(&[])
    }
}

fn scalar(v: Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_array_encodings_are_one_array() {
        for q in [
            "StreamId[]=a&StreamId[]=b",
            "StreamId%5B%5D=a&StreamId%5B%5D=b",
            "StreamId%5b%5d=a&StreamId%5b%5d=b",
            "StreamId=a&StreamId=b",
        ] {
            let p = Params::from_query(q);
            assert_eq!(p.all("StreamId"), ["a", "b"], "{q}");
        }
    }

    #[test]
    fn values_are_decoded_and_first_wins() {
        let p = Params::from_query("StreamTitle=%E6%B5%81%E6%A0%87%E9%A2%98&A=1&A=2&E=");
        assert_eq!(p.get("StreamTitle"), Some("流标题"));
        assert_eq!(p.get("A"), Some("1"));
        assert_eq!(p.get("E"), Some(""));
        assert_eq!(p.non_empty("E"), None);
        assert_eq!(p.get("missing"), None);
    }

    #[test]
    fn json_body_merges() {
        let mut p = Params::from_query("TaskId=q&Keep=1");
        let body: serde_json::Map<String, Value> = serde_json::from_str(
            r#"{"TaskId":"b","Sequence":7,"On":true,"Ids":["x","y"],"N":null,"O":{"k":1}}"#,
        )
        .unwrap();
        p.merge_json(body);
        assert_eq!(p.get("TaskId"), Some("b"));
        assert_eq!(p.get("Keep"), Some("1"));
        assert_eq!(p.get("Sequence"), Some("7"));
        assert_eq!(p.get("On"), Some("true"));
        assert_eq!(p.all("Ids"), ["x", "y"]);
        assert_eq!(p.get("N"), None);
        assert_eq!(p.get("O"), Some(r#"{"k":1}"#));
    }
}
