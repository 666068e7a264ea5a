//! The hub: one per thread, created on first use. It owns the run queue, the timers and the
//! reactor, and its loop — the trampoline — runs on the thread's own (root) stack.
//!
//! A fiber that blocks calls [`park`]: it suspends to the trampoline, which resumes the next
//! ready fiber. When the root itself blocks (plain `main` calling `join` or `sleep`), it runs the
//! trampoline in place until something wakes the root, which is how the hub stays implicit.

pub(crate) mod reactor;
pub(crate) mod sys;
pub(crate) mod timers;
pub(crate) mod wait;

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::rc::{Rc, Weak};
use std::time::Instant;

use crate::coro::fiber::{self, Fiber, Interrupt, Next, State, WakeReason};
use crate::coro::generator;
use reactor::Reactor;
use timers::{Action, TimerKey, Timers};

thread_local! {
    static HUB: Hub = const { Hub::new() };
}

/// Runs `f` with this thread's hub.
#[inline]
pub(crate) fn with<R>(f: impl FnOnce(&Hub) -> R) -> R {
    HUB.with(f)
}

/// Whether this thread's hub exists and is not being torn down.
pub(crate) fn alive() -> bool {
    HUB.try_with(|_| ()).is_ok()
}

/// The per-thread scheduler.
pub(crate) struct Hub {
    /// The thread's own stack as a fiber, made on first use.
    root: OnceCell<Rc<Fiber>>,
    run_queue: RefCell<VecDeque<Rc<Fiber>>>,
    /// Fibers still to run before timers and I/O are polled again (fairness).
    batch: Cell<usize>,
    timers: RefCell<Timers>,
    pub(crate) reactor: Reactor,
    registry: RefCell<Registry>,
    next_id: Cell<u64>,
}

/// Live tasks and greenlets, for the "would block forever" report.
struct Registry {
    slots: Vec<Option<Weak<Fiber>>>,
    free: Vec<usize>,
}

impl Drop for Hub {
    fn drop(&mut self) {
        fiber::clear_current();
    }
}

impl Hub {
    const fn new() -> Hub {
        Hub {
            root: OnceCell::new(),
            run_queue: RefCell::new(VecDeque::new()),
            batch: Cell::new(0),
            timers: RefCell::new(Timers::new()),
            reactor: Reactor::new(),
            registry: RefCell::new(Registry {
                slots: Vec::new(),
                free: Vec::new(),
            }),
            next_id: Cell::new(1),
        }
    }

    /// The root fiber, created (with the fault handler) on first use.
    pub(crate) fn root_fiber(&self) -> Rc<Fiber> {
        self.root
            .get_or_init(|| {
                crate::coro::overflow::install();
                Fiber::root()
            })
            .clone()
    }

    /// The fiber running now.
    #[inline]
    pub(crate) fn current(&self) -> Rc<Fiber> {
        fiber::current_rc()
    }

    /// A fresh id for a task or greenlet.
    pub(crate) fn next_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    /// Records a new fiber in the registry of live fibers.
    pub(crate) fn register(&self, fiber: &Rc<Fiber>) {
        let mut reg = self.registry.borrow_mut();
        let weak = Some(Rc::downgrade(fiber));
        let slot = match reg.free.pop() {
            Some(i) => {
                reg.slots[i] = weak;
                i
            }
            None => {
                reg.slots.push(weak);
                reg.slots.len() - 1
            }
        };
        fiber.slot.set(slot);
    }

    /// Drops a fiber that died without running from the registry.
    pub(crate) fn forget(&self, fiber: &Fiber) {
        fiber.state.set(State::Dead);
        self.unregister(fiber);
    }

    fn unregister(&self, fiber: &Fiber) {
        let slot = fiber.slot.replace(usize::MAX);
        if slot != usize::MAX {
            let mut reg = self.registry.borrow_mut();
            reg.slots[slot] = None;
            reg.free.push(slot);
        }
    }

    /// Appends a fiber to the run queue.
    #[inline]
    pub(crate) fn schedule(&self, fiber: Rc<Fiber>) {
        fiber.state.set(State::Ready);
        self.run_queue.borrow_mut().push_back(fiber);
    }

    /// The trampoline: runs fibers until the root is the next to run.
    ///
    /// `first` is a fiber to run before consulting the run queue (a switch target).
    #[inline]
    fn run(&self, first: Option<Rc<Fiber>>) -> Result<(), String> {
        let mut next = first;
        loop {
            let fiber = match next.take() {
                Some(f) => f,
                None => self.next_ready()?,
            };
            match fiber.state.get() {
                State::Dead => continue,
                _ if fiber.is_root() => {
                    fiber.state.set(State::Running);
                    return Ok(());
                }
                _ => next = self.run_fiber(fiber),
            }
        }
    }

    #[inline]
    fn run_fiber(&self, fiber: Rc<Fiber>) -> Option<Rc<Fiber>> {
        if let Some(next) = self.run_queue.borrow().front() {
            next.prefetch();
        }
        fiber.state.set(State::Running);
        let next = fiber.resume();
        if fiber.state.get() == State::Dead {
            self.unregister(&fiber);
        }
        match next {
            Next::Park => None,
            Next::SwitchTo(target) => Some(target),
        }
    }

    /// Pops the next ready fiber, polling timers and I/O between batches and blocking when
    /// nothing is ready. Fails when nothing can ever become ready.
    #[inline]
    fn next_ready(&self) -> Result<Rc<Fiber>, String> {
        let batch = self.batch.get();
        if batch > 0 {
            if let Some(f) = self.run_queue.borrow_mut().pop_front() {
                self.batch.set(batch - 1);
                return Ok(f);
            }
        }
        self.next_batch()
    }

    /// Starts a new batch: polls timers and I/O, and blocks when nothing is ready.
    #[inline(never)]
    fn next_batch(&self) -> Result<Rc<Fiber>, String> {
        loop {
            // One poll per batch: non-blocking while fibers are ready, else until something
            // (a timer, an fd, another thread) makes one ready.
            if !self.poll() {
                return Err(self.deadlock_report());
            }
            let ready = self.run_queue.borrow().len();
            if let Some(f) = self.run_queue.borrow_mut().pop_front() {
                self.batch.set(ready - 1);
                return Ok(f);
            }
        }
    }

    /// Fires due timers and collects I/O readiness; when the run queue is empty, waits for the
    /// first of them. Returns false if nothing could ever wake a fiber.
    fn poll(&self) -> bool {
        let has_timers = !self.timers.borrow().is_empty();
        if has_timers {
            self.fire_timers(Instant::now());
        }
        let idle = self.run_queue.borrow().is_empty();
        if !idle {
            if self.reactor.has_waiters() {
                self.reactor.poll(Some(0));
            }
            return true;
        }
        let deadline = self.timers.borrow().next_deadline();
        let timeout = match deadline {
            Some(d) => Some(timers::timeout_ms(Instant::now(), d)),
            None if self.reactor.can_wake() => None,
            None => return false,
        };
        self.reactor.poll(timeout);
        self.fire_timers(Instant::now());
        true
    }

    fn fire_timers(&self, now: Instant) {
        loop {
            let action = self.timers.borrow_mut().pop_expired(now);
            match action {
                Some(Action::Wake(w)) => {
                    w.wake(WakeReason::TimedOut);
                }
                Some(Action::Interrupt(fiber, why)) => self.interrupt(&fiber, why),
                None => return,
            }
        }
    }

    /// Delivers an interrupt: the fiber unwinds at its park or switch point.
    pub(crate) fn interrupt(&self, fiber: &Rc<Fiber>, why: Interrupt) {
        fiber.interrupt.set(Some(why));
        // A parked fiber is woken; one suspended in a greenlet switch is resumed there. Either
        // way it unwinds as soon as it runs.
        if matches!(fiber.state.get(), State::Parked | State::Suspended) {
            fiber.gen.set(fiber.gen.get().wrapping_add(1));
            fiber.wake_reason.set(WakeReason::Interrupted);
            self.schedule(fiber.clone());
        }
    }

    /// Builds the "would block forever" message.
    fn deadlock_report(&self) -> String {
        let cur = self.current();
        let mut msg = format!(
            "grove: this operation would block forever: {} waits on {}, and no task is ready, \
             no timer is pending and no I/O can wake anything",
            cur.label(),
            what(&cur)
        );
        let parked: Vec<Rc<Fiber>> = {
            let reg = self.registry.borrow();
            reg.slots
                .iter()
                .flatten()
                .filter_map(Weak::upgrade)
                .collect()
        };
        let parked: Vec<_> = parked
            .into_iter()
            .filter(|f| matches!(f.state.get(), State::Parked | State::Suspended))
            .collect();
        if !parked.is_empty() {
            msg.push_str(". Parked:");
            for f in &parked {
                let _ = write!(msg, " {} waits on {};", f.label(), what(f));
            }
            msg.pop();
        }
        msg
    }
}

fn what(f: &Fiber) -> &'static str {
    match (f.state.get(), f.waiting_on.get()) {
        (State::Suspended, _) => "a greenlet switch",
        (_, "") => "nothing in particular",
        (_, w) => w,
    }
}

/// A handle that makes one park of one fiber return.
#[derive(Clone)]
pub(crate) struct Waker {
    fiber: Rc<Fiber>,
    gen: u32,
}

impl Waker {
    /// A waker for the next park of `fiber`.
    pub(crate) fn for_park(fiber: Rc<Fiber>) -> Waker {
        let gen = fiber.gen.get();
        Waker { fiber, gen }
    }

    /// The fiber this waker wakes.
    pub(crate) fn fiber(&self) -> &Fiber {
        &self.fiber
    }

    /// Wakes the fiber if it is still parked in the park this waker was made for.
    pub(crate) fn wake(&self, reason: WakeReason) -> bool {
        let f = &self.fiber;
        if f.gen.get() != self.gen || f.state.get() != State::Parked {
            return false;
        }
        f.gen.set(self.gen.wrapping_add(1));
        f.wake_reason.set(reason);
        with(|hub| hub.schedule(f.clone()));
        true
    }
}

/// A waker for the current fiber's next park.
pub(crate) fn current_waker() -> Waker {
    Waker::for_park(fiber::current_rc())
}

/// Whether the current fiber's last wake-up was a notification.
pub(crate) fn current_was_notified() -> bool {
    fiber::with_current(|f| f.wake_reason.get() == WakeReason::Notified)
}

/// Parks the current fiber until a waker made for this park wakes it.
///
/// # Panics
/// Unwinds with the pending interrupt (kill, timeout) if there is one; panics inside a
/// generator, and in the root when nothing could ever wake it ("would block forever").
pub(crate) fn park(what: &'static str) -> WakeReason {
    generator::assert_not_inside("block");
    let is_root = fiber::with_current(|f| {
        check_interrupt(f);
        f.waiting_on.set(what);
        f.state.set(State::Parked);
        f.is_root()
    });
    leave(is_root, None);
    fiber::with_current(|f| {
        f.gen.set(f.gen.get().wrapping_add(1));
        f.waiting_on.set("");
        check_interrupt(f);
        f.wake_reason.get()
    })
}

/// Gives up the CPU: the root runs the trampoline (starting with `first`, if any), a task
/// suspends to it. Returns once the current fiber runs again.
///
/// # Panics
/// In the root, with the "would block forever" report if nothing can ever make it runnable.
#[inline]
fn leave(is_root: bool, first: Option<Rc<Fiber>>) {
    if is_root {
        if let Err(msg) = with(|hub| hub.run(first)) {
            fiber::with_current(|f| {
                f.state.set(State::Running);
                f.gen.set(f.gen.get().wrapping_add(1));
            });
            panic!("{msg}");
        }
    } else {
        fiber::suspend_current(match first {
            Some(target) => Next::SwitchTo(target),
            None => Next::Park,
        });
    }
}

/// Unwinds the current fiber if an interrupt is pending for it.
#[inline]
pub(crate) fn check_interrupt(fiber: &Fiber) {
    if let Some(why) = fiber.interrupt.get() {
        fiber.interrupt.set(None);
        crate::task::unwind_for(why);
    }
}

/// Lets every other ready fiber run once, then continues (gevent's `sleep(0)`).
pub(crate) fn yield_now() {
    generator::assert_not_inside("yield");
    let me = fiber::current_rc();
    let is_root = me.is_root();
    with(|hub| hub.schedule(me));
    leave(is_root, None);
    fiber::with_current(check_interrupt);
}

/// Transfers control to `target` (greenlet switch) and returns when something switches back
/// to the current fiber. The caller has already checked that `target` may be switched to.
///
/// # Panics
/// With the "would block forever" report if the root waits for a switch nothing can make.
#[inline]
pub(crate) fn switch_to(target: Rc<Fiber>) {
    generator::assert_not_inside("switch greenlets");
    let is_root = fiber::with_current(|f| {
        f.state.set(State::Suspended);
        f.is_root()
    });
    leave(is_root, Some(target));
}

/// Adds a timer to this thread's hub.
pub(crate) fn add_timer(at: Instant, action: Action) -> TimerKey {
    with(|hub| hub.timers.borrow_mut().add(at, action))
}

/// Cancels a timer of this thread's hub (no-op if it fired).
pub(crate) fn cancel_timer(key: TimerKey) {
    let _ = HUB.try_with(|hub| hub.timers.borrow_mut().cancel(key));
}

/// The current fiber.
#[inline]
pub(crate) fn current() -> Rc<Fiber> {
    fiber::current_rc()
}

/// The root fiber of this thread.
pub(crate) fn root() -> Rc<Fiber> {
    with(Hub::root_fiber)
}

/// The error a blocking I/O call returns when a kill or timeout reached its fiber while that
/// fiber was already unwinding (the interrupt is not turned into a second unwind).
#[allow(dead_code)] // adopted by the reactor
pub(crate) fn interrupted_error() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "grove: a kill or timeout interrupted this call while the task was already unwinding",
    )
}
