//! The sync `redis` crate against a real `redis-server` under `patch_all()`: 1000 tasks on one
//! OS thread, each with its own connection doing SET/GET/INCR and one command that makes the
//! server wait (`BLPOP` on an empty list with a 50 ms timeout — the latency a real request
//! would have). Every result is checked, and the run is at least 10× faster than the same work
//! done serially, which a child process measures as the negative control: the same tasks
//! without `patch_all()` run one after another.

#[path = "util/servers.rs"]
mod servers;
mod util;

use std::process::Command;
use std::time::{Duration, Instant};

const TASKS: usize = 1000;
/// How long the server makes each task wait (the `BLPOP` timeout).
const SERVER_WAIT: Duration = Duration::from_millis(50);
/// Tasks the serial control runs; its time per task is scaled to `TASKS`.
const SERIAL_SAMPLE: usize = 20;

const URL_ENV: &str = "GROVE_TEST_REDIS_URL";

/// One task's work: SET, GET, INCR on a key of its own, an INCR of a shared counter, and a
/// `BLPOP` that returns nothing after `SERVER_WAIT`. Returns the key's final value.
fn work(url: &str, prefix: &str, i: usize) -> i64 {
    let client = redis::Client::open(url).unwrap();
    let mut con = client
        .get_connection()
        .unwrap_or_else(|e| panic!("task {i}: connect: {e}"));
    let key = format!("{prefix}:key:{i}");
    redis::cmd("SET")
        .arg(&key)
        .arg(i * 10)
        .exec(&mut con)
        .unwrap();
    let got: i64 = redis::cmd("GET").arg(&key).query(&mut con).unwrap();
    assert_eq!(got, i as i64 * 10, "GET {key}");
    let popped: Option<(String, String)> = redis::cmd("BLPOP")
        .arg(format!("{prefix}:empty:{i}"))
        .arg(SERVER_WAIT.as_secs_f64())
        .query(&mut con)
        .unwrap();
    assert_eq!(popped, None, "nothing was ever pushed");
    let _: i64 = redis::cmd("INCR")
        .arg(format!("{prefix}:shared"))
        .query(&mut con)
        .unwrap();
    redis::cmd("INCR").arg(&key).query(&mut con).unwrap()
}

/// Spawns `n` tasks doing `work` and checks every result; returns how long that took.
fn run_tasks(url: &str, prefix: &str, n: usize) -> Duration {
    let start = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let url = url.to_string();
            let prefix = prefix.to_string();
            grove::spawn(move || work(&url, &prefix, i))
        })
        .collect();
    for (i, result) in grove::join_all(tasks).into_iter().enumerate() {
        assert_eq!(result.unwrap(), i as i64 * 10 + 1, "task {i}'s INCR");
    }
    let took = start.elapsed();
    let client = redis::Client::open(url).unwrap();
    let mut con = client.get_connection().unwrap();
    let shared: i64 = redis::cmd("GET")
        .arg(format!("{prefix}:shared"))
        .query(&mut con)
        .unwrap();
    assert_eq!(
        shared, n as i64,
        "every task incremented the shared counter once"
    );
    took
}

/// The negative control, in a child process that never calls `patch_all()`: the same tasks
/// block the thread in turn. Prints the time per task in µs.
fn serial_child() {
    let url = std::env::var(URL_ENV).unwrap();
    let took = run_tasks(&url, "serial", SERIAL_SAMPLE);
    println!(
        "serial-us-per-task {}",
        took.as_micros() / SERIAL_SAMPLE as u128
    );
}

#[test]
fn redis_1000_tasks_on_one_thread() {
    if util::child_scenario().as_deref() == Some("serial") {
        return serial_child();
    }
    let redis = servers::Redis::start();
    util::raise_nofile(4 * TASKS as u64);

    let out = Command::new(std::env::current_exe().unwrap())
        .args(["redis_1000_tasks_on_one_thread", "--exact", "--nocapture"])
        .env(util::CHILD_ENV, "serial")
        .env(URL_ENV, redis.url())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "serial control failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let serial_per_task = stdout
        .lines()
        .find_map(|l| l.strip_prefix("serial-us-per-task "))
        .and_then(|us| us.trim().parse().ok())
        .map(Duration::from_micros)
        .expect("the control's time per task");
    // Without patch_all the server's waits add up: the control is really serial.
    assert!(
        serial_per_task >= SERVER_WAIT,
        "without patch_all each task should take at least {SERVER_WAIT:?}, took {serial_per_task:?}"
    );

    grove::monkey::patch_all();
    let took = run_tasks(&redis.url(), "patched", TASKS);
    let serial = serial_per_task * TASKS as u32;
    let speedup = serial.as_secs_f64() / took.as_secs_f64();
    eprintln!("{TASKS} tasks: {took:?}; serially about {serial:?} ({speedup:.0}×)");
    assert!(
        speedup >= 10.0,
        "{TASKS} patched tasks took {took:?}, serially {serial:?}: only {speedup:.1}× faster"
    );
}
