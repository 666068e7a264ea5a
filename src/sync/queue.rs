//! [`Queue`], [`LifoQueue`] and [`PriorityQueue`] (gevent.queue): bounded or unbounded, with
//! `task_done` / `join` and `close`.
//!
//! Items never travel inside a wake-up: `put` stores the item and wakes one getter, which takes
//! whatever is there when it runs. A woken getter that is killed first passes its wake-up on, so
//! no item is stranded.

use std::cell::{Cell, RefCell};
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::error::{
    GetError, GetTimeoutError, PutError, PutTimeoutError, TryGetError, TryPutError,
};
use crate::hub::timers::deadline_after;
use crate::hub::wait::WaitQueue;

mod sealed {
    pub trait Sealed {}
}

/// The order in which a [`Queue`] hands out its items: [`Fifo`], [`Lifo`] or [`Priority`].
pub trait Order<T>: sealed::Sealed {
    /// Where the items are kept.
    #[doc(hidden)]
    type Store: Default;
    #[doc(hidden)]
    fn push(store: &mut Self::Store, item: T);
    #[doc(hidden)]
    fn pop(store: &mut Self::Store) -> Option<T>;
    #[doc(hidden)]
    fn len(store: &Self::Store) -> usize;
}

/// First in, first out (gevent's `Queue`).
#[derive(Debug)]
pub enum Fifo {}
/// Last in, first out (gevent's `LifoQueue`).
#[derive(Debug)]
pub enum Lifo {}
/// Greatest item first (a max-heap, like `BinaryHeap`; wrap items in
/// `std::cmp::Reverse` for gevent's smallest-first `PriorityQueue`).
#[derive(Debug)]
pub enum Priority {}

impl sealed::Sealed for Fifo {}
impl sealed::Sealed for Lifo {}
impl sealed::Sealed for Priority {}

impl<T> Order<T> for Fifo {
    type Store = VecDeque<T>;
    fn push(s: &mut VecDeque<T>, item: T) {
        s.push_back(item);
    }
    fn pop(s: &mut VecDeque<T>) -> Option<T> {
        s.pop_front()
    }
    fn len(s: &VecDeque<T>) -> usize {
        s.len()
    }
}

impl<T> Order<T> for Lifo {
    type Store = Vec<T>;
    fn push(s: &mut Vec<T>, item: T) {
        s.push(item);
    }
    fn pop(s: &mut Vec<T>) -> Option<T> {
        s.pop()
    }
    fn len(s: &Vec<T>) -> usize {
        s.len()
    }
}

impl<T: Ord> Order<T> for Priority {
    type Store = BinaryHeap<T>;
    fn push(s: &mut BinaryHeap<T>, item: T) {
        s.push(item);
    }
    fn pop(s: &mut BinaryHeap<T>) -> Option<T> {
        s.pop()
    }
    fn len(s: &BinaryHeap<T>) -> usize {
        s.len()
    }
}

/// A queue of items between tasks (gevent's `Queue`); `O` picks the order.
///
/// A bounded queue parks putters while it is full; every queue parks getters while it is empty.
/// Clones are handles to the same queue. [`close`](Self::close) wakes everyone: later puts fail
/// with the value handed back, gets drain what is left and then fail.
///
/// ```
/// use grove::sync::Queue;
/// let q = Queue::bounded(2);
/// let producer = { let q = q.clone(); grove::spawn(move || for i in 0..5 { q.put(i).unwrap() }) };
/// let got: Vec<i32> = (0..5).map(|_| q.get().unwrap()).collect();
/// producer.join().unwrap();
/// assert_eq!(got, [0, 1, 2, 3, 4]);
/// ```
pub struct Queue<T, O: Order<T> = Fifo> {
    inner: Rc<Inner<T, O>>,
}

struct Inner<T, O: Order<T>> {
    items: RefCell<O::Store>,
    capacity: Option<usize>,
    closed: Cell<bool>,
    getters: WaitQueue,
    putters: WaitQueue,
    /// Items put and not yet marked with `task_done`.
    unfinished: Cell<usize>,
    joiners: WaitQueue,
}

impl<T, O: Order<T>> Clone for Queue<T, O> {
    fn clone(&self) -> Self {
        Queue {
            inner: self.inner.clone(),
        }
    }
}

impl<T> Queue<T> {
    /// An unbounded FIFO queue.
    pub fn new() -> Self {
        Queue::with_capacity(None)
    }

    /// A FIFO queue holding at most `capacity` items; putters wait while it is full.
    ///
    /// # Panics
    /// If `capacity` is 0 (use a [`Channel`](crate::sync::Channel) for a rendezvous).
    pub fn bounded(capacity: usize) -> Self {
        Queue::with_capacity(Some(check(capacity)))
    }
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue::new()
    }
}

fn check(capacity: usize) -> usize {
    assert!(
        capacity > 0,
        "grove: a queue bounded to 0 items; use sync::Channel"
    );
    capacity
}

macro_rules! flavour {
    ($(#[$doc:meta])* $name:ident, $order:ty, $($bound:tt)*) => {
        $(#[$doc])*
        ///
        /// It is a [`Queue`] in every other respect (it derefs to one).
        pub struct $name<T $($bound)*>(Queue<T, $order>);

        impl<T $($bound)*> $name<T> {
            /// An unbounded queue.
            pub fn new() -> Self {
                $name(Queue::with_capacity(None))
            }

            /// A queue holding at most `capacity` items; putters wait while it is full.
            ///
            /// # Panics
            /// If `capacity` is 0.
            pub fn bounded(capacity: usize) -> Self {
                $name(Queue::with_capacity(Some(check(capacity))))
            }
        }

        impl<T $($bound)*> Default for $name<T> {
            fn default() -> Self {
                $name::new()
            }
        }

        impl<T $($bound)*> Clone for $name<T> {
            fn clone(&self) -> Self {
                $name(self.0.clone())
            }
        }

        impl<T $($bound)*> std::ops::Deref for $name<T> {
            type Target = Queue<T, $order>;
            fn deref(&self) -> &Queue<T, $order> {
                &self.0
            }
        }

        impl<T $($bound)*> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }
    };
}

flavour!(
    /// A queue that hands out the newest item first (gevent's `LifoQueue`).
    LifoQueue, Lifo,
);
flavour!(
    /// A queue that hands out the greatest item first (gevent's `PriorityQueue`; wrap items in
    /// `std::cmp::Reverse` for smallest-first).
    PriorityQueue, Priority, : Ord
);

impl<T, O: Order<T>> Queue<T, O> {
    fn with_capacity(capacity: Option<usize>) -> Self {
        Queue {
            inner: Rc::new(Inner {
                items: RefCell::new(O::Store::default()),
                capacity,
                closed: Cell::new(false),
                getters: WaitQueue::new(),
                putters: WaitQueue::new(),
                unfinished: Cell::new(0),
                joiners: WaitQueue::new(),
            }),
        }
    }

    /// Puts `item`, parking the task while the queue is full.
    ///
    /// # Errors
    /// [`PutError`] with the item if the queue is closed.
    ///
    /// # Panics
    /// With "would block forever" if main waits on a full queue that no task will drain.
    #[track_caller]
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_deadline(item, None)
            .map_err(|e| PutError(e.into_inner()))
    }

    /// Puts `item` if there is room now.
    ///
    /// # Errors
    /// [`TryPutError::Full`] or [`TryPutError::Closed`], with the item.
    #[inline]
    pub fn try_put(&self, item: T) -> Result<(), TryPutError<T>> {
        if self.inner.closed.get() {
            return Err(TryPutError::Closed(item));
        }
        if self.is_full() {
            return Err(TryPutError::Full(item));
        }
        self.push(item);
        Ok(())
    }

    /// Puts `item`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`PutTimeoutError::Timeout`] or [`PutTimeoutError::Closed`], with the item.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutTimeoutError<T>> {
        self.put_deadline(item, deadline_after(timeout))
    }

    #[track_caller]
    fn put_deadline(&self, item: T, deadline: Option<Instant>) -> Result<(), PutTimeoutError<T>> {
        let mut item = Some(item);
        let done = self.inner.putters.wait_until("Queue::put", deadline, || {
            match self.try_put(item.take().expect("the item is here until put")) {
                Ok(()) => Some(Ok(())),
                Err(TryPutError::Closed(v)) => Some(Err(PutTimeoutError::Closed(v))),
                Err(TryPutError::Full(v)) => {
                    item = Some(v);
                    None
                }
            }
        });
        done.unwrap_or_else(|| Err(PutTimeoutError::Timeout(item.expect("not put"))))
    }

    #[inline]
    fn push(&self, item: T) {
        O::push(&mut self.inner.items.borrow_mut(), item);
        let i = &self.inner;
        i.unfinished.set(i.unfinished.get() + 1);
        i.getters.notify_one();
    }

    /// Takes the next item, parking the task while the queue is empty.
    ///
    /// # Errors
    /// [`GetError`] once the queue is closed and empty.
    ///
    /// # Panics
    /// With "would block forever" if main waits on a queue that no task will ever fill.
    #[track_caller]
    pub fn get(&self) -> Result<T, GetError> {
        self.get_deadline(None).map_err(|_| GetError)
    }

    /// Takes the next item if there is one now.
    ///
    /// # Errors
    /// [`TryGetError::Empty`], or [`TryGetError::Closed`] once closed and empty.
    #[inline]
    pub fn try_get(&self) -> Result<T, TryGetError> {
        let item = O::pop(&mut self.inner.items.borrow_mut());
        match item {
            Some(v) => {
                self.inner.putters.notify_one();
                Ok(v)
            }
            None if self.inner.closed.get() => Err(TryGetError::Closed),
            None => Err(TryGetError::Empty),
        }
    }

    /// Takes the next item, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`GetTimeoutError::Timeout`], or [`GetTimeoutError::Closed`] once closed and empty.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        self.get_deadline(deadline_after(timeout))
    }

    #[track_caller]
    fn get_deadline(&self, deadline: Option<Instant>) -> Result<T, GetTimeoutError> {
        let got = self
            .inner
            .getters
            .wait_until("Queue::get", deadline, || match self.try_get() {
                Ok(v) => Some(Ok(v)),
                Err(TryGetError::Closed) => Some(Err(GetTimeoutError::Closed)),
                Err(TryGetError::Empty) => None,
            });
        got.unwrap_or(Err(GetTimeoutError::Timeout))
    }

    /// Marks one item taken with `get` as fully processed (gevent's `task_done`).
    ///
    /// # Panics
    /// If called more times than items were put.
    pub fn task_done(&self) {
        let i = &self.inner;
        let n = i.unfinished.get();
        assert!(n > 0, "grove: Queue::task_done called too many times");
        i.unfinished.set(n - 1);
        if n == 1 {
            i.joiners.notify_all();
        }
    }

    /// Waits until every item ever put has been marked with [`task_done`](Self::task_done).
    ///
    /// # Panics
    /// With "would block forever" if main waits and no task will finish the items.
    #[track_caller]
    pub fn join(&self) {
        let i = &self.inner;
        i.joiners.wait_until("Queue::join", None, || {
            (i.unfinished.get() == 0).then_some(())
        });
    }

    /// Number of items put and not yet marked done.
    pub fn unfinished_tasks(&self) -> usize {
        self.inner.unfinished.get()
    }

    /// Closes the queue and wakes every waiter: puts fail from now on; gets take what is left,
    /// then fail.
    pub fn close(&self) {
        self.inner.closed.set(true);
        self.inner.getters.notify_all();
        self.inner.putters.notify_all();
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.get()
    }

    /// Number of items in the queue.
    pub fn len(&self) -> usize {
        O::len(&self.inner.items.borrow())
    }

    /// Whether the queue holds no item.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a bounded queue is at capacity (never true for an unbounded one).
    pub fn is_full(&self) -> bool {
        self.inner.capacity.is_some_and(|c| self.len() >= c)
    }

    /// The bound, or `None` for an unbounded queue.
    pub fn capacity(&self) -> Option<usize> {
        self.inner.capacity
    }

    /// Number of tasks waiting in `get`.
    pub fn getters(&self) -> usize {
        self.inner.getters.len()
    }

    /// Number of tasks waiting in `put`.
    pub fn putters(&self) -> usize {
        self.inner.putters.len()
    }

    /// An iterator that `get`s items until the queue is closed and empty.
    pub fn iter(&self) -> Iter<T, O> {
        Iter {
            queue: self.clone(),
        }
    }
}

/// Iterator over a queue's items, from [`Queue::iter`]; ends when the queue is closed and empty.
pub struct Iter<T, O: Order<T> = Fifo> {
    queue: Queue<T, O>,
}

impl<T, O: Order<T>> Iterator for Iter<T, O> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.queue.get().ok()
    }
}

impl<T, O: Order<T>> fmt::Debug for Queue<T, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<T, O: Order<T>> fmt::Debug for Iter<T, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").field("queue", &self.queue).finish()
    }
}
