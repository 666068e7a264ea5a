//! Wait queues scale linearly: draining many parked getters or putters of a `Queue` or a
//! `Channel` one item at a time costs about as much per waiter for 40,000 waiters as for
//! 10,000.
//!
//! Quadratic behaviour (a linear scan per waiter leaving, or waking every putter per item)
//! takes 7 s or more for 40,000 waiters in a debug build, over 10 times the bound; linear code
//! takes about 0.1 s. Only the drain is timed: the tasks are spawned and parked first. The
//! ratio of the two runs is printed, not asserted: it is 4 for linear work and 16 for
//! quadratic, but the per-waiter cost also grows with the memory the waiters' stacks span
//! (cache misses, not work), which on a busy machine moves it too close to the line.

use std::time::{Duration, Instant};

use grove::sync::{Channel, Queue};

const SMALL: usize = 10_000;
const LARGE: usize = 40_000;

/// What draining `LARGE` waiters may take at most (quadratic code takes 10 times as long or
/// more in a debug build, the build CI runs first).
const LIMIT: Duration = if cfg!(debug_assertions) {
    Duration::from_millis(700)
} else {
    Duration::from_millis(200)
};

/// Spawns `n` tasks running `wait`, lets them all park, then times `feed` called once per task.
fn drain(n: usize, wait: impl Fn() + Clone + 'static, feed: impl Fn()) -> Duration {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let wait = wait.clone();
            grove::spawn(wait)
        })
        .collect();
    grove::yield_now(); // every task runs once and parks
    let start = Instant::now();
    for _ in 0..n {
        feed();
        grove::yield_now(); // the one woken task runs and finishes
    }
    let took = start.elapsed();
    assert!(
        tasks.iter().all(|t| t.is_finished()),
        "every waiter was served"
    );
    took
}

fn queue_getters(n: usize) -> Duration {
    let q = Queue::new();
    let waiter = {
        let q = q.clone();
        move || {
            q.get().unwrap();
        }
    };
    let t = drain(n, waiter, || q.put(1u8).unwrap());
    assert_eq!((q.len(), q.getters()), (0, 0));
    t
}

fn queue_putters(n: usize) -> Duration {
    let q = Queue::bounded(1);
    q.put(0u8).unwrap();
    let waiter = {
        let q = q.clone();
        move || q.put(1).unwrap()
    };
    let t = drain(n, waiter, || {
        q.get().unwrap();
    });
    assert_eq!((q.len(), q.putters()), (1, 0));
    t
}

fn channel_getters(n: usize) -> Duration {
    let ch = Channel::new();
    let waiter = {
        let ch = ch.clone();
        move || {
            ch.get().unwrap();
        }
    };
    let t = drain(n, waiter, || ch.put(1u8).unwrap());
    assert_eq!((ch.getters(), ch.putters()), (0, 0));
    t
}

fn channel_putters(n: usize) -> Duration {
    let ch = Channel::new();
    let waiter = {
        let ch = ch.clone();
        move || ch.put(1u8).unwrap()
    };
    let t = drain(n, waiter, || {
        ch.try_get().unwrap();
    });
    assert_eq!((ch.getters(), ch.putters()), (0, 0));
    t
}

/// `run(LARGE)` must stay far below what quadratic work costs.
#[track_caller]
fn assert_linear(name: &str, run: fn(usize) -> Duration) {
    let small = run(SMALL);
    let large = (0..2).map(|_| run(LARGE)).min().unwrap();
    let ratio = large.as_secs_f64() / small.as_secs_f64().max(1e-6);
    eprintln!("{name}: {SMALL} waiters in {small:?}, {LARGE} in {large:?} (ratio {ratio:.1})");
    assert!(
        large < LIMIT,
        "{name}: {LARGE} waiters took {large:?} ({ratio:.1}× the time for {SMALL})"
    );
}

/// One test for all four, run one after the other: timing them side by side on two cores
/// would measure the other scenarios.
#[test]
fn draining_parked_getters_and_putters_is_linear() {
    assert_linear("Queue getters", queue_getters);
    assert_linear("Queue putters", queue_putters);
    assert_linear("Channel getters", channel_getters);
    assert_linear("Channel putters", channel_putters);
}
