//! The reactor: fd readiness from epoll, and completions from other threads.
//!
//! Each cooperative fd is registered once (edge-triggered, read and write together) when it is
//! wrapped, as a [`Source`]. A source has two [`Direction`]s, and a direction holds all of its
//! state in one place: the readiness last reported, the tasks parked for it, its timeout, whose
//! turn it is, whether the fd was closed — and the one loop every I/O call runs
//! ([`Direction::io`]): try the syscall; only on `EAGAIN` forget readiness and park; retry until
//! the deadline. An edge that arrives while no task waits is remembered, so it is never lost.
//! Tokens carry the slot index and a generation, so an event for a closed-and-reused fd is
//! ignored. Closing a source wakes its waiters, which then see an error.
//!
//! Work finished on other threads (the thread pool) is reported through [`Remote`]: the worker
//! records the job id and pokes an eventfd; the hub wakes the task waiting for that id.

#![deny(unsafe_code)]

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::BTreeMap;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::sys::{Event, EventFd, Poller};
use super::timers::{deadline_after, Action};
use super::wait::{WaitQueue, Waited};
use super::Waker;
use crate::coro::fiber::WakeReason;

const REMOTE_TOKEN: u64 = u64::MAX;

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
pub(crate) struct Direction {
    interest: Interest,
    /// Readiness is known (an edge arrived, or nothing has said `EAGAIN` yet).
    ready: Cell<bool>,
    /// The peer closed its side (reads only): that edge comes once, so readiness stays set.
    hup: Cell<bool>,
    /// The fd was closed (deregistered): waits fail.
    closed: Cell<bool>,
    timeout: Cell<Option<Duration>>,
    /// A task holds the exclusive turn to wait in this direction (streams).
    busy: Cell<bool>,
    waiters: WaitQueue,
}

/// Why a wait in one direction ended without readiness.
enum Stop {
    Closed,
    Deadline,
    Interrupted,
}

impl Direction {
    fn new(interest: Interest) -> Direction {
        Direction {
            interest,
            // Unknown readiness counts as ready: the first call tries the syscall.
            ready: Cell::new(true),
            hup: Cell::new(false),
            closed: Cell::new(false),
            timeout: Cell::new(None),
            busy: Cell::new(false),
            waiters: WaitQueue::new(),
        }
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

    /// The loop every I/O call runs: try `op`; on `WouldBlock` forget readiness and park until
    /// the reactor reports this direction ready, the fd is closed (`NotConnected`), the
    /// deadline passes, or an interrupt reaches a task that is already unwinding
    /// ([`super::interrupted_error`]); then try again.
    ///
    /// In `nonblocking` mode `op` is tried once, without consulting the readiness flag (it only
    /// saves syscalls before a park; a caller that polls must see data that arrived since the
    /// flag was cleared), and `WouldBlock` is returned as is.
    pub(crate) fn io<R>(
        &self,
        share: Share,
        nonblocking: bool,
        deadline: Deadline,
        op: &mut dyn FnMut() -> io::Result<R>,
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
            if share == Share::Exclusive && turn.is_none() {
                turn = Some(Turn::take(self)?);
            }
            let at = *at.get_or_insert_with(|| match deadline {
                Deadline::Own => self.timeout.get().and_then(deadline_after),
                Deadline::At(at) => at,
            });
            match self.wait(at) {
                Ok(()) => {}
                Err(Stop::Closed) => return Err(closed_error()),
                Err(Stop::Interrupted) => return Err(super::interrupted_error()),
                Err(Stop::Deadline) => return Err(self.timed_out(deadline)),
            }
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

/// One registered fd: its two directions, and the socket-wide non-blocking mode.
pub(crate) struct Source {
    fd: RawFd,
    token: u64,
    nonblocking: Cell<bool>,
    read: Direction,
    write: Direction,
}

impl Source {
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
        op: &mut dyn FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        let nonblocking = self.nonblocking.get();
        self.dir(interest).io(share, nonblocking, deadline, op)
    }

    fn on_event(&self, ev: &Event) {
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

/// Counts a task parked on I/O for as long as it waits (so the hub knows I/O may wake it).
struct IoWaiter;

impl IoWaiter {
    fn new() -> IoWaiter {
        super::with(|hub| hub.reactor.io_waiters.set(hub.reactor.io_waiters.get() + 1));
        IoWaiter
    }
}

impl Drop for IoWaiter {
    fn drop(&mut self) {
        let _ = super::HUB.try_with(|hub| {
            let n = &hub.reactor.io_waiters;
            n.set(n.get() - 1);
        });
    }
}

/// The OS side, created on first use.
struct Sys {
    poller: RefCell<Poller>,
    remote: Arc<RemoteShared>,
}

/// The half of the reactor other threads may touch.
struct RemoteShared {
    eventfd: EventFd,
    done: Mutex<Vec<u64>>,
}

/// A `Send` handle through which another thread reports that job `id` finished.
#[derive(Clone)]
pub(crate) struct Remote {
    shared: Arc<RemoteShared>,
}

impl Remote {
    /// Marks job `id` finished and wakes the hub.
    pub(crate) fn complete(&self, id: u64) {
        if let Ok(mut done) = self.shared.done.lock() {
            done.push(id);
        }
        self.shared.eventfd.notify();
    }
}

/// Undoes a [`Reactor::wait_job`] that is left by unwinding: cancels its timer and forgets the
/// job (its result is dropped on the worker).
struct JobWait<'a> {
    reactor: &'a Reactor,
    id: u64,
    timer: Option<super::timers::TimerKey>,
    unwinding: bool,
}

impl Drop for JobWait<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.timer.take() {
            super::cancel_timer(key);
        }
        if self.unwinding {
            self.reactor.remote_jobs.borrow_mut().remove(&self.id);
        }
    }
}

/// The hub's I/O and cross-thread event source.
pub(crate) struct Reactor {
    sys: OnceCell<Sys>,
    slots: RefCell<Vec<(u32, Option<Rc<Source>>)>>,
    free: RefCell<Vec<usize>>,
    io_waiters: Cell<usize>,
    /// Jobs on other threads whose completion a task waits for: id -> waker (None once done).
    remote_jobs: RefCell<BTreeMap<u64, Option<Waker>>>,
    next_job: Cell<u64>,
    events: RefCell<Vec<Event>>,
}

impl Reactor {
    pub(crate) const fn new() -> Reactor {
        Reactor {
            sys: OnceCell::new(),
            slots: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            io_waiters: Cell::new(0),
            remote_jobs: RefCell::new(BTreeMap::new()),
            next_job: Cell::new(1),
            events: RefCell::new(Vec::new()),
        }
    }

    fn sys(&self) -> io::Result<&Sys> {
        if let Some(s) = self.sys.get() {
            return Ok(s);
        }
        let poller = Poller::new()?;
        let eventfd = EventFd::new()?;
        poller.add(eventfd.raw(), REMOTE_TOKEN)?;
        let remote = Arc::new(RemoteShared {
            eventfd,
            done: Mutex::new(Vec::new()),
        });
        let sys = Sys {
            poller: RefCell::new(poller),
            remote,
        };
        Ok(self.sys.get_or_init(|| sys))
    }

    /// Registers `fd` (once, for its whole life) and returns its source.
    pub(crate) fn register(&self, fd: RawFd) -> io::Result<Rc<Source>> {
        let sys = self.sys()?;
        let index = self.free.borrow_mut().pop().unwrap_or_else(|| {
            let mut slots = self.slots.borrow_mut();
            slots.push((0, None));
            slots.len() - 1
        });
        let gen = self.slots.borrow()[index].0;
        let token = (u64::from(gen) << 32) | index as u64;
        let source = Rc::new(Source {
            fd,
            token,
            nonblocking: Cell::new(false),
            read: Direction::new(Interest::Read),
            write: Direction::new(Interest::Write),
        });
        if let Err(e) = sys.poller.borrow().add(fd, token) {
            self.free.borrow_mut().push(index);
            return Err(e);
        }
        self.slots.borrow_mut()[index].1 = Some(source.clone());
        Ok(source)
    }

    /// Unregisters a source before its fd is closed; tasks waiting on it wake with an error.
    pub(crate) fn deregister(&self, source: &Source) {
        if source.is_closed() {
            return;
        }
        if let Some(sys) = self.sys.get() {
            sys.poller.borrow().delete(source.fd);
        }
        let index = (source.token & 0xffff_ffff) as usize;
        {
            let mut slots = self.slots.borrow_mut();
            let slot = &mut slots[index];
            slot.0 = slot.0.wrapping_add(1);
            slot.1 = None;
        }
        self.free.borrow_mut().push(index);
        source.read.close();
        source.write.close();
    }

    /// A handle other threads use to report finished jobs.
    pub(crate) fn remote(&self) -> io::Result<Remote> {
        Ok(Remote {
            shared: self.sys()?.remote.clone(),
        })
    }

    /// Reserves an id for a job another thread will complete through [`Remote::complete`].
    pub(crate) fn begin_job(&self) -> u64 {
        let id = self.next_job.get();
        self.next_job.set(id + 1);
        self.remote_jobs.borrow_mut().insert(id, None);
        id
    }

    /// Parks the current task until job `id` completes (true) or `deadline` passes (false; the
    /// job stays recorded, so the caller may wait again). The record is removed when the job
    /// completes, and when the task unwinds out of the wait (killed, timed out).
    pub(crate) fn wait_job(&self, id: u64, what: &'static str, deadline: Option<Instant>) -> bool {
        let mut wait = JobWait {
            reactor: self,
            id,
            timer: None,
            unwinding: true,
        };
        let done = loop {
            let waker = super::current_waker();
            match self.remote_jobs.borrow_mut().get_mut(&id) {
                Some(slot) => *slot = Some(waker.clone()),
                None => break true,
            }
            wait.timer = deadline.map(|at| super::add_timer(at, Action::Wake(waker)));
            let reason = super::park(what);
            if let Some(key) = wait.timer.take() {
                super::cancel_timer(key);
            }
            // Interrupted (a kill reaching a task that is already unwinding): this wait cannot
            // fail, so it goes on.
            if reason == WakeReason::TimedOut {
                break !self.remote_jobs.borrow().contains_key(&id);
            }
        };
        wait.unwinding = false;
        done
    }

    /// Whether some task waits on I/O.
    pub(crate) fn has_waiters(&self) -> bool {
        self.io_waiters.get() > 0 || !self.remote_jobs.borrow().is_empty()
    }

    /// Whether anything outside the run queue and timers could still wake a task.
    pub(crate) fn can_wake(&self) -> bool {
        self.has_waiters()
    }

    /// Waits for events up to `timeout_ms` (`None`: until one arrives) and wakes their tasks.
    pub(crate) fn poll(&self, timeout_ms: Option<i32>) {
        let sys = match self.sys() {
            Ok(s) => s,
            Err(e) => {
                log::error!("grove: cannot create the epoll reactor: {e}");
                if let Some(ms) = timeout_ms {
                    std::thread::sleep(std::time::Duration::from_millis(ms as u64));
                }
                return;
            }
        };
        let mut events = std::mem::take(&mut *self.events.borrow_mut());
        if let Err(e) = sys.poller.borrow_mut().wait(timeout_ms, &mut events) {
            log::error!("grove: epoll_wait failed: {e}");
        }
        for ev in events.drain(..) {
            self.dispatch(&ev, sys);
        }
        *self.events.borrow_mut() = events;
    }

    fn dispatch(&self, ev: &Event, sys: &Sys) {
        if ev.token == REMOTE_TOKEN {
            sys.remote.eventfd.drain();
            self.finish_remote(sys);
            return;
        }
        let index = (ev.token & 0xffff_ffff) as usize;
        let gen = (ev.token >> 32) as u32;
        let source = match self.slots.borrow().get(index) {
            Some((g, Some(s))) if *g == gen => s.clone(),
            _ => return,
        };
        source.on_event(ev);
    }

    fn finish_remote(&self, sys: &Sys) {
        let done = std::mem::take(&mut *sys.remote.done.lock().unwrap_or_else(|e| e.into_inner()));
        for id in done {
            let waker = self.remote_jobs.borrow_mut().remove(&id).flatten();
            if let Some(w) = waker {
                w.wake(WakeReason::Notified);
            }
        }
    }
}
