//! The ZEGO gateway through the real binary: every common-parameter code path, the replay
//! guard, IsTest, array encodings, body handling, rate limits.

mod common;

use common::*;

fn q(client: &Client, query: &str) -> serde_json::Value {
    client.raw(&format!("/?{query}"))
}

#[test]
fn common_parameter_codes_in_vendor_order() {
    let s = Server::start(None);
    let c = s.app();
    let ts = now_secs().to_string();
    let n = nonce();
    let sig = md5_signature(APP, &n, SECRET, &ts);

    // Action
    expect_code(&q(&c, &format!("AppId={APP}")), 100000006);
    expect_code(&q(&c, &format!("Action=&AppId={APP}")), 100000006);
    let v = q(&c, "Action=NoSuchAction");
    expect_code(&v, 100000007);
    assert!(v["Message"].as_str().unwrap().contains("NoSuchAction"));
    // Action names are case-sensitive.
    expect_code(&q(&c, "Action=addstream"), 100000007);

    // AppId
    let a = "Action=DescribeUserNum&RoomId[]=r";
    expect_code(&q(&c, a), 100000001);
    expect_code(&q(&c, &format!("{a}&AppId=abc")), 100000001);
    expect_code(&q(&c, &format!("{a}&AppId=-1")), 100000001);
    expect_code(&q(&c, &format!("{a}&AppId=99999")), 100000010);

    // Timestamp
    let a = format!("{a}&AppId={APP}");
    expect_code(&q(&c, &a), 100000002);
    expect_code(&q(&c, &format!("{a}&Timestamp=yesterday")), 100000003);
    let old = (now_secs() - 700).to_string();
    let v = q(
        &c,
        &format!(
            "{a}&Timestamp={old}&SignatureNonce={n}&Signature={}&SignatureVersion=2.0",
            md5_signature(APP, &n, SECRET, &old)
        ),
    );
    expect_code(&v, 100000004);
    let future = (now_secs() + 700).to_string();
    expect_code(&q(&c, &format!("{a}&Timestamp={future}")), 100000004);

    // SignatureNonce, Signature
    let a = format!("{a}&Timestamp={ts}");
    expect_code(&q(&c, &a), 100000008);
    let a = format!("{a}&SignatureNonce={n}");
    expect_code(&q(&c, &a), 100000009);
    let bad = md5_signature(APP, &n, "wrong-secret", &ts);
    expect_code(
        &q(&c, &format!("{a}&Signature={bad}&SignatureVersion=2.0")),
        100000005,
    );
    // A signature over a different timestamp than the one sent is wrong too.
    let other_ts = md5_signature(APP, &n, SECRET, &(now_secs() - 1).to_string());
    if other_ts != sig {
        expect_code(
            &q(
                &c,
                &format!("{a}&Signature={other_ts}&SignatureVersion=2.0"),
            ),
            100000005,
        );
    }

    // SignatureVersion
    let a = format!("{a}&Signature={sig}");
    expect_code(&q(&c, &a), 100000013);
    expect_code(&q(&c, &format!("{a}&SignatureVersion=1.0")), 100000014);

    // All good; then the same nonce again is a replay.
    let v = q(&c, &format!("{a}&SignatureVersion=2.0"));
    expect_code(&v, 0);
    let v = q(&c, &format!("{a}&SignatureVersion=2.0"));
    expect_code(&v, 100000005);
    assert!(v["Message"].as_str().unwrap().contains("replay"), "{v}");
}

#[test]
fn upper_case_signature_and_decimal_nonce_are_accepted() {
    let s = Server::start(None);
    let c = s.app();
    let ts = now_secs().to_string();
    // The vendor's own examples use a 14-digit decimal nonce.
    let n = "15215528852396";
    let sig = md5_signature(APP, n, SECRET, &ts).to_uppercase();
    let v = q(
        &c,
        &format!(
            "Action=DescribeUserNum&RoomId[]=r&AppId={APP}&SignatureNonce={n}&Timestamp={ts}&Signature={sig}&SignatureVersion=2.0"
        ),
    );
    expect_code(&v, 0);
}

#[test]
fn every_response_has_a_fresh_request_id_and_http_200() {
    let s = Server::start(None);
    let c = s.app();
    let a = c.get("DescribeUserNum", &[("RoomId[]", "r")]);
    let b = c.get("DescribeUserNum", &[("RoomId[]", "r")]);
    let e = q(&c, "Action=Nope");
    let ids: Vec<&str> = [&a, &b, &e]
        .iter()
        .map(|v| v["RequestId"].as_str().unwrap())
        .collect();
    assert_ne!(ids[0], ids[1]);
    assert_ne!(ids[1], ids[2]);
    // Other paths are not the API.
    let resp = reqwest::blocking::get(format!("{}/nope?Action=AddStream", s.base)).unwrap();
    assert_eq!(resp.status().as_u16(), 404);
}

#[test]
fn is_test_environment_rules() {
    let s = Server::start(None);
    // A test app called as production.
    let mut t = s.test_app();
    t.is_test = false;
    let v = t.get("DescribeUserNum", &[("RoomId[]", "r")]);
    expect_code(&v, 100000016);
    // A production app called as test.
    let mut p = s.app();
    p.is_test = true;
    expect_code(&p.get("DescribeUserNum", &[("RoomId[]", "r")]), 100000016);
    // IsTest is case-insensitive; garbage is refused.
    let t = s.test_app();
    let url = t
        .url("DescribeUserNum", &[("RoomId[]", "r")])
        .replace("IsTest=true", "IsTest=TRUE");
    expect_code(&t.fetch(&url), 0);
    let url = t
        .url("DescribeUserNum", &[("RoomId[]", "r")])
        .replace("IsTest=true", "IsTest=yes");
    expect_code(&t.fetch(&url), 100000016);
    // Hand-typed stream ids of a test app need the prefix.
    let v = t.get(
        "ForbidRTCStream",
        &[("StreamId", "plain"), ("Sequence", "1")],
    );
    expect_code(&v, 30009);
    assert!(v["Message"].as_str().unwrap().contains("zegotest-888-"));
    let v = t.get(
        "ForbidRTCStream",
        &[("StreamId", "zegotest-888-plain"), ("Sequence", "1")],
    );
    expect_code(&v, 0);
    let v = t.get(
        "ForbidRTCStreams",
        &[
            ("StreamId[]", "zegotest-888-a"),
            ("StreamId[]", "b"),
            ("Sequence", "2"),
        ],
    );
    expect_code(&v, 30006);
}

#[test]
fn three_array_encodings_are_the_same_array() {
    let s = Server::start(None);
    let c = s.app();
    for (i, arr) in [
        "StreamId[]=x1&StreamId[]=x2",
        "StreamId%5B%5D=x1&StreamId%5B%5D=x2",
        "StreamId=x1&StreamId=x2",
    ]
    .iter()
    .enumerate()
    {
        let seq = 100 + 20 * i;
        let v = c.raw(&format!(
            "/?Action=ForbidRTCStreams&{arr}&Sequence={seq}&{}",
            c.common()
        ));
        expect_code(&v, 0);
        let v = c.raw(&format!(
            "/?Action=ResumeRTCStreams&{arr}&Sequence={}&{}",
            seq + 10,
            c.common()
        ));
        expect_code(&v, 0);
    }
    // Room ids too (DescribeUserNum), in the Go sample's encoding.
    let v = c.raw(&format!(
        "/?Action=DescribeUserNum&RoomId%5B%5D=a&RoomId%5B%5D=b&{}",
        c.common()
    ));
    expect_code(&v, 0);
    let list = v["Data"]["UserCountList"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[1]["RoomId"], "b");
}

#[test]
fn post_bodies() {
    let s = Server::start(None);
    let c = s.app();
    // Business parameters in a JSON object body (PHP sample's content type).
    let v = c.post(
        "ForbidRTCStreams",
        r#"{"StreamId":["p1","p2"],"Sequence":5,"Unknown":{"ignored":true}}"#,
        "application/json; charset=utf-8",
    );
    expect_code(&v, 0);
    assert_eq!(v["Message"], "ok");
    // A JSON-encoded string is not an object.
    let v = c.post(
        "ForbidRTCStreams",
        r#""{\"StreamId\":[\"p1\"]}""#,
        "application/json",
    );
    expect_code(&v, 2);
    assert!(
        v["Message"]
            .as_str()
            .unwrap()
            .contains("JSON-encoded string")
    );
    // Not JSON at all, for a room action: decoding failed.
    let v = c.post("DescribeUserNum", "RoomId=r", "application/json");
    expect_code(&v, 8);
    // Too large.
    let big = format!(r#"{{"x":"{}"}}"#, "a".repeat(1_100_000));
    let v = c.post("DescribeUserNum", &big, "application/json");
    expect_code(&v, 2);
    // An empty POST body is no business parameters.
    let v = c.post("DescribeUserNum", "", "application/json");
    expect_code(&v, 2);
}

#[test]
fn rate_limits_per_family() {
    let s = Server::start(None);
    let c = s.limited();
    // AddStream: 10/s → the 11th call within a second is throttled with 206 (room family).
    let mut codes = Vec::new();
    for i in 0..12 {
        let id = format!("rl{i}");
        codes.push(
            c.get(
                "AddStream",
                &[("RoomId", "rl"), ("UserId", "admin"), ("StreamId", &id)],
            )["Code"]
                .as_u64()
                .unwrap(),
        );
    }
    assert!(codes.iter().take(10).all(|c| *c == 0), "{codes:?}");
    assert!(codes.contains(&206), "{codes:?}");
    // DescribeSimpleStreamList: one call per 10 s per room → 207, other rooms unaffected.
    expect_code(&c.get("DescribeSimpleStreamList", &[("RoomId", "rl")]), 0);
    let v = c.get("DescribeSimpleStreamList", &[("RoomId", "rl")]);
    expect_code(&v, 207);
    expect_code(
        &c.get("DescribeSimpleStreamList", &[("RoomId", "other")]),
        0,
    );
    // Media service: 20/s → 30002.
    let mut codes = Vec::new();
    for i in 0..25 {
        let seq = (1000 + i).to_string();
        codes.push(
            c.get("ForbidRTCStream", &[("StreamId", "m"), ("Sequence", &seq)])["Code"]
                .as_u64()
                .unwrap(),
        );
    }
    assert!(codes.contains(&30002), "{codes:?}");
    assert!(codes.iter().filter(|c| **c == 0).count() >= 20, "{codes:?}");
    // The unlimited app is not affected by any of this.
    let u = s.app();
    for i in 0..15 {
        let id = format!("u{i}");
        expect_code(
            &u.get(
                "AddStream",
                &[("RoomId", "rl"), ("UserId", "admin"), ("StreamId", &id)],
            ),
            0,
        );
    }
}

#[test]
fn no_rate_limits_flag_switches_every_limit_off() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), None);
    let data = tmp.path().join("data");
    let s = Server::start_with(
        &data,
        &["--config", cfg.to_str().unwrap(), "--no-rate-limits"],
    );
    let c = s.limited();
    for _ in 0..3 {
        expect_code(&c.get("DescribeSimpleStreamList", &[("RoomId", "r")]), 0);
    }
}

#[test]
fn garbage_on_the_http_port_drops_that_connection_only() {
    use std::io::{Read, Write};
    let s = Server::start(None);
    let addr = s.base.trim_start_matches("http://").to_string();
    for junk in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage-tls-hello"[..],
        b"GET /?Action=\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        b"\x00\x01\x02\x03\x04\x05\r\n\r\n",
    ] {
        let mut c = std::net::TcpStream::connect(&addr).unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let _ = c.write_all(junk);
        let mut buf = Vec::new();
        let _ = c.read_to_end(&mut buf);
    }
    // Invalid percent-encoding and invalid UTF-8 in the query get a clean envelope.
    let c = s.app();
    expect_code(&c.raw("/?Action=%ZZ%ff"), 100000007);
    // The server is still fine.
    expect_code(&c.get("DescribeUserNum", &[("RoomId[]", "r")]), 0);
}
