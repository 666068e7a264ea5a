//! The one wait-queue every blocking primitive parks on.
//!
//! A waiter pushes a [`Waker`] for the current fiber, optionally arms a deadline timer, and
//! parks. `notify_one` pops waiters in FIFO order until one whose fiber is still parked for that
//! wait accepts the wake-up. A waiter that leaves without being notified (timeout, kill) removes
//! its entry; a waiter that *was* notified but unwinds before it could act (killed or timed out
//! while already in the run queue) hands the notification on to the next waiter, so no wake-up is
//! lost.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::time::Instant;

use super::timers::{Action, TimerKey};
use super::Waker;
use crate::coro::fiber::WakeReason;

/// A FIFO of parked fibers.
#[derive(Default)]
pub(crate) struct WaitQueue {
    waiters: RefCell<VecDeque<(u64, Waker)>>,
    next_id: Cell<u64>,
}

/// How a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waited {
    /// `notify_one` / `notify_all` picked this waiter.
    Notified,
    /// The deadline passed first.
    TimedOut,
    /// A kill or timeout reached a fiber that is already unwinding: no second unwind is
    /// started, so the wait returns this instead. A wait with a deadline gives up as if timed
    /// out; an infallible wait may keep waiting; I/O returns [`super::interrupted_error`].
    Interrupted,
}

impl WaitQueue {
    /// Creates an empty queue.
    pub(crate) const fn new() -> WaitQueue {
        WaitQueue {
            waiters: RefCell::new(VecDeque::new()),
            next_id: Cell::new(0),
        }
    }

    /// Parks the current fiber until notified or until `deadline`.
    ///
    /// `what` names the wait in "would block forever" reports. Unwinds (kill, `Timeout`) leave
    /// the queue consistent. Callers re-check their condition: a notification is a hint.
    pub(crate) fn wait(&self, what: &'static str, deadline: Option<Instant>) -> Waited {
        let waker = super::current_waker();
        waker
            .fiber()
            .park_obj
            .set(self as *const WaitQueue as usize);
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        self.waiters.borrow_mut().push_back((id, waker.clone()));
        let timer = deadline.map(|d| super::add_timer(d, Action::Wake(waker)));
        let guard = Registration {
            queue: self,
            id,
            timer,
        };
        let reason = super::park(what);
        drop(guard);
        match reason {
            WakeReason::Notified => Waited::Notified,
            WakeReason::TimedOut => Waited::TimedOut,
            WakeReason::Interrupted => Waited::Interrupted,
        }
    }

    /// Wakes the longest-waiting fiber; returns whether one was woken.
    pub(crate) fn notify_one(&self) -> bool {
        loop {
            let Some((_, waker)) = self.pop() else {
                return false;
            };
            if waker.wake(WakeReason::Notified) {
                return true;
            }
        }
    }

    /// Wakes every waiter; returns how many were woken.
    pub(crate) fn notify_all(&self) -> usize {
        // Waking only schedules a fiber, so nobody joins the queue while it is being emptied:
        // popping until it is empty wakes exactly the waiters present at the call.
        let mut woken = 0;
        while let Some((_, waker)) = self.pop() {
            woken += usize::from(waker.wake(WakeReason::Notified));
        }
        woken
    }

    /// Whether no fiber waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.waiters.borrow().is_empty()
    }

    /// Number of waiting fibers.
    pub(crate) fn len(&self) -> usize {
        self.waiters.borrow().len()
    }

    fn pop(&self) -> Option<(u64, Waker)> {
        self.waiters.borrow_mut().pop_front()
    }

    /// Removes the entry `id`; returns whether it was still queued.
    fn remove(&self, id: u64) -> bool {
        let mut q = self.waiters.borrow_mut();
        match q.iter().position(|(i, _)| *i == id) {
            Some(pos) => {
                q.remove(pos);
                true
            }
            None => false,
        }
    }
}

/// Undoes a wait's registration however the wait ends.
struct Registration<'a> {
    queue: &'a WaitQueue,
    id: u64,
    timer: Option<TimerKey>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.timer {
            super::cancel_timer(key);
        }
        let was_queued = self.queue.remove(self.id);
        if !was_queued && std::thread::panicking() && super::current_was_notified() {
            self.queue.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::rc::Rc;
    use std::time::Duration;

    fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
        p.downcast_ref::<String>().cloned().unwrap_or_default()
    }

    #[test]
    fn main_joining_a_task_that_waits_forever_fails_naming_it() {
        let start = std::time::Instant::now();
        let queue = Rc::new(WaitQueue::new());
        let q = queue.clone();
        let stuck = crate::Builder::new()
            .name("stuck")
            .spawn(move || {
                q.wait("a queue nobody notifies", None);
            })
            .unwrap();
        let err = catch_unwind(AssertUnwindSafe(|| stuck.join())).unwrap_err();
        let text = panic_text(err.as_ref());
        assert!(
            text.contains("this operation would block forever"),
            "{text}"
        );
        assert!(text.contains("main waits on JoinHandle::join"), "{text}");
        assert!(
            text.contains("'stuck' waits on a queue nobody notifies"),
            "{text}"
        );
        assert!(start.elapsed() < Duration::from_secs(5));
        // The waiter is still parked; the hub works on.
        assert_eq!(queue.len(), 1);
        assert_eq!(crate::spawn(|| 5).join().unwrap(), 5);
        assert!(queue.notify_one());
    }

    #[test]
    fn a_timed_wait_returns_timed_out_and_leaves_no_entry() {
        let queue = WaitQueue::new();
        let r = queue.wait(
            "test",
            Some(std::time::Instant::now() + Duration::from_millis(5)),
        );
        assert_eq!(r, Waited::TimedOut);
        assert!(queue.is_empty());
    }

    #[test]
    fn a_kill_after_the_notification_does_not_steal_it() {
        let queue = Rc::new(WaitQueue::new());
        let woken = Rc::new(std::cell::Cell::new(0));
        let spawn_waiter = |name: &str| {
            let (q, w) = (queue.clone(), woken.clone());
            crate::Builder::new()
                .name(name)
                .spawn(move || {
                    if q.wait("test", None) == Waited::Notified {
                        w.set(w.get() + 1);
                    }
                })
                .unwrap()
        };
        let first = spawn_waiter("first");
        let second = spawn_waiter("second");
        crate::yield_now();
        assert_eq!(queue.len(), 2);
        assert!(queue.notify_one()); // picks `first`, which is now runnable...
        first.kill(); // ...so the completion wins: the kill waits for its next park.
        assert_eq!(woken.get(), 1);
        assert!(first.join().is_ok());
        assert!(queue.notify_one());
        second.join().unwrap();
        assert_eq!(woken.get(), 2);
    }
}
