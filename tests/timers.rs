//! Timers: never early, ordered, and never starved by busy tasks.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

#[test]
fn sleep_never_returns_early() {
    for ms in [1u64, 3, 7, 15] {
        let d = Duration::from_millis(ms);
        let start = Instant::now();
        grove::sleep(d);
        assert!(start.elapsed() >= d, "slept {:?} < {d:?}", start.elapsed());
    }
}

#[test]
fn task_sleeps_never_return_early() {
    let handles: Vec<_> = (1..=20u64)
        .map(|ms| {
            grove::spawn(move || {
                let d = Duration::from_micros(ms * 730);
                let start = Instant::now();
                grove::sleep(d);
                start.elapsed() >= d
            })
        })
        .collect();
    assert!(grove::join_all(handles).into_iter().all(|r| r.unwrap()));
}

#[test]
fn equal_deadlines_fire_in_spawn_order() {
    let deadline = Instant::now() + Duration::from_millis(20);
    let order = Rc::new(RefCell::new(Vec::new()));
    let handles: Vec<_> = (0..100)
        .map(|i| {
            let order = order.clone();
            grove::spawn(move || {
                grove::sleep_until(deadline);
                order.borrow_mut().push(i);
            })
        })
        .collect();
    grove::join_all(handles);
    assert_eq!(*order.borrow(), (0..100).collect::<Vec<_>>());
}

#[test]
fn earlier_deadlines_fire_first() {
    let order = Rc::new(RefCell::new(Vec::new()));
    let handles: Vec<_> = [30u64, 10, 20]
        .into_iter()
        .map(|ms| {
            let order = order.clone();
            grove::spawn(move || {
                grove::sleep(Duration::from_millis(ms));
                order.borrow_mut().push(ms);
            })
        })
        .collect();
    grove::join_all(handles);
    assert_eq!(*order.borrow(), [10, 20, 30]);
}

#[test]
fn a_yield_loop_does_not_starve_a_timeout() {
    let start = Instant::now();
    let r = grove::with_timeout(Duration::from_millis(10), || loop {
        grove::yield_now();
    });
    assert!(r.is_err());
    assert!(start.elapsed() >= Duration::from_millis(10));
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn yielding_tasks_do_not_starve_a_sleeper() {
    let stop = Rc::new(RefCell::new(false));
    let spinners: Vec<_> = (0..10)
        .map(|_| {
            let stop = stop.clone();
            grove::spawn(move || {
                let mut n = 0u64;
                while !*stop.borrow() {
                    grove::yield_now();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let s = stop.clone();
    let sleeper = grove::spawn(move || {
        grove::sleep(Duration::from_millis(20));
        *s.borrow_mut() = true;
    });
    sleeper.join().unwrap();
    for r in grove::join_all(spinners) {
        assert!(r.unwrap() > 0);
    }
}

#[test]
fn thousand_tasks_sleeping_200ms_finish_together() {
    let start = Instant::now();
    let handles: Vec<_> = (0..1000)
        .map(|_| grove::spawn(|| grove::sleep(Duration::from_millis(200))))
        .collect();
    grove::join_all(handles);
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(200));
    assert!(took < Duration::from_secs(2), "took {took:?}");
}
