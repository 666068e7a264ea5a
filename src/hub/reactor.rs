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
//! Work finished on other threads (the thread pool, `sync::mpsc`, `spawn_on`'s join handles) is
//! reported through [`Remote`], the hub's cross-thread inbox: another thread records a job id
//! (or a closure to run on the hub) and pokes the hub. The hub wakes the task waiting for that
//! id (or runs the closure) at its next poll. The poke writes the hub's eventfd only when the
//! hub sleeps in `epoll_wait` and only once per batch: while the hub is busy, posting costs a
//! lock and an atomic flag, and the hub finds the flag set between two batches.

#![deny(unsafe_code)]

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::BTreeMap;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
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
pub(crate) struct IoWaiter;

impl IoWaiter {
    pub(crate) fn new() -> IoWaiter {
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
    /// Replaced only in a forked child (see [`Reactor::reset_in_child`]).
    remote: RefCell<Arc<RemoteShared>>,
}

/// The half of the reactor other threads may touch. A poster touches the flags and the inbox
/// together, so they share one cache line (one miss per post, not three).
#[repr(C, align(64))]
struct RemoteShared {
    /// Something was posted since the hub last emptied the inbox.
    posted: AtomicBool,
    /// The hub is in (or about to enter) a blocking `epoll_wait`: a poster must write the
    /// eventfd. (With `posted`, a Dekker pair: the hub sets `sleeping` and then reads `posted`,
    /// a poster sets `posted` and then reads `sleeping`; one of them sees the other.)
    sleeping: AtomicBool,
    inbox: Mutex<Inbox>,
    eventfd: EventFd,
}

/// A closure another thread asked the hub to run (`Runtime::spawn_on`).
pub(crate) type RemoteRun = Box<dyn FnOnce() + Send>;

/// What other threads posted for the hub.
#[derive(Default)]
struct Inbox {
    /// Finished jobs (ids from [`Reactor::begin_job`]).
    done: Vec<u64>,
    /// Closures to run on the hub.
    run: Vec<RemoteRun>,
    /// The hub no longer takes closures (it is shutting down or gone).
    closed: bool,
}

/// A `Send` handle through which another thread reports that job `id` finished, or asks the
/// hub to run a closure.
#[derive(Clone)]
pub(crate) struct Remote {
    shared: Arc<RemoteShared>,
}

impl Remote {
    /// Marks job `id` finished and wakes the hub.
    pub(crate) fn complete(&self, id: u64) {
        self.inbox().done.push(id);
        self.poke();
    }

    /// Asks the hub to run `f` at its next poll. Hands `f` back if the hub no longer takes
    /// closures ([`Remote::close`]).
    pub(crate) fn run(&self, f: RemoteRun) -> Result<(), RemoteRun> {
        let mut inbox = self.inbox();
        if inbox.closed {
            return Err(f);
        }
        inbox.run.push(f);
        drop(inbox);
        self.poke();
        Ok(())
    }

    /// Refuses closures from now on; returns the ones not run yet (the caller decides whether
    /// to run or drop them).
    pub(crate) fn close(&self) -> Vec<RemoteRun> {
        let mut inbox = self.inbox();
        inbox.closed = true;
        std::mem::take(&mut inbox.run)
    }

    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        self.shared.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells the hub that the inbox has news: the first post of a batch raises the flag, and
    /// writes the eventfd only if the hub sleeps.
    fn poke(&self) {
        let s = &self.shared;
        if !s.posted.swap(true, Ordering::SeqCst) && s.sleeping.load(Ordering::SeqCst) {
            s.eventfd.notify();
        }
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
            inbox: Mutex::new(Inbox::default()),
            posted: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
        });
        let sys = Sys {
            poller: RefCell::new(poller),
            remote: RefCell::new(remote),
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
            shared: self.sys()?.remote.borrow().clone(),
        })
    }

    /// Reserves an id for a job another thread will complete through [`Remote::complete`].
    pub(crate) fn begin_job(&self) -> u64 {
        let id = self.next_job.get();
        self.next_job.set(id + 1);
        self.remote_jobs.borrow_mut().insert(id, None);
        id
    }

    /// Forgets job `id` (its waiter gave up); a later completion is ignored.
    pub(crate) fn forget_job(&self, id: u64) {
        self.remote_jobs.borrow_mut().remove(&id);
    }

    /// Refuses closures from other threads and drops the ones still queued (the hub's thread
    /// is exiting).
    pub(crate) fn close_remote(&self) {
        if let Some(sys) = self.sys.get() {
            let left = Remote {
                shared: sys.remote.borrow().clone(),
            }
            .close();
            drop(left);
        }
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

    /// In a forked child (see `hub::fork`): a new epoll instance and eventfd (the inherited
    /// ones are shared with the parent: using them would steal its events), every fd still
    /// registered registered again with it, and the parent's waiters forgotten (their fibers
    /// never run here; the wakers are leaked with them, not dropped).
    pub(crate) fn reset_in_child(&self) {
        self.io_waiters.set(0);
        std::mem::forget(std::mem::take(&mut *self.remote_jobs.borrow_mut()));
        let Some(sys) = self.sys.get() else {
            return;
        };
        let fresh = Poller::new().and_then(|poller| {
            let eventfd = EventFd::new()?;
            poller.add(eventfd.raw(), REMOTE_TOKEN)?;
            Ok((poller, eventfd))
        });
        let (poller, eventfd) = match fresh {
            Ok(p) => p,
            Err(e) => {
                // No new epoll (EMFILE): the child keeps the shared one, which still works
                // for its own fds but may see the parent's events; say so.
                log::error!("grove: cannot create a reactor for the forked child: {e}");
                return;
            }
        };
        for (_, slot) in self.slots.borrow().iter() {
            if let Some(source) = slot {
                source.reset_in_child();
                if let Err(e) = poller.add(source.fd(), source.token()) {
                    log::warn!(
                        "grove: fd {} cannot follow into the child: {e}",
                        source.fd()
                    );
                    source.close();
                }
            }
        }
        *sys.poller.borrow_mut() = poller;
        *sys.remote.borrow_mut() = Arc::new(RemoteShared {
            eventfd,
            inbox: Mutex::new(Inbox::default()),
            posted: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
        });
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

    /// Waits for events up to `timeout_ms` (`None`: until one arrives) and wakes their tasks;
    /// then runs what other threads posted. A poll that may not block and has no fd to ask
    /// about only reads the inbox flag (no `epoll_wait`).
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
        let remote = sys.remote.borrow();
        let mut timeout = timeout_ms;
        if timeout != Some(0) {
            remote.sleeping.store(true, Ordering::SeqCst);
            if remote.posted.load(Ordering::SeqCst) {
                timeout = Some(0);
            }
        }
        if timeout != Some(0) || self.io_waiters.get() > 0 {
            let mut events = std::mem::take(&mut *self.events.borrow_mut());
            if let Err(e) = sys.poller.borrow_mut().wait(timeout, &mut events) {
                log::error!("grove: epoll_wait failed: {e}");
            }
            for ev in events.drain(..) {
                self.dispatch(&ev, sys);
            }
            *self.events.borrow_mut() = events;
        }
        if timeout_ms != Some(0) {
            remote.sleeping.store(false, Ordering::Relaxed);
        }
        if remote.posted.load(Ordering::Acquire) && remote.posted.swap(false, Ordering::SeqCst) {
            self.finish_remote(sys);
        }
    }

    fn dispatch(&self, ev: &Event, sys: &Sys) {
        if ev.token == REMOTE_TOKEN {
            // The inbox itself is read after the events (`posted` says whether to).
            sys.remote.borrow().eventfd.drain();
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
        let (done, run) = {
            let remote = sys.remote.borrow().clone();
            let mut inbox = remote.inbox.lock().unwrap_or_else(|e| e.into_inner());
            (
                std::mem::take(&mut inbox.done),
                std::mem::take(&mut inbox.run),
            )
        };
        for id in done {
            let waker = self.remote_jobs.borrow_mut().remove(&id).flatten();
            if let Some(w) = waker {
                w.wake(WakeReason::Notified);
            }
        }
        for f in run {
            f();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    /// A burst of posts from another thread costs the hub at most one eventfd write: none while
    /// the hub is busy (not sleeping), one when it sleeps.
    #[test]
    fn a_burst_of_posts_wakes_the_hub_once_and_a_busy_hub_not_at_all() {
        let remote = super::super::with(|h| h.reactor.remote()).unwrap();
        let shared = remote.shared.clone();
        let burst = |remote: &super::Remote| {
            std::thread::scope(|s| {
                s.spawn(|| (0..1000).for_each(|i| remote.complete(1_000_000 + i)));
            });
        };
        // Busy: the hub is not in epoll_wait.
        burst(&remote);
        assert!(shared.posted.load(Ordering::SeqCst));
        assert_eq!(
            shared.eventfd.take_count(),
            0,
            "no eventfd write while busy"
        );
        super::super::with(|h| h.reactor.poll(Some(0)));
        assert!(
            !shared.posted.load(Ordering::SeqCst),
            "the poll read the inbox"
        );
        assert!(shared.inbox.lock().unwrap().done.is_empty());
        // Sleeping: exactly one write for the whole burst.
        shared.sleeping.store(true, Ordering::SeqCst);
        burst(&remote);
        shared.sleeping.store(false, Ordering::SeqCst);
        assert_eq!(
            shared.eventfd.take_count(),
            1,
            "one eventfd write per batch"
        );
        super::super::with(|h| h.reactor.poll(Some(0)));
        assert!(!shared.posted.load(Ordering::SeqCst));
    }
}
