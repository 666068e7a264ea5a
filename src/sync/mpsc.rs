//! Channels between threads and hubs, with std's shapes (`std::sync::mpsc`).
//!
//! [`channel`] makes an unbounded channel, [`sync_channel`]`(n)` a bounded one (`0`: a
//! rendezvous, as in std). Senders are `Send + Clone` and work from any thread — a task on any
//! hub of a [`Runtime`](crate::Runtime), or a plain thread. The [`Receiver`] is `Send` (it may
//! move to another thread) but not `Sync`. A receive that has to wait **parks the task**, not
//! the thread; on a plain thread it runs that thread's implicit hub while it waits, like every
//! other blocking call in grove.
//!
//! ```
//! use grove::sync::mpsc;
//!
//! let (tx, rx) = mpsc::channel();
//! let producer = std::thread::spawn(move || {
//!     for i in 0..10u32 {
//!         tx.send(i).unwrap();
//!     }
//! });
//! let sum: u32 = rx.iter().sum(); // ends when the sender is dropped
//! producer.join().unwrap();
//! assert_eq!(sum, 45);
//! ```
//!
//! ## Cost and wake-ups
//! A send takes the channel's lock and pushes. Only when the receiver is parked does it also
//! wake the receiver's hub — through that hub's inbox, which writes its eventfd only if the hub
//! sleeps in `epoll_wait`, and only once per batch: a burst of sends to a parked receiver costs
//! one wake-up, and a busy hub finds the news between two batches without any syscall. The
//! receiver of an unbounded channel takes everything queued in one go and then receives from
//! its own buffer without touching the lock.
//!
//! These channels are for crossing threads. Between tasks of one hub, [`Queue`](super::Queue)
//! and [`Channel`](super::Channel) cost no lock and no atomic operation.
//!
//! ## Errors and disconnection (as std)
//! A send to a channel whose receiver is gone fails with [`SendError`], which hands the value
//! back. A receive on a channel whose senders are all gone returns what is left and then
//! [`RecvError`]. When a hub's thread exits, its tasks are unwound and the receivers they own
//! dropped, so senders on other hubs see the disconnection.
//!
//! The error types are std's own (`std::sync::mpsc::SendError` and the rest), re-exported, so
//! code written against std's channels keeps its error handling.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use std::sync::mpsc::{RecvError, RecvTimeoutError, SendError, TryRecvError, TrySendError};

use crate::hub::remote::{remote_wait, RemoteWaker};
use crate::hub::timers::deadline_after;

/// Makes an unbounded channel: sends never wait.
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let chan = Chan::new(None);
    (Sender { chan: chan.clone() }, Receiver::new(chan))
}

/// Makes a channel that holds at most `bound` values: a send waits while it is full. With
/// `bound == 0` every send waits until a receiver takes its value (a rendezvous).
pub fn sync_channel<T>(bound: usize) -> (SyncSender<T>, Receiver<T>) {
    let chan = Chan::new(Some(bound));
    (SyncSender { chan: chan.clone() }, Receiver::new(chan))
}

/// The state both ends share.
struct Chan<T> {
    state: Mutex<State<T>>,
    /// `None`: unbounded.
    bound: Option<usize>,
}

struct State<T> {
    queue: VecDeque<T>,
    senders: usize,
    receiver_alive: bool,
    /// The receiver, if it is parked.
    receiver_waiting: Option<RemoteWaker>,
    /// Senders parked on a full bounded channel (or, for a rendezvous, until their value is
    /// taken).
    senders_waiting: Vec<RemoteWaker>,
    /// Values taken by the receiver so far (a rendezvous sender waits for its ticket).
    taken: u64,
    /// Values sent so far.
    sent: u64,
}

impl<T> Chan<T> {
    fn new(bound: Option<usize>) -> Arc<Chan<T>> {
        Arc::new(Chan {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                senders: 1,
                receiver_alive: true,
                receiver_waiting: None,
                senders_waiting: Vec::new(),
                taken: 0,
                sent: 0,
            }),
            bound,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pushes `value` (the caller checked there is room) and wakes a parked receiver, after
    /// the lock is released.
    fn push(&self, mut st: MutexGuard<'_, State<T>>, value: T) -> u64 {
        st.queue.push_back(value);
        st.sent += 1;
        let ticket = st.sent;
        let waiter = st.receiver_waiting.take();
        drop(st);
        if let Some(w) = waiter {
            w.wake();
        }
        ticket
    }

    /// The unbounded send: never waits.
    fn send(&self, value: T) -> Result<(), SendError<T>> {
        let st = self.lock();
        if !st.receiver_alive {
            return Err(SendError(value));
        }
        self.push(st, value);
        Ok(())
    }

    fn add_sender(&self) {
        self.lock().senders += 1;
    }

    fn drop_sender(&self) {
        let mut st = self.lock();
        st.senders -= 1;
        let waiter = if st.senders == 0 {
            st.receiver_waiting.take()
        } else {
            None
        };
        drop(st);
        if let Some(w) = waiter {
            w.wake();
        }
    }
}

/// Wakes every waker in `wakers` (outside any lock).
fn wake_all(wakers: Vec<RemoteWaker>) {
    for w in wakers {
        w.wake();
    }
}

/// Parks the current task until `register`'s waker is used or `deadline` passes; `register`
/// stores the waker in the channel's state (under the lock it was given). Returns false if the
/// deadline passed.
#[track_caller]
fn park_on<T>(
    st: MutexGuard<'_, State<T>>,
    what: &'static str,
    deadline: Option<Instant>,
    register: impl FnOnce(&mut State<T>, RemoteWaker),
) -> bool {
    let mut st = st;
    match remote_wait() {
        Ok((waker, wait)) => {
            register(&mut st, waker);
            drop(st);
            wait.wait(what, deadline)
        }
        Err(e) => {
            // No reactor (out of file descriptors): poll instead of parking.
            drop(st);
            log::warn!("grove: mpsc cannot park ({e}); polling");
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            crate::sleep(Duration::from_millis(1));
            true
        }
    }
}

/// The sending half of an unbounded [`channel`]: `Send + Clone`, usable from any thread.
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Sender<T> {
    /// Sends `value`; never waits.
    ///
    /// # Errors
    /// [`SendError`] with the value if the receiver is gone.
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.chan.send(value)
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        self.chan.add_sender();
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.chan.drop_sender();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sender { .. }")
    }
}

/// The sending half of a bounded [`sync_channel`]: `Send + Clone`, usable from any thread.
pub struct SyncSender<T> {
    chan: Arc<Chan<T>>,
}

impl<T> SyncSender<T> {
    /// Sends `value`, parking while the channel is full (for a rendezvous channel, until the
    /// receiver has taken the value).
    ///
    /// # Errors
    /// [`SendError`] with the value if the receiver is gone (for a rendezvous channel, also if
    /// it goes away before taking the value).
    ///
    /// # Panics
    /// Like every blocking call, inside a generator body (when it would have to wait).
    #[track_caller]
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        let bound = self.chan.bound.unwrap_or(usize::MAX);
        let mut st = self.chan.lock();
        loop {
            if !st.receiver_alive {
                return Err(SendError(value));
            }
            if st.queue.len() < bound.max(1) {
                break;
            }
            park_on(st, "a grove::sync::mpsc send", None, |st, w| {
                st.senders_waiting.push(w);
            });
            st = self.chan.lock();
        }
        let ticket = self.chan.push(st, value);
        if bound == 0 {
            self.wait_taken(ticket)?;
        }
        Ok(())
    }

    /// A rendezvous sender waits until the receiver took its value (ticket).
    #[track_caller]
    fn wait_taken(&self, ticket: u64) -> Result<(), SendError<T>> {
        let mut st = self.chan.lock();
        while st.taken < ticket {
            if !st.receiver_alive {
                // The receiver never took it: it is the one value left in the queue.
                return match st.queue.pop_back() {
                    Some(v) => Err(SendError(v)),
                    None => Ok(()),
                };
            }
            park_on(st, "a grove::sync::mpsc rendezvous", None, |st, w| {
                st.senders_waiting.push(w);
            });
            st = self.chan.lock();
        }
        Ok(())
    }

    /// Sends `value` if there is room now (for a rendezvous channel: if the receiver is
    /// waiting for it); never waits.
    ///
    /// # Errors
    /// [`TrySendError::Full`] with the value if there is no room,
    /// [`TrySendError::Disconnected`] with the value if the receiver is gone.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let bound = self.chan.bound.unwrap_or(usize::MAX);
        let st = self.chan.lock();
        if !st.receiver_alive {
            return Err(TrySendError::Disconnected(value));
        }
        let room = if bound == 0 {
            st.queue.is_empty() && st.receiver_waiting.is_some()
        } else {
            st.queue.len() < bound
        };
        if !room {
            return Err(TrySendError::Full(value));
        }
        self.chan.push(st, value);
        Ok(())
    }
}

impl<T> Clone for SyncSender<T> {
    fn clone(&self) -> SyncSender<T> {
        self.chan.add_sender();
        SyncSender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for SyncSender<T> {
    fn drop(&mut self) {
        self.chan.drop_sender();
    }
}

impl<T> fmt::Debug for SyncSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SyncSender { .. }")
    }
}

/// The receiving half of a channel: `Send` (it may move to another thread), not `Sync`.
///
/// Dropping it disconnects the channel: later sends fail and hand their values back; values
/// still queued are dropped.
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
    /// Values taken from an unbounded channel in one go, not yet returned.
    local: RefCell<VecDeque<T>>,
}

impl<T> Receiver<T> {
    fn new(chan: Arc<Chan<T>>) -> Receiver<T> {
        Receiver {
            chan,
            local: RefCell::new(VecDeque::new()),
        }
    }

    /// Takes a value if one is queued. `Err(true)`: every sender is gone and nothing is left.
    fn take(&self, st: &mut State<T>) -> Option<T> {
        if let Some(v) = self.local.borrow_mut().pop_front() {
            return Some(v);
        }
        let v = if self.chan.bound.is_none() {
            // Unbounded: take the whole batch; the next receives need no lock.
            let mut local = self.local.borrow_mut();
            std::mem::swap(&mut *local, &mut st.queue);
            local.pop_front()
        } else {
            st.queue.pop_front()
        }?;
        st.taken += 1;
        Some(v)
    }

    /// The one receive loop: takes a value, or parks until one comes, every sender is gone
    /// (`RecvTimeoutError::Disconnected`) or `deadline` passes.
    #[track_caller]
    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        if let Some(v) = self.local.borrow_mut().pop_front() {
            return Ok(v);
        }
        loop {
            let mut st = self.chan.lock();
            if let Some(v) = self.take(&mut st) {
                let waiters = std::mem::take(&mut st.senders_waiting);
                drop(st);
                wake_all(waiters);
                return Ok(v);
            }
            if st.senders == 0 {
                return Err(RecvTimeoutError::Disconnected);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(RecvTimeoutError::Timeout);
            }
            let woken = park_on(st, "a grove::sync::mpsc receive", deadline, |st, w| {
                st.receiver_waiting = Some(w);
            });
            if !woken {
                // Timed out: one last look, so a value that raced the deadline is not missed.
                let mut st = self.chan.lock();
                st.receiver_waiting = None;
                return match self.take(&mut st) {
                    Some(v) => Ok(v),
                    None if st.senders == 0 => Err(RecvTimeoutError::Disconnected),
                    None => Err(RecvTimeoutError::Timeout),
                };
            }
        }
    }

    /// Receives a value, parking the task until one comes.
    ///
    /// # Errors
    /// [`RecvError`] once every sender is gone and the channel is empty.
    ///
    /// # Panics
    /// Like every blocking call, inside a generator body.
    #[track_caller]
    pub fn recv(&self) -> Result<T, RecvError> {
        self.recv_until(None).map_err(|_| RecvError)
    }

    /// Receives a value, parking at most `timeout` (`Duration::MAX`: no limit).
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`] if none came in time, [`RecvTimeoutError::Disconnected`]
    /// once every sender is gone and the channel is empty.
    ///
    /// # Panics
    /// Like every blocking call, inside a generator body (when it would have to wait).
    #[track_caller]
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_until(deadline_after(timeout))
    }

    /// Receives a value, parking until `deadline` at the latest.
    ///
    /// # Errors
    /// As [`recv_timeout`](Self::recv_timeout).
    #[track_caller]
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.recv_until(Some(deadline))
    }

    /// Receives a value if one is queued; never waits.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] if none is queued, [`TryRecvError::Disconnected`] once every
    /// sender is gone and the channel is empty.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        if let Some(v) = self.local.borrow_mut().pop_front() {
            return Ok(v);
        }
        let mut st = self.chan.lock();
        match self.take(&mut st) {
            Some(v) => {
                let waiters = std::mem::take(&mut st.senders_waiting);
                drop(st);
                wake_all(waiters);
                Ok(v)
            }
            None if st.senders == 0 => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// An iterator that receives (parking) until every sender is gone.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// An iterator over the values queued now; never waits.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut st = self.chan.lock();
        st.receiver_alive = false;
        // A rendezvous sender still waits for its value: it takes it back from the queue.
        let queued = if self.chan.bound == Some(0) {
            VecDeque::new()
        } else {
            std::mem::take(&mut st.queue)
        };
        let waiters = std::mem::take(&mut st.senders_waiting);
        drop(st);
        wake_all(waiters);
        drop(queued);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Receiver { .. }")
    }
}

/// Receives until every sender is gone (see [`Receiver::iter`]).
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// The values queued now (see [`Receiver::try_iter`]).
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// Receives until every sender is gone, owning the receiver.
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}
