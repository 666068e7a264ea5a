//! [`Semaphore`] and [`BoundedSemaphore`] (gevent.lock), with an RAII [`SemaphorePermit`].
//!
//! A release never hands its permit to a particular waiter: it returns it to the count and
//! wakes the longest waiter, which takes it when it runs. A woken waiter that dies first passes
//! the wake-up on (see the wait queue), so no permit is ever lost.

use std::cell::Cell;
use std::error::Error;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::hub::timers::deadline_after;
use crate::hub::wait::WaitQueue;

struct Inner {
    permits: Cell<usize>,
    /// `Some(n)`: releasing beyond `n` free permits is an error.
    bound: Option<usize>,
    waiters: WaitQueue,
}

impl Inner {
    fn new(permits: usize, bound: Option<usize>) -> Rc<Inner> {
        let inner = Rc::new(Inner {
            permits: Cell::new(permits),
            bound,
            waiters: WaitQueue::new(),
        });
        // Handles and permits are counted so a task dump can tell when only waiters can still
        // reach the semaphore (they can never wake).
        inner.waiters.track_refs();
        inner
    }

    /// A new handle or permit to this semaphore.
    fn handle(self: &Rc<Inner>) -> Rc<Inner> {
        self.waiters.add_ref();
        self.clone()
    }

    fn try_acquire(&self) -> bool {
        let n = self.permits.get();
        if n == 0 {
            return false;
        }
        self.permits.set(n - 1);
        // Who took it last, for task dumps and the deadlock report: one store.
        self.waiters.set_tag(crate::hub::current_id() + 1);
        true
    }

    #[track_caller]
    fn acquire_deadline(&self, deadline: Option<Instant>) -> bool {
        if self.try_acquire() {
            return true;
        }
        // The handle this call waits through cannot release a permit while it waits.
        let _waiting = self.waiters.waiting_ref();
        self.waiters
            .wait_until("Semaphore::acquire", deadline, || {
                self.try_acquire().then_some(())
            })
            .is_some()
    }

    fn release(&self) -> Result<(), OverRelease> {
        let n = self.permits.get();
        if self.bound.is_some_and(|b| n >= b) {
            return Err(OverRelease);
        }
        self.permits.set(n + 1);
        self.waiters.notify_one();
        Ok(())
    }
}

/// A counter of permits; `acquire` parks the task while none is free (gevent's `Semaphore`).
///
/// Clones share the permits. Use [`permit`](Self::permit) for a guard that releases on drop,
/// or `acquire` / `release` by hand as in gevent.
///
/// ```
/// use grove::sync::Semaphore;
/// let sem = Semaphore::new(1);
/// let p = sem.permit();
/// assert!(!sem.try_acquire());
/// drop(p);
/// assert!(sem.try_acquire());
/// ```
pub struct Semaphore {
    inner: Rc<Inner>,
}

/// A semaphore whose `release` fails instead of raising the count above its initial value
/// (gevent's `BoundedSemaphore`).
///
/// ```
/// use grove::sync::BoundedSemaphore;
/// let sem = BoundedSemaphore::new(1);
/// assert!(sem.release().is_err());
/// ```
pub struct BoundedSemaphore {
    inner: Rc<Inner>,
}

/// [`BoundedSemaphore::release`] would exceed the semaphore's initial count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverRelease;

impl fmt::Display for OverRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("semaphore released too many times")
    }
}

impl Error for OverRelease {}

/// A permit taken from a [`Semaphore`] or [`BoundedSemaphore`]; dropping it gives it back.
#[must_use = "the permit is released at once if it is not kept"]
pub struct SemaphorePermit {
    inner: Option<Rc<Inner>>,
}

impl SemaphorePermit {
    /// Keeps the permit taken for good: it is not released on drop.
    pub fn forget(mut self) {
        if let Some(inner) = self.inner.take() {
            inner.waiters.drop_ref();
        }
    }
}

impl Drop for SemaphorePermit {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            inner.waiters.drop_ref();
            let _ = inner.release();
        }
    }
}

macro_rules! counted_handle {
    ($ty:ident) => {
        impl Clone for $ty {
            fn clone(&self) -> Self {
                $ty {
                    inner: self.inner.handle(),
                }
            }
        }

        impl Drop for $ty {
            fn drop(&mut self) {
                self.inner.waiters.drop_ref();
            }
        }
    };
}

counted_handle!(Semaphore);
counted_handle!(BoundedSemaphore);

impl fmt::Debug for SemaphorePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SemaphorePermit")
    }
}

macro_rules! common_methods {
    ($what:literal) => {
        /// Takes a permit, parking the task until one is free.
        ///
        /// # Panics
        #[doc = concat!("With \"would block forever\" if main waits and no task can release one.")]
        #[track_caller]
        pub fn acquire(&self) {
            self.inner.acquire_deadline(None);
        }

        /// Takes a permit if one is free now; returns whether it did.
        pub fn try_acquire(&self) -> bool {
            self.inner.try_acquire()
        }

        /// Takes a permit, waiting at most `timeout`; returns whether it got one.
        #[track_caller]
        pub fn acquire_timeout(&self, timeout: Duration) -> bool {
            self.inner.acquire_deadline(deadline_after(timeout))
        }

        /// Takes a permit (waiting for one) and returns a guard that releases it on drop.
        ///
        /// # Panics
        /// As [`acquire`](Self::acquire).
        #[track_caller]
        pub fn permit(&self) -> SemaphorePermit {
            self.acquire();
            self.guard()
        }

        /// A guard for a permit if one is free now.
        pub fn try_permit(&self) -> Option<SemaphorePermit> {
            self.try_acquire().then(|| self.guard())
        }

        /// A guard for a permit, waiting at most `timeout` for one.
        #[track_caller]
        pub fn permit_timeout(&self, timeout: Duration) -> Option<SemaphorePermit> {
            self.acquire_timeout(timeout).then(|| self.guard())
        }

        /// Number of free permits.
        pub fn available_permits(&self) -> usize {
            self.inner.permits.get()
        }

        /// Number of tasks waiting for a permit.
        pub fn waiters(&self) -> usize {
            self.inner.waiters.len()
        }

        fn guard(&self) -> SemaphorePermit {
            SemaphorePermit {
                inner: Some(self.inner.handle()),
            }
        }
    };
}

impl Semaphore {
    /// A semaphore with `permits` free permits.
    pub fn new(permits: usize) -> Semaphore {
        Semaphore {
            inner: Inner::new(permits, None).handle(),
        }
    }

    common_methods!("Semaphore");

    /// Gives a permit back (or adds one) and wakes the longest waiter.
    pub fn release(&self) {
        let _ = self.inner.release();
    }
}

impl BoundedSemaphore {
    /// A semaphore with `permits` free permits, which is also its maximum.
    pub fn new(permits: usize) -> BoundedSemaphore {
        BoundedSemaphore {
            inner: Inner::new(permits, Some(permits)).handle(),
        }
    }

    common_methods!("BoundedSemaphore");

    /// Gives a permit back and wakes the longest waiter.
    ///
    /// # Errors
    /// [`OverRelease`] if every permit is already free; the count is unchanged.
    pub fn release(&self) -> Result<(), OverRelease> {
        self.inner.release()
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("permits", &self.available_permits())
            .finish()
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("permits", &self.available_permits())
            .finish()
    }
}
