//! What an operator installs: the systemd unit (checked by systemd's own tools, its
//! command line run for real) and the probes supervisors call.

mod common;

use std::process::Command;

use common::*;

const UNIT: &str = include_str!("../../../packaging/tributary.service");

/// The unit's `ExecStart=` command line, split on spaces (it has no quoting).
fn exec_start() -> Vec<String> {
    let line = UNIT
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    line.split_whitespace().map(str::to_string).collect()
}

#[test]
fn the_systemd_unit_is_valid_hardened_and_its_command_line_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let exec = exec_start();
    assert_eq!(exec[0], "/usr/local/bin/tributary");
    assert_eq!(exec[1], "serve");

    // systemd's verifier, with ExecStart pointing at the binary under test.
    let unit = tmp.path().join("tributary.service");
    std::fs::write(
        &unit,
        UNIT.replace("/usr/local/bin/tributary", env!("CARGO_BIN_EXE_tributary")),
    )
    .unwrap();
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze (scripts/setup.sh installs systemd)");
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    // Its own exposure score: 0 (locked down) to 10 (none of the hardening).
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=yes"])
        .arg(&unit)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&security.stdout).to_string();
    let score: f64 = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for").nth(1))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {text}"));
    assert!(score <= 2.0, "exposure {score}:\n{text}");

    // The command line itself: the same flags, with the configuration file and the data
    // directory moved into a temporary directory, serve and become ready.
    let config_at = exec.iter().position(|a| a == "--config").unwrap();
    let data_at = exec.iter().position(|a| a == "--data").unwrap();
    assert_eq!(exec[config_at + 1], "/etc/tributary/tributary.toml");
    assert_eq!(exec[data_at + 1], "/var/lib/tributary");
    assert!(
        UNIT.contains("StateDirectory=tributary")
            && UNIT.contains("ConfigurationDirectory=tributary")
    );
    let config = tmp.path().join("tributary.toml");
    std::fs::write(
        &config,
        "[live]\nhls_window = 4\n\n[[apps]]\napp_id = 77\nserver_secret = \"0123456789abcdef\"\ncallback_secret = \"fedcba9876543210\"\n",
    )
    .unwrap();
    let data = tmp.path().join("state");
    let s = Server::start_with(&data, &["--config", config.to_str().unwrap()]);
    let ready = reqwest::blocking::get(format!("{}/readyz", s.base)).unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().unwrap(), "ready");
    let live = reqwest::blocking::get(format!("{}/healthz", s.base)).unwrap();
    assert_eq!(live.status(), 200);
}

#[test]
fn the_version_flag_names_the_release() {
    let out = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("tributary {}", env!("CARGO_PKG_VERSION"))
    );
}
