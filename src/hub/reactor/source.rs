//! A registered fd ([`Source`]) and its two [`Direction`]s. A direction holds everything about
//! one side of the fd in one place — the readiness epoll last reported, the tasks parked for
//! it, its timeout, whose turn it is, whether the fd was closed — and runs the one loop every
//! I/O call goes through ([`Direction::io`]).

#![deny(unsafe_code)]

use std::cell::Cell;
use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use super::IoWaiter;
use crate::hub::sys::Event;
use crate::hub::timers::deadline_after;
use crate::hub::wait::{WaitQueue, Waited};

/// A direction of readiness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Interest {
    /// Readable (or EOF, hang-up, error).
    Read,
    /// Writable (or hang-up, error).
    Write,
}

/// Whether several tasks may wait in one direction at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Share {
    /// One task at a time (stream reads and writes): a second one gets `ResourceBusy`.
    Exclusive,
    /// Any number (accept, datagrams): each call is atomic, so waiters simply take turns.
    Shared,
}

/// When an I/O call gives up waiting.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Deadline {
    /// The direction's own timeout (`set_read_timeout` / `set_write_timeout`), counted from
    /// the first park; when it passes the call fails with `WouldBlock` ("read timed out"), the
    /// kind std's blocking sockets report on Linux.
    Own,
    /// An instant fixed by the caller (`None`: never); when it passes the call fails with
    /// [`deadline_error`].
    At(Option<Instant>),
}

/// One direction (read or write) of a registered fd, and everything a task needs to wait on
/// it: the readiness the reactor last reported, the queue of tasks parked for it, the timeout
/// that bounds their waits, whose turn it is, and whether the fd was closed.
///
/// Laid out (`repr(C)`) with what every event and every call touches first — the flags, then
/// the wait queue — and the timeout, read only when a call parks, last: in a [`Source`] both
/// directions' hot fields then share as few cache lines as they can.
#[repr(C)]
pub(crate) struct Direction {
    /// Readiness is known (an edge arrived, or nothing has said `EAGAIN` yet).
    ready: Cell<bool>,
    /// The peer closed its side (reads only): that edge comes once, so readiness stays set.
    hup: Cell<bool>,
    /// The fd was closed (deregistered): waits fail.
    closed: Cell<bool>,
    /// A task holds the exclusive turn to wait in this direction (streams).
    busy: Cell<bool>,
    interest: Interest,
    waiters: WaitQueue,
    timeout: Cell<Option<Duration>>,
}

/// Why a wait in one direction ended without readiness.
enum Stop {
    Closed,
    Deadline,
    Interrupted,
}

impl Direction {
    fn new(interest: Interest, fd: RawFd) -> Direction {
        let waiters = WaitQueue::new();
        // Task dumps show the fd a task waits on.
        waiters.set_tag(u64::try_from(fd).map_or(0, |fd| fd + 1));
        Direction {
            interest,
            // Unknown readiness counts as ready: the first call tries the syscall.
            ready: Cell::new(true),
            hup: Cell::new(false),
            closed: Cell::new(false),
            timeout: Cell::new(None),
            busy: Cell::new(false),
            waiters,
        }
    }

    /// Whether readiness is known (nothing said `EAGAIN` since the last edge).
    #[cfg_attr(not(feature = "monkey"), allow(dead_code))]
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.get()
    }

    /// Forgets readiness after the syscall said `EAGAIN` or a short write filled the buffer.
    pub(crate) fn clear(&self) {
        self.ready.set(false);
    }

    /// Forgets read readiness after a short read emptied the receive queue — unless the peer
    /// has closed its side, whose edge has been consumed already and will not come again.
    pub(crate) fn drained(&self) {
        if !self.hup.get() {
            self.ready.set(false);
        }
    }

    /// The timeout that bounds a wait with [`Deadline::Own`] (`None`: forever).
    pub(crate) fn timeout(&self) -> Option<Duration> {
        self.timeout.get()
    }

    /// Sets the timeout; zero is refused, as std does. Any other duration is accepted, and one
    /// too large to add to the clock (`Duration::MAX`) means forever.
    pub(crate) fn set_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        if t == Some(Duration::ZERO) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        self.timeout.set(t);
        Ok(())
    }

    /// A place in this direction's queue of waiters (for a wait on several fds at once).
    #[cfg_attr(not(feature = "monkey"), allow(dead_code))]
    pub(crate) fn place(&self) -> crate::hub::wait::Place<'_> {
        self.waiters.place(None)
    }

    /// The loop every I/O call runs: try `op`; on `WouldBlock` forget readiness and park until
    /// the reactor reports this direction ready, the fd is closed (`NotConnected`), the
    /// deadline passes, or an interrupt reaches a task that is already unwinding
    /// ([`crate::hub::interrupted_error`]); then try again.
    ///
    /// In `nonblocking` mode `op` is tried once, without consulting the readiness flag (it only
    /// saves syscalls before a park; a caller that polls must see data that arrived since the
    /// flag was cleared), and `WouldBlock` is returned as is.
    ///
    /// Inlined into each I/O method, so `op` is a direct call; the park is out of line.
    #[inline]
    pub(crate) fn io<R>(
        &self,
        share: Share,
        nonblocking: bool,
        deadline: Deadline,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        let mut at = None;
        let mut turn = None;
        loop {
            if self.closed.get() {
                return Err(closed_error());
            }
            if nonblocking || self.ready.get() {
                match op() {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.clear(),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    r => return r,
                }
            }
            if nonblocking {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.park(share, deadline, &mut at, &mut turn)?;
        }
    }

    /// One park of [`Direction::io`]: takes the exclusive turn if needed (kept in `turn` until
    /// the call returns), fixes the deadline on the first park (kept in `at`), and waits.
    fn park<'a>(
        &'a self,
        share: Share,
        deadline: Deadline,
        at: &mut Option<Option<Instant>>,
        turn: &mut Option<Turn<'a>>,
    ) -> io::Result<()> {
        if share == Share::Exclusive && turn.is_none() {
            *turn = Some(Turn::take(self)?);
        }
        let at = *at.get_or_insert_with(|| match deadline {
            Deadline::Own => self.timeout.get().and_then(deadline_after),
            Deadline::At(at) => at,
        });
        match self.wait(at) {
            Ok(()) => Ok(()),
            Err(Stop::Closed) => Err(closed_error()),
            Err(Stop::Interrupted) => Err(crate::hub::interrupted_error()),
            Err(Stop::Deadline) => Err(self.timed_out(deadline)),
        }
    }

    /// Parks until this direction is ready, or why not.
    fn wait(&self, deadline: Option<Instant>) -> Result<(), Stop> {
        loop {
            if self.closed.get() {
                return Err(Stop::Closed);
            }
            if self.ready.get() {
                return Ok(());
            }
            let what = match self.interest {
                Interest::Read => "fd readable",
                Interest::Write => "fd writable",
            };
            let waited = {
                let _count = IoWaiter::new();
                self.waiters.wait(what, deadline)
            };
            match waited {
                Waited::Notified => {}
                Waited::Interrupted => return Err(Stop::Interrupted),
                Waited::TimedOut if self.ready.get() || self.closed.get() => {}
                Waited::TimedOut => return Err(Stop::Deadline),
            }
        }
    }

    fn timed_out(&self, deadline: Deadline) -> io::Error {
        match (deadline, self.interest) {
            (Deadline::Own, Interest::Read) => {
                io::Error::new(io::ErrorKind::WouldBlock, "read timed out")
            }
            (Deadline::Own, Interest::Write) => {
                io::Error::new(io::ErrorKind::WouldBlock, "write timed out")
            }
            (Deadline::At(_), _) => deadline_error(),
        }
    }

    /// A readiness edge from epoll.
    fn set_ready(&self) {
        self.ready.set(true);
        self.waiters.notify_all();
    }

    /// The fd is gone: waiters wake and see the error.
    fn close(&self) {
        self.closed.set(true);
        self.waiters.notify_all();
    }
}

/// A task's exclusive turn to wait in one direction of a stream.
struct Turn<'a>(&'a Cell<bool>);

impl<'a> Turn<'a> {
    fn take(dir: &'a Direction) -> io::Result<Turn<'a>> {
        if dir.busy.replace(true) {
            let what = match dir.interest {
                Interest::Read => "reading from",
                Interest::Write => "writing to",
            };
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!(
                    "another task is already {what} this socket; grove allows one reader and \
                     one writer per socket at a time (use a Queue to share it)"
                ),
            ));
        }
        Ok(Turn(&dir.busy))
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

/// One registered fd: its two directions, and the socket-wide non-blocking mode. The
/// directions come first (`repr(C)`), so their hot fields sit together (see [`Direction`]).
#[repr(C)]
pub(crate) struct Source {
    read: Direction,
    write: Direction,
    token: u64,
    fd: RawFd,
    nonblocking: Cell<bool>,
}

impl Source {
    /// A source for `fd`, registered under `token`; readiness unknown (so the first call tries
    /// the syscall).
    pub(super) fn new(fd: RawFd, token: u64) -> Source {
        Source {
            read: Direction::new(Interest::Read, fd),
            write: Direction::new(Interest::Write, fd),
            token,
            fd,
            nonblocking: Cell::new(false),
        }
    }

    pub(super) fn fd(&self) -> RawFd {
        self.fd
    }

    pub(super) fn token(&self) -> u64 {
        self.token
    }

    /// The fd is gone: waiters in both directions wake and see the error.
    pub(super) fn close(&self) {
        self.read.close();
        self.write.close();
    }

    /// One direction's state.
    #[inline]
    pub(crate) fn dir(&self, interest: Interest) -> &Direction {
        match interest {
            Interest::Read => &self.read,
            Interest::Write => &self.write,
        }
    }

    /// Whether the source was closed (deregistered); waits on it fail.
    pub(crate) fn is_closed(&self) -> bool {
        self.read.closed.get()
    }

    /// In non-blocking mode calls return `WouldBlock` instead of parking.
    pub(crate) fn set_nonblocking(&self, on: bool) {
        self.nonblocking.set(on);
    }

    /// Runs [`Direction::io`] in direction `interest` with this source's non-blocking mode.
    #[inline]
    pub(crate) fn io<R>(
        &self,
        interest: Interest,
        share: Share,
        deadline: Deadline,
        op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        let nonblocking = self.nonblocking.get();
        self.dir(interest).io(share, nonblocking, deadline, op)
    }

    /// In a forked child: the parent's tasks that waited here will never run, so the turns
    /// they held are released and readiness is unknown again (the next call tries the
    /// syscall). Their wakers stay queued; waking one is a no-op (its fiber is dead).
    pub(super) fn reset_in_child(&self) {
        for dir in [&self.read, &self.write] {
            dir.busy.set(false);
            dir.ready.set(true);
        }
    }

    /// An epoll event for this source.
    pub(super) fn on_event(&self, ev: &Event) {
        if ev.read_closed {
            self.read.hup.set(true);
        }
        if ev.readable {
            self.read.set_ready();
        }
        if ev.writable {
            self.write.set_ready();
        }
    }
}

/// The error of a wait that reached its [`Deadline::At`] (kind `TimedOut`); callers tell it
/// from other `TimedOut` errors (an interrupt, a peer's timeout) with [`is_deadline`].
pub(crate) fn deadline_error() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, DeadlinePassed)
}

/// Whether `e` is [`deadline_error`].
pub(crate) fn is_deadline(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<DeadlinePassed>())
}

#[derive(Debug)]
struct DeadlinePassed;

impl std::fmt::Display for DeadlinePassed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("I/O operation timed out")
    }
}

impl std::error::Error for DeadlinePassed {}

/// The error a task sees when the fd it waited on was closed under it.
fn closed_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the socket was closed by another task while this one waited on it",
    )
}
