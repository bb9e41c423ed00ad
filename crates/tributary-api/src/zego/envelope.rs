//! The response envelope: always HTTP 200 with `{Code, Message, RequestId, Data?}`.

use serde_json::{Map, Value};

/// The `Data` member: absent (StopMix, errors), `null` (Forbid/Resume), or a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    Absent,
    Null,
    Value(Value),
    /// Not answered here: placement chose another node for the new task (the call is
    /// sent on to it, and its answer is the reply).
    Elsewhere(crate::cluster::Peer),
}

pub fn envelope(code: u64, message: &str, request_id: &str, data: Data) -> Value {
    let mut m = Map::new();
    m.insert("Code".into(), Value::from(code));
    m.insert("Message".into(), Value::from(message));
    m.insert("RequestId".into(), Value::from(request_id));
    match data {
        Data::Absent => {}
        Data::Null => {
            m.insert("Data".into(), Value::Null);
        }
        Data::Value(v) => {
            m.insert("Data".into(), v);
        }
        Data::Elsewhere(_) => {}
    }
    Value::Object(m)
}

/// A fresh request id: a random decimal, as the vendor's (`"8472822294336370476"`).
pub fn new_request_id() -> String {
    (rand::random::<u64>() >> 1).to_string()
}
