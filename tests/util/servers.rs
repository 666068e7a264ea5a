//! Real servers for the monkey tests: a `redis-server` and a PostgreSQL cluster, each in a
//! temporary directory on a free loopback port, stopped (and the directory removed) on drop.
//!
//! A missing server binary fails the test with a message that says how to get it
//! (`scripts/test` installs both from Debian's packages); it is never a silent skip.
//!
//! Include it with `#[path = "util/servers.rs"] mod servers;`. Start the servers before
//! `patch_all()` where you can: these helpers block the calling thread (they are test setup,
//! not the code under test).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a server may take to start answering.
const START_LIMIT: Duration = Duration::from_secs(30);

const HOW_TO_GET_THEM: &str = "run the tests with `scripts/test` (it installs redis-server and \
     postgresql from Debian's packages), or install them yourself";

/// A running `redis-server`: no persistence, bound to 127.0.0.1 on a free port.
pub struct Redis {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Redis {
    /// Starts `redis-server` and waits until it answers `PING`.
    ///
    /// # Panics
    /// If `redis-server` is not installed, or does not answer within 30 s.
    #[track_caller]
    pub fn start() -> Redis {
        let exe = find_program("redis-server", &["/usr/bin", "/usr/local/bin", "/usr/sbin"])
            .unwrap_or_else(|| panic!("redis-server is not installed: {HOW_TO_GET_THEM}"));
        let dir = TempDir::new("redis");
        let log = dir.path().join("redis.log");
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            let mut child = Command::new(&exe)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .args(["--protected-mode", "no", "--maxclients", "4000"])
                .arg("--dir")
                .arg(dir.path())
                .arg("--logfile")
                .arg(&log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
            if wait_for_pong(&mut child, port) {
                return Redis { child, port, dir };
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
            if !last_log.contains("in use") {
                break;
            }
        }
        panic!("redis-server did not start:\n{last_log}");
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/`, for `redis::Client::open`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls with `PING` until `+PONG` comes back; false if the server exited first or the limit
/// passed.
fn wait_for_pong(child: &mut Child, port: u16) -> bool {
    let deadline = Instant::now() + START_LIMIT;
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return false;
        }
        if ping(port) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// One `PING` round trip in RESP.
fn ping(port: u16) -> bool {
    let Ok(mut conn) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let mut reply = [0; 7];
    conn.write_all(b"*1\r\n$4\r\nPING\r\n").is_ok()
        && conn.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

/// A running PostgreSQL cluster made by `initdb` in a temporary directory: trust
/// authentication, superuser `postgres`, listening on 127.0.0.1 on a free port and on a unix
/// socket in the directory. As root, `initdb` and `pg_ctl` run as the `postgres` user.
pub struct Postgres {
    bin: PathBuf,
    dir: TempDir,
    port: u16,
}

impl Postgres {
    /// Creates the cluster and starts it (`pg_ctl start -w`).
    ///
    /// # Panics
    /// If PostgreSQL is not installed, or `initdb` or `pg_ctl start` fails.
    #[track_caller]
    pub fn start() -> Postgres {
        let bin = postgres_bin_dir().unwrap_or_else(|| {
            panic!("PostgreSQL (initdb, pg_ctl) is not installed: {HOW_TO_GET_THEM}")
        });
        let dir = TempDir::new("postgres");
        give_to_postgres_user(dir.path());
        let data = dir.path().join("data");
        let out = as_postgres(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut last_error = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            let options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 \
                 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                dir.path().display()
            );
            let out = as_postgres(&bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.path().join("postgres.log"))
                .args(["-w", "-t", "30", "-o", &options, "start"])
                .output()
                .expect("run pg_ctl start");
            if out.status.success() {
                return Postgres { bin, dir, port };
            }
            let log = std::fs::read_to_string(dir.path().join("postgres.log")).unwrap_or_default();
            last_error = format!(
                "{}\n{}\n{log}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            if !log.contains("already in use") {
                break;
            }
        }
        panic!("pg_ctl start failed:\n{last_error}");
    }

    /// The TCP port on 127.0.0.1 (also the unix socket's number).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A `postgres::Config`-style connection string over TCP to the `postgres` database.
    pub fn tcp_params(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    /// The same over the unix socket in the cluster's directory.
    pub fn unix_params(&self) -> String {
        format!(
            "host={} port={} user=postgres dbname=postgres",
            self.dir.path().display(),
            self.port
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The newest `/usr/lib/postgresql/VERSION/bin` that has `initdb` and `pg_ctl`.
fn postgres_bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").exists() && bin.join("pg_ctl").exists()).then_some((version, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, bin)| bin)
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `program` run as the `postgres` user when we are root (initdb refuses root), else as us.
fn as_postgres(program: &Path) -> Command {
    if running_as_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// As root, hands `dir` to the `postgres` user (initdb and the server write there).
fn give_to_postgres_user(dir: &Path) {
    if !running_as_root() {
        return;
    }
    let status = Command::new("chown")
        .args(["postgres:postgres"])
        .arg(dir)
        .status()
        .expect("run chown");
    assert!(
        status.success(),
        "chown postgres {}: {status} (is the postgres user missing? {HOW_TO_GET_THEM})",
        dir.display()
    );
}

/// `name` on `PATH` or in one of `extra` directories.
fn find_program(name: &str, extra: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A loopback port nobody listens on right now (the caller retries if it is taken meanwhile).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().unwrap().port()
}

/// A directory under the system temp dir, removed with its contents on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `grove-{what}-{pid}-{n}`.
    pub fn new(what: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("grove-{what}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        TempDir(path)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
