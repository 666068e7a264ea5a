//! [`Channel`]: a rendezvous queue (gevent.queue.Channel) — `put` returns only once a getter
//! has taken the item.
//!
//! A putter leaves its item in a FIFO of *offers* and parks; a getter takes the oldest offer
//! and wakes the putters. A putter that times out or is killed withdraws its offer if it is
//! still there (handing the value back), so an item is either taken by exactly one getter or
//! returned to its putter, never lost.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::error::{
    GetError, GetTimeoutError, PutError, PutTimeoutError, TryGetError, TryPutError,
};
use crate::hub::wait::{WaitQueue, Waited};

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
    offers: RefCell<VecDeque<(u64, T)>>,
    next_id: Cell<u64>,
    closed: Cell<bool>,
    getters: WaitQueue,
    putters: WaitQueue,
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
                offers: RefCell::new(VecDeque::new()),
                next_id: Cell::new(0),
                closed: Cell::new(false),
                getters: WaitQueue::new(),
                putters: WaitQueue::new(),
            }),
        }
    }
}

/// Withdraws an offer that nobody took, however the put ends.
struct Offer<'a, T> {
    inner: &'a Inner<T>,
    id: u64,
}

impl<T> Offer<'_, T> {
    /// The item, if no getter took it.
    fn withdraw(&self) -> Option<T> {
        let mut offers = self.inner.offers.borrow_mut();
        let pos = offers.iter().position(|(id, _)| *id == self.id)?;
        offers.remove(pos).map(|(_, v)| v)
    }

    fn taken(&self) -> bool {
        !self
            .inner
            .offers
            .borrow()
            .iter()
            .any(|(id, _)| *id == self.id)
    }
}

impl<T> Drop for Offer<'_, T> {
    fn drop(&mut self) {
        drop(self.withdraw());
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
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_deadline(item, None)
            .map_err(|e| PutError(e.into_inner()))
    }

    /// Offers `item`, waiting at most `timeout` for a getter to take it.
    ///
    /// # Errors
    /// [`PutTimeoutError::Timeout`] or [`PutTimeoutError::Closed`], with the item.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutTimeoutError<T>> {
        self.put_deadline(item, Some(Instant::now() + timeout))
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
        if i.getters.is_empty() || i.getters.len() <= i.offers.borrow().len() {
            return Err(TryPutError::Full(item));
        }
        self.offer(item);
        Ok(())
    }

    fn offer(&self, item: T) -> u64 {
        let i = &self.inner;
        let id = i.next_id.get();
        i.next_id.set(id + 1);
        i.offers.borrow_mut().push_back((id, item));
        i.getters.notify_one();
        id
    }

    fn put_deadline(&self, item: T, deadline: Option<Instant>) -> Result<(), PutTimeoutError<T>> {
        if self.inner.closed.get() {
            return Err(PutTimeoutError::Closed(item));
        }
        let offer = Offer {
            inner: &self.inner,
            id: self.offer(item),
        };
        loop {
            if offer.taken() {
                return Ok(());
            }
            let timed_out = self.inner.putters.wait("Channel::put", deadline) == Waited::TimedOut;
            if self.inner.closed.get() || timed_out {
                return match offer.withdraw() {
                    None => Ok(()),
                    Some(v) if timed_out => Err(PutTimeoutError::Timeout(v)),
                    Some(v) => Err(PutTimeoutError::Closed(v)),
                };
            }
        }
    }

    /// Takes an item, parking the task until some putter offers one.
    ///
    /// # Errors
    /// [`GetError`] once the channel is closed and no offer is left.
    ///
    /// # Panics
    /// With "would block forever" if main waits and no task will ever put.
    pub fn get(&self) -> Result<T, GetError> {
        self.get_deadline(None).map_err(|_| GetError)
    }

    /// Takes an item if a putter is offering one now.
    ///
    /// # Errors
    /// [`TryGetError::Empty`], or [`TryGetError::Closed`] once closed with no offer left.
    pub fn try_get(&self) -> Result<T, TryGetError> {
        let i = &self.inner;
        let taken = i.offers.borrow_mut().pop_front();
        match taken {
            Some((_, v)) => {
                i.putters.notify_all();
                Ok(v)
            }
            None if i.closed.get() => Err(TryGetError::Closed),
            None => Err(TryGetError::Empty),
        }
    }

    /// Takes an item, waiting at most `timeout` for one.
    ///
    /// # Errors
    /// [`GetTimeoutError::Timeout`], or [`GetTimeoutError::Closed`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        self.get_deadline(Some(Instant::now() + timeout))
    }

    fn get_deadline(&self, deadline: Option<Instant>) -> Result<T, GetTimeoutError> {
        loop {
            match self.try_get() {
                Ok(v) => return Ok(v),
                Err(TryGetError::Closed) => return Err(GetTimeoutError::Closed),
                Err(TryGetError::Empty) => {}
            }
            if self.inner.getters.wait("Channel::get", deadline) == Waited::TimedOut {
                return self.try_get().map_err(|e| match e {
                    TryGetError::Empty => GetTimeoutError::Timeout,
                    TryGetError::Closed => GetTimeoutError::Closed,
                });
            }
        }
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
        self.inner.offers.borrow().len()
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
