//! Room calls every node answers for its own members. On a node that shares its store,
//! a member's publishers and players are on whichever node they connected to, so these
//! calls are answered here and sent on to every other live node (forwarded: each acts on
//! its own publishers, players and members, and sends the callbacks for them), and the
//! answers are merged:
//! - `KickoutUser`: this node's answer (the user is cut off wherever they are);
//! - `CloseRoom`, `DeleteStream`: done if any node did it, else this node's error;
//! - `DescribeRTCStreamState`: the node that publishes the stream answers;
//! - `DescribeUsers`: a user online on any node is online;
//! - `DescribeUserNum`: the nodes' counts added (a user connected to two nodes counts
//!   twice).
//!
//! `DescribeUserList` is not spread: its `Marker` pages through one node's members.

use serde_json::{Value, json};

use super::action::Action;
use super::codes::ZegoError;
use super::envelope::Data;

/// Whether every node answers `action` for its own members.
pub(super) fn spreads(action: Action) -> bool {
    matches!(
        action,
        Action::KickoutUser
            | Action::CloseRoom
            | Action::DeleteStream
            | Action::DescribeRTCStreamState
            | Action::DescribeUsers
            | Action::DescribeUserNum
    )
}

/// The `Data` of the other nodes' answers that succeeded.
fn succeeded(others: &[Option<Value>]) -> impl Iterator<Item = &Value> {
    others
        .iter()
        .flatten()
        .filter(|v| v["Code"].as_u64() == Some(0))
        .map(|v| &v["Data"])
}

/// This node's answer merged with the other nodes' envelopes.
pub(super) fn merge(
    action: Action,
    here: Result<Data, ZegoError>,
    others: &[Option<Value>],
) -> Result<Data, ZegoError> {
    match action {
        Action::KickoutUser => here,
        Action::CloseRoom | Action::DeleteStream => match here {
            Ok(d) => Ok(d),
            Err(e) => match succeeded(others).next() {
                Some(_) => Ok(Data::Absent),
                None => Err(e),
            },
        },
        Action::DescribeRTCStreamState => match here {
            Ok(d) => Ok(d),
            Err(e) => match succeeded(others).next() {
                Some(data) => Ok(Data::Value(data.clone())),
                None => Err(e),
            },
        },
        Action::DescribeUsers => {
            let Ok(Data::Value(mut mine)) = here else {
                return here;
            };
            if let Some(list) = mine["UserStatusList"].as_array_mut() {
                for entry in list.iter_mut().filter(|e| e["Status"] != 1) {
                    let online = succeeded(others)
                        .filter_map(|d| d["UserStatusList"].as_array())
                        .flatten()
                        .find(|o| o["UserId"] == entry["UserId"] && o["Status"] == 1);
                    if let Some(o) = online {
                        *entry = o.clone();
                    }
                }
            }
            Ok(Data::Value(mine))
        }
        Action::DescribeUserNum => {
            let Ok(Data::Value(mut mine)) = here else {
                return here;
            };
            if let Some(list) = mine["UserCountList"].as_array_mut() {
                for entry in list.iter_mut() {
                    let (mut users, mut admins) = (
                        entry["UserCount"].as_u64().unwrap_or(0),
                        entry["AdminUserCount"].as_u64().unwrap_or(0),
                    );
                    for o in succeeded(others)
                        .filter_map(|d| d["UserCountList"].as_array())
                        .flatten()
                        .filter(|o| o["RoomId"] == entry["RoomId"])
                    {
                        users += o["UserCount"].as_u64().unwrap_or(0);
                        admins += o["AdminUserCount"].as_u64().unwrap_or(0);
                    }
                    entry["UserCount"] = json!(users);
                    entry["AdminUserCount"] = json!(admins);
                }
            }
            Ok(Data::Value(mine))
        }
        _ => here,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(data: Value) -> Option<Value> {
        Some(json!({"Code": 0, "Message": "success", "Data": data}))
    }

    fn refused(code: u64) -> Option<Value> {
        Some(json!({"Code": code, "Message": "no"}))
    }

    #[test]
    fn done_anywhere_is_done() {
        let missing = || Err(ZegoError::new(7, "not here"));
        let done = merge(
            Action::DeleteStream,
            missing(),
            &[refused(7), ok(Value::Null)],
        );
        assert_eq!(done, Ok(Data::Absent));
        let nowhere = merge(Action::CloseRoom, missing(), &[refused(7), None]);
        assert_eq!(nowhere, Err(ZegoError::new(7, "not here")));
        let state = json!({"create_time": "5", "close_time": "0"});
        assert_eq!(
            merge(
                Action::DescribeRTCStreamState,
                missing(),
                &[ok(state.clone())]
            ),
            Ok(Data::Value(state))
        );
    }

    #[test]
    fn users_online_anywhere_and_counts_added() {
        let here = Ok(Data::Value(json!({"UserStatusList": [
            {"UserId": "a", "Status": 1, "LoginTime": 1, "UserRole": 1},
            {"UserId": "b", "Status": 0, "LoginTime": 0, "UserRole": 0},
            {"UserId": "c", "Status": 0, "LoginTime": 0, "UserRole": 0}]})));
        let other = ok(json!({"UserStatusList": [
            {"UserId": "a", "Status": 0, "LoginTime": 0, "UserRole": 0},
            {"UserId": "b", "Status": 1, "LoginTime": 9, "UserRole": 2},
            {"UserId": "c", "Status": 0, "LoginTime": 0, "UserRole": 0}]}));
        let Ok(Data::Value(v)) = merge(Action::DescribeUsers, here, &[other, None]) else {
            panic!("merged");
        };
        let status: Vec<_> = v["UserStatusList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["UserId"].as_str().unwrap(), e["Status"].as_u64().unwrap()))
            .collect();
        assert_eq!(status, [("a", 1), ("b", 1), ("c", 0)]);
        assert_eq!(v["UserStatusList"][1]["LoginTime"], 9);

        let here = Ok(Data::Value(json!({"UserCountList": [
            {"RoomId": "r", "UserCount": 2, "AdminUserCount": 0},
            {"RoomId": "s", "UserCount": 0, "AdminUserCount": 0}]})));
        let other = ok(json!({"UserCountList": [
            {"RoomId": "r", "UserCount": 3, "AdminUserCount": 1},
            {"RoomId": "s", "UserCount": 1, "AdminUserCount": 0}]}));
        let Ok(Data::Value(v)) = merge(Action::DescribeUserNum, here, &[other, refused(5)]) else {
            panic!("merged");
        };
        assert_eq!(v["UserCountList"][0]["UserCount"], 5);
        assert_eq!(v["UserCountList"][0]["AdminUserCount"], 1);
        assert_eq!(v["UserCountList"][1]["UserCount"], 1);
    }
}
