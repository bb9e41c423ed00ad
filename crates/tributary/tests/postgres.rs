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
use common::tencent::*;
use common::*;
use test_postgres::TestPostgres;

fn list(c: &Client, room: &str) -> Vec<serde_json::Value> {
    let v = c.get("DescribeSimpleStreamList", &[("RoomId", room)]);
    expect_code(&v, 0);
    v["Data"]["StreamList"].as_array().unwrap().clone()
}

/// A StartMix body: `red` full frame into `out` (320×240, 15 fps).
fn one_input_mix(task: &str, out: &str) -> String {
    serde_json::json!({
        "TaskId": task, "UserId": "mixer-user", "RoomId": "room1", "Sequence": 1,
        "MixInput": [{"StreamId": "red",
                      "RectInfo": {"Top": 0, "Left": 0, "Bottom": 240, "Right": 320, "Layer": 1}}],
        "MixOutput": [{"StreamId": out, "Width": 320, "Height": 240, "Fps": 15,
                       "VideoBitrate": 400000, "AudioCodec": 1}]
    })
    .to_string()
}

/// Whether `task` runs on that node (any node answers about it, naming the node that
/// runs it; a node whose store is down cannot say its own name and answers only for
/// its own tasks).
fn runs(s: &Server, task: &str) -> bool {
    let me = admin_get(&s.base, "/api/nodes")
        .ok()
        .filter(|r| r.status().is_success())
        .and_then(|r| r.json::<serde_json::Value>().ok())
        .map(|v| v["node"].clone());
    admin_get(&s.base, &format!("/api/mix/{APP}/{task}"))
        .ok()
        .filter(|r| r.status().is_success())
        .and_then(|r| r.json::<serde_json::Value>().ok())
        .is_some_and(|v| me.is_none_or(|me| v["node"] == me))
}

/// Waits until `s` no longer serves `stream` (a forbid or kick elsewhere cut it off),
/// at most 1 s after `sent`; how long it took.
fn wait_cut(s: &Server, stream: &str, sent: std::time::Instant) -> Duration {
    while is_live(s, stream) {
        assert!(
            sent.elapsed() < Duration::from_secs(1),
            "{stream} still served {} ms later",
            sent.elapsed().as_millis()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    sent.elapsed()
}

/// Waits until the centre of the picture at `flv` is red, at most `limit` after `since`.
fn wait_red(flv: &str, since: std::time::Instant, limit: Duration) {
    loop {
        if let Some((r, g, bl)) = centre_rgb("ffmpeg", flv)
            && r > 200
            && g < 60
            && bl < 60
        {
            return;
        }
        assert!(since.elapsed() < limit, "no red at {flv}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The callback events of `task` received until none comes for 3 s.
fn task_events(rx: &Receiver, task: &str) -> Vec<String> {
    let mut events = Vec::new();
    while let Some(cb) = rx.next(Duration::from_secs(3)) {
        if cb.body["task_id"] == format!("{APP}:{task}") {
            events.push(cb.body["event"].as_str().unwrap_or("").to_string());
        }
    }
    events
}

/// Two nodes on a fresh database `db` (callbacks to `callbacks`), with `red` published
/// to both: a mix of it runs on either, whichever node holds it.
struct TwoNodes {
    a: Server,
    b: Server,
    _red: [Proc; 2],
    _tmp: tempfile::TempDir,
}

fn two_nodes_with_red(pg: &TestPostgres, db: &str, callbacks: Option<&str>) -> TwoNodes {
    let url = pg.new_database(db);
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), callbacks);
    let args = ["--config", cfg.to_str().unwrap(), "--store", &url];
    let a = Server::start_with(&tmp.path().join("node-a"), &args);
    let b = Server::start_with(&tmp.path().join("node-b"), &args);
    let red = [
        publish_color(&publish_url(&a, "red", "room1", "u1"), "red", 440, 120),
        publish_color(&publish_url(&b, "red", "room1", "u2"), "red", 440, 120),
    ];
    wait_live(&a, "red", Duration::from_secs(20));
    wait_live(&b, "red", Duration::from_secs(20));
    TwoNodes {
        a,
        b,
        _red: red,
        _tmp: tmp,
    }
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
    // Every numbered step applied once, in order (4 so far).
    assert_eq!(
        pg.psql(
            "cluster",
            "SELECT max(version) = count(*) AND count(*) >= 4 FROM schema_migrations"
        ),
        "t"
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
    let cut = wait_cut(&a, "cam1", sent);
    eprintln!(
        "a forbid on node B cut the publisher on node A after {} ms",
        cut.as_millis()
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
    // A Sequence is checked for the cluster: a stale forbid sent to A is refused.
    let stale = a.app().get(
        "ForbidRTCStream",
        &[("StreamId", "cam1"), ("Sequence", "2")],
    );
    assert_ne!(stale["Code"], 0, "{stale}");
    assert!(
        stale["Message"].as_str().unwrap_or("").contains("Sequence"),
        "{stale}"
    );
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

#[test]
fn a_killed_nodes_mix_runs_again_on_another_node_within_10_s() {
    let pg = TestPostgres::start();
    let rx = Receiver::start(&[]);
    let TwoNodes {
        mut a,
        b,
        _red,
        _tmp,
    } = two_nodes_with_red(&pg, "failover", Some(&rx.url));

    let body = one_input_mix("fo", "fo-out");
    expect_code(&a.app().post("StartMix", &body, "application/json"), 0);
    // Both nodes hold the input and are idle: the node the call came to keeps the task.
    assert!(runs(&a, "fo") && !runs(&b, "fo"));
    wait_live(&a, "fo-out", Duration::from_secs(20));
    let mix_starts = |rx: &Receiver, wait: Duration| {
        let mut n = 0;
        while let Some(cb) = rx.next(wait) {
            if cb.body["event"] == "mix_start" && cb.body["task_id"] == format!("{APP}:fo") {
                n += 1;
            }
        }
        n
    };
    assert_eq!(mix_starts(&rx, Duration::from_secs(3)), 1);
    let node_b: serde_json::Value = admin_get(&b.base, "/api/nodes").unwrap().json().unwrap();

    // Node A dies; node B takes the task over once A's lease has run out.
    a.kill();
    let killed = std::time::Instant::now();
    let path = format!("/api/mix/{APP}/fo");
    let info = loop {
        if let Ok(r) = admin_get(&b.base, &path)
            && r.status().is_success()
        {
            break r.json::<serde_json::Value>().unwrap();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "the task is not running on node B 10 s after node A died"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let adopted_ms = killed.elapsed().as_millis();
    assert_eq!(info["node"], node_b["node"], "{info}");
    wait_live(&b, "fo-out", Duration::from_secs(20));
    // Its first pictures are the background until node B's input is decoded.
    let flv = format!("{}/{APP}/fo-out.flv", b.base);
    loop {
        let (r, g, bl) = centre_rgb("ffmpeg", &flv).expect("the adopted output plays");
        if r > 200 && g < 60 && bl < 60 {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "centre {r},{g},{bl}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let playing_ms = killed.elapsed().as_millis();
    eprintln!(
        "node A killed: its task ran on node B after {adopted_ms} ms, its output showed the input after {playing_ms} ms"
    );
    // The task went on; it did not start anew.
    assert_eq!(mix_starts(&rx, Duration::from_secs(2)), 0);
    assert_eq!(
        pg.psql(
            "failover",
            "SELECT owner FROM mix_tasks WHERE task_id = 'fo'"
        ),
        node_b["node"].as_str().unwrap()
    );
}

#[test]
fn a_node_that_loses_its_database_stops_its_tasks_and_resumes_them_when_it_is_back() {
    let pg = TestPostgres::start();
    let url = pg.new_database("fence");
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), None);
    let args = ["--config", cfg.to_str().unwrap(), "--store", &url];
    let a = Server::start_with(&tmp.path().join("node-a"), &args);
    let _red = publish_color(&publish_url(&a, "red", "room1", "u1"), "red", 440, 120);
    wait_live(&a, "red", Duration::from_secs(20));
    let body = one_input_mix("fence", "fence-out");
    expect_code(&a.app().post("StartMix", &body, "application/json"), 0);
    wait_live(&a, "fence-out", Duration::from_secs(20));
    let running = || runs(&a, "fence");
    assert!(running());

    // The database goes away: before its 6 s lease could run out, node A stops the task
    // (another node could adopt it then), and its output with it.
    pg.stop();
    let lost = std::time::Instant::now();
    while running() {
        assert!(
            lost.elapsed() < Duration::from_secs(6),
            "the task still runs {} ms after the database went away",
            lost.elapsed().as_millis()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "task stopped {} ms after the database went away",
        lost.elapsed().as_millis()
    );
    // Its output with it (the mix thread ends just after the task is taken off).
    wait_cut(&a, "fence-out", std::time::Instant::now());

    // It comes back; nobody adopted the task: node A runs it again.
    pg.restart();
    let back = std::time::Instant::now();
    while !running() {
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "the task did not resume after the database came back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_live(&a, "fence-out", Duration::from_secs(20));
    eprintln!(
        "task resumed {} ms after the database came back",
        back.elapsed().as_millis()
    );
}

#[test]
fn three_nodes_a_publisher_on_a_a_mix_sent_to_b_placed_on_c_played_on_a() {
    let pg = TestPostgres::start();
    let url = pg.new_database("three");
    let rx = Receiver::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), Some(&rx.url));
    let cfg = cfg.to_str().unwrap();
    // A and B have (almost) no mixing budget left to give: placement must pick C, though
    // A holds the input.
    let small = ["--config", cfg, "--store", &url, "--mix-budget", "1000"];
    let a = Server::start_with(&tmp.path().join("node-a"), &small);
    let b = Server::start_with(&tmp.path().join("node-b"), &small);
    let c = Server::start_with(
        &tmp.path().join("node-c"),
        &["--config", cfg, "--store", &url],
    );
    let id = |s: &Server| -> String {
        let v: serde_json::Value = admin_get(&s.base, "/api/nodes").unwrap().json().unwrap();
        v["node"].as_str().unwrap().to_string()
    };
    let id_c = id(&c);
    // Every node sees the other two (and C's budget) before the call.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let v: serde_json::Value = admin_get(&b.base, "/api/nodes").unwrap().json().unwrap();
        let nodes = v["nodes"].as_array().unwrap();
        if nodes.len() == 3
            && nodes
                .iter()
                .any(|n| n["node"] == id_c.as_str() && n["free_budget"].as_u64() > Some(1000))
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{v}");
        std::thread::sleep(Duration::from_millis(100));
    }

    let _red = publish_color(&publish_url(&a, "red", "room1", "u1"), "red", 440, 120);
    wait_live(&a, "red", Duration::from_secs(20));

    // Sent to B; B places it on C, which reads the input from A.
    let body = one_input_mix("tri", "tri-out");
    let v = b.app().post("StartMix", &body, "application/json");
    expect_code(&v, 0);
    let info: serde_json::Value = admin_get(&c.base, &format!("/api/mix/{APP}/tri"))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(info["node"], id_c.as_str(), "{info}");
    assert!(!runs(&a, "tri") && !runs(&b, "tri"));
    // Any node answers about the task, naming C.
    for s in [&a, &b] {
        let v: serde_json::Value = admin_get(&s.base, &format!("/api/mix/{APP}/tri"))
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(v["node"], id_c.as_str(), "{v}");
        assert_eq!(v["task_id"], "tri", "{v}");
    }
    assert_eq!(
        pg.psql("three", "SELECT owner FROM mix_tasks WHERE task_id = 'tri'"),
        id_c
    );

    // Played from A: A relays the output from C (whose input came from A).
    let flv = format!("{}/{APP}/tri-out.flv", a.base);
    let started = std::time::Instant::now();
    wait_red(&flv, started, Duration::from_secs(30));
    eprintln!(
        "mix placed on C played red from A {} ms after the StartMix",
        started.elapsed().as_millis()
    );

    // Any node answers about the task: A's GetMixTaskInfo is C's answer.
    let v = a.app().post(
        "GetMixTaskInfo",
        &serde_json::json!({"TaskId": "tri"}).to_string(),
        "application/json",
    );
    expect_code(&v, 0);
    // A forbid sent to C cuts the publisher on A.
    let sent = std::time::Instant::now();
    let v = c
        .app()
        .get("ForbidRTCStream", &[("StreamId", "red"), ("Sequence", "1")]);
    expect_code(&v, 0);
    wait_cut(&a, "red", sent);
    // StopMix sent to A ends it on C.
    let stop = serde_json::json!({"TaskId": "tri", "UserId": "mixer-user", "Sequence": 2});
    let v = a
        .app()
        .post("StopMix", &stop.to_string(), "application/json");
    expect_code(&v, 0);
    assert!(!runs(&c, "tri"));
    // One mix_start and one mix_stop, from C.
    let events = task_events(&rx, "tri");
    assert_eq!(events, ["mix_start", "mix_stop"], "{events:?}");
}

#[test]
fn a_task_adopted_by_a_node_without_room_goes_on_on_a_node_that_joins_with_room() {
    let pg = TestPostgres::start();
    let url = pg.new_database("refused");
    let rx = Receiver::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), Some(&rx.url));
    let cfg = cfg.to_str().unwrap();
    let mut a = Server::start_with(
        &tmp.path().join("node-a"),
        &["--config", cfg, "--store", &url],
    );
    // B can adopt a task but has no mixing budget to run it.
    let small = ["--config", cfg, "--store", &url, "--mix-budget", "1000"];
    let b = Server::start_with(&tmp.path().join("node-b"), &small);
    let _red_a = publish_color(&publish_url(&a, "red", "room1", "u1"), "red", 440, 120);
    let _red_b = publish_color(&publish_url(&b, "red", "room1", "u2"), "red", 440, 120);
    wait_live(&a, "red", Duration::from_secs(20));
    wait_live(&b, "red", Duration::from_secs(20));
    let node = |s: &Server| -> String {
        let v: serde_json::Value = admin_get(&s.base, "/api/nodes").unwrap().json().unwrap();
        v["node"].as_str().unwrap().to_string()
    };
    let owner = || {
        pg.psql(
            "refused",
            "SELECT owner FROM mix_tasks WHERE task_id = 'rf'",
        )
    };
    let id_b = node(&b);

    let body = one_input_mix("rf", "rf-out");
    expect_code(&a.app().post("StartMix", &body, "application/json"), 0);
    assert!(runs(&a, "rf"));
    wait_live(&a, "rf-out", Duration::from_secs(20));

    // A dies; B, the only node left, adopts the task but cannot start it.
    a.kill();
    let killed = std::time::Instant::now();
    while owner() != id_b {
        assert!(
            killed.elapsed() < Duration::from_secs(15),
            "node B did not adopt the task: owner {}",
            owner()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Two more scans: still B's, still not running, nothing published.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(owner(), id_b);
    assert!(!runs(&b, "rf"));
    assert!(!is_live(&b, "rf-out"));

    // C joins with room: B hands the task over, and it runs on C.
    let c = Server::start_with(
        &tmp.path().join("node-c"),
        &["--config", cfg, "--store", &url],
    );
    let _red_c = publish_color(&publish_url(&c, "red", "room1", "u3"), "red", 440, 120);
    let joined = std::time::Instant::now();
    while !runs(&c, "rf") {
        assert!(
            joined.elapsed() < Duration::from_secs(20),
            "the task does not run on node C: owner {}",
            owner()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let moved_ms = joined.elapsed().as_millis();
    assert_eq!(owner(), node(&c));
    wait_red(
        &format!("{}/{APP}/rf-out.flv", c.base),
        joined,
        Duration::from_secs(30),
    );
    eprintln!(
        "refused adoption: the task ran on C {moved_ms} ms after C started, its output showed red after {} ms",
        joined.elapsed().as_millis()
    );
    // It went on: one mix_start (A's), no mix_stop.
    let events = task_events(&rx, "rf");
    assert_eq!(events, ["mix_start"], "{events:?}");
}

#[test]
fn a_drained_node_hands_its_mix_to_another_node_and_stops() {
    let pg = TestPostgres::start();
    let rx = Receiver::start(&[]);
    // The input on both nodes: the mix keeps its input when it moves and A stops.
    let TwoNodes {
        mut a,
        b,
        _red,
        _tmp,
    } = two_nodes_with_red(&pg, "drain", Some(&rx.url));
    expect_code(
        &a.app().post(
            "StartMix",
            &one_input_mix("dr", "dr-out"),
            "application/json",
        ),
        0,
    );
    assert!(runs(&a, "dr"));
    let node_b: serde_json::Value = admin_get(&b.base, "/api/nodes").unwrap().json().unwrap();

    let asked = std::time::Instant::now();
    let out = a.tributary(&["drain", "--url", &a.base, "--stop"]);
    let answer: serde_json::Value = serde_json::from_str(out.trim()).expect(&out);
    assert_eq!(answer["moved"][0]["task_id"], "dr", "{answer}");
    assert_eq!(answer["moved"][0]["node"], node_b["node"], "{answer}");
    assert_eq!(answer["kept"].as_array().map(Vec::len), Some(0), "{answer}");
    assert!(a.wait_exited(Duration::from_secs(20)).success());
    while !runs(&b, "dr") {
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "the handed-over task does not run on node B"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let moved_ms = asked.elapsed().as_millis();
    let flv = format!("{}/{APP}/dr-out.flv", b.base);
    wait_red(&flv, asked, Duration::from_secs(30));
    eprintln!(
        "drain: the task ran on B {moved_ms} ms after the drain was asked, its output showed red after {} ms",
        asked.elapsed().as_millis()
    );
    // It went on: one mix_start, no mix_stop.
    let events = task_events(&rx, "dr");
    assert_eq!(events, ["mix_start"], "{events:?}");
}

#[test]
fn a_rooms_streams_on_two_nodes_are_listed_and_auto_mixed_on_either() {
    let pg = TestPostgres::start();
    let url = pg.new_database("rooms");
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), None);
    let args = ["--config", cfg.to_str().unwrap(), "--store", &url];
    let a = Server::start_with(&tmp.path().join("node-a"), &args);
    let b = Server::start_with(&tmp.path().join("node-b"), &args);
    // One speaker of the room on each node.
    let _low = publish_color(&publish_url(&a, "low", "party", "ua"), "red", 440, 90);
    let high = publish_color(&publish_url(&b, "high", "party", "ub"), "blue", 1000, 90);
    wait_live(&a, "low", Duration::from_secs(20));
    wait_live(&b, "high", Duration::from_secs(20));
    let ids = |s: &Server| -> Vec<String> {
        let mut v: Vec<String> = list(&s.app(), "party")
            .iter()
            .map(|x| x["StreamId"].as_str().unwrap_or("").to_string())
            .collect();
        v.sort();
        v
    };
    // Either node lists both, and a stream added through B.
    expect_code(
        &b.app().get(
            "AddStream",
            &[
                ("RoomId", "party"),
                ("UserId", "admin"),
                ("StreamId", "announced"),
            ],
        ),
        0,
    );
    for s in [&a, &b] {
        assert_eq!(ids(s), ["announced", "high", "low"]);
    }
    // Rate limits hold for the app, not per node: one DescribeSimpleStreamList per room
    // every 10 s (the vendor's default), counted by both nodes together.
    expect_code(
        &a.limited()
            .get("DescribeSimpleStreamList", &[("RoomId", "party")]),
        0,
    );
    let again = b
        .limited()
        .get("DescribeSimpleStreamList", &[("RoomId", "party")]);
    assert_ne!(again["Code"], 0, "{again}");
    assert!(
        again["Message"]
            .as_str()
            .unwrap_or("")
            .contains("one call per"),
        "{again}"
    );

    // An auto-mix started on A hears B's speaker too (relayed in).
    let r = a.app().post(
        "StartAutoMix",
        &serde_json::json!({"TaskId": "party", "UserId": "host", "RoomId": "party",
                "MixOutput": [{"StreamId": "party-mix", "AudioCodec": 1, "SoundChannel": 2}]})
        .to_string(),
        "application/json",
    );
    expect_code(&r, 0);
    wait_live_audio(&a, "party-mix");
    let flv = format!("{}/{APP}/party-mix.flv", a.base);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let audio = read_audio(&flv, 1.5);
        if tone(&audio, 440.0) > 0.02 && tone(&audio, 1000.0) > 0.02 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "B's speaker never heard on A's mix"
        );
    }
    // B's speaker leaves: gone from A's list at once.
    drop(high);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while ids(&a).contains(&"high".to_string()) {
        assert!(std::time::Instant::now() < deadline, "{:?}", ids(&a));
        std::thread::sleep(Duration::from_millis(100));
    }

    // Members on any node: B says A's publisher is online, and B's kick cuts it off on A.
    let v = b.app().get(
        "DescribeUsers",
        &[
            ("RoomId", "party"),
            ("UserId[]", "ua"),
            ("UserId[]", "nobody"),
        ],
    );
    expect_code(&v, 0);
    assert_eq!(v["Data"]["UserStatusList"][0]["Status"], 1, "{v}");
    assert_eq!(v["Data"]["UserStatusList"][1]["Status"], 0, "{v}");
    let sent = std::time::Instant::now();
    let v = b
        .app()
        .get("KickoutUser", &[("RoomId", "party"), ("UserId[]", "ua")]);
    expect_code(&v, 0);
    let cut = wait_cut(&a, "low", sent);
    eprintln!(
        "a kick sent to node B cut the publisher on node A after {} ms",
        cut.as_millis()
    );
    let v = b
        .app()
        .get("DescribeUsers", &[("RoomId", "party"), ("UserId[]", "ua")]);
    assert_eq!(v["Data"]["UserStatusList"][0]["Status"], 0, "{v}");
}

#[test]
fn tencent_calls_reach_the_node_of_their_session_with_their_signature_intact() {
    let pg = TestPostgres::start();
    let url = pg.new_database("tencent");
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), None);
    let cred = format!("{APP}:{SECRET_ID}:{SECRET_KEY}");
    let base = [
        "--config",
        cfg.to_str().unwrap(),
        "--store",
        &url,
        "--tencent-credential",
        &cred,
    ];
    // A cannot take the mix (no budget): placement sends it to B.
    let mut small = base.to_vec();
    small.extend(["--mix-budget", "1000"]);
    let a = Server::start_with(&tmp.path().join("node-a"), &small);
    let b = Server::start_with(&tmp.path().join("node-b"), &base);
    let _red = publish_color(&publish_url(&a, "red", "room1", "u1"), "red", 440, 90);
    wait_live(&a, "red", Duration::from_secs(20));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while admin_get(&a.base, "/api/nodes")
        .unwrap()
        .json::<serde_json::Value>()
        .unwrap()["nodes"]
        .as_array()
        .map_or(0, Vec::len)
        < 2
    {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(100));
    }

    // TC3 signs the Host header: the call sent on to B still verifies there.
    let now = now_secs();
    let body = serde_json::json!({"MixStreamSessionId": "tc_cluster",
        "InputStreamList": [
            {"InputStreamName": "canvas1", "LayoutParams": {"ImageLayer": 1, "InputType": 3,
                "ImageWidth": 320, "ImageHeight": 240, "Color": "0x0000FF"}},
            {"InputStreamName": "red", "LayoutParams": {"ImageLayer": 2,
                "ImageWidth": 320, "ImageHeight": 240}}],
        "OutputParams": {"OutputStreamName": "tc_cluster_out", "OutputStreamType": 1}})
    .to_string();
    let (_, r) = tc3(&a, "CreateCommonMixStream", SECRET_KEY, now, None, &body);
    assert!(r["Response"]["Error"].is_null(), "{r}");
    assert!(runs(&b, "tc_cluster") && !runs(&a, "tc_cluster"));
    // Played from A (relayed from B, whose input came from A).
    let flv = format!("{}/{APP}/tc_cluster_out.flv", a.base);
    wait_red(&flv, std::time::Instant::now(), Duration::from_secs(30));

    // A watermark added through B is known to A.
    let add =
        serde_json::json!({"PictureUrl": "http://127.0.0.1:9/logo.png", "WatermarkName": "logo"})
            .to_string();
    let (_, r) = tc3(&b, "AddLiveWatermark", SECRET_KEY, now, None, &add);
    let id = r["Response"]["WatermarkId"]
        .as_u64()
        .expect("a watermark id");
    let (_, r) = tc3(&a, "DescribeLiveWatermarks", SECRET_KEY, now, None, "{}");
    assert_eq!(r["Response"]["WatermarkList"][0]["WatermarkId"], id, "{r}");

    // Cancelled through A: it ends on B.
    let (_, r) = tc3(
        &a,
        "CancelCommonMixStream",
        SECRET_KEY,
        now,
        None,
        r#"{"MixStreamSessionId": "tc_cluster"}"#,
    );
    assert!(r["Response"]["Error"].is_null(), "{r}");
    assert!(!runs(&b, "tc_cluster"));
}
