//! Errors a person can read: panic messages, labels, overflow reports, and programmer-error
//! panics that point at the caller's line.

mod util;

use std::hint::black_box;

use grove::generator::Generator;
use grove::greenlet::Greenlet;

fn recurse(n: u64) -> u64 {
    let buf = black_box([n as u8; 512]);
    if n == 0 {
        return buf[0] as u64;
    }
    recurse(n - 1) + black_box(buf[100] as u64)
}

#[test]
fn join_error_display_shows_the_panic_message_or_what_the_payload_was() {
    let s = grove::spawn(|| panic!("formatted {}", 42))
        .join()
        .unwrap_err();
    assert_eq!(s.to_string(), "task panicked: formatted 42");
    let lit = grove::spawn(|| panic!("literal")).join().unwrap_err();
    assert_eq!(lit.to_string(), "task panicked: literal");
    let other = grove::spawn(|| std::panic::panic_any(7u32))
        .join()
        .unwrap_err();
    assert_eq!(
        other.to_string(),
        "task panicked: a panic payload that is not a string"
    );
    let timeout = grove::spawn(|| {
        let _t = grove::Timeout::start(std::time::Duration::from_millis(1));
        grove::sleep(std::time::Duration::from_secs(5));
    })
    .join()
    .unwrap_err();
    assert!(timeout.to_string().contains("Timeout"), "{timeout}");
}

#[test]
fn a_task_joining_itself_names_it_once() {
    let h = std::rc::Rc::new(std::cell::RefCell::new(None::<grove::JoinHandle<()>>));
    let h2 = h.clone();
    let task = grove::spawn(move || {
        let me = h2.borrow_mut().take().unwrap();
        me.join().unwrap();
    });
    *h.borrow_mut() = Some(task);
    // The task panics joining itself; main's handle is gone, so look at the log instead: the
    // label must read "task #N", not "task task #N".
    util::capture_logs();
    grove::sleep(std::time::Duration::from_millis(1));
    let logs = util::logged().join("\n");
    assert!(logs.contains("tried to join itself"), "{logs}");
    assert!(!logs.contains("task task"), "{logs}");
}

#[test]
fn would_block_forever_points_at_the_callers_line() {
    if util::child_scenario().as_deref() == Some("forever") {
        let q: grove::sync::Queue<u8> = grove::sync::Queue::new();
        let stuck = grove::spawn(move || q.get());
        let _ = stuck.join(); // the line the report must point at
        unreachable!();
    }
    let out = util::run_child("would_block_forever_points_at_the_callers_line", "forever");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = line!() - 5;
    assert!(
        stderr.contains(&format!("tests/error_messages.rs:{line}")),
        "expected line {line}: {stderr}"
    );
    assert!(stderr.contains("would block forever"), "{stderr}");
}

#[test]
fn a_generator_overflow_is_reported_as_a_generator() {
    if util::child_scenario().as_deref() == Some("gen-overflow") {
        let mut g: Generator<(), (), u64> =
            Generator::with_stack_size(64 * 1024, |_y, ()| recurse(1_000_000)).unwrap();
        let _ = g.resume(());
        unreachable!("the overflow aborts the process");
    }
    let out = util::run_child(
        "a_generator_overflow_is_reported_as_a_generator",
        "gen-overflow",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("generator has overflowed its stack (stack size 61440 bytes)"),
        "{stderr}"
    );
}

#[test]
fn a_greenlet_overflow_is_reported_as_a_greenlet() {
    if util::child_scenario().as_deref() == Some("greenlet-overflow") {
        let g = Greenlet::with_stack_size(64 * 1024, |()| {
            recurse(1_000_000);
        })
        .unwrap();
        g.switch(());
        unreachable!("the overflow aborts the process");
    }
    let out = util::run_child(
        "a_greenlet_overflow_is_reported_as_a_greenlet",
        "greenlet-overflow",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("greenlet #") && stderr.contains("has overflowed its stack"),
        "{stderr}"
    );
}

#[test]
fn an_uncaught_timeout_escaping_main_says_which_and_where() {
    if util::child_scenario().as_deref() == Some("uncaught-timeout") {
        // Caught ones stay quiet.
        let caught = grove::with_timeout(std::time::Duration::from_millis(1), || {
            grove::sleep(std::time::Duration::from_secs(5))
        });
        assert!(caught.is_err());
        let _t = grove::Timeout::start(std::time::Duration::from_millis(5));
        grove::sleep(std::time::Duration::from_secs(5));
        unreachable!("the timeout unwinds main");
    }
    let out = util::run_child(
        "an_uncaught_timeout_escaping_main_says_which_and_where",
        "uncaught-timeout",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(101), "{stderr}");
    let line = line!() - 10;
    assert!(
        stderr.contains(&format!(
            "grove: uncaught Timeout (armed at tests/error_messages.rs:{line}:"
        )),
        "{stderr}"
    );
    assert_eq!(stderr.matches("uncaught Timeout").count(), 1, "{stderr}");
}
