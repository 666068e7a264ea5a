//! `Semaphore`, `BoundedSemaphore` and `Mutex`.

use std::rc::Rc;
use std::time::{Duration, Instant};

use grove::sync::{BoundedSemaphore, Mutex, Semaphore};

#[test]
fn acquire_timeout_with_no_permit_returns_false_after_the_timeout() {
    let sem = Semaphore::new(0);
    let start = Instant::now();
    assert!(!sem.acquire_timeout(Duration::from_millis(10)));
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(10), "{took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(sem.waiters(), 0);
}

#[test]
fn bounded_semaphore_over_release_is_an_error() {
    let sem = BoundedSemaphore::new(2);
    sem.acquire();
    assert!(sem.release().is_ok());
    assert!(sem.release().is_err());
    assert_eq!(sem.available_permits(), 2);
}

#[test]
fn permits_are_released_on_drop_and_wake_a_waiter() {
    let sem = Semaphore::new(1);
    let p = sem.permit();
    let waiter = {
        let sem = sem.clone();
        grove::spawn(move || sem.acquire_timeout(Duration::from_secs(5)))
    };
    grove::yield_now();
    assert_eq!(sem.waiters(), 1);
    drop(p);
    assert!(waiter.join().unwrap());
    assert_eq!(sem.available_permits(), 0);
}

#[test]
fn a_kill_after_the_wake_up_does_not_lose_the_permit() {
    let sem = Semaphore::new(0);
    let spawn_waiter = || {
        let sem = sem.clone();
        grove::spawn(move || sem.acquire())
    };
    let first = spawn_waiter();
    let second = spawn_waiter();
    grove::yield_now();
    sem.release(); // wakes `first`...
    first.kill(); // ...which takes the permit anyway: the wake-up came first
    first.join().unwrap();
    assert_eq!(sem.available_permits(), 0);
    sem.release();
    second.join().unwrap();
    assert_eq!(sem.available_permits(), 0);
    sem.release();
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn a_timed_out_waiter_does_not_lose_the_permit() {
    let sem = Semaphore::new(0);
    let waiter = {
        let sem = sem.clone();
        grove::spawn(move || sem.acquire_timeout(Duration::from_millis(5)))
    };
    assert!(!waiter.join().unwrap());
    sem.release();
    assert!(sem.try_acquire());
}

#[test]
fn a_contended_mutex_guard_held_across_parks_serialises_updates() {
    let m = Rc::new(Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let m = m.clone();
            grove::spawn(move || {
                let mut v = m.lock();
                let len = v.len();
                grove::yield_now();
                grove::sleep(Duration::from_micros(10));
                assert_eq!(v.len(), len, "nobody else got in while we parked");
                v.push(i);
            })
        })
        .collect();
    for r in grove::join_all(tasks) {
        r.unwrap();
    }
    assert_eq!(m.lock().len(), 100);
    assert!(!m.is_locked());
}

#[test]
fn a_kill_after_the_wake_up_does_not_lose_the_unlock() {
    let m = Rc::new(Mutex::new(0));
    let g = m.lock();
    let spawn_waiter = || {
        let m = m.clone();
        grove::spawn(move || *m.lock() += 1)
    };
    let first = spawn_waiter();
    let second = spawn_waiter();
    grove::yield_now();
    drop(g); // wakes `first`...
    first.kill(); // ...which locks anyway (the wake-up came first), then `second` does
    first.join().unwrap();
    second.join().unwrap();
    assert_eq!(*m.lock(), 2);
}

#[test]
fn lock_timeout_and_try_lock() {
    let m = Mutex::new(1);
    let g = m.lock();
    assert!(m.try_lock().is_none());
    assert!(m.lock_timeout(Duration::from_millis(5)).is_none());
    drop(g);
    assert_eq!(*m.try_lock().unwrap(), 1);
}

#[test]
fn a_waiter_whose_timeout_fires_after_it_was_woken_passes_the_permit_on() {
    let sem = Semaphore::new(0);
    let a = {
        let sem = sem.clone();
        grove::spawn(move || grove::with_timeout(Duration::from_millis(5), || sem.acquire()))
    };
    let b = {
        let sem = sem.clone();
        grove::spawn(move || sem.acquire_timeout(Duration::from_secs(2)))
    };
    grove::yield_now();
    std::thread::sleep(Duration::from_millis(10)); // a's timeout is now due
    sem.release(); // wakes `a`, whose timeout fires before it runs: the wake-up wins
    let (a, b) = (a.join().unwrap().is_ok(), b.join().unwrap());
    assert!(
        a && !b,
        "`a` took the permit, `b` timed out (a: {a}, b: {b})"
    );
    assert_eq!(sem.available_permits(), 0);
}

#[test]
fn a_mutex_waiter_whose_timeout_fires_after_it_was_woken_still_gets_the_lock() {
    let m = Rc::new(Mutex::new(0));
    let g = m.lock();
    let a = {
        let m = m.clone();
        grove::spawn(move || grove::with_timeout(Duration::from_millis(5), || *m.lock() += 1))
    };
    let b = {
        let m = m.clone();
        grove::spawn(move || m.lock_timeout(Duration::from_secs(2)).map(|mut v| *v += 1))
    };
    grove::yield_now();
    std::thread::sleep(Duration::from_millis(10)); // a's timeout is now due
    drop(g); // wakes `a`, whose timeout fires before it runs: the wake-up wins
    let (a, b) = (a.join().unwrap().is_ok(), b.join().unwrap().is_some());
    assert!(a && b, "both waiters got the lock in turn (a: {a}, b: {b})");
    assert_eq!(*m.lock(), 2);
}
