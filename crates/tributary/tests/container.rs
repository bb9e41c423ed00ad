//! The container image, built from the repository's `Dockerfile` and run with Debian's
//! podman: it runs as its own non-root user, answers its health check, takes an RTMP
//! publisher from outside and plays it back over HTTP-FLV, and keeps its state (the
//! generated admin token) on its volume across a restart.
//!
//! Building the image is a release build in a container (about 15 minutes on 2 cores
//! the first time), so this test is not part of the default suite: `scripts/container.sh
//! test` builds the image and runs it.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::media::*;

const STARTUP: Duration = Duration::from_secs(60);

fn image() -> String {
    std::env::var("TRIBUTARY_IMAGE").unwrap_or_else(|_| "localhost/tributary:latest".into())
}

/// The flags this machine's podman needs to run a container (`scripts/container.sh`
/// finds them: the OCI runtime, limits the runtime may set).
fn run_flags() -> Vec<String> {
    std::env::var("TRIBUTARY_PODMAN_RUN_FLAGS")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn podman(args: &[&str]) -> Output {
    Command::new("podman")
        .args(args)
        .output()
        .expect("podman (scripts/container.sh installs it)")
}

fn podman_ok(args: &[&str]) -> String {
    let out = podman(args);
    assert!(
        out.status.success(),
        "podman {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A container and its volume, removed however the test ends.
struct Running {
    name: String,
    volume: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = podman(&["rm", "-f", "-t", "5", &self.name]);
        let _ = podman(&["volume", "rm", "-f", &self.volume]);
    }
}

impl Running {
    /// The host address a container port is published on.
    fn port(&self, port: &str) -> String {
        let line = podman_ok(&["port", &self.name, port]);
        line.lines().next().unwrap_or_default().trim().to_string()
    }

    fn logs(&self) -> String {
        let out = podman(&["logs", &self.name]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

fn wait_http_ok(url: &str) {
    let deadline = Instant::now() + STARTUP;
    loop {
        if reqwest::blocking::get(url).is_ok_and(|r| r.status().is_success()) {
            return;
        }
        assert!(Instant::now() < deadline, "{url} never answered 200");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn get_with(url: &str, token: &str) -> reqwest::blocking::Response {
    reqwest::blocking::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .unwrap()
}

#[test]
#[ignore = "needs the image: scripts/container.sh test builds it (a release build) and runs this"]
fn the_image_runs_as_its_own_user_serves_media_and_keeps_its_state() {
    let image = image();

    // What the image declares: its user, ports, volume and health check.
    let inspect = |field: &str| podman_ok(&["image", "inspect", "--format", field, &image]);
    assert_eq!(inspect("{{.Config.User}}"), "tributary");
    let ports = inspect("{{json .Config.ExposedPorts}}");
    for port in ["8080/tcp", "1935/tcp", "8443/udp"] {
        assert!(ports.contains(port), "{port} not exposed: {ports}");
    }
    let volumes = inspect("{{json .Config.Volumes}}");
    assert!(volumes.contains("/var/lib/tributary"), "{volumes}");
    let health = inspect("{{json .Config.Healthcheck}}");
    assert!(health.contains("/readyz"), "{health}");
    let size_mb = inspect("{{.Size}}").parse::<u64>().unwrap_or(0) / 1_000_000;
    eprintln!("image {image}: {size_mb} MB");

    let name = format!("tributary-test-{}", std::process::id());
    let c = Running {
        name: name.clone(),
        volume: format!("{name}-data"),
    };
    let volume = format!("{}:/var/lib/tributary", c.volume);
    let mut args: Vec<String> = ["run", "-d", "--name", &name]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(run_flags());
    args.extend(
        [
            "-p",
            "127.0.0.1::8080",
            "-p",
            "127.0.0.1::1935",
            "-v",
            &volume,
            &image,
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let started = Instant::now();
    podman_ok(&args);

    let http = format!("http://{}", c.port("8080/tcp"));
    wait_http_ok(&format!("{http}/healthz"));
    wait_http_ok(&format!("{http}/readyz"));
    eprintln!(
        "ready {} ms after podman run",
        started.elapsed().as_millis()
    );

    // Its own unprivileged user, and the health check the image declares passes.
    assert_eq!(podman_ok(&["exec", &name, "id", "-u"]), "10001");
    podman_ok(&["healthcheck", "run", &name]);

    // The first start printed the generated admin token and the demo app.
    let logs = c.logs();
    let token = logs
        .lines()
        .skip_while(|l| !l.starts_with("Generated the admin token"))
        .nth(1)
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| panic!("no admin token in the logs:\n{logs}"));
    let app: u32 = logs
        .lines()
        .find_map(|l| l.trim().strip_prefix("AppId:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no demo app in the logs:\n{logs}"));
    assert_eq!(
        get_with(&format!("{http}/api/streams"), "wrong").status(),
        401
    );
    assert_eq!(
        get_with(&format!("{http}/api/streams"), &token).status(),
        200
    );

    // An RTMP publisher from outside, with a URL the container's own CLI mints.
    let urls = podman_ok(&[
        "exec",
        &name,
        "tributary",
        "url",
        "publish",
        "--stream",
        "cam1",
        "--room",
        "room1",
        "--user",
        "u1",
    ]);
    let minted = urls
        .lines()
        .find(|l| l.starts_with("rtmp://"))
        .unwrap_or_else(|| panic!("no RTMP URL in {urls:?}"));
    let path = minted
        .strip_prefix("rtmp://")
        .and_then(|rest| rest.split_once('/'))
        .map(|(_, path)| path)
        .unwrap();
    let rtmp = format!("rtmp://{}/{path}", c.port("1935/tcp"));
    let _publisher = publish_color(&rtmp, "red", 440, 60);
    let deadline = Instant::now() + STARTUP;
    loop {
        let r = get_with(&format!("{http}/api/streams/{app}/cam1"), &token);
        if r.status().is_success() {
            break;
        }
        assert!(Instant::now() < deadline, "cam1 never went live");
        std::thread::sleep(Duration::from_millis(200));
    }
    let flv = format!("{http}/{app}/cam1.flv");
    let (r, g, b) = centre_rgb("ffmpeg", &flv).expect("a picture over HTTP-FLV");
    assert!(r > 200 && g < 60 && b < 60, "centre {r},{g},{b}");
    let console = reqwest::blocking::get(format!("{http}/console/")).unwrap();
    assert_eq!(console.status(), 200);

    // A restart (SIGTERM, then start again) keeps the store on the volume: the same
    // admin token works, and no new one is generated.
    drop(_publisher);
    let stop = Instant::now();
    podman_ok(&["stop", "-t", "20", &name]);
    eprintln!("stopped in {} ms", stop.elapsed().as_millis());
    let status = podman_ok(&["inspect", "--format", "{{.State.ExitCode}}", &name]);
    assert_eq!(status, "0", "exit code after SIGTERM");
    podman_ok(&["start", &name]);
    let http = format!("http://{}", c.port("8080/tcp"));
    wait_http_ok(&format!("{http}/readyz"));
    assert_eq!(
        get_with(&format!("{http}/api/streams"), &token).status(),
        200
    );
    let generated = c.logs().matches("Generated the admin token").count();
    assert_eq!(generated, 1, "a new token after the restart");
}
