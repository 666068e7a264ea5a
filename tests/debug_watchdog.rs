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
        "repeated" => {
            // Three 150 ms stalls in quick succession: one full report, the rest counted.
            let spinner = grove::Builder::new()
                .name("repeat")
                .spawn(|| {
                    for _ in 0..3 {
                        spin(Duration::from_millis(150));
                        grove::sleep(Duration::from_millis(20));
                    }
                })
                .unwrap();
            spinner.join().unwrap();
            grove::sleep(Duration::from_millis(1000));
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

#[test]
fn stalls_in_quick_succession_get_one_report_and_a_count() {
    if let Some(s) = util::child_scenario() {
        return child(&s);
    }
    let out = util::run_child(
        "stalls_in_quick_succession_get_one_report_and_a_count",
        "repeated",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(reports(&stderr).len(), 1, "{stderr}");
    // Normally "2 more stalls"; a monitor thread delayed by a loaded machine may miss one.
    assert!(
        stderr.contains(" more stalls of thread") && !stderr.contains(": 0 more"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("came back after").count(), 1, "{stderr}");
}
