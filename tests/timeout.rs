//! Timeouts: unwind the blocked operation, never fire early, nest, and clean up after themselves.

mod util;

use std::time::{Duration, Instant};

use grove::Timeout;

#[test]
fn with_timeout_gives_up_on_a_long_sleep() {
    let start = Instant::now();
    let r = grove::with_timeout(Duration::from_millis(20), || {
        grove::sleep(Duration::from_secs(3600));
    });
    assert!(r.is_err());
    assert!(start.elapsed() >= Duration::from_millis(20));
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn with_timeout_returns_the_value_when_in_time() {
    let r = grove::with_timeout(Duration::from_secs(5), || {
        grove::sleep(Duration::from_millis(1));
        9
    });
    assert_eq!(r, Ok(9));
}

#[test]
fn the_timed_out_operation_is_unwound() {
    let (dropped, guard) = util::drop_flag();
    let h = grove::spawn(move || {
        grove::with_timeout(Duration::from_millis(5), move || {
            let _guard = guard;
            grove::sleep(Duration::from_secs(3600));
        })
    });
    assert!(h.join().unwrap().is_err());
    assert!(dropped.get());
}

#[test]
fn nested_timeouts_each_catch_their_own() {
    let outer = grove::with_timeout(Duration::from_millis(10), || {
        let inner = grove::with_timeout(Duration::from_secs(3600), || {
            grove::sleep(Duration::from_secs(3600));
        });
        unreachable!("the outer timeout unwinds through the inner one: {inner:?}");
    });
    assert!(outer.is_err());
    let outer = grove::with_timeout(Duration::from_secs(3600), || {
        grove::with_timeout(Duration::from_millis(5), || {
            grove::sleep(Duration::from_secs(3600))
        })
    });
    assert!(outer.unwrap().is_err());
}

#[test]
fn a_timeout_guard_unwinds_the_blocking_call_and_catch_converts_it() {
    let t = Timeout::start(Duration::from_millis(5));
    let r = t.catch(|| grove::sleep(Duration::from_secs(3600)));
    assert!(r.is_err());
}

#[test]
fn a_cancelled_timeout_never_fires_later() {
    {
        let _t = Timeout::start(Duration::from_millis(5));
        grove::sleep(Duration::from_millis(1));
    }
    // Well past the cancelled deadline: nothing unwinds this sleep.
    grove::sleep(Duration::from_millis(20));
}

#[test]
fn a_timeout_that_fires_while_runnable_leaves_nothing_behind() {
    let h = grove::spawn(|| {
        let r = grove::with_timeout(Duration::from_millis(1), || {
            // Busy for longer than the timeout without parking: the timeout fires while this
            // task is runnable and only takes effect at its next park, which never comes.
            let until = Instant::now() + Duration::from_millis(5);
            while Instant::now() < until {
                std::hint::spin_loop();
            }
            grove::yield_now();
            1
        });
        // Whatever happened above, the next sleep is not interrupted by a stale timeout.
        grove::sleep(Duration::from_millis(2));
        r.is_err()
    });
    // The yield inside the closure is a park point, so the timeout does take effect there.
    assert!(h.join().unwrap());
}

#[test]
fn a_timeout_in_one_task_does_not_disturb_another() {
    let sleeper = grove::spawn(|| {
        grove::sleep(Duration::from_millis(30));
        "rested"
    });
    let hasty = grove::spawn(|| {
        grove::with_timeout(Duration::from_millis(5), || {
            grove::sleep(Duration::from_secs(3600))
        })
    });
    assert!(hasty.join().unwrap().is_err());
    assert_eq!(sleeper.join().unwrap(), "rested");
}
