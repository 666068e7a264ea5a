//! Wait queues scale linearly: draining many parked getters or putters of a `Queue` or a
//! `Channel` one item at a time costs the same per waiter for 5,000 waiters as for 20,000.
//!
//! Quadratic behaviour (a linear scan per waiter leaving, or waking every putter per item)
//! makes the 20,000 run 16 times slower than the 5,000 run and blows the absolute bound by far
//! more than 10×; the bounds here are loose enough for a debug build on a busy machine.

use std::time::{Duration, Instant};

use grove::sync::{Channel, Queue};

const SMALL: usize = 5_000;
const LARGE: usize = 20_000;

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

/// `run(LARGE)` must cost about `LARGE / SMALL` times `run(SMALL)` (linear), not its square,
/// and stay far below what quadratic work would cost.
#[track_caller]
fn assert_linear(name: &str, run: fn(usize) -> Duration) {
    run(SMALL); // warm the stack pool
    let small = (0..2).map(|_| run(SMALL)).min().unwrap();
    let large = (0..2).map(|_| run(LARGE)).min().unwrap();
    let ratio = large.as_secs_f64() / small.as_secs_f64().max(1e-6);
    eprintln!("{name}: {SMALL} waiters in {small:?}, {LARGE} in {large:?} (ratio {ratio:.1})");
    assert!(
        large < Duration::from_secs(1),
        "{name}: {LARGE} waiters took {large:?}"
    );
    // Linear is 4; quadratic is 16. Small runs are short, so allow for noise.
    assert!(
        ratio < 8.0 || large < Duration::from_millis(50),
        "{name}: {LARGE} waiters took {ratio:.1}× as long as {SMALL} ({large:?} vs {small:?})"
    );
}

#[test]
fn feeding_parked_queue_getters_one_item_at_a_time_is_linear() {
    assert_linear("Queue getters", queue_getters);
}

#[test]
fn draining_parked_queue_putters_is_linear() {
    assert_linear("Queue putters", queue_putters);
}

#[test]
fn feeding_parked_channel_getters_is_linear() {
    assert_linear("Channel getters", channel_getters);
}

#[test]
fn draining_parked_channel_putters_is_linear() {
    assert_linear("Channel putters", channel_putters);
}
