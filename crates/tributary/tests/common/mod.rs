//! Test harness: the real `tributary` binary on an ephemeral port, a client that signs
//! requests the way the vendor's samples do (independently of the server's code), and a
//! local HTTP receiver for callbacks.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub mod media;
pub mod tencent;

use md5::{Digest, Md5};
use serde_json::Value;

pub const APP: u32 = 12345;
pub const SECRET: &str = "9193cc662a4c0ec135ec71fb57194b38";
pub const CB_SECRET: &str = "callback-secret-for-tests";
/// An app with the vendor's default rate limits.
pub const LIMITED_APP: u32 = 777;
/// A test-environment app.
pub const TEST_APP: u32 = 888;
/// The operator token of the test configuration.
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// `GET base + path` with the admin token (operator routes: `/api/*`, `/metrics`).
pub fn admin_get(base: &str, path: &str) -> reqwest::Result<reqwest::blocking::Response> {
    reqwest::blocking::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Writes the test configuration: three apps, callbacks to `callback_url` for the first.
pub fn write_config(dir: &Path, callback_url: Option<&str>) -> PathBuf {
    let urls = callback_url
        .map(|u| format!("callback_urls = [\"{u}\"]"))
        .unwrap_or_default();
    let text = format!(
        r#"
[callbacks]
retry_base_ms = 100
timeout_ms = 2000

[security]
allow_networks = ["127.0.0.1/32"]

[admin]
token = "{ADMIN_TOKEN}"

[[apps]]
app_id = {APP}
server_secret = "{SECRET}"
callback_secret = "{CB_SECRET}"
{urls}
[apps.rate_limits]
enabled = false

[[apps]]
app_id = {LIMITED_APP}
server_secret = "limited-secret"
callback_secret = "limited-cb"

[[apps]]
app_id = {TEST_APP}
server_secret = "test-secret"
callback_secret = "test-cb"
is_test = true
[apps.rate_limits]
enabled = false
"#
    );
    let path = dir.join("tributary.toml");
    std::fs::write(&path, text).unwrap();
    path
}

pub struct Server {
    child: Option<Child>,
    pub base: String,
    /// `rtmp://127.0.0.1:PORT`
    pub rtmp: String,
    pub data: PathBuf,
    args: Vec<String>,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// A server on a fresh data directory with the test config.
    pub fn start(callback_url: Option<&str>) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let config = write_config(tmp.path(), callback_url);
        let args = vec!["--config".to_string(), config.display().to_string()];
        let mut s = Server {
            child: None,
            base: String::new(),
            rtmp: String::new(),
            data,
            args,
            _tmp: Some(tmp),
        };
        s.spawn();
        s
    }

    /// A server on the test configuration as `edit` changes its text, with `args` added.
    pub fn start_edited(edit: impl FnOnce(String) -> String, args: &[&str]) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let config = write_config(tmp.path(), None);
        let text = edit(std::fs::read_to_string(&config).unwrap());
        std::fs::write(&config, text).unwrap();
        let mut all = vec!["--config".to_string(), config.display().to_string()];
        all.extend(args.iter().map(|a| a.to_string()));
        let mut s = Server {
            child: None,
            base: String::new(),
            rtmp: String::new(),
            data: tmp.path().join("data"),
            args: all,
            _tmp: Some(tmp),
        };
        s.spawn();
        s
    }

    /// A server on the test configuration with `sections` (TOML tables) added.
    pub fn start_with_sections(sections: &str) -> Server {
        Server::start_edited(
            |t| t.replacen("[callbacks]", &format!("{sections}\n\n[callbacks]"), 1),
            &[],
        )
    }

    /// A server with exactly these arguments (plus an ephemeral port and `data`).
    pub fn start_with(data: &Path, args: &[&str]) -> Server {
        let mut s = Server {
            child: None,
            base: String::new(),
            rtmp: String::new(),
            data: data.to_path_buf(),
            args: args.iter().map(|a| a.to_string()).collect(),
            _tmp: None,
        };
        s.spawn();
        s
    }

    pub fn stdout_log(&self) -> PathBuf {
        self.data.with_extension("stdout.log")
    }

    fn spawn(&mut self) {
        std::fs::create_dir_all(self.data.parent().unwrap()).unwrap();
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data.with_extension("stderr.log"))
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tributary"))
            .arg("serve")
            .args(["--http", "127.0.0.1:0", "--data"])
            .arg(&self.data)
            .args(&self.args)
            .args(if self.args.iter().any(|a| a == "--rtmp") {
                &[][..]
            } else {
                &["--rtmp", "127.0.0.1:0"][..]
            })
            .args(if self.args.iter().any(|a| a == "--rtc-udp") {
                &[][..]
            } else {
                &["--rtc-udp", "127.0.0.1:0"][..]
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("spawn tributary");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let log = self.stdout_log();
        std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                all.push_str(&line);
                all.push('\n');
                let _ = std::fs::write(&log, &all);
                if let Some(url) = line.strip_prefix("tributary: RTMP listening on ") {
                    let _ = tx.send(url.to_string());
                }
                if let Some(url) = line.strip_prefix("tributary: API listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let rtmp = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server did not announce its RTMP address");
        let base = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server did not announce its address");
        self.rtmp = rtmp;
        self.base = base;
        self.child = Some(child);
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the server to exit by itself (after `tributary drain --stop`, say).
    pub fn wait_exited(&mut self, limit: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process without any chance to clean up (a crash).
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    pub fn restart(&mut self) {
        if self.child.is_some() {
            assert!(self.stop().success());
        }
        self.spawn();
    }

    pub fn client(&self, app_id: u32, secret: &str) -> Client {
        Client {
            base: self.base.clone(),
            app_id,
            secret: secret.to_string(),
            is_test: false,
            http: reqwest::blocking::Client::new(),
        }
    }

    /// The main test app (rate limits off, callbacks on).
    pub fn app(&self) -> Client {
        self.client(APP, SECRET)
    }

    /// The app with the vendor's default rate limits.
    pub fn limited(&self) -> Client {
        self.client(LIMITED_APP, "limited-secret")
    }

    pub fn test_app(&self) -> Client {
        let mut c = self.client(TEST_APP, "test-secret");
        c.is_test = true;
        c
    }

    pub fn tributary(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_tributary"))
            .args(args)
            .arg("--data")
            .arg(&self.data)
            .args(&self.args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The vendor's signature, computed here independently of the server's code.
pub fn md5_signature(app_id: u32, nonce: &str, secret: &str, ts: &str) -> String {
    hex::encode(Md5::digest(
        format!("{app_id}{nonce}{secret}{ts}").as_bytes(),
    ))
}

pub fn nonce() -> String {
    hex::encode(rand::random::<[u8; 8]>())
}

pub struct Client {
    pub base: String,
    pub app_id: u32,
    pub secret: String,
    pub is_test: bool,
    pub http: reqwest::blocking::Client,
}

impl Client {
    /// The common parameters, signed now with a fresh nonce.
    pub fn common(&self) -> String {
        self.common_at(now_secs(), &nonce())
    }

    pub fn common_at(&self, ts: u64, nonce: &str) -> String {
        let ts = ts.to_string();
        let sig = md5_signature(self.app_id, nonce, &self.secret, &ts);
        let mut q = format!(
            "AppId={}&SignatureNonce={nonce}&Timestamp={ts}&Signature={sig}&SignatureVersion=2.0",
            self.app_id
        );
        if self.is_test {
            q.push_str("&IsTest=true");
        }
        q
    }

    /// `?Action=…&<params>&<common>`; params are percent-encoded.
    pub fn url(&self, action: &str, params: &[(&str, &str)]) -> String {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        ser.append_pair("Action", action);
        for (k, v) in params {
            ser.append_pair(k, v);
        }
        format!("{}/?{}&{}", self.base, ser.finish(), self.common())
    }

    pub fn get(&self, action: &str, params: &[(&str, &str)]) -> Value {
        self.fetch(&self.url(action, params))
    }

    /// GET `base` + a raw path-and-query (exactly as given).
    pub fn raw(&self, path_and_query: &str) -> Value {
        self.fetch(&format!("{}{}", self.base, path_and_query))
    }

    pub fn fetch(&self, url: &str) -> Value {
        let resp = self.http.get(url).send().unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{url}");
        resp.json().unwrap()
    }

    pub fn post(&self, action: &str, body: &str, content_type: &str) -> Value {
        let url = format!("{}/?Action={action}&{}", self.base, self.common());
        let resp = self
            .http
            .post(url)
            .header("Content-Type", content_type)
            .body(body.to_string())
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        resp.json().unwrap()
    }
}

/// Asserts the envelope's code (and that it has a RequestId), returning the body.
#[track_caller]
pub fn expect_code(v: &Value, code: u64) -> &Value {
    assert_eq!(v["Code"].as_u64(), Some(code), "{v}");
    assert!(
        v["RequestId"].as_str().is_some_and(|s| !s.is_empty()),
        "RequestId missing: {v}"
    );
    assert!(v["Message"].is_string(), "{v}");
    v
}

/// A request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub body: Value,
    pub status_sent: u16,
}

/// A local HTTP server that records callback POSTs and answers with scripted statuses
/// (200 once the script is exhausted).
pub struct Receiver {
    pub url: String,
    pub rx: mpsc::Receiver<Received>,
    script: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    pub fn start(script: &[u16]) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::channel();
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let s2 = script.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let tx = tx.clone();
                let script = s2.clone();
                std::thread::spawn(move || serve_one(conn, &tx, &script));
            }
        });
        Receiver { url, rx, script }
    }

    pub fn next(&self, timeout: Duration) -> Option<Received> {
        self.rx.recv_timeout(timeout).ok()
    }
}

fn serve_one(mut conn: TcpStream, tx: &mpsc::Sender<Received>, script: &Mutex<VecDeque<u16>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    loop {
        let mut content_length = 0usize;
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                content_length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let status = script.lock().unwrap().pop_front().unwrap_or(200);
        let _ = tx.send(Received {
            at: Instant::now(),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            status_sent: status,
        });
        let resp = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
        if conn.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}
