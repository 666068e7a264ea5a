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
use std::time::Instant;

use super::sys::{Event, EventFd, Poller};
use super::timers::Action;
use super::Waker;
use crate::coro::fiber::WakeReason;

mod source;

pub(crate) use source::{
    deadline_error, is_deadline, Deadline, Direction, Interest, Share, Source,
};

const REMOTE_TOKEN: u64 = u64::MAX;
/// Events of fds added with [`Reactor::watch_foreign`]: no slot has this index, so they are
/// dropped after waking the poll.
const FOREIGN_TOKEN: u64 = u64::MAX - 1;

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
        let source = Rc::new(Source::new(fd, token));
        if let Err(e) = sys.poller.borrow().add(fd, token) {
            self.free.borrow_mut().push(index);
            return Err(e);
        }
        self.slots.borrow_mut()[index].1 = Some(source.clone());
        Ok(source)
    }

    /// Adds an fd that is not a source (its events are ignored; they only end a blocking
    /// poll): the signal-dump eventfd.
    pub(crate) fn watch_foreign(&self, fd: RawFd) -> io::Result<()> {
        self.sys()?.poller.borrow().add(fd, FOREIGN_TOKEN)
    }

    /// Unregisters a source before its fd is closed; tasks waiting on it wake with an error.
    pub(crate) fn deregister(&self, source: &Source) {
        if source.is_closed() {
            return;
        }
        if let Some(sys) = self.sys.get() {
            sys.poller.borrow().delete(source.fd());
        }
        self.forget(source);
    }

    /// Forgets a source whose fd number was closed already (closing the last descriptor of a
    /// file removes it from epoll; a stale event from a file still open elsewhere is ignored
    /// by its token's generation). Tasks waiting on it wake with an error.
    pub(crate) fn forget(&self, source: &Source) {
        if source.is_closed() {
            return;
        }
        let index = (source.token() & 0xffff_ffff) as usize;
        {
            let mut slots = self.slots.borrow_mut();
            let slot = &mut slots[index];
            slot.0 = slot.0.wrapping_add(1);
            slot.1 = None;
        }
        self.free.borrow_mut().push(index);
        source.close();
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
            // fail, so it goes on — except inside a hooked libc call, where the interrupt is
            // held back and the call gives up (see `hub::foreign`).
            if reason == WakeReason::TimedOut
                || (reason == WakeReason::Interrupted && super::foreign::inside())
            {
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

    /// How many fds are registered now.
    pub(crate) fn registered(&self) -> usize {
        self.slots.borrow().len() - self.free.borrow().len()
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
