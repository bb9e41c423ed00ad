//! A private PostgreSQL server for tests: Debian's `postgresql` binaries (installed by
//! `scripts/setup.sh`), a cluster made with `initdb` in a temporary directory, served by
//! `pg_ctl` on a free loopback port, and stopped when dropped. PostgreSQL refuses to run
//! as root, so as root the cluster belongs to the `postgres` user the package creates.
//! Shared by the unit tests and, through `#[path]`, the integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct TestPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

/// The newest `/usr/lib/postgresql/<version>/bin`.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL (scripts/setup.sh installs Debian's postgresql)")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            Some((v, e.path().join("bin")))
        })
        .collect();
    versions.sort();
    versions.pop().expect("a PostgreSQL version").1
}

fn is_root() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Runs a PostgreSQL tool, as `postgres` when we are root.
fn tool(bin: &Path, name: &str, args: &[&str]) -> Output {
    let exe = bin.join(name);
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    cmd.args(args).output().expect(name)
}

/// [`tool`], which must succeed; its stdout.
fn tool_ok(bin: &Path, name: &str, args: &[&str]) -> String {
    let out = tool(bin, name, args);
    assert!(
        out.status.success(),
        "{name}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl TestPostgres {
    pub fn start() -> TestPostgres {
        let dir = tempfile::Builder::new()
            .prefix("tributary-pg")
            .tempdir()
            .expect("a temporary directory");
        if is_root() {
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown of the cluster directory to postgres");
        }
        let bin = bin_dir();
        let data = dir.path().join("data");
        let data = data.to_str().expect("a UTF-8 path");
        tool_ok(
            &bin,
            "initdb",
            &[
                "-D",
                data,
                "-U",
                "tributary",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let pg = TestPostgres {
            dir,
            bin,
            port: free_port(),
        };
        pg.launch();
        pg
    }

    /// A URL of a fresh, empty database on this server.
    pub fn new_database(&self, name: &str) -> String {
        tool_ok(
            &self.bin,
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "tributary",
                name,
            ],
        );
        self.url(name)
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://tributary@127.0.0.1:{}/{db}", self.port)
    }

    /// Stops the server (fast shutdown: clients are disconnected), keeping its data.
    pub fn stop(&self) {
        let data = self.dir.path().join("data");
        tool_ok(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap_or(""),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        );
    }

    /// Makes the server take TLS connections only (a CA and a certificate for
    /// 127.0.0.1 made with `openssl`; plain TCP refused by `pg_hba.conf`), restarted;
    /// returns the CA's PEM file.
    pub fn require_tls(&self) -> PathBuf {
        let dir = self.dir.path();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=tributary test CA",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("san.ext");
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ]);
        let data = dir.join("data");
        let mut conf =
            std::fs::read_to_string(data.join("postgresql.conf")).expect("postgresql.conf");
        conf.push_str(&format!(
            "\nssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
            dir.join("server.crt").display(),
            dir.join("server.key").display()
        ));
        std::fs::write(data.join("postgresql.conf"), conf).expect("postgresql.conf");
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 reject\n",
        )
        .expect("pg_hba.conf");
        if is_root() {
            for f in [
                "server.key",
                "server.crt",
                "data/postgresql.conf",
                "data/pg_hba.conf",
            ] {
                let ok = Command::new("chown")
                    .args(["postgres:postgres"])
                    .arg(dir.join(f))
                    .status()
                    .is_ok_and(|s| s.success());
                assert!(ok, "chown {f}");
            }
        }
        let key = dir.join("server.key");
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("server.key mode");
        self.stop();
        self.launch();
        dir.join("ca.pem")
    }

    /// Starts it again on the same port.
    pub fn restart(&self) {
        self.launch();
    }

    /// `pg_ctl start` on this cluster's port, its socket in the cluster's directory.
    fn launch(&self) {
        let data = self.dir.path().join("data");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        let out = tool(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap_or(""),
                "-o",
                &opts,
                "-l",
                log.to_str().unwrap_or("/dev/null"),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Runs SQL with `psql` (to break or inspect a database behind the store's back).
    pub fn psql(&self, db: &str, sql: &str) -> String {
        tool_ok(
            &self.bin,
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "tributary",
                "-d",
                db,
                "-tAc",
                sql,
            ],
        )
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = tool(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap_or(""),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}
