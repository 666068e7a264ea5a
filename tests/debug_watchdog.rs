//! The blocking watchdog: a task that keeps the hub for 300 ms is reported once, promptly, by
//! name and spawn location; an idle hub is not reported.

mod util;

use std::time::{Duration, Instant};

fn spin(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

fn child(scenario: &str) {
    grove::debug::watchdog(Some(Duration::from_millis(100))).unwrap();
    let other = grove::spawn(|| grove::sleep(Duration::from_millis(500)));
    match scenario {
        "busy" => {
            let spinner = grove::Builder::new()
                .name("spinner")
                .spawn(|| spin(Duration::from_millis(300)))
                .unwrap();
            spinner.join().unwrap();
        }
        _ => grove::sleep(Duration::from_millis(300)),
    }
    // Let the monitor see the hub come back.
    grove::sleep(Duration::from_millis(100));
    other.join().unwrap();
}

fn reports(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("has not switched for"))
        .collect()
}

#[test]
fn a_300_ms_busy_loop_is_reported_once_within_200_ms() {
    if let Some(s) = util::child_scenario() {
        return child(&s);
    }
    let out = util::run_child("a_300_ms_busy_loop_is_reported_once_within_200_ms", "busy");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let r = reports(&stderr);
    assert_eq!(r.len(), 1, "one report per stall:\n{stderr}");
    let line = r[0];
    assert!(line.contains("task #"), "{line}");
    assert!(line.contains("'spinner'"), "{line}");
    assert!(
        line.contains("spawned at tests/debug_watchdog.rs:"),
        "{line}"
    );
    assert!(line.contains("interrupted at pc 0x"), "{line}");
    let ms: u64 = line
        .split("has not switched for ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("a duration");
    assert!((100..200).contains(&ms), "reported after {ms} ms: {line}");
    assert!(stderr.contains("came back after"), "{stderr}");
}

#[test]
fn an_idle_hub_is_not_reported() {
    if let Some(s) = util::child_scenario() {
        return child(&s);
    }
    let out = util::run_child("an_idle_hub_is_not_reported", "idle");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(reports(&stderr).is_empty(), "{stderr}");
}
