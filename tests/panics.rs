//! Panics in tasks: delivered through join, logged when nobody joins, never fatal to the hub.

mod util;

use std::time::Duration;

#[test]
fn a_panicking_task_yields_its_payload() {
    let h = grove::spawn(|| -> u32 { panic!("task failed: {}", 42) });
    let err = h.join().unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.panic_message(), Some("task failed: 42"));
    assert_eq!(
        util::panic_text(err.into_panic().as_ref()),
        "task failed: 42"
    );
}

#[test]
fn other_tasks_keep_running_after_a_panic() {
    let calm = grove::spawn(|| {
        grove::sleep(Duration::from_millis(10));
        "still here"
    });
    let crash = grove::spawn(|| {
        grove::sleep(Duration::from_millis(1));
        panic!("crash");
    });
    assert!(crash.join().is_err());
    assert_eq!(calm.join().unwrap(), "still here");
}

#[test]
fn an_unjoined_panic_is_logged_with_the_task_name() {
    util::capture_logs();
    drop(
        grove::Builder::new()
            .name("doomed-worker")
            .spawn(|| panic!("nobody listens"))
            .unwrap(),
    );
    let h = grove::Builder::new()
        .name("dropped-later")
        .spawn(|| panic!("late drop"))
        .unwrap();
    grove::sleep(Duration::from_millis(1));
    drop(h);
    let logs = util::logged();
    assert!(
        logs.iter()
            .any(|l| l.contains("doomed-worker") && l.contains("nobody listens")),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.contains("dropped-later") && l.contains("late drop")),
        "{logs:?}"
    );
}
