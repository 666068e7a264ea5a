//! A duration too large to add to `Instant::now()` means "forever", never a panic.

use std::time::Duration;

#[test]
fn sleep_for_duration_max_parks_until_killed() {
    let t = grove::spawn(|| grove::sleep(Duration::MAX));
    grove::yield_now();
    assert!(!t.is_finished());
    t.kill();
    assert!(t.join().unwrap_err().is_killed());
}

#[test]
fn a_timeout_of_duration_max_never_fires() {
    let r = grove::with_timeout(Duration::MAX, || {
        grove::sleep(Duration::from_millis(2));
        5
    });
    assert_eq!(r, Ok(5));
    let t = grove::Timeout::start(Duration::MAX);
    grove::sleep(Duration::from_millis(1));
    drop(t);
}

#[test]
fn spawn_later_with_duration_max_never_starts_on_its_own() {
    let ran = std::rc::Rc::new(std::cell::Cell::new(false));
    let flag = ran.clone();
    let h = grove::spawn_later(Duration::MAX, move || flag.set(true));
    grove::sleep(Duration::from_millis(2));
    assert!(!h.is_finished());
    h.kill();
    assert!(h.join().unwrap_err().is_killed());
    assert!(!ran.get());
}

#[test]
fn main_sleeping_forever_with_nothing_else_fails_instead_of_hanging() {
    let err = std::panic::catch_unwind(|| grove::sleep(Duration::MAX)).unwrap_err();
    let text = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("would block forever"), "{text}");
}
