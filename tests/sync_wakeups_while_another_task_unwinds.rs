//! Whether a waiter hands its wake-up on is decided per wait, not from thread-global state.
//!
//! With stackful tasks, one task can be suspended in the middle of a panic (its `Drop` parks)
//! while the others run normally: `std::thread::panicking()` is then true for all of them. A
//! waiter that is woken and uses its wake-up must not pass it on as if it were unwinding — that
//! wakes the next waiter for nothing, which then loses its place in the FIFO.

use std::cell::RefCell;
use std::rc::Rc;

use grove::sync::{Event, Queue, Semaphore};

/// A task that panics and then parks in a `Drop` until `release` is set: while it is parked
/// there, the thread is "panicking".
fn task_parked_mid_panic(release: &Event) -> grove::JoinHandle<()> {
    struct WaitInDrop(Event);
    impl Drop for WaitInDrop {
        fn drop(&mut self) {
            self.0.wait();
        }
    }
    let release = release.clone();
    let task = grove::spawn(move || {
        let _g = WaitInDrop(release);
        panic!("unwinding on purpose");
    });
    grove::yield_now();
    assert!(!task.is_finished(), "the task waits inside its Drop");
    task
}

/// Spawns three waiters running `wait(n)` in order and lets them park.
fn three_waiters(order: &Rc<RefCell<Vec<u32>>>, wait: impl Fn() + Clone + 'static) {
    for n in 1..=3 {
        let (order, wait) = (order.clone(), wait.clone());
        grove::spawn(move || {
            wait();
            order.borrow_mut().push(n);
        });
    }
    grove::yield_now();
}

#[test]
fn semaphore_waiters_keep_their_order_while_another_task_unwinds() {
    let release = Event::new();
    let unwinding = task_parked_mid_panic(&release);
    let sem = Semaphore::new(0);
    let order = Rc::new(RefCell::new(Vec::new()));
    let s = sem.clone();
    three_waiters(&order, move || s.acquire());
    for _ in 0..3 {
        sem.release();
        grove::yield_now();
        grove::yield_now();
    }
    assert_eq!(*order.borrow(), [1, 2, 3], "permits went in FIFO order");
    assert_eq!(sem.waiters(), 0);
    release.set();
    assert!(unwinding.join().unwrap_err().is_panic());
}

#[test]
fn queue_getters_keep_their_order_while_another_task_unwinds() {
    let release = Event::new();
    let unwinding = task_parked_mid_panic(&release);
    let q = Queue::new();
    let order = Rc::new(RefCell::new(Vec::new()));
    let qq = q.clone();
    three_waiters(&order, move || {
        qq.get().unwrap();
    });
    for _ in 0..3 {
        q.put(()).unwrap();
        grove::yield_now();
        grove::yield_now();
    }
    assert_eq!(*order.borrow(), [1, 2, 3], "items went in FIFO order");
    assert_eq!(q.getters(), 0);
    release.set();
    assert!(unwinding.join().unwrap_err().is_panic());
}
