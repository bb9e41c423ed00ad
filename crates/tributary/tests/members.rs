//! Room membership through the real binary: DescribeUsers, DescribeUserList (paging),
//! KickoutUser and CloseRoom with real ffmpeg publishers, their `stream_close` callbacks
//! (type 3 kicked, 5 room cleared) and the vendor's codes.

mod common;

use std::time::{Duration, Instant};

use common::media::*;
use common::*;

const LIVE: Duration = Duration::from_secs(20);

/// The `stream_close` types of `streams`, whatever order their callbacks come in.
fn close_types(rx: &Receiver, streams: &[&str]) -> Vec<String> {
    let mut seen = std::collections::HashMap::new();
    let deadline = Instant::now() + LIVE;
    while streams.iter().any(|s| !seen.contains_key(*s)) {
        assert!(
            Instant::now() < deadline,
            "stream_close seen for {seen:?} only"
        );
        let cb = rx.next(LIVE).expect("stream_close");
        if cb.body["event"] == "stream_close" {
            let id = cb.body["stream_id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let t = cb.body["type"].as_str().unwrap_or_default().to_string();
            seen.insert(id, t);
        }
    }
    streams.iter().map(|s| seen[*s].clone()).collect()
}

#[test]
fn users_are_listed_kicked_and_cleared_with_their_room() {
    let rx = Receiver::start(&[]);
    let s = Server::start(Some(&rx.url));
    let c = s.app();
    let mut alice = publish(&publish_url(&s, "a1", "party", "alice"), 60);
    wait_live(&s, "a1", LIVE);
    let mut bob = publish(&publish_url(&s, "b1", "party", "bob"), 60);
    wait_live(&s, "b1", LIVE);
    let mut carol = publish(&publish_url(&s, "c1", "party", "carol"), 60);
    wait_live(&s, "c1", LIVE);
    expect_code(
        &c.get(
            "AddStream",
            &[
                ("RoomId", "party"),
                ("UserId", "admin"),
                ("StreamId", "s-admin"),
            ],
        ),
        0,
    );

    // DescribeUsers: in the room with their login time and role, or not.
    let v = c.get(
        "DescribeUsers",
        &[
            ("RoomId", "party"),
            ("UserId[]", "alice"),
            ("UserId[]", "nobody"),
            ("UserId[]", "admin"),
        ],
    );
    expect_code(&v, 0);
    let list = v["Data"]["UserStatusList"].as_array().unwrap();
    assert_eq!(list[0]["UserId"], "alice");
    assert_eq!(list[0]["Status"], 1);
    assert_eq!(list[0]["UserRole"], 1);
    assert!(list[0]["LoginTime"].as_u64().unwrap() > 1_700_000_000_000);
    assert_eq!(list[1]["Status"], 0);
    assert_eq!(
        list[2]["UserRole"], 4,
        "an API-added stream's owner is an admin"
    );

    // DescribeUserList pages by login time with a Marker, both ways.
    let page = |mode: &str, marker: &str| {
        let v = c.get(
            "DescribeUserList",
            &[
                ("RoomId", "party"),
                ("Mode", mode),
                ("Limit", "3"),
                ("Marker", marker),
            ],
        );
        expect_code(&v, 0);
        let ids: Vec<String> = v["Data"]["UserList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["UserId"].as_str().unwrap().to_string())
            .collect();
        (ids, v["Data"]["Marker"].as_str().unwrap().to_string())
    };
    let (first, marker) = page("0", "");
    assert_eq!(first, ["alice", "bob", "carol"]);
    assert!(!marker.is_empty());
    let (rest, end) = page("0", &marker);
    assert_eq!(rest, ["admin"]);
    assert!(end.is_empty(), "an empty Marker ends the list");
    let (newest, _) = page("1", "");
    assert_eq!(newest, ["admin", "carol", "bob"]);

    // KickoutUser: alice's publisher is cut off, her stream closes as kicked (type 3);
    // the others go on.
    expect_code(
        &c.get("KickoutUser", &[("RoomId", "party"), ("UserId[]", "alice")]),
        0,
    );
    assert!(
        wait_exit(&mut alice, Duration::from_secs(5)).is_some(),
        "the kicked publisher's connection ends"
    );
    assert_eq!(close_types(&rx, &["a1"]), ["3"]);
    assert!(!is_live(&s, "a1"));
    assert!(is_live(&s, "b1") && is_live(&s, "c1"));
    let v = c.get("DescribeUsers", &[("RoomId", "party"), ("UserId", "alice")]);
    assert_eq!(v["Data"]["UserStatusList"][0]["Status"], 0);
    let six: Vec<(&str, &str)> = [("RoomId", "party")]
        .into_iter()
        .chain((0..6).map(|_| ("UserId[]", "x")))
        .collect();
    expect_code(&c.get("KickoutUser", &six), 50011);

    // CloseRoom: everyone's streams end as "room cleared" (type 5), publishers included.
    expect_code(&c.get("CloseRoom", &[("RoomId", "party")]), 0);
    for p in [&mut bob, &mut carol] {
        assert!(wait_exit(p, Duration::from_secs(5)).is_some());
    }
    assert_eq!(close_types(&rx, &["b1", "c1", "s-admin"]), ["5", "5", "5"]);
    let (none, _) = page("0", "");
    assert!(none.is_empty());
    expect_code(&c.get("CloseRoom", &[("RoomId", "party")]), 5024);
}
