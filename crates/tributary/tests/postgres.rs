//! A node on PostgreSQL (`--store postgres://…`) against a real server the test starts
//! (`initdb` + `pg_ctl` in a temporary directory): what it must never lose is in the
//! database, not in its data directory — another node with an empty data directory
//! carries on from it after the first one crashed, and a request replayed to another
//! node is refused; a forbid sent to one node cuts off the publisher on another.

mod common;

#[path = "../src/test_postgres.rs"]
mod test_postgres;

use std::time::Duration;

use common::media::*;
use common::*;
use test_postgres::TestPostgres;

fn list(c: &Client, room: &str) -> Vec<serde_json::Value> {
    let v = c.get("DescribeSimpleStreamList", &[("RoomId", room)]);
    expect_code(&v, 0);
    v["Data"]["StreamList"].as_array().unwrap().clone()
}

#[test]
fn a_second_node_carries_on_from_the_database_after_the_first_crashed() {
    let pg = TestPostgres::start();
    let url = pg.new_database("cluster");
    // The first delivery of each callback fails; the retry is due 4 s later.
    let rx = Receiver::start(&[500]);
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), Some(&rx.url));
    let args = [
        "--config",
        cfg.to_str().unwrap(),
        "--store",
        &url,
        "--callback-retry-base-ms",
        "4000",
    ];
    let mut a = Server::start_with(&tmp.path().join("node-a"), &args);
    let c = a.app();
    for id in ["s1", "s2"] {
        let v = c.get(
            "AddStream",
            &[("RoomId", "room"), ("UserId", "admin"), ("StreamId", id)],
        );
        expect_code(&v, 0);
    }
    let v = c.get(
        "ForbidRTCStreams",
        &[("StreamId[]", "banned1"), ("Sequence", "5")],
    );
    expect_code(&v, 0);
    let before = list(&c, "room");
    assert_eq!(before.len(), 2);
    let first = rx.next(Duration::from_secs(20)).expect("a first attempt");
    assert_eq!(first.status_sent, 500);
    a.kill();

    // Node B: its own, empty data directory; the same database.
    let b = Server::start_with(&tmp.path().join("node-b"), &args);
    let c = b.app();
    assert_eq!(list(&c, "room"), before);
    let bans = b.tributary(&["bans", "list", "--app-id", &APP.to_string()]);
    assert_eq!(bans.lines().collect::<Vec<_>>(), ["banned1"]);
    // The callback that failed on node A is delivered by node B, the same bytes.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let cb = rx
            .next(Duration::from_secs(30))
            .expect("redelivered by node B");
        if cb.status_sent == 200 && cb.body == first.body {
            break;
        }
        assert!(std::time::Instant::now() < deadline);
    }
    // Numbering carries on.
    let v = c.get(
        "AddStream",
        &[("RoomId", "room"), ("UserId", "admin"), ("StreamId", "s3")],
    );
    expect_code(&v, 0);
    assert_eq!(list(&c, "room").last().unwrap()["StreamNumberId"], 3);

    // The state is in PostgreSQL, the schema at its latest migration; no SQLite file.
    assert_eq!(
        pg.psql("cluster", "SELECT count(*) FROM streams"),
        "3",
        "streams in the database"
    );
    assert_eq!(
        pg.psql("cluster", "SELECT max(version) FROM schema_migrations"),
        "3"
    );
    for node in ["node-a", "node-b"] {
        assert!(!tmp.path().join(node).join("tributary.db").exists());
    }
    // A signed request replayed to another node on the same database is refused there
    // (the nonce is claimed in PostgreSQL, not only in the first node's memory).
    let c3 = Server::start_with(&tmp.path().join("node-c"), &args);
    let url = c.url("DescribeSimpleStreamList", &[("RoomId", "room")]);
    expect_code(&c.fetch(&url), 0);
    let replayed = c3.app().fetch(&url.replacen(&b.base, &c3.base, 1));
    assert_ne!(replayed["Code"], 0, "{replayed}");
    assert!(
        replayed["Message"]
            .as_str()
            .unwrap_or("")
            .contains("replayed"),
        "{replayed}"
    );
    expect_code(
        &c3.app()
            .get("DescribeSimpleStreamList", &[("RoomId", "room")]),
        0,
    );

    // Both nodes hold a lease in the store and see each other; a killed node drops out
    // when its lease runs out (6 s), a stopped one at once.
    let nodes = |base: &str| -> serde_json::Value {
        admin_get(base, "/api/nodes").unwrap().json().unwrap()
    };
    let (id_b, id_c) = (
        nodes(&b.base)["node"].clone(),
        nodes(&c3.base)["node"].clone(),
    );
    assert_ne!(id_b, id_c);
    let listed = |base: &str| -> Vec<serde_json::Value> {
        nodes(base)["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["node"].clone())
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !(listed(&b.base).contains(&id_c) && listed(&b.base).contains(&id_b)) {
        assert!(std::time::Instant::now() < deadline, "{}", nodes(&b.base));
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut c3 = c3;
    c3.kill();
    let killed = std::time::Instant::now();
    while listed(&b.base).contains(&id_c) {
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "{}",
            nodes(&b.base)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "a killed node left the live list after {} ms",
        killed.elapsed().as_millis()
    );
    assert!(listed(&b.base).contains(&id_b));

    // The readiness probe asks PostgreSQL.
    let ready = reqwest::blocking::get(format!("{}/readyz", b.base)).unwrap();
    assert_eq!(ready.status(), 200);
    drop(pg);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let r = reqwest::blocking::get(format!("{}/readyz", b.base)).unwrap();
        if r.status() == 503 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still ready without its database"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_forbid_sent_to_one_node_cuts_the_publisher_off_on_another() {
    let pg = TestPostgres::start();
    let url = pg.new_database("moderation");
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), None);
    let args = ["--config", cfg.to_str().unwrap(), "--store", &url];
    let a = Server::start_with(&tmp.path().join("node-a"), &args);
    let b = Server::start_with(&tmp.path().join("node-b"), &args);

    let publish_url = publish_url(&a, "cam1", "room1", "u1");
    let _publisher = publish_color(&publish_url, "red", 440, 60);
    wait_live(&a, "cam1", Duration::from_secs(20));

    // Forbidden through node B: node A hears it from PostgreSQL and cuts its publisher.
    let sent = std::time::Instant::now();
    let v = b.app().get(
        "ForbidRTCStream",
        &[("StreamId", "cam1"), ("Sequence", "1")],
    );
    expect_code(&v, 0);
    while is_live(&a, "cam1") {
        assert!(
            sent.elapsed() < Duration::from_secs(1),
            "node A still serves cam1 {} ms after the forbid on node B",
            sent.elapsed().as_millis()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "a forbid on node B cut the publisher on node A after {} ms",
        sent.elapsed().as_millis()
    );
    // And node A refuses it from then on.
    let mut again = publish(&publish_url, 3);
    let refused = wait_exit(&mut again, Duration::from_secs(15));
    assert!(refused.is_some_and(|s| !s.success()), "{refused:?}");
    assert!(!is_live(&a, "cam1"));

    // Resumed through node B: node A lets it publish again.
    let v = b.app().get(
        "ResumeRTCStream",
        &[("StreamId", "cam1"), ("Sequence", "2")],
    );
    expect_code(&v, 0);
    // (A publisher racing the resume to node A is refused and exits; the next one is
    // let in.)
    let resumed = std::time::Instant::now();
    let _back = loop {
        let p = publish_color(&publish_url, "blue", 440, 20);
        let tried = std::time::Instant::now();
        while !is_live(&a, "cam1") && tried.elapsed() < Duration::from_secs(4) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if is_live(&a, "cam1") {
            break p;
        }
        assert!(
            resumed.elapsed() < Duration::from_secs(12),
            "node A still refuses cam1"
        );
    };
}
