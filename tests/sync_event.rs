//! `Event` and `AsyncResult`.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use grove::sync::{AsyncResult, Event};

#[test]
fn set_then_clear_still_wakes_all_1000_waiters() {
    let ev = Event::new();
    let woken = Rc::new(Cell::new(0));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (ev, woken) = (ev.clone(), woken.clone());
            grove::spawn(move || {
                ev.wait();
                woken.set(woken.get() + 1);
            })
        })
        .collect();
    grove::yield_now();
    assert_eq!(ev.waiters(), 1000);
    ev.set();
    ev.clear();
    for r in grove::join_all(tasks) {
        r.unwrap();
    }
    assert_eq!(woken.get(), 1000);
    assert!(!ev.is_set());
}

#[test]
fn wait_timeout_on_a_clear_event_returns_false_no_earlier_than_the_timeout() {
    let ev = Event::new();
    let start = Instant::now();
    assert!(!ev.wait_timeout(Duration::from_millis(10)));
    assert!(start.elapsed() >= Duration::from_millis(10));
    assert_eq!(ev.waiters(), 0);
    ev.set();
    assert!(ev.wait_timeout(Duration::from_millis(10)));
}

#[test]
fn a_killed_event_waiter_leaves_no_entry() {
    let ev = Event::new();
    let w = {
        let ev = ev.clone();
        grove::spawn(move || ev.wait())
    };
    grove::yield_now();
    w.kill();
    assert_eq!(ev.waiters(), 0);
}

#[test]
fn set_error_reaches_every_waiter() {
    let r: AsyncResult<u32, String> = AsyncResult::new();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let r = r.clone();
            grove::spawn(move || r.get())
        })
        .collect();
    grove::yield_now();
    r.set_error("boom".to_string());
    for t in tasks {
        assert_eq!(t.join().unwrap(), Err("boom".to_string()));
    }
    assert!(r.ready() && !r.successful());
}

#[test]
fn get_returns_the_value_to_every_waiter_and_times_out_when_unset() {
    let r: AsyncResult<u32, String> = AsyncResult::new();
    assert_eq!(r.get_timeout(Duration::from_millis(5)), None);
    let a = {
        let r = r.clone();
        grove::spawn(move || r.get())
    };
    let b = {
        let r = r.clone();
        grove::spawn(move || r.get())
    };
    grove::yield_now();
    r.set(3);
    assert_eq!(a.join().unwrap(), Ok(3));
    assert_eq!(b.join().unwrap(), Ok(3));
    assert_eq!(r.get(), Ok(3));
}

#[test]
fn a_killed_result_waiter_does_not_stop_the_others() {
    let r: AsyncResult<u32, String> = AsyncResult::new();
    let a = {
        let r = r.clone();
        grove::spawn(move || r.get())
    };
    let b = {
        let r = r.clone();
        grove::spawn(move || r.get())
    };
    grove::yield_now();
    r.set(1);
    a.kill();
    assert_eq!(b.join().unwrap(), Ok(1));
}
