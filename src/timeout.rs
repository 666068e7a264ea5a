//! Deadlines on blocking code: [`with_timeout`] and the [`Timeout`] guard (gevent's `Timeout`).
//!
//! When a timeout fires, the blocking operation in progress in its task (a sleep, a join, a
//! socket read, a queue get...) is unwound with an [`Elapsed`] payload, so everything between
//! the park point and the guard is dropped properly. A timeout never fires early, and it never
//! takes a result that arrived first: if the task was already woken by a completion when the
//! deadline passed (its data arrived, its sleep ended), the completion wins and the timeout
//! stays pending until the task next blocks — by which time `with_timeout` has usually
//! returned and the `Timeout` has been dropped, cancelling it.
//!
//! A timeout that fires while its task is already unwinding (a `Drop` blocking during a kill or
//! a panic) does not start a second unwind: the blocking call returns early instead.

use std::cell::Cell;
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::coro::fiber::{Interrupt, TimeoutOrigin};
use crate::coro::unwind::claim_timeout;
use crate::hub::{self, timers::Action, timers::TimerKey};

pub use crate::coro::unwind::Elapsed;

thread_local! {
    static NEXT_ID: Cell<u64> = const { Cell::new(1) };
}

/// A pending deadline for the current task (or main). Dropping it cancels it.
///
/// If the deadline passes while the task is blocked (or the next time it blocks), that
/// operation unwinds; [`Timeout::catch`] (or [`with_timeout`]) turns that back into
/// `Err(`[`Elapsed`]`)`. Uncaught, it ends the task like a panic ([`crate::JoinError`] says
/// which timeout); uncaught in `main`, it ends the program with a message on stderr naming
/// where the timeout was armed, as gevent prints an uncaught `Timeout`.
///
/// A `Timeout` belongs to the task that armed it, so it cannot be sent to another thread:
///
/// ```compile_fail
/// let t = grove::Timeout::start(std::time::Duration::from_secs(1));
/// std::thread::spawn(move || drop(t));
/// ```
#[must_use = "a Timeout is cancelled when dropped"]
#[derive(Debug)]
pub struct Timeout {
    id: u64,
    /// `None` for a deadline that never comes.
    key: Option<TimerKey>,
    _not_send: PhantomData<*const ()>,
}

impl Timeout {
    /// Arms a timeout that fires `d` from now in the current task. A duration too large to
    /// represent as an instant (`Duration::MAX`) never fires.
    #[track_caller]
    pub fn start(d: Duration) -> Timeout {
        Timeout::arm(hub::timers::deadline_after(d))
    }

    /// Arms a timeout that fires at `deadline` in the current task.
    #[track_caller]
    pub fn at(deadline: Instant) -> Timeout {
        Timeout::arm(Some(deadline))
    }

    #[track_caller]
    fn arm(deadline: Option<Instant>) -> Timeout {
        let id = NEXT_ID.with(|n| n.replace(n.get() + 1));
        let origin = TimeoutOrigin {
            id,
            armed_at: std::panic::Location::caller(),
        };
        let key = deadline.map(|at| {
            let fiber = hub::current();
            hub::add_timer(
                at,
                Action::Interrupt(Box::new((fiber, Interrupt::Timeout(origin)))),
            )
        });
        Timeout {
            id,
            key,
            _not_send: PhantomData,
        }
    }

    /// Whether `payload` (from `catch_unwind`) is this timeout firing. If it is, it counts as
    /// handled (it will not be reported as escaping `main`).
    pub fn is_mine(&self, payload: &(dyn std::any::Any + Send)) -> bool {
        match payload.downcast_ref::<crate::coro::unwind::TimeoutFired>() {
            Some(t) if t.origin.id == self.id => claim_timeout(payload).is_some(),
            _ => false,
        }
    }

    /// Runs `f` under this timeout: `Err(Elapsed)` if it fired, otherwise `f`'s value.
    /// Other panics pass through.
    pub fn catch<T>(self, f: impl FnOnce() -> T) -> Result<T, Elapsed> {
        match catch_unwind(AssertUnwindSafe(f)) {
            // Fired while `f` was blocked inside a hooked libc call (monkey patching), where it
            // could not unwind: that call failed instead, and `f` returned.
            Ok(_) if hub::foreign::take_held_back_timeout(self.id) => Err(Elapsed::new(self.id)),
            Ok(v) => Ok(v),
            Err(p) if self.is_mine(p.as_ref()) => Err(Elapsed::new(self.id)),
            Err(p) => resume_unwind(p),
        }
    }
}

impl Drop for Timeout {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            hub::cancel_timer(key);
        }
        // A timeout that fired while its task was already woken left an interrupt pending that
        // nobody will consume now: withdraw it.
        if hub::alive() {
            hub::with_current(|f| {
                if matches!(f.interrupt.get(), Some(Interrupt::Timeout(o)) if o.id == self.id) {
                    f.interrupt.set(None);
                }
            });
        }
    }
}

/// Runs `f`, giving up after `d`: `Err(Elapsed)` if `f` was still blocked then (gevent's
/// `with_timeout`). What `f` was doing is unwound. If `f`'s blocking call completed before the
/// deadline, its result is kept even when the task only gets to run after the deadline.
///
/// ```
/// use std::time::Duration;
/// let r = grove::with_timeout(Duration::from_millis(10), || grove::sleep(Duration::from_secs(5)));
/// assert!(r.is_err());
/// ```
#[track_caller]
pub fn with_timeout<T>(d: Duration, f: impl FnOnce() -> T) -> Result<T, Elapsed> {
    Timeout::start(d).catch(f)
}
