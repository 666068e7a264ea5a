//! [`Channel`]: a rendezvous queue (gevent.queue.Channel) — `put` returns only once a getter
//! has taken the item.
//!
//! A putter leaves its item as the payload of its place in the putters' wait queue and parks; a
//! getter takes the oldest payload, which wakes exactly the putter whose item it took (O(1) per
//! item, however many putters wait). A putter that times out or is killed withdraws its item if
//! it is still there (handing the value back), so an item is either taken by exactly one getter
//! or returned to its putter, never lost.

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::error::{
    GetError, GetTimeoutError, PutError, PutTimeoutError, TryGetError, TryPutError,
};
use crate::hub::timers::deadline_after;
use crate::hub::wait::WaitQueue;

/// A queue of size zero: every `put` waits for a `get` (gevent's `Channel`).
///
/// Clones are handles to the same channel. [`close`](Self::close) wakes everyone; pending and
/// later puts fail with their value handed back.
///
/// ```
/// use grove::sync::Channel;
/// let ch = Channel::new();
/// let getter = { let ch = ch.clone(); grove::spawn(move || ch.get().unwrap()) };
/// ch.put("hello").unwrap(); // returns once `getter` has it
/// assert_eq!(getter.join().unwrap(), "hello");
/// ```
pub struct Channel<T> {
    inner: Rc<Inner<T>>,
}

struct Inner<T> {
    closed: Cell<bool>,
    getters: WaitQueue,
    /// Offered items, oldest first: parked putters' and `try_put`'s.
    putters: WaitQueue<T>,
}

impl<T> Clone for Channel<T> {
    fn clone(&self) -> Self {
        Channel {
            inner: self.inner.clone(),
        }
    }
}

impl<T> Default for Channel<T> {
    fn default() -> Self {
        Channel {
            inner: Rc::new(Inner {
                closed: Cell::new(false),
                getters: WaitQueue::new(),
                putters: WaitQueue::new(),
            }),
        }
    }
}

impl<T> Channel<T> {
    /// A new channel.
    pub fn new() -> Channel<T> {
        Channel::default()
    }

    /// Offers `item` and parks until a getter has taken it.
    ///
    /// # Errors
    /// [`PutError`] with the item if the channel is (or gets) closed before a getter took it.
    ///
    /// # Panics
    /// With "would block forever" if main waits and no task will ever get.
    #[track_caller]
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_deadline(item, None)
            .map_err(|e| PutError(e.into_inner()))
    }

    /// Offers `item`, waiting at most `timeout` for a getter to take it.
    ///
    /// # Errors
    /// [`PutTimeoutError::Timeout`] or [`PutTimeoutError::Closed`], with the item.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutTimeoutError<T>> {
        self.put_deadline(item, deadline_after(timeout))
    }

    /// Hands `item` to the channel if a getter is waiting for one now (without waiting for it
    /// to run).
    ///
    /// # Errors
    /// [`TryPutError::Full`] if no getter waits, [`TryPutError::Closed`] if closed.
    pub fn try_put(&self, item: T) -> Result<(), TryPutError<T>> {
        let i = &self.inner;
        if i.closed.get() {
            return Err(TryPutError::Closed(item));
        }
        // Every offer wakes a queued getter, so a getter still queued has no offer yet.
        if i.getters.is_empty() {
            return Err(TryPutError::Full(item));
        }
        i.putters.push_detached(item);
        i.getters.notify_one();
        Ok(())
    }

    #[track_caller]
    fn put_deadline(&self, item: T, deadline: Option<Instant>) -> Result<(), PutTimeoutError<T>> {
        let i = &self.inner;
        if i.closed.get() {
            return Err(PutTimeoutError::Closed(item));
        }
        let mut offer = i.putters.place(Some(item));
        i.getters.notify_one();
        offer.wait_until("Channel::put", deadline, |o| {
            (o.taken() || i.closed.get()).then_some(())
        });
        match offer.withdraw() {
            None => Ok(()),
            Some(v) if i.closed.get() => Err(PutTimeoutError::Closed(v)),
            Some(v) => Err(PutTimeoutError::Timeout(v)),
        }
    }

    /// Takes an item, parking the task until some putter offers one.
    ///
    /// # Errors
    /// [`GetError`] once the channel is closed and no offer is left.
    ///
    /// # Panics
    /// With "would block forever" if main waits and no task will ever put.
    #[track_caller]
    pub fn get(&self) -> Result<T, GetError> {
        self.get_deadline(None).map_err(|_| GetError)
    }

    /// Takes an item if a putter is offering one now.
    ///
    /// # Errors
    /// [`TryGetError::Empty`], or [`TryGetError::Closed`] once closed with no offer left.
    pub fn try_get(&self) -> Result<T, TryGetError> {
        let i = &self.inner;
        match i.putters.take() {
            Some(v) => Ok(v),
            None if i.closed.get() => Err(TryGetError::Closed),
            None => Err(TryGetError::Empty),
        }
    }

    /// Takes an item, waiting at most `timeout` for one.
    ///
    /// # Errors
    /// [`GetTimeoutError::Timeout`], or [`GetTimeoutError::Closed`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        self.get_deadline(deadline_after(timeout))
    }

    #[track_caller]
    fn get_deadline(&self, deadline: Option<Instant>) -> Result<T, GetTimeoutError> {
        let got =
            self.inner
                .getters
                .wait_until("Channel::get", deadline, || match self.try_get() {
                    Ok(v) => Some(Ok(v)),
                    Err(TryGetError::Closed) => Some(Err(GetTimeoutError::Closed)),
                    Err(TryGetError::Empty) => None,
                });
        got.unwrap_or(Err(GetTimeoutError::Timeout))
    }

    /// Closes the channel and wakes everyone: pending and later puts fail (handing their value
    /// back); gets fail once no offer is left.
    pub fn close(&self) {
        self.inner.closed.set(true);
        self.inner.getters.notify_all();
        self.inner.putters.notify_all();
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.get()
    }

    /// Number of tasks waiting in `get`.
    pub fn getters(&self) -> usize {
        self.inner.getters.len()
    }

    /// Number of items offered and not yet taken.
    pub fn putters(&self) -> usize {
        self.inner.putters.len()
    }
}

impl<T> fmt::Debug for Channel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("getters", &self.getters())
            .field("putters", &self.putters())
            .finish()
    }
}
