//! [`Event`]: a flag tasks wait on (gevent.event.Event).

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::hub::timers::deadline_after;
use crate::hub::wait::WaitQueue;

/// A flag that tasks wait on until it is set (gevent's `Event`).
///
/// `set` wakes every waiter; a waiter woken by `set` returns `true` even if the flag was cleared
/// again before it ran. `Event` is a cheap handle: clones share the flag.
///
/// ```
/// use grove::sync::Event;
/// let ev = Event::new();
/// let waiter = { let ev = ev.clone(); grove::spawn(move || ev.wait()) };
/// grove::yield_now();
/// ev.set();
/// waiter.join().unwrap();
/// assert!(ev.is_set());
/// ```
#[derive(Clone, Default)]
pub struct Event {
    inner: Rc<Inner>,
}

#[derive(Default)]
struct Inner {
    flag: Cell<bool>,
    /// Bumped by every `set` that raises the flag: a waiter that saw it change was woken.
    generation: Cell<u64>,
    waiters: WaitQueue,
}

impl Event {
    /// A new, clear event.
    pub fn new() -> Event {
        Event::default()
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.inner.flag.get()
    }

    /// Sets the flag and wakes every waiting task.
    pub fn set(&self) {
        let i = &self.inner;
        if !i.flag.replace(true) {
            i.generation.set(i.generation.get() + 1);
        }
        i.waiters.notify_all();
    }

    /// Clears the flag; later `wait`s block until the next `set`.
    pub fn clear(&self) {
        self.inner.flag.set(false);
    }

    /// Waits until the flag is set (returns at once if it is).
    ///
    /// # Panics
    /// With "would block forever" if main waits and nothing can ever set it.
    #[track_caller]
    pub fn wait(&self) {
        self.wait_deadline(None);
    }

    /// Waits until the flag is set or `timeout` passes; returns whether it was set.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_deadline(deadline_after(timeout))
    }

    /// Waits until the flag is set or `deadline` passes; returns whether it was set.
    #[track_caller]
    pub fn wait_deadline(&self, deadline: Option<Instant>) -> bool {
        let i = &self.inner;
        let start = i.generation.get();
        i.waiters
            .wait_until("Event::wait", deadline, || {
                (i.flag.get() || i.generation.get() != start).then_some(())
            })
            .is_some()
    }

    /// Number of tasks waiting.
    pub fn waiters(&self) -> usize {
        self.inner.waiters.len()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .finish()
    }
}
