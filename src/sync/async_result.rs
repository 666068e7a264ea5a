//! [`AsyncResult`]: a value (or error) delivered once to every waiter (gevent.event.AsyncResult).

use std::cell::RefCell;
use std::error::Error;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::hub::timers::deadline_after;
use crate::hub::wait::WaitQueue;

/// A slot for one result that many tasks wait for (gevent's `AsyncResult`).
///
/// [`set`](Self::set) or [`set_error`](Self::set_error) stores the outcome and wakes every
/// waiter; each `get` returns a clone of it. Setting again replaces the outcome. Clones of an
/// `AsyncResult` share the slot. The error type `E` defaults to `Rc<dyn Error>`.
///
/// ```
/// use grove::sync::AsyncResult;
/// let r: AsyncResult<u32, String> = AsyncResult::new();
/// let reader = { let r = r.clone(); grove::spawn(move || r.get()) };
/// r.set(7);
/// assert_eq!(reader.join().unwrap(), Ok(7));
/// ```
pub struct AsyncResult<T, E = Rc<dyn Error>> {
    inner: Rc<Inner<T, E>>,
}

struct Inner<T, E> {
    value: RefCell<Option<Result<T, E>>>,
    waiters: WaitQueue,
}

impl<T, E> Clone for AsyncResult<T, E> {
    fn clone(&self) -> Self {
        AsyncResult {
            inner: self.inner.clone(),
        }
    }
}

impl<T, E> Default for AsyncResult<T, E> {
    fn default() -> Self {
        AsyncResult {
            inner: Rc::new(Inner {
                value: RefCell::new(None),
                waiters: WaitQueue::new(),
            }),
        }
    }
}

impl<T, E> AsyncResult<T, E> {
    /// An empty result.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `value` and wakes every waiter.
    pub fn set(&self, value: T) {
        self.complete(Ok(value));
    }

    /// Stores `error` and wakes every waiter: their `get` returns it.
    pub fn set_error(&self, error: E) {
        self.complete(Err(error));
    }

    fn complete(&self, outcome: Result<T, E>) {
        let old = self.inner.value.borrow_mut().replace(outcome);
        drop(old);
        self.inner.waiters.notify_all();
    }

    /// Whether a value or an error was stored.
    pub fn ready(&self) -> bool {
        self.inner.value.borrow().is_some()
    }

    /// Whether a value (not an error) was stored.
    pub fn successful(&self) -> bool {
        matches!(*self.inner.value.borrow(), Some(Ok(_)))
    }

    /// Waits until the result is ready.
    ///
    /// # Panics
    /// With "would block forever" if main waits and nothing can ever set it.
    #[track_caller]
    pub fn wait(&self) {
        self.wait_deadline(None);
    }

    /// Waits until the result is ready or `timeout` passes; returns whether it is ready.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_deadline(deadline_after(timeout))
    }

    #[track_caller]
    fn wait_deadline(&self, deadline: Option<Instant>) -> bool {
        self.inner
            .waiters
            .wait_until("AsyncResult::get", deadline, || self.ready().then_some(()))
            .is_some()
    }

    /// Takes the outcome out, leaving the result empty.
    pub fn take(&self) -> Option<Result<T, E>> {
        self.inner.value.borrow_mut().take()
    }
}

impl<T: Clone, E: Clone> AsyncResult<T, E> {
    /// Waits for the outcome and returns a clone of it.
    ///
    /// # Errors
    /// The error stored with [`set_error`](Self::set_error).
    ///
    /// # Panics
    /// With "would block forever" if main waits and nothing can ever set it.
    #[track_caller]
    pub fn get(&self) -> Result<T, E> {
        self.wait();
        self.peek().expect("ready")
    }

    /// As [`get`](Self::get), giving up after `timeout`: `None` if nothing was set by then.
    pub fn get_timeout(&self, timeout: Duration) -> Option<Result<T, E>> {
        self.wait_timeout(timeout);
        self.peek()
    }

    /// The outcome, if there is one, without waiting.
    pub fn peek(&self) -> Option<Result<T, E>> {
        self.inner.value.borrow().clone()
    }
}

impl<T, E> fmt::Debug for AsyncResult<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult")
            .field("ready", &self.ready())
            .finish()
    }
}
