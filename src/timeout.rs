//! Deadlines on blocking code: [`with_timeout`] and the [`Timeout`] guard (gevent's `Timeout`).
//!
//! When a timeout fires, the blocking operation in progress in its task (a sleep, a join, a
//! socket read, a queue get...) is unwound with an [`Elapsed`] payload, so everything between
//! the park point and the guard is dropped properly. A timeout never fires early.

use std::cell::Cell;
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::coro::fiber::Interrupt;
use crate::hub::{self, timers::Action, timers::TimerKey};

thread_local! {
    static NEXT_ID: Cell<u64> = const { Cell::new(1) };
}

/// The error of [`with_timeout`], and the unwind payload of a fired [`Timeout`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Elapsed {
    id: u64,
}

impl Elapsed {
    pub(crate) fn new(id: u64) -> Elapsed {
        Elapsed { id }
    }
}

impl fmt::Debug for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Elapsed")
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

/// A pending deadline for the current task (or main). Dropping it cancels it.
///
/// If the deadline passes while the task is blocked (or the next time it blocks), that
/// operation unwinds with this timeout's [`Elapsed`] payload; [`Timeout::catch`] (or
/// [`with_timeout`]) turns it back into a value. Uncaught, it ends the task like a panic.
#[must_use = "a Timeout is cancelled when dropped"]
pub struct Timeout {
    id: u64,
    key: TimerKey,
}

impl Timeout {
    /// Arms a timeout that fires `d` from now in the current task.
    pub fn start(d: Duration) -> Timeout {
        Timeout::at(Instant::now() + d)
    }

    /// Arms a timeout that fires at `deadline` in the current task.
    pub fn at(deadline: Instant) -> Timeout {
        let id = NEXT_ID.with(|n| n.replace(n.get() + 1));
        let fiber = hub::current();
        let key = hub::add_timer(deadline, Action::Interrupt(fiber, Interrupt::Timeout(id)));
        Timeout { id, key }
    }

    /// Whether `payload` (from `catch_unwind`) is this timeout firing.
    pub fn is_mine(&self, payload: &(dyn std::any::Any + Send)) -> bool {
        payload.downcast_ref::<Elapsed>() == Some(&Elapsed { id: self.id })
    }

    /// Runs `f` under this timeout: `Err(Elapsed)` if it fired, otherwise `f`'s value.
    /// Other panics pass through.
    pub fn catch<T>(self, f: impl FnOnce() -> T) -> Result<T, Elapsed> {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(v) => Ok(v),
            Err(p) if self.is_mine(p.as_ref()) => Err(Elapsed { id: self.id }),
            Err(p) => resume_unwind(p),
        }
    }
}

impl Drop for Timeout {
    fn drop(&mut self) {
        hub::cancel_timer(self.key);
        // A timeout that fired while its task was already runnable left an interrupt behind that
        // nobody will consume now: withdraw it.
        if hub::alive() {
            let fiber = hub::current();
            match fiber.interrupt.take() {
                Some(Interrupt::Timeout(id)) if id == self.id => {}
                other => fiber.interrupt.set(other),
            }
        }
    }
}

/// Runs `f`, giving up after `d`: `Err(Elapsed)` if `f` was still blocked then (gevent's
/// `with_timeout`). What `f` was doing is unwound.
///
/// ```
/// use std::time::Duration;
/// let r = grove::with_timeout(Duration::from_millis(10), || grove::sleep(Duration::from_secs(5)));
/// assert!(r.is_err());
/// ```
pub fn with_timeout<T>(d: Duration, f: impl FnOnce() -> T) -> Result<T, Elapsed> {
    Timeout::start(d).catch(f)
}
