//! A timeout too large to add to `Instant::now()` (`Duration::MAX`) means "wait forever": every
//! `*_timeout` of `grove::sync` succeeds when the thing is there at once, and when it arrives
//! while the call waits — it never panics with "overflow when adding duration to instant".

use std::rc::Rc;

use grove::sync::{AsyncResult, BoundedSemaphore, Channel, Event, Mutex, Queue, Semaphore};

const FOREVER: std::time::Duration = std::time::Duration::MAX;

/// Runs `f` in a task that starts once the caller parks.
fn later(f: impl FnOnce() + 'static) -> grove::JoinHandle<()> {
    grove::spawn(f)
}

#[test]
fn queue_get_and_put_timeout() {
    let q = Queue::bounded(1);
    q.put_timeout(1, FOREVER).unwrap();
    assert_eq!(q.get_timeout(FOREVER), Ok(1));

    let filler = {
        let q = q.clone();
        later(move || q.put(2).unwrap())
    };
    assert_eq!(q.get_timeout(FOREVER), Ok(2), "waited for the put");
    filler.join().unwrap();

    q.put(3).unwrap();
    let drainer = {
        let q = q.clone();
        later(move || assert_eq!(q.get(), Ok(3)))
    };
    q.put_timeout(4, FOREVER).unwrap(); // waited for room
    drainer.join().unwrap();
    assert_eq!(q.get(), Ok(4));
}

#[test]
fn channel_get_and_put_timeout() {
    let ch = Channel::new();
    let getter = {
        let ch = ch.clone();
        later(move || assert_eq!(ch.get(), Ok(1)))
    };
    ch.put_timeout(1, FOREVER).unwrap();
    getter.join().unwrap();

    let putter = {
        let ch = ch.clone();
        later(move || ch.put(2).unwrap())
    };
    assert_eq!(ch.get_timeout(FOREVER), Ok(2));
    putter.join().unwrap();
}

#[test]
fn semaphore_acquire_and_permit_timeout() {
    let sem = Semaphore::new(1);
    assert!(sem.acquire_timeout(FOREVER));
    let releaser = {
        let sem = sem.clone();
        later(move || sem.release())
    };
    let permit = sem.permit_timeout(FOREVER).expect("waited for the release");
    releaser.join().unwrap();
    drop(permit);
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn bounded_semaphore_acquire_and_permit_timeout() {
    let sem = BoundedSemaphore::new(1);
    let permit = sem.permit_timeout(FOREVER).unwrap();
    let releaser = later(move || drop(permit));
    assert!(sem.acquire_timeout(FOREVER), "waited for the release");
    releaser.join().unwrap();
    sem.release().unwrap();
}

#[test]
fn mutex_lock_timeout() {
    let m = Rc::new(Mutex::new(0));
    *m.lock_timeout(FOREVER).unwrap() += 1;
    let holder = {
        let m = m.clone();
        later(move || {
            let _g = m.lock();
            grove::yield_now(); // main tries to lock now, and waits
        })
    };
    grove::yield_now(); // the holder locks
    assert!(m.is_locked());
    *m.lock_timeout(FOREVER).expect("waited for the unlock") += 1;
    holder.join().unwrap();
    assert_eq!(*m.lock(), 2);
}

#[test]
fn event_wait_timeout() {
    let ev = Event::new();
    let setter = {
        let ev = ev.clone();
        later(move || ev.set())
    };
    assert!(ev.wait_timeout(FOREVER), "waited for the set");
    setter.join().unwrap();
    assert!(ev.wait_timeout(FOREVER));
}

#[test]
fn async_result_wait_and_get_timeout() {
    let r: AsyncResult<u32, String> = AsyncResult::new();
    let setter = {
        let r = r.clone();
        later(move || r.set(7))
    };
    assert_eq!(r.get_timeout(FOREVER), Some(Ok(7)), "waited for the value");
    setter.join().unwrap();
    assert!(r.wait_timeout(FOREVER));
    assert_eq!(r.get_timeout(FOREVER), Some(Ok(7)));
}
