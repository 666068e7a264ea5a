//! `Queue`, `LifoQueue`, `PriorityQueue`: back-pressure, ordering, task_done/join, close,
//! timeouts, and consistency when waiters die.

mod util;

use std::cell::RefCell;
use std::cmp::Reverse;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use grove::sync::{
    GetTimeoutError, LifoQueue, PriorityQueue, PutTimeoutError, Queue, TryGetError, TryPutError,
};

#[test]
fn a_bounded_queue_holds_its_size_and_each_get_lets_one_put_through() {
    let q = Queue::bounded(2);
    let putter = {
        let q = q.clone();
        grove::spawn(move || {
            for item in ["a", "b", "c"] {
                q.put(item).unwrap();
            }
        })
    };
    grove::yield_now();
    assert_eq!(q.len(), 2);
    assert_eq!(q.putters(), 1, "the putter of c waits");
    assert_eq!(q.get(), Ok("a"));
    grove::yield_now();
    assert_eq!(q.len(), 2, "c went in after a was taken");
    assert!(putter.is_finished());
    assert_eq!(q.get(), Ok("b"));
    assert_eq!(q.get(), Ok("c"));
    assert!(q.is_empty());
}

#[test]
fn lifo_and_priority_orders() {
    let lifo = LifoQueue::new();
    let prio = PriorityQueue::new();
    for i in [3, 1, 2] {
        lifo.put(i).unwrap();
        prio.put(Reverse(i)).unwrap();
    }
    let l: Vec<i32> = (0..3).map(|_| lifo.get().unwrap()).collect();
    let p: Vec<i32> = (0..3).map(|_| prio.get().unwrap().0).collect();
    assert_eq!(l, [2, 1, 3]);
    assert_eq!(p, [1, 2, 3]);
}

#[test]
fn try_and_timeout_variants_hand_values_back() {
    let q = Queue::bounded(1);
    assert_eq!(q.try_get(), Err(TryGetError::Empty));
    q.try_put(1).unwrap();
    assert_eq!(q.try_put(2), Err(TryPutError::Full(2)));
    let start = Instant::now();
    assert_eq!(
        q.put_timeout(3, Duration::from_millis(10)),
        Err(PutTimeoutError::Timeout(3))
    );
    assert!(start.elapsed() >= Duration::from_millis(10));
    assert_eq!(q.get(), Ok(1));
    assert_eq!(
        q.get_timeout(Duration::from_millis(5)),
        Err(GetTimeoutError::Timeout)
    );
    assert_eq!(q.putters() + q.getters(), 0);
}

#[test]
fn join_returns_once_every_item_is_done() {
    let q = Queue::new();
    let log = Rc::new(RefCell::new(Vec::new()));
    for i in 0..5 {
        q.put(i).unwrap();
    }
    let worker = {
        let (q, log) = (q.clone(), log.clone());
        grove::spawn(move || loop {
            let item = q.get().unwrap();
            grove::sleep(Duration::from_millis(1));
            log.borrow_mut().push(item);
            q.task_done();
        })
    };
    q.join();
    assert_eq!(*log.borrow(), [0, 1, 2, 3, 4]);
    assert_eq!(q.unfinished_tasks(), 0);
    worker.kill();
}

#[test]
#[should_panic(expected = "task_done called too many times")]
fn task_done_too_often_panics() {
    let q: Queue<()> = Queue::new();
    q.task_done();
}

#[test]
fn close_wakes_everyone_and_gets_drain_first() {
    let q = Queue::bounded(1);
    q.put(1).unwrap();
    let putter = {
        let q = q.clone();
        grove::spawn(move || q.put(2))
    };
    let empty: Queue<i32> = Queue::new();
    let getter = {
        let e = empty.clone();
        grove::spawn(move || e.get())
    };
    grove::yield_now();
    q.close();
    empty.close();
    assert_eq!(putter.join().unwrap().unwrap_err().into_inner(), 2);
    assert!(getter.join().unwrap().is_err());
    assert_eq!(q.get(), Ok(1));
    assert!(q.get().is_err());
    assert_eq!(q.try_put(3), Err(TryPutError::Closed(3)));
    let all: Vec<i32> = q.iter().collect();
    assert!(all.is_empty());
}

#[test]
fn a_kill_after_the_wake_up_does_not_steal_the_item() {
    let q = Queue::new();
    let spawn_getter = || {
        let q = q.clone();
        grove::spawn(move || q.get().unwrap())
    };
    let first = spawn_getter();
    let second = spawn_getter();
    grove::yield_now();
    q.put("item").unwrap(); // wakes `first`...
    first.kill(); // ...so the completion wins: `first` returns the item, the kill is moot
    assert_eq!(first.join().unwrap(), "item");
    assert_eq!(q.getters(), 1);
    q.put("next").unwrap();
    assert_eq!(second.join().unwrap(), "next");
    assert!(q.is_empty());
}

#[test]
fn a_timed_out_getter_does_not_lose_the_item() {
    let q = Queue::new();
    let waiter = {
        let q = q.clone();
        grove::spawn(move || q.get_timeout(Duration::from_millis(5)))
    };
    assert_eq!(waiter.join().unwrap(), Err(GetTimeoutError::Timeout));
    assert_eq!(q.getters(), 0);
    q.put(7).unwrap();
    assert_eq!(q.get(), Ok(7));
}

#[test]
fn a_kill_after_the_wake_up_does_not_undo_the_put() {
    let q = Queue::bounded(1);
    q.put(0).unwrap();
    let spawn_putter = |v| {
        let q = q.clone();
        grove::spawn(move || q.put(v).unwrap())
    };
    let first = spawn_putter(1);
    let second = spawn_putter(2);
    grove::yield_now();
    assert_eq!(q.get(), Ok(0)); // wakes `first`...
    first.kill(); // ...whose put completes: the kill came after the wake-up
    first.join().unwrap();
    assert_eq!(q.get(), Ok(1));
    second.join().unwrap();
    assert_eq!(q.get(), Ok(2));
}

#[test]
fn main_waiting_on_a_queue_nobody_fills_fails_instead_of_hanging() {
    let q: Queue<u8> = Queue::new();
    let err = catch_unwind(AssertUnwindSafe(|| q.get())).unwrap_err();
    let text = util::panic_text(err.as_ref());
    assert!(
        text.starts_with("grove: this operation would block forever"),
        "{text}"
    );
    assert!(text.contains("Queue::get"), "{text}");
    assert_eq!(q.getters(), 0);
}

#[test]
fn a_getter_whose_timeout_fires_after_it_was_woken_passes_the_item_on() {
    let q = Queue::new();
    let a = {
        let q = q.clone();
        grove::spawn(move || grove::with_timeout(Duration::from_millis(5), || q.get().unwrap()))
    };
    let b = {
        let q = q.clone();
        grove::spawn(move || q.get_timeout(Duration::from_secs(2)).ok())
    };
    grove::yield_now();
    std::thread::sleep(Duration::from_millis(10)); // a's timeout is now due
    q.put(1).unwrap(); // wakes `a`, whose timeout fires before or as it runs
    let (a, b) = (a.join().unwrap().ok(), b.join().unwrap());
    assert_eq!(
        a.into_iter().chain(b).collect::<Vec<_>>(),
        [1],
        "exactly one getter has the item"
    );
}
