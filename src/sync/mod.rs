//! Synchronisation between the tasks of one hub (gevent's `event`, `queue`, `lock`, `pool` and
//! `local`).
//!
//! Every primitive here parks the waiting **task**, not the thread: while one task waits in
//! [`Queue::get`], the others run. They are for the tasks of one thread (handles are `!Send`);
//! they use `Rc` and `Cell` inside and cost no atomic operation. The exception is [`mpsc`],
//! std's channel shapes for crossing threads and hubs.
//!
//! | gevent | grove |
//! |---|---|
//! | `event.Event` | [`Event`]: `set` / `clear` / `wait` / `wait_timeout` / `is_set` |
//! | `event.AsyncResult` | [`AsyncResult`]: `set` / `set_error` / `get` / `get_timeout` |
//! | `queue.Queue`, `LifoQueue`, `PriorityQueue` | [`Queue`], [`LifoQueue`], [`PriorityQueue`] |
//! | `queue.Channel` | [`Channel`] (rendezvous) |
//! | `lock.Semaphore`, `BoundedSemaphore` | [`Semaphore`], [`BoundedSemaphore`], RAII [`SemaphorePermit`] |
//! | `lock.Semaphore(1)` around data | [`Mutex`] (its guard may be held across a park) |
//! | `pool.Pool`, `pool.Group` | [`Pool`], [`Group`] |
//! | `local.local` | [`Local`], [`task_local!`](crate::task_local) |
//! | `std::sync::mpsc` across hubs and threads | [`mpsc::channel`], [`mpsc::sync_channel`] |
//!
//! ## Semantics shared by all of them
//! - **Handles.** `Event`, `AsyncResult`, `Queue`, `Channel`, the semaphores, `Pool` and `Group`
//!   are cheap handles: clone one into each task. `Mutex<T>` is a value, as in std: share it with
//!   an `Rc`.
//! - **Verbs.** `put` / `try_put` / `put_timeout`, `get` / `try_get` / `get_timeout`, `acquire` /
//!   `try_acquire` / `acquire_timeout`: the plain verb waits, `try_` never waits, `_timeout`
//!   waits at most that long (a timeout too large to add to `Instant::now()`, such as
//!   `Duration::MAX`, waits forever).
//! - **Errors hand values back**: a failed put returns its item inside the error
//!   ([`TryPutError::Full`], [`PutTimeoutError::Timeout`], [`PutError`] for a closed queue).
//! - **Closing.** [`Queue::close`] and [`Channel::close`] wake everyone: puts fail from then on,
//!   gets drain what is left and then fail.
//! - **Nothing is lost when a waiter dies.** A waiter that is killed or times out leaves the
//!   primitive as it found it. Wake-ups never carry an item or a permit: a release or a put
//!   updates the state and wakes the longest waiter, which takes what it finds when it runs; a
//!   woken waiter that dies (or gives up) before using its wake-up passes it to the next one.
//!   A [`Channel`] putter's item waits with it and comes back in the error if nobody took it.
//! - **One wake-up per unit of progress.** A put wakes one getter, a get one putter (for a
//!   [`Channel`], exactly the putter whose item it took), a release one waiter; only `set`,
//!   `close` and the end of `Queue::join`'s work wake everyone. Joining and leaving a wait
//!   costs O(1), so a hundred thousand waiters drain in linear time.
//! - **Waits interrupted while unwinding.** When a kill or timeout reaches a task that is
//!   already unwinding (it waits inside a `Drop`), a `_timeout` call gives up as if it timed
//!   out, and a call without a timeout keeps waiting.
//! - **Fairness.** Waiters are woken in FIFO order, but a task that is running may take a freed
//!   permit or item before the woken waiter runs (no hand-off): throughput first, as in gevent.
//! - **Would block forever.** When main waits on a primitive that no task can ever release, the
//!   call panics with "grove: this operation would block forever", naming each parked task and
//!   what it waits on, instead of hanging.
//!
//! ```
//! use std::time::Duration;
//! use grove::sync::{Event, Queue};
//!
//! let jobs = Queue::bounded(2);
//! let done = Event::new();
//! let worker = {
//!     let (jobs, done) = (jobs.clone(), done.clone());
//!     grove::spawn(move || {
//!         let mut sum = 0;
//!         for job in jobs.iter() {
//!             sum += job;
//!         }
//!         done.set();
//!         sum
//!     })
//! };
//! for i in 1..=10 {
//!     jobs.put(i).unwrap(); // parks while two jobs wait
//! }
//! jobs.close();
//! assert!(done.wait_timeout(Duration::from_secs(1)));
//! assert_eq!(worker.join().unwrap(), 55);
//! ```

mod async_result;
mod channel;
mod error;
mod event;
mod group;
mod local;
pub mod mpsc;
mod mutex;
mod pool;
mod queue;
mod semaphore;

pub use async_result::AsyncResult;
pub use channel::Channel;
pub use error::{GetError, GetTimeoutError, PutError, PutTimeoutError, TryGetError, TryPutError};
pub use event::Event;
pub use group::Group;
pub use local::Local;
pub use mutex::{Mutex, MutexGuard};
pub use pool::{ImapUnordered, Pool, PoolFull};
pub use queue::{Fifo, Iter, Lifo, LifoQueue, Order, Priority, PriorityQueue, Queue};
pub use semaphore::{BoundedSemaphore, OverRelease, Semaphore, SemaphorePermit};
