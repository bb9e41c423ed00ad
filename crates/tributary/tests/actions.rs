//! Room and media-service actions through the real binary: success shapes, every error
//! code, and the spec's documented example requests byte for byte.

mod common;

use common::*;

fn add(c: &Client, room: &str, user: &str, stream: &str) -> serde_json::Value {
    c.get(
        "AddStream",
        &[("RoomId", room), ("UserId", user), ("StreamId", stream)],
    )
}

#[test]
fn documented_examples_byte_for_byte() {
    let s = Server::start(None);
    let c = s.app();
    // zego-server-api.md §4.1, with <common> filled in.
    let v = c.raw(&format!(
        "/?Action=AddStream&RoomId=room1&UserId=user1&UserName=userName&StreamId=streamId1&StreamTitle=%E6%B5%81%E6%A0%87%E9%A2%98&ExtraInfo=%E9%99%84%E5%8A%A0%E4%BF%A1%E6%81%AF&CensorFlag=0&{}",
        c.common()
    ));
    // {"Code":0,"Message":"success","RequestId":"4443515903608307334"}
    expect_code(&v, 0);
    assert_eq!(v["Message"], "success");
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["Code", "Message", "RequestId"]);

    // §4.3 (the URL form without the slash arrives as `/?`).
    let v = c.raw(&format!(
        "/?Action=DescribeSimpleStreamList&RoomId=room1&{}",
        c.common()
    ));
    expect_code(&v, 0);
    let list = v["Data"]["StreamList"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    let item = &list[0];
    assert_eq!(item["StreamId"], "streamId1");
    assert_eq!(item["UserId"], "user1");
    assert_eq!(item["UserName"], "userName");
    assert_eq!(item["StreamNumberId"], 1);
    let ct = item["CreateTime"].as_u64().unwrap();
    assert!(
        ct > 1_600_000_000_000 && ct / 1000 <= now_secs(),
        "CreateTime in ms: {ct}"
    );

    // §4.6
    let v = c.raw(&format!(
        "/?Action=ForbidRTCStream&StreamId=rtc01&Sequence=1617249600001&{}",
        c.common()
    ));
    // {"Code":0,"Message":"ok","RequestId":"…","Data":null}
    expect_code(&v, 0);
    assert_eq!(v["Message"], "ok");
    assert!(v.as_object().unwrap().contains_key("Data") && v["Data"].is_null());
    let v = c.raw(&format!(
        "/?Action=ResumeRTCStream&StreamId=rtc01&Sequence=1617249600002&{}",
        c.common()
    ));
    expect_code(&v, 0);
    assert!(v["Data"].is_null());

    // §4.2
    let v = c.raw(&format!(
        "/?Action=DeleteStream&RoomId=room1&UserId=user1&UserName=userName&StreamId=streamId1&{}",
        c.common()
    ));
    expect_code(&v, 0);
    assert_eq!(v["Message"], "success");
}

#[test]
fn add_stream_rules_and_codes() {
    let s = Server::start(None);
    let c = s.app();
    // Missing parameters → 2.
    for missing in ["RoomId", "UserId", "StreamId"] {
        let mut p = vec![("RoomId", "r"), ("UserId", "u"), ("StreamId", "s")];
        p.retain(|(k, _)| *k != missing);
        let v = c.get("AddStream", &p);
        expect_code(&v, 2);
        assert!(v["Message"].as_str().unwrap().contains(missing));
    }
    // Too long → 3.
    let long = "s".repeat(257);
    expect_code(&add(&c, "r", "u", &long), 3);
    expect_code(&add(&c, "r", "u", &"s".repeat(256)), 0);
    let extra = "x".repeat(1025);
    expect_code(
        &c.get(
            "AddStream",
            &[
                ("RoomId", "r"),
                ("UserId", "u"),
                ("StreamId", "e"),
                ("ExtraInfo", &extra),
            ],
        ),
        3,
    );
    let title = "t".repeat(128);
    expect_code(
        &c.get(
            "AddStream",
            &[
                ("RoomId", "r"),
                ("UserId", "u"),
                ("StreamId", "e"),
                ("StreamTitle", &title),
            ],
        ),
        3,
    );
    // Bad characters and bad CensorFlag → 2.
    expect_code(&add(&c, "r", "u", "a/b"), 2);
    expect_code(
        &c.get(
            "AddStream",
            &[
                ("RoomId", "r"),
                ("UserId", "u"),
                ("StreamId", "e"),
                ("CensorFlag", "7"),
            ],
        ),
        2,
    );
    // Another user on the same stream → 1012; the same stream in another room → 1012.
    expect_code(&add(&c, "r", "u", "dup"), 0);
    expect_code(&add(&c, "r", "other", "dup"), 1012);
    expect_code(&add(&c, "r2", "u", "dup"), 1012);
    // Same user again refreshes, not duplicates.
    expect_code(
        &c.get(
            "AddStream",
            &[
                ("RoomId", "r"),
                ("UserId", "u"),
                ("StreamId", "dup"),
                ("UserName", "renamed"),
            ],
        ),
        0,
    );
    let v = c.get("DescribeSimpleStreamList", &[("RoomId", "r")]);
    let list = v["Data"]["StreamList"].as_array().unwrap();
    let dups: Vec<_> = list.iter().filter(|s| s["StreamId"] == "dup").collect();
    assert_eq!(dups.len(), 1);
    assert_eq!(dups[0]["UserName"], "renamed");
    // Number ids follow creation order.
    let nums: Vec<u64> = list
        .iter()
        .map(|s| s["StreamNumberId"].as_u64().unwrap())
        .collect();
    let mut sorted = nums.clone();
    sorted.sort();
    assert_eq!(nums, sorted);
    assert_eq!(nums.len(), 2);
}

#[test]
fn delete_stream_and_room_lifetime() {
    let s = Server::start(None);
    let c = s.app();
    expect_code(&add(&c, "room", "admin", "a"), 0);
    expect_code(&add(&c, "room", "admin", "b"), 0);
    expect_code(
        &c.get("DeleteStream", &[("RoomId", "room"), ("StreamId", "a")]),
        2,
    );
    expect_code(
        &c.get(
            "DeleteStream",
            &[("RoomId", "room"), ("UserId", "x"), ("StreamId", "zzz")],
        ),
        138,
    );
    expect_code(
        &c.get(
            "DeleteStream",
            &[("RoomId", "nope"), ("UserId", "x"), ("StreamId", "a")],
        ),
        138,
    );
    expect_code(
        &c.get(
            "DeleteStream",
            &[("RoomId", "room"), ("UserId", "mod"), ("StreamId", "a")],
        ),
        0,
    );
    expect_code(
        &c.get(
            "DeleteStream",
            &[("RoomId", "room"), ("UserId", "mod"), ("StreamId", "a")],
        ),
        138,
    );
    expect_code(
        &c.get(
            "DeleteStream",
            &[("RoomId", "room"), ("UserId", "mod"), ("StreamId", "b")],
        ),
        0,
    );
    // The room is gone: an empty list, and the next stream starts a new numbering.
    let v = c.get("DescribeSimpleStreamList", &[("RoomId", "room")]);
    expect_code(&v, 0);
    assert_eq!(v["Data"]["StreamList"].as_array().unwrap().len(), 0);
    expect_code(&add(&c, "room", "admin", "c"), 0);
    let v = c.get("DescribeSimpleStreamList", &[("RoomId", "room")]);
    assert_eq!(v["Data"]["StreamList"][0]["StreamNumberId"], 1);
    expect_code(&c.get("DescribeSimpleStreamList", &[]), 2);
}

#[test]
fn describe_user_num() {
    let s = Server::start(None);
    let c = s.app();
    expect_code(&add(&c, "r1", "admin", "a"), 0);
    expect_code(&add(&c, "r1", "admin", "b"), 0);
    expect_code(&add(&c, "r1", "bob", "c"), 0);
    let v = c.get(
        "DescribeUserNum",
        &[("RoomId[]", "r1"), ("RoomId[]", "ghost")],
    );
    expect_code(&v, 0);
    assert_eq!(v["Message"], "success");
    let list = v["Data"]["UserCountList"].as_array().unwrap();
    assert_eq!(list[0]["RoomId"], "r1");
    assert_eq!(list[0]["UserCount"], 2);
    // API-added streams belong to server identities: both owners count as admins here.
    assert_eq!(list[0]["AdminUserCount"], 2);
    assert_eq!(list[1]["RoomId"], "ghost");
    assert_eq!(list[1]["UserCount"], 0);
    // 1..10 rooms.
    expect_code(&c.get("DescribeUserNum", &[]), 2);
    let many: Vec<(&str, &str)> = (0..11).map(|_| ("RoomId[]", "r")).collect();
    expect_code(&c.get("DescribeUserNum", &many), 2);
}

#[test]
fn media_service_codes_and_sequence_rule() {
    let s = Server::start(None);
    let c = s.app();
    // StreamId problems → 30009 (single) / 30006 (batch).
    expect_code(&c.get("ForbidRTCStream", &[("Sequence", "1")]), 30009);
    expect_code(
        &c.get("ForbidRTCStream", &[("StreamId", "a b"), ("Sequence", "1")]),
        30009,
    );
    expect_code(&c.get("ForbidRTCStreams", &[("Sequence", "1")]), 30006);
    let ids: Vec<String> = (0..21).map(|i| format!("s{i}")).collect();
    let mut p: Vec<(&str, &str)> = ids.iter().map(|i| ("StreamId[]", i.as_str())).collect();
    p.push(("Sequence", "1"));
    expect_code(&c.get("ForbidRTCStreams", &p), 30006);
    p.remove(0);
    expect_code(&c.get("ForbidRTCStreams", &p), 0);
    expect_code(&c.get("ResumeRTCStreams", &p), 2); // same Sequence again within 10 s
    // Sequence missing or not a number → 2.
    expect_code(&c.get("ForbidRTCStream", &[("StreamId", "q")]), 2);
    expect_code(
        &c.get("ForbidRTCStream", &[("StreamId", "q"), ("Sequence", "abc")]),
        2,
    );
    // Strictly increasing per stream id: equal or smaller is refused and changes nothing.
    expect_code(
        &c.get("ForbidRTCStream", &[("StreamId", "q"), ("Sequence", "10")]),
        0,
    );
    let v = c.get("ResumeRTCStream", &[("StreamId", "q"), ("Sequence", "10")]);
    expect_code(&v, 2);
    assert!(v["Message"].as_str().unwrap().contains("strictly increase"));
    expect_code(
        &c.get("ResumeRTCStream", &[("StreamId", "q"), ("Sequence", "9")]),
        2,
    );
    expect_code(
        &c.get("ResumeRTCStream", &[("StreamId", "q"), ("Sequence", "11")]),
        0,
    );
    // Resuming an id that was never banned is success (no change).
    expect_code(
        &c.get(
            "ResumeRTCStream",
            &[("StreamId", "never"), ("Sequence", "1")],
        ),
        0,
    );
    // DescribeRTCStreamState: nothing is published over RTC yet → 41004; added streams
    // are signalling only and do not count as live.
    expect_code(&add(&c, "r", "u", "added"), 0);
    let v = c.get(
        "DescribeRTCStreamState",
        &[("StreamId", "added"), ("Sequence", "1")],
    );
    expect_code(&v, 41004);
    expect_code(
        &c.get(
            "DescribeRTCStreamState",
            &[("StreamId", "added"), ("Sequence", "1")],
        ),
        2,
    );
    expect_code(
        &c.get("DescribeRTCStreamState", &[("Sequence", "3")]),
        30009,
    );
}
