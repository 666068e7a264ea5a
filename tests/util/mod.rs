//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

/// Environment variable telling a re-executed test binary to run a child scenario.
pub const CHILD_ENV: &str = "GROVE_TEST_CHILD";

/// Re-runs this test binary with only `test` selected and `CHILD_ENV=scenario`.
#[track_caller]
pub fn run_child(test: &str, scenario: &str) -> Output {
    let exe = std::env::current_exe().expect("test binary path");
    Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, scenario)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("re-run the test binary")
}

/// Like [`run_child`], but a child still running after `limit` is killed and the test fails
/// with "hung" and what the child printed so far: for scenarios that would hang without the
/// fix under test.
#[track_caller]
pub fn run_child_within(test: &str, scenario: &str, limit: std::time::Duration) -> Output {
    run_child_limited(test, scenario, limit, false)
}

/// Re-runs this test binary for `scenario` (as [`run_child`]), asserts that the child exited
/// cleanly, and returns its stdout.
#[track_caller]
pub fn run_child_ok(test: &str, scenario: &str) -> String {
    let out = run_child(test, scenario);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "child {scenario} failed ({:?}): {stderr}",
        out.status
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The scenario this process should run, if it is a child.
pub fn child_scenario() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// A logger that keeps every record, so tests can assert on what grove logged.
pub struct Capture;

static RECORDS: Mutex<Vec<String>> = Mutex::new(Vec::new());

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        let line = format!("{} {}", record.level(), record.args());
        RECORDS.lock().unwrap().push(line);
    }
    fn flush(&self) {}
}

/// Installs the capturing logger (once per test binary).
pub fn capture_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        log::set_logger(&Capture).expect("no other logger");
        log::set_max_level(log::LevelFilter::Error);
    });
}

/// Every captured log line so far.
pub fn logged() -> Vec<String> {
    RECORDS.lock().unwrap().clone()
}

/// How many captured log lines contain `text`.
pub fn logged_count(text: &str) -> usize {
    logged().iter().filter(|l| l.contains(text)).count()
}

/// The text of a panic payload.
pub fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "<non-string panic>".into())
}

/// A value that records its drop in a shared flag.
pub struct DropFlag(pub std::rc::Rc<std::cell::Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// A fresh flag and a guard that sets it when dropped.
pub fn drop_flag() -> (std::rc::Rc<std::cell::Cell<bool>>, DropFlag) {
    let flag = std::rc::Rc::new(std::cell::Cell::new(false));
    (flag.clone(), DropFlag(flag))
}

/// Raises this process's soft open-file limit to at least `want` (never above the hard limit,
/// which is left alone). Returns the soft limit now in force.
pub fn raise_nofile(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the valid `lim`.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    if lim.rlim_cur < want {
        lim.rlim_cur = want.min(lim.rlim_max);
        // SAFETY: setrlimit reads the valid `lim`; only the soft limit changes.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    }
    lim.rlim_cur
}

/// Sets this process's soft open-file limit to `soft` (the hard limit is left alone).
pub fn set_soft_nofile(soft: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the valid `lim`.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim.rlim_cur = soft.min(lim.rlim_max);
    // SAFETY: setrlimit reads the valid `lim`.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
}

/// A connected pair of grove TCP streams over loopback.
pub fn tcp_pair() -> (grove::net::TcpStream, grove::net::TcpStream) {
    let listener = grove::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = grove::spawn(move || grove::net::TcpStream::connect(addr).unwrap());
    let (server, _) = listener.accept().unwrap();
    (client.join().unwrap(), server)
}

/// User + system CPU this process has used.
pub fn cpu_time() -> std::time::Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    std::time::Duration::from_millis(ticks * 10)
}

/// Like [`run_child_within`], for scenarios that fork: the child runs in a process group of
/// its own, and on timeout the whole group is killed (a forked grandchild holding the output
/// pipes would otherwise keep the wait going after the child itself was killed).
#[track_caller]
pub fn run_child_group_within(test: &str, scenario: &str, limit: std::time::Duration) -> Output {
    run_child_limited(test, scenario, limit, true)
}

/// [`run_child_within`], the child in a process group of its own if `group` (killed whole on a
/// hang, and any stragglers once the child has exited).
#[track_caller]
fn run_child_limited(
    test: &str,
    scenario: &str,
    limit: std::time::Duration,
    group: bool,
) -> Output {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new(exe);
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, scenario)
        .env("RUST_BACKTRACE", "0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if group {
        cmd.process_group(0);
    }
    let child = cmd.spawn().expect("re-run the test binary");
    // The child's pid, or its group (negative) for kill.
    let target = if group {
        -(child.id() as libc::pid_t)
    } else {
        child.id() as libc::pid_t
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(limit) {
        Ok(out) => {
            if group {
                // SAFETY: kill takes only integers; stragglers of the scenario's group, if any.
                unsafe { libc::kill(target, libc::SIGKILL) };
            }
            out.expect("wait for the child")
        }
        Err(_) => {
            // SAFETY: kill takes only integers; `target` is our child (not yet reaped: the
            // waiting thread reaps it only after it exits) or its own process group.
            unsafe { libc::kill(target, libc::SIGKILL) };
            let out = rx
                .recv()
                .expect("the waiting thread")
                .expect("child output");
            panic!(
                "child scenario {scenario:?} hung (killed after {limit:?}):\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// Runs `body` in a child copy of this test binary (its own process group, killed after 60 s)
/// and asserts that the child succeeded: for scenarios with process-wide effects (signals,
/// forks).
#[track_caller]
pub fn isolated(name: &str, body: impl FnOnce()) {
    if child_scenario().as_deref() == Some(name) {
        body();
        return;
    }
    let out = run_child_group_within(name, name, std::time::Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{name} failed ({:?}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
