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
        let inner = Rc::new(Inner::default());
        // Handles are counted so a task dump can tell when only waiters can still reach the
        // event (nobody is left to set it: they can never wake).
        inner.waiters.track_refs();
        inner.waiters.add_ref();
        Event { inner }
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
        if i.flag.get() {
            return true;
        }
        // The handle this call waits through cannot set the event while it waits.
        let _waiting = i.waiters.waiting_ref();
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

impl Default for Event {
    fn default() -> Event {
        Event::new()
    }
}

impl Clone for Event {
    fn clone(&self) -> Event {
        self.inner.waiters.add_ref();
        Event {
            inner: self.inner.clone(),
        }
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        self.inner.waiters.drop_ref();
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .finish()
    }
}
