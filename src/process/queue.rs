//! [`Queue`] and [`Lock`]: shared by every process forked after they were made
//! (multiprocessing's `Queue` and `Lock`), over a Unix `SOCK_SEQPACKET` socket pair.
//!
//! A seqpacket socket keeps record boundaries: each `put` is one record and each `get` takes
//! one whole record, atomically, however many processes put and get at once. Every process
//! holds both ends: `put` sends on one, `get` receives on the other. A [`Lock`] is the same
//! thing with one token in it: `acquire` takes the token, `release` puts it back.

#![deny(unsafe_code)]

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::time::Duration;

use super::message::{from_bytes, Message};
use crate::hub::reactor::{is_deadline, Interest, Share};
use crate::hub::sys::process as sys;
use crate::hub::timers::deadline_after;
use crate::net::evented::Evented;

/// The largest message a [`Queue`] carries (bigger ones: use a [`Connection`](super::Connection)).
pub const MAX_QUEUE_MESSAGE: usize = 64 * 1024;

struct Pair {
    tx: Evented<OwnedFd>,
    rx: Evented<OwnedFd>,
    buf: RefCell<Vec<u8>>,
}

impl Pair {
    fn new() -> io::Result<Pair> {
        let (tx, rx) = sys::seqpacket_pair()?;
        Ok(Pair {
            tx: Evented::new(tx)?,
            rx: Evented::new(rx)?,
            buf: RefCell::new(Vec::new()),
        })
    }

    fn send(&self, record: &[u8]) -> io::Result<()> {
        self.tx
            .io(Interest::Write, Share::Shared, |fd| {
                sys::send_record(fd, record)
            })
            .map(drop)
    }

    fn recv(&self, timeout: Option<Duration>) -> io::Result<Vec<u8>> {
        let deadline = timeout.and_then(deadline_after);
        let mut buf = self.buf.borrow_mut();
        buf.resize(MAX_QUEUE_MESSAGE + 1, 0);
        let n = self
            .rx
            .io_until(Interest::Read, Share::Shared, deadline, |fd| {
                sys::recv_record(fd, &mut buf)
            })
            .map_err(|e| match is_deadline(&e) {
                true => io::Error::new(io::ErrorKind::TimedOut, "the queue stayed empty"),
                false => e,
            })?;
        if n == 0 || n > MAX_QUEUE_MESSAGE + 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "grove: a queue record was empty or truncated",
            ));
        }
        // Records carry one tag byte so that no record is empty (0 would read as EOF).
        Ok(buf[1..n].to_vec())
    }
}

/// A queue shared by processes: any process forked after it was made may `put` and `get`
/// (multiprocessing's `Queue`). `put` parks while the socket's buffer is full, `get` while
/// the queue is empty; both park only the calling task. Clones share the queue.
///
/// Messages are at most [`MAX_QUEUE_MESSAGE`] bytes encoded.
///
/// ```
/// use grove::process::{Process, Queue};
///
/// let q = Queue::new()?;
/// let q2 = q.clone();
/// let child = Process::spawn(move || q2.put(&(42u32, String::from("hello"))).unwrap())?;
/// assert_eq!(q.get()?, (42, String::from("hello")));
/// child.join()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Queue<T> {
    pair: Rc<Pair>,
    _type: PhantomData<fn(T) -> T>,
}

impl<T: Message> Queue<T> {
    /// A new, empty queue.
    ///
    /// # Errors
    /// If the socket pair cannot be made or registered (`EMFILE`).
    pub fn new() -> io::Result<Queue<T>> {
        Ok(Queue {
            pair: Rc::new(Pair::new()?),
            _type: PhantomData,
        })
    }

    /// Puts a value, parking while the queue's buffer is full.
    ///
    /// # Errors
    /// `InvalidInput` if the encoded value is larger than [`MAX_QUEUE_MESSAGE`]; I/O errors.
    pub fn put(&self, value: &T) -> io::Result<()> {
        let mut record = vec![0u8];
        value.encode(&mut record);
        if record.len() > MAX_QUEUE_MESSAGE + 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "grove: a queue message of {} bytes (at most {MAX_QUEUE_MESSAGE}; send \
                     larger ones through a Connection)",
                    record.len() - 1
                ),
            ));
        }
        self.pair.send(&record)
    }

    /// Takes the oldest value, parking until there is one.
    ///
    /// # Errors
    /// `InvalidData` if the bytes are not a `T`; I/O errors.
    pub fn get(&self) -> io::Result<T> {
        from_bytes(&self.pair.recv(None)?)
    }

    /// Like [`get`](Self::get), failing with `TimedOut` after `timeout`.
    ///
    /// # Errors
    /// As [`get`](Self::get), and `TimedOut`.
    pub fn get_timeout(&self, timeout: Duration) -> io::Result<T> {
        from_bytes(&self.pair.recv(Some(timeout))?)
    }
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            pair: self.pair.clone(),
            _type: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Queue { .. }")
    }
}

/// A lock shared by processes forked after it was made (multiprocessing's `Lock`): one
/// process at a time holds it. `acquire` parks only the calling task. Clones share the lock.
///
/// A process that dies while holding the lock takes the token with it: the lock stays taken
/// (as with multiprocessing's `Lock`).
#[derive(Clone)]
pub struct Lock {
    pair: Rc<Pair>,
}

/// Holds a [`Lock`]; dropping it releases the lock.
#[must_use = "dropping the guard releases the lock at once"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
}

const TOKEN: &[u8] = &[1];

impl Lock {
    /// A new, unlocked lock.
    ///
    /// # Errors
    /// If the socket pair cannot be made or registered (`EMFILE`).
    pub fn new() -> io::Result<Lock> {
        let lock = Lock {
            pair: Rc::new(Pair::new()?),
        };
        lock.pair.send(TOKEN)?;
        Ok(lock)
    }

    /// Takes the lock, parking until no other holder has it.
    ///
    /// # Errors
    /// I/O errors on the underlying socket.
    pub fn acquire(&self) -> io::Result<LockGuard<'_>> {
        self.pair.recv(None)?;
        Ok(LockGuard { lock: self })
    }

    /// Like [`acquire`](Self::acquire), failing with `TimedOut` after `timeout`.
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire), and `TimedOut`.
    pub fn acquire_timeout(&self, timeout: Duration) -> io::Result<LockGuard<'_>> {
        self.pair.recv(Some(timeout))?;
        Ok(LockGuard { lock: self })
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.lock.pair.send(TOKEN) {
            log::error!("grove: cannot release a process Lock: {e}");
        }
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Lock { .. }")
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LockGuard { .. }")
    }
}
