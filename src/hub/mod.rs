//! The hub: one per thread, created on first use. It owns the run queue, the timers and the
//! reactor, and its loop — the trampoline — runs on the thread's own (root) stack.
//!
//! A fiber that blocks calls [`park`]: it suspends to the trampoline, which resumes the next
//! ready fiber. When the root itself blocks (plain `main` calling `join` or `sleep`), it runs the
//! trampoline in place until something wakes the root, which is how the hub stays implicit.
//!
//! Interrupts (kill, timeout, greenlet exit) follow two rules:
//! - an interrupt is delivered only to a fiber that is still waiting: one that a completion
//!   already woke keeps it pending until its next park, switch or yield (so a result that
//!   arrived first is never lost to a later timeout);
//! - an interrupt that reaches a fiber which is already unwinding is not turned into a second
//!   unwind (std would abort): the blocking call returns early instead — [`park`] returns
//!   [`WakeReason::Interrupted`].

pub(crate) mod control;
pub(crate) mod foreign;
pub(crate) mod fork;
pub(crate) mod inspect;
pub(crate) mod reactor;
pub(crate) mod remote;
#[allow(unsafe_code)]
pub(crate) mod sys;
pub(crate) mod timers;
pub(crate) mod wait;

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::time::Instant;

use crate::coro::fiber::{self, Fiber, Interrupt, Kind, Next, State, WakeReason};
use crate::coro::{generator, unwind};
use reactor::Reactor;
use timers::{Action, TimerKey, Timers};

thread_local! {
    /// Fibers resumed on this thread so far, times two, plus one while a switch trace hook is
    /// set: one thread-local read and write per switch gives both the count and the branch.
    /// An atomic only so the watchdog's monitor thread may read it (relaxed loads and stores
    /// compile to the same plain moves as a `Cell`): it is the hub's heartbeat.
    static SWITCHES: AtomicU64 = const { AtomicU64::new(0) };
    /// The hub is blocked in `epoll_wait` with nothing to run (not a stall), and how many
    /// tasks it has (a thread with none is not stalling anyone): for the watchdog.
    static IDLE: AtomicBool = const { AtomicBool::new(false) };
    static LIVE: AtomicUsize = const { AtomicUsize::new(0) };
    /// The watchdog configuration this hub has seen (see `debug::watchdog`).
    static WATCHDOG_SEEN: Cell<u64> = const { Cell::new(0) };
    /// The coarse clock (ms, wrapping) at the start of the current batch; parks are stamped
    /// with it (see [`now_ms`]).
    static NOW_MS: Cell<u32> = const { Cell::new(0) };
    /// Signal-dump requests this hub has answered; and whether its epoll watches the eventfd
    /// that wakes it for one.
    static DUMPS_SEEN: Cell<u64> = const { Cell::new(0) };
    static DUMP_FD_WATCHED: Cell<bool> = const { Cell::new(false) };
    static HUB: Hub = const { Hub::new() };
    /// Registered after `HUB` (so its destructor runs first, while the hub is still usable):
    /// tears the hub down in an orderly way when the thread exits.
    static TEARDOWN: Teardown = const { Teardown };
}

/// Runs `f` with this thread's hub.
#[inline]
pub(crate) fn with<R>(f: impl FnOnce(&Hub) -> R) -> R {
    HUB.with(f)
}

/// Runs `f` with this thread's hub unless the thread is exiting and the hub is gone.
#[inline]
pub(crate) fn try_with<R>(f: impl FnOnce(&Hub) -> R) -> Option<R> {
    HUB.try_with(f).ok()
}

/// Whether this thread's hub exists and is not being torn down.
pub(crate) fn alive() -> bool {
    HUB.try_with(|h| !h.tearing_down.get()).unwrap_or(false)
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
    /// The thread is exiting: nothing parks any more.
    tearing_down: Cell<bool>,
    /// Fibers that died since the hub last gave memory back.
    died: Cell<u32>,
    /// Live tasks and greenlets (registry entries).
    live: Cell<usize>,
    /// Reactor polls so far.
    polls: Cell<u64>,
    /// Seeded scheduling: the pseudo-random state (0: off, first in, first out).
    seed: Cell<u64>,
    /// The switch trace hook, and who ran last (for the next event's `from`).
    trace: RefCell<Option<TraceHook>>,
    last_ran: Cell<(u64, crate::debug::SwitchReason)>,
}

/// Every live task and greenlet. The registry owns them: a task lives until it finishes (or its
/// thread exits), even when nothing else can reach it, so it is never dropped mid-body on a
/// stack that is not its own.
#[derive(Default)]
struct Registry {
    slots: Vec<Option<Rc<Fiber>>>,
    free: Vec<usize>,
}

impl Drop for Hub {
    fn drop(&mut self) {
        fiber::clear_current();
    }
}

struct Teardown;

impl Drop for Teardown {
    fn drop(&mut self) {
        let _ = HUB.try_with(Hub::teardown);
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
            tearing_down: Cell::new(false),
            died: Cell::new(0),
            live: Cell::new(0),
            polls: Cell::new(0),
            seed: Cell::new(0),
            trace: RefCell::new(None),
            last_ran: Cell::new((0, crate::debug::SwitchReason::Park)),
        }
    }

    /// The root fiber, created (with the fault handler and the teardown guard) on first use.
    pub(crate) fn root_fiber(&self) -> Rc<Fiber> {
        self.root
            .get_or_init(|| {
                crate::coro::overflow::install();
                unwind::install_panic_hook();
                TEARDOWN.with(|_| ());
                NOW_MS.set(sys::coarse_ms());
                DUMPS_SEEN.set(sys::debug_signal::requests());
                watch_this_hub();
                crate::debug::from_env();
                if let Some(seed) = crate::debug::seed_from_env() {
                    self.set_seed(Some(seed));
                }
                let root = Fiber::root();
                fiber::install_root(&root);
                root
            })
            .clone()
    }

    /// A fresh id for a task or greenlet.
    pub(crate) fn next_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    /// Records a new fiber in the registry of live fibers (which keeps it alive until it dies).
    pub(crate) fn register(&self, fiber: &Rc<Fiber>) {
        let mut reg = self.registry.borrow_mut();
        let strong = Some(fiber.clone());
        let slot = match reg.free.pop() {
            Some(i) => {
                reg.slots[i] = strong;
                i
            }
            None => {
                reg.slots.push(strong);
                reg.slots.len() - 1
            }
        };
        fiber
            .slot
            .set(u32::try_from(slot).expect("fewer than 4 billion live fibers"));
        self.live.set(self.live.get() + 1);
        LIVE.with(|l| l.store(self.live.get(), Relaxed));
    }

    /// Marks a fiber that died without running dead and drops it from the registry.
    pub(crate) fn forget(&self, fiber: &Fiber) {
        fiber.state.set(State::Dead);
        self.unregister(fiber);
    }

    fn unregister(&self, fiber: &Fiber) {
        let slot = fiber.slot.replace(u32::MAX);
        if slot != u32::MAX {
            let slot = slot as usize;
            self.died.set(self.died.get().saturating_add(1));
            self.live.set(self.live.get() - 1);
            LIVE.with(|l| l.store(self.live.get(), Relaxed));
            let gone = {
                let mut reg = self.registry.borrow_mut();
                reg.free.push(slot);
                reg.slots[slot].take()
            };
            drop(gone);
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
    #[inline(always)]
    fn run(&self, first: Option<Rc<Fiber>>) -> Result<(), String> {
        let mut next = first;
        loop {
            let switched = next.is_some();
            let fiber = match next.take() {
                Some(f) => f,
                None => self.next_ready()?,
            };
            match fiber.state.get() {
                State::Dead => continue,
                _ if fiber.is_root() => {
                    fiber.state.set(State::Running);
                    if tracing() {
                        self.trace_to(&fiber);
                    }
                    return Ok(());
                }
                _ => next = self.run_fiber(fiber, switched),
            }
        }
    }

    #[inline(always)]
    fn run_fiber(&self, fiber: Rc<Fiber>, switched: bool) -> Option<Rc<Fiber>> {
        // While a task runs, start loading the next one's lines. (A greenlet switch does not
        // come from the run queue; its partner is usually hot already.)
        if !switched {
            if let Some(next) = self.run_queue.borrow().front() {
                next.prefetch();
            }
        }
        fiber.state.set(State::Running);
        let tracing = count_switch();
        if tracing {
            self.trace_to(&fiber);
        }
        let next = fiber.resume();
        if tracing {
            self.trace_stopped(&fiber, &next);
        }
        self.after_resume(&fiber);
        match next {
            Next::Park => None,
            Next::SwitchTo(target) => Some(target),
            Next::Yield => {
                self.schedule(fiber);
                None
            }
        }
    }

    /// Bookkeeping once a fiber stopped running: a dead one leaves the registry; a greenlet
    /// suspended with no handle left is unwound.
    #[inline(always)]
    fn after_resume(&self, fiber: &Rc<Fiber>) {
        match fiber.state.get() {
            State::Dead => self.unregister(fiber),
            State::Suspended if fiber.kind == Kind::Greenlet && fiber.handles.get() == 0 => {
                self.orphan(fiber)
            }
            _ => {}
        }
    }

    /// Pops the next ready fiber, polling timers and I/O between batches and blocking when
    /// nothing is ready. Fails when nothing can ever become ready.
    #[inline]
    fn next_ready(&self) -> Result<Rc<Fiber>, String> {
        let batch = self.batch.get();
        if batch > 0 {
            if let Some(f) = self.pop_ready() {
                self.batch.set(batch - 1);
                return Ok(f);
            }
        }
        self.next_batch()
    }

    /// The next ready fiber: the oldest, or with seeded scheduling a pseudo-random one.
    #[inline(always)]
    fn pop_ready(&self) -> Option<Rc<Fiber>> {
        let mut q = self.run_queue.borrow_mut();
        let seed = self.seed.get();
        if seed != 0 && q.len() > 1 {
            let next = crate::debug::xorshift(seed);
            self.seed.set(next);
            let i = (next % q.len() as u64) as usize;
            q.swap(0, i);
        }
        q.pop_front()
    }

    /// Turns seeded scheduling on (`Some(seed)`) or off.
    pub(crate) fn set_seed(&self, seed: Option<u64>) {
        // Zero means "off" in the state, so a seed of 0 starts from a fixed non-zero state.
        self.seed
            .set(seed.map_or(0, |s| crate::debug::xorshift(s ^ 0x9e37_79b9_7f4a_7c15)));
        if let Some(s) = seed {
            eprintln!(
                "grove: seeded scheduling on this thread, seed {s} (GROVE_SEED={s} repeats it)"
            );
        }
    }

    /// A snapshot of this hub's counters.
    pub(crate) fn metrics(&self) -> crate::debug::Metrics {
        let (idle_stacks, idle_stack_bytes) = crate::coro::stack::pool_stats();
        let ready = self.run_queue.borrow().len();
        let running = usize::from(fiber::try_with_current(|f| !f.is_root()).unwrap_or(false));
        let live = self.live.get();
        crate::debug::Metrics {
            tasks_alive: live,
            tasks_ready: ready,
            tasks_parked: live.saturating_sub(ready + running),
            switches: SWITCHES.with(|s| s.load(Relaxed)) >> 1,
            polls: self.polls.get(),
            timers_armed: self.timers.borrow().len(),
            fds_registered: self.reactor.registered(),
            idle_stacks,
            idle_stack_bytes,
        }
    }

    /// Sets or clears the switch trace hook.
    pub(crate) fn set_trace(&self, hook: Option<TraceHook>) {
        let on = hook.is_some();
        *self.trace.borrow_mut() = hook;
        SWITCHES.with(|s| s.store((s.load(Relaxed) & !1) | u64::from(on), Relaxed));
    }

    /// Trace: `to` is about to run; whoever ran last stopped for the recorded reason.
    #[cold]
    fn trace_to(&self, to: &Fiber) {
        let (from, why) = self.last_ran.get();
        let event = crate::debug::SwitchEvent {
            from,
            to: to.id,
            why,
        };
        // The hook may not switch; a hook that re-enters the hub finds it borrowed and is
        // skipped rather than recursing.
        if let Ok(mut hook) = self.trace.try_borrow_mut() {
            if let Some(h) = hook.as_mut() {
                h(&event);
            }
        }
    }

    /// Trace: `fiber` stopped running, asking for `next`.
    #[cold]
    fn trace_stopped(&self, fiber: &Fiber, next: &Next) {
        use crate::debug::SwitchReason as R;
        let why = match (next, fiber.state.get()) {
            (_, State::Dead) => R::Finish,
            (Next::Yield, _) => R::Yield,
            (Next::SwitchTo(_), _) => R::Switch,
            (Next::Park, _) => R::Park,
        };
        self.last_ran.set((fiber.id, why));
    }

    /// Trace: the root leaves the CPU (it parks or switches).
    #[cold]
    fn trace_root_leaves(&self, why: crate::debug::SwitchReason) {
        self.last_ran.set((0, why));
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
            NOW_MS.set(sys::coarse_ms());
            if sys::debug_signal::requests() != DUMPS_SEEN.get() {
                self.dump_on_request();
            }
            if sys::watchdog::generation() != WATCHDOG_SEEN.get() {
                watch_this_hub();
            }
            let ready = self.run_queue.borrow().len();
            if let Some(f) = self.pop_ready() {
                self.batch.set(ready - 1);
                return Ok(f);
            }
        }
    }

    /// Collects I/O readiness and fires due timers; when the run queue is empty, waits for the
    /// first of them. Returns false if nothing could ever wake a fiber.
    ///
    /// I/O goes first: a read whose data arrived before a timeout's deadline completes, and
    /// the timeout then finds its fiber already woken (and leaves it pending, see
    /// [`Hub::interrupt`]).
    fn poll(&self) -> bool {
        let timeout = if !self.run_queue.borrow().is_empty() {
            Some(0)
        } else {
            let deadline = self.timers.borrow().next_deadline();
            match deadline {
                Some(d) => Some(timers::timeout_ms(Instant::now(), d)),
                None if self.reactor.can_wake() => None,
                None => return false,
            }
        };
        if timeout != Some(0) {
            self.give_memory_back();
            if !DUMP_FD_WATCHED.get() {
                self.watch_dump_fd();
            }
        }
        if timeout != Some(0) || self.reactor.has_waiters() {
            self.polls.set(self.polls.get() + 1);
            let idle = timeout != Some(0);
            if idle {
                IDLE.with(|i| i.store(true, Relaxed));
            }
            self.reactor.poll(timeout);
            if idle {
                IDLE.with(|i| i.store(false, Relaxed));
            }
        }
        if !self.timers.borrow().is_empty() {
            self.fire_timers(Instant::now());
        }
        true
    }

    /// About to block: a good moment to give memory back after a burst — idle stacks, and
    /// the allocator's free pages once many fibers (each a few hundred bytes of heap) died.
    fn give_memory_back(&self) {
        crate::coro::stack::trim_idle();
        if self.died.get() >= HEAP_TRIM_AFTER_DEATHS {
            self.died.set(0);
            crate::coro::stack::trim_heap();
        }
    }

    fn fire_timers(&self, now: Instant) {
        // Wake-ups (completions: a sleep ending, a wait's deadline) before interrupts of the
        // same round, so a sleep that ended before its Timeout's deadline still wins.
        let mut interrupts = Vec::new();
        loop {
            let action = self.timers.borrow_mut().pop_expired(now);
            match action {
                Some(Action::Wake(w)) => {
                    w.wake(WakeReason::TimedOut);
                }
                Some(Action::Interrupt(target)) => interrupts.push(*target),
                None => break,
            }
        }
        for (fiber, why) in interrupts {
            self.interrupt(&fiber, why);
        }
    }

    /// A greenlet suspended in a switch with no handle left can never be switched to again:
    /// let it unwind as itself and die quietly.
    #[cold]
    fn orphan(&self, fiber: &Rc<Fiber>) {
        fiber.orphaned.set(true);
        self.interrupt(fiber, Interrupt::Exit);
    }

    /// Delivers an interrupt. A fiber that waits (parked, or suspended in a greenlet switch) is
    /// woken and unwinds as soon as it runs; one that is ready or running — a completion
    /// already woke it — keeps the interrupt pending until its next park, switch or yield.
    pub(crate) fn interrupt(&self, fiber: &Rc<Fiber>, why: Interrupt) {
        let state = fiber.state.get();
        if state == State::Dead {
            return;
        }
        // A kill is stronger than a timeout or an exit that is already pending.
        if fiber.interrupt.get() != Some(Interrupt::Kill) {
            fiber.interrupt.set(Some(why));
        }
        if matches!(state, State::Parked | State::Suspended) {
            fiber.gen.set(fiber.gen.get().wrapping_add(1));
            fiber.wake_reason.set(WakeReason::Interrupted);
            self.schedule(fiber.clone());
        }
    }

    /// Builds the "would block forever" message: who waits on what, who holds it, and any
    /// wait-for cycle (see [`inspect::wait_for_report`]).
    fn deadlock_report(&self) -> String {
        let cur = current();
        let now = sys::coarse_ms();
        let me = inspect::TaskInfo::of(&cur, now);
        let mut msg = String::from("grove: this operation would block forever: ");
        me.write_label(&mut msg);
        msg.push_str(" waits on ");
        me.write_wait(&mut msg);
        msg.push_str(", and no task is ready, no timer is pending and no I/O can wake anything");
        let reg = self.registry.borrow();
        let mut infos: Vec<inspect::TaskInfo<'_>> = reg
            .slots
            .iter()
            .flatten()
            .filter(|f| matches!(f.state.get(), State::Parked | State::Suspended))
            .map(|f| inspect::TaskInfo::of(f, now))
            .collect();
        if !infos.is_empty() {
            msg.push_str(". Parked:");
            infos.insert(0, me);
            let mut rest = String::new();
            inspect::wait_for_report(&infos, &mut rest);
            // The first entry is the caller, already named above.
            let first_end = rest.find(';').map_or(rest.len(), |i| i + 1);
            let cycles_at = rest.find(". Wait-for cycle");
            match cycles_at {
                Some(c) if c < first_end => msg.push_str(&rest[c..]),
                _ => msg.push_str(&rest[first_end..]),
            }
        } else if me.detail.holder(me.waiting_on).is_some() {
            msg.push_str(" (");
            me.write_wait(&mut msg);
            msg.push(')');
        }
        msg
    }

    /// A signal asked for a task dump: print one to stderr (without yielding: this is the hub).
    #[cold]
    fn dump_on_request(&self) {
        DUMPS_SEEN.set(sys::debug_signal::requests());
        let mut err = std::io::stderr().lock();
        if let Err(e) = crate::debug::dump_chunked(&mut err, false) {
            log::warn!("grove: could not write the task dump: {e}");
        }
    }

    /// About to block: make sure a dump signal can wake this hub.
    #[cold]
    fn watch_dump_fd(&self) {
        if let Some(fd) = sys::debug_signal::wake_fd() {
            DUMP_FD_WATCHED.set(true);
            if let Err(e) = self.reactor.watch_foreign(fd) {
                log::warn!("grove: a dump signal cannot wake this hub: {e}");
            }
        }
    }

    /// Calls `f` with up to `max` live tasks and greenlets from registry slot `from` on, and
    /// returns the slot to continue from (`None`: done). `now` is [`sys::coarse_ms`].
    pub(crate) fn inspect(
        &self,
        from: usize,
        max: usize,
        now: u32,
        mut f: impl FnMut(&inspect::TaskInfo<'_>),
    ) -> Option<usize> {
        let reg = self.registry.borrow();
        let mut seen = 0;
        for (i, slot) in reg.slots.iter().enumerate().skip(from) {
            if seen == max {
                return Some(i);
            }
            if let Some(fiber) = slot {
                f(&inspect::TaskInfo::of(fiber, now));
                seen += 1;
            }
        }
        None
    }

    /// The thread is exiting. While every thread-local grove uses still works: tasks that never
    /// started are dropped unrun; the others are killed (greenlets get `GreenletExit`) and run
    /// until they are dead or block. A kill that lands on a fiber already unwinding ends its
    /// blocking call instead, so each round unblocks a `Drop` that sleeps or waits on I/O. What
    /// still blocks after a few rounds (a `Drop` waiting for a lock nobody will release) is left
    /// as it is: never resumed, its stack not reused.
    fn teardown(&self) {
        self.tearing_down.set(true);
        sys::watchdog::unwatch();
        // Other threads' `spawn_on` requests are refused from now on (and queued ones dropped).
        self.reactor.close_remote();
        for _ in 0..TEARDOWN_ROUNDS {
            let live: Vec<Rc<Fiber>> = self
                .registry
                .borrow()
                .slots
                .iter()
                .flatten()
                .cloned()
                .collect();
            if live.is_empty() {
                break;
            }
            for f in &live {
                if f.cancel_unstarted() {
                    self.unregister(f);
                } else if f.kind == Kind::Greenlet {
                    f.orphaned.set(true);
                    self.interrupt(f, Interrupt::Exit);
                } else {
                    self.interrupt(f, Interrupt::Kill);
                }
            }
            drop(live);
            self.drain();
        }
        let left = std::mem::take(&mut *self.registry.borrow_mut());
        self.live.set(0);
        if left.slots.iter().flatten().next().is_some() {
            log::debug!("grove: thread exit left fibers blocked in their Drops");
        }
        drop(left);
        let queued = std::mem::take(&mut *self.run_queue.borrow_mut());
        drop(queued);
        let timers = std::mem::replace(&mut *self.timers.borrow_mut(), Timers::new());
        drop(timers);
        with_current(|root| root.state.set(State::Running));
    }

    /// Runs every fiber that is ready, polling timers and I/O without blocking, until none is
    /// (teardown: the root cannot be resumed, so a switch to it ends the chain).
    fn drain(&self) {
        loop {
            if self.reactor.has_waiters() {
                self.reactor.poll(Some(0));
            }
            if !self.timers.borrow().is_empty() {
                self.fire_timers(Instant::now());
            }
            let popped = self.run_queue.borrow_mut().pop_front();
            let Some(first) = popped else {
                return;
            };
            let mut next = Some(first);
            while let Some(f) = next.take() {
                if f.is_root() || f.state.get() == State::Dead {
                    break;
                }
                next = self.run_fiber(f, true);
            }
        }
    }
}

/// After this many fibers died, the next idle moment returns the allocator's free pages.
const HEAP_TRIM_AFTER_DEATHS: u32 = 50_000;

/// How many kill-and-run rounds thread exit gives fibers blocked in their `Drop`s.
const TEARDOWN_ROUNDS: usize = 8;

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

    /// Whether this waker is for the fiber running now.
    pub(crate) fn is_for_current(&self) -> bool {
        fiber::is_current(&self.fiber)
    }

    /// Wakes the fiber if it is still parked in the park this waker was made for.
    pub(crate) fn wake(&self, reason: WakeReason) -> bool {
        let f = &self.fiber;
        if f.gen.get() != self.gen || f.state.get() != State::Parked {
            return false;
        }
        f.gen.set(self.gen.wrapping_add(1));
        f.wake_reason.set(reason);
        try_with(|hub| hub.schedule(f.clone())).is_some()
    }
}

/// Runs `f` with the fiber on the CPU (the root, made on first use, outside any task).
#[inline(always)]
pub(crate) fn with_current<R>(f: impl FnOnce(&Fiber) -> R) -> R {
    fiber::with_current_or(install_root, f)
}

#[cold]
#[inline(never)]
fn install_root() {
    drop(root());
}

/// The current fiber.
#[inline(always)]
pub(crate) fn current() -> Rc<Fiber> {
    match fiber::current_rc() {
        Some(f) => f,
        None => root(),
    }
}

/// The root fiber of this thread.
pub(crate) fn root() -> Rc<Fiber> {
    with(Hub::root_fiber)
}

/// A waker for the current fiber's next park.
pub(crate) fn current_waker() -> Waker {
    Waker::for_park(current())
}

/// Parks the current fiber until a waker made for this park wakes it.
///
/// Returns why it woke. [`WakeReason::Interrupted`] means a kill or timeout reached a fiber
/// that is already unwinding (or the thread is exiting): the caller gives up waiting.
///
/// # Panics
/// Unwinds with the pending interrupt (kill, timeout) if there is one; panics inside a
/// generator, and in the root when nothing could ever wake it ("would block forever").
#[track_caller]
pub(crate) fn park(what: &'static str) -> WakeReason {
    generator::assert_not_inside("block");
    let is_root = with_current(|f| {
        // What the caller noted for this park (a queue's address, a deadline) is kept only if
        // the park happens: an interrupt delivered here unwinds, and a stale address must not
        // outlive the wait it described (dumps dereference it while the fiber is parked).
        let obj = f.park_obj.replace(0);
        // The root cannot park while the thread exits (it is running the teardown).
        if take_interrupt(f) || (f.is_root() && !alive()) {
            return None;
        }
        f.park_obj.set(obj);
        f.waiting_on.set(what);
        f.state.set(State::Parked);
        if f.is_root() {
            // The root may have run long since the batch began.
            NOW_MS.set(sys::coarse_ms());
        }
        f.parked_at.set(NOW_MS.get());
        Some(f.is_root())
    });
    let Some(is_root) = is_root else {
        return WakeReason::Interrupted;
    };
    if is_root && foreign::inside() {
        // Inside a hooked libc call a panic cannot leave (it would abort): report instead.
        if let Err(msg) = leave_checked(true, None) {
            log::error!("{msg}");
            foreign::would_block_forever();
            return WakeReason::Interrupted;
        }
    } else {
        leave(is_root, None);
    }
    with_current(|f| {
        f.gen.set(f.gen.get().wrapping_add(1));
        f.waiting_on.set("");
        f.park_obj.set(0);
        match f.wake_reason.get() {
            WakeReason::Interrupted if take_interrupt(f) => WakeReason::Interrupted,
            WakeReason::Interrupted => WakeReason::TimedOut,
            reason => reason,
        }
    })
}

/// The watchdog was switched on or off since this hub last looked: join or leave its watch.
#[cold]
fn watch_this_hub() {
    WATCHDOG_SEEN.set(sys::watchdog::generation());
    if sys::watchdog::enabled() {
        let beat = sys::watchdog::Beat {
            switches: SWITCHES.with(|s| s as *const AtomicU64),
            idle: IDLE.with(|s| s as *const AtomicBool),
            live: LIVE.with(|s| s as *const AtomicUsize),
        };
        sys::watchdog::watch(beat);
    }
}

/// The hub's coarse clock (ms, wrapping), as of the current batch.
pub(crate) fn now_ms() -> u32 {
    NOW_MS.get()
}

/// Records, for task dumps, that the current fiber's next park is a sleep due in `d`.
pub(crate) fn note_sleep(d: std::time::Duration) {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX >> 1);
    with_current(|f| f.park_obj.set(inspect::deadline_note(ms)));
}

/// Records, for task dumps and the wait-for graph, that the current fiber's next park waits
/// for task `id` to finish.
pub(crate) fn note_join(id: u64) {
    with_current(|f| f.park_obj.set(inspect::join_note(id)));
}

/// The id of the task running now (0: the thread's main code).
#[inline]
pub(crate) fn current_id() -> u64 {
    fiber::try_with_current(|f| f.id).unwrap_or(0)
}

/// Consumes the current fiber's pending interrupt: unwinds with it, or — if the fiber is
/// already unwinding — returns true (the caller's blocking call returns early instead).
#[inline]
pub(crate) fn take_interrupt(f: &Fiber) -> bool {
    match f.interrupt.get() {
        None => false,
        Some(why) => deliver(f, why),
    }
}

#[cold]
fn deliver(f: &Fiber, why: Interrupt) -> bool {
    if f.foreign.get() & fiber::FOREIGN_IN != 0 {
        // Unwinding cannot pass the C frames of a hooked call: the interrupt stays pending
        // (for the fiber's next park outside one) and the hooked call fails instead.
        f.foreign.set(f.foreign.get() | fiber::FOREIGN_REFUSED);
        return true;
    }
    f.interrupt.set(None);
    f.foreign.set(f.foreign.get() & !fiber::FOREIGN_REFUSED);
    if unwind::is_unwinding(f) {
        log::debug!(
            "grove: {} is already unwinding; {why:?} ends its blocking call instead",
            f.label()
        );
        return true;
    }
    unwind::unwind_for(f, why)
}

/// Unwinds the current fiber with its pending interrupt, if any and if it is not unwinding
/// already (see [`take_interrupt`]).
#[inline]
pub(crate) fn check_interrupt() {
    with_current(|f| {
        take_interrupt(f);
    });
}

/// Gives up the CPU: the root runs the trampoline (starting with `first`, if any), a task
/// suspends to it. Returns once the current fiber runs again.
///
/// # Panics
/// In the root, with the "would block forever" report if nothing can ever make it runnable.
#[inline(always)]
#[track_caller]
fn leave(is_root: bool, first: Option<Rc<Fiber>>) {
    if let Err(msg) = leave_checked(is_root, first) {
        panic!("{msg}");
    }
}

/// [`leave`], returning the "would block forever" report instead of panicking with it (the
/// root's state is restored: it is running again).
#[inline(always)]
fn leave_checked(is_root: bool, first: Option<Rc<Fiber>>) -> Result<(), String> {
    if is_root {
        if tracing() {
            let why = match first {
                Some(_) => crate::debug::SwitchReason::Switch,
                None => crate::debug::SwitchReason::Park,
            };
            with(|hub| hub.trace_root_leaves(why));
        }
        if let Err(msg) = with(|hub| hub.run(first)) {
            with_current(|f| {
                f.state.set(State::Running);
                f.gen.set(f.gen.get().wrapping_add(1));
            });
            return Err(msg);
        }
    } else {
        fiber::suspend_current(match first {
            Some(target) => Next::SwitchTo(target),
            None => Next::Park,
        });
    }
    Ok(())
}

/// Lets every other ready fiber run once, then continues (gevent's `sleep(0)`).
pub(crate) fn yield_now() {
    generator::assert_not_inside("yield");
    fiber::with_running_or(install_root, |me| {
        if me.is_root() {
            with(|hub| hub.schedule(current()));
            leave(true, None);
        } else {
            me.state.set(State::Ready);
            me.suspend(Next::Yield);
        }
        take_interrupt(&me);
    });
}

/// Whether the current code may switch fibers now (not inside a generator body, and the
/// thread's hub is not being torn down).
pub(crate) fn can_switch() -> bool {
    !generator::is_inside() && alive()
}

/// Transfers control to `target` (greenlet switch) and returns when something switches back
/// to the current fiber or an interrupt resumes it. The caller has already checked that
/// `target` may be switched to; it delivers interrupts itself.
///
/// # Panics
/// With the "would block forever" report if the root waits for a switch nothing can make.
#[inline(always)]
#[track_caller]
pub(crate) fn switch_to(target: Rc<Fiber>) {
    switch_to_then(&target, |_| ());
}

/// Waits, suspended like a greenlet in a switch, until something switches to the current fiber
/// (or an interrupt resumes it). The caller delivers interrupts itself.
///
/// # Panics
/// With the "would block forever" report if the root waits for a switch nothing can make.
#[track_caller]
pub(crate) fn wait_for_switch() {
    generator::assert_not_inside("switch greenlets");
    let is_root = with_current(|f| {
        f.state.set(State::Suspended);
        f.is_root()
    });
    leave(is_root, None);
}

/// Switches to `target` like [`switch_to`], then runs `after` with the current fiber once
/// control is back — one look-up of the current fiber for the whole switch.
///
/// # Panics
/// As [`switch_to`].
#[inline(always)]
#[track_caller]
pub(crate) fn switch_to_then<R>(target: &Rc<Fiber>, after: impl FnOnce(&Fiber) -> R) -> R {
    generator::assert_not_inside("switch greenlets");
    fiber::with_running_or(install_root, |me| {
        me.state.set(State::Suspended);
        if me.is_root() {
            root_switch(&me, target);
        } else {
            me.suspend(Next::SwitchTo(target.clone()));
        }
        after(&me)
    })
}

/// The root switching to `target`: it resumes the target itself, and when the target switches
/// straight back (main ↔ greenlet, the common case) that is the whole switch; anything else is
/// finished by the trampoline, from here.
#[inline(always)]
#[track_caller]
fn root_switch(me: &Fiber, target: &Rc<Fiber>) {
    if target.is_root() || target.state.get() == State::Dead {
        return leave(true, Some(target.clone()));
    }
    target.state.set(State::Running);
    let tracing = count_switch();
    if tracing {
        with(|hub| {
            hub.trace_root_leaves(crate::debug::SwitchReason::Switch);
            hub.trace_to(target);
        });
    }
    let next = target.resume();
    if tracing {
        with(|hub| hub.trace_stopped(target, &next));
    }
    let straight_back = matches!(&next, Next::SwitchTo(back) if std::ptr::eq(&**back, me));
    let needs_hub = target.state.get() != State::Suspended
        || (target.kind == Kind::Greenlet && target.handles.get() == 0);
    if straight_back && !needs_hub {
        me.state.set(State::Running);
        if tracing {
            with(|hub| hub.trace_to(me));
        }
        return;
    }
    with(|hub| hub.after_resume(target));
    match next {
        Next::SwitchTo(back) if std::ptr::eq(&*back, me) => me.state.set(State::Running),
        Next::SwitchTo(other) => leave(true, Some(other)),
        Next::Park => leave(true, None),
        Next::Yield => {
            with(|hub| hub.schedule(target.clone()));
            leave(true, None)
        }
    }
}

/// A switch trace hook (see `debug::set_trace`).
pub(crate) type TraceHook = Box<dyn FnMut(&crate::debug::SwitchEvent)>;

/// Whether a switch trace hook is set on this thread.
#[inline(always)]
fn tracing() -> bool {
    SWITCHES.with(|s| s.load(Relaxed)) & 1 != 0
}

/// Counts a switch; returns whether a trace hook is set.
#[inline(always)]
fn count_switch() -> bool {
    let v = SWITCHES.with(|s| {
        let v = s.load(Relaxed);
        s.store(v.wrapping_add(2), Relaxed);
        v
    });
    v & 1 != 0
}

/// Adds a timer to this thread's hub.
pub(crate) fn add_timer(at: Instant, action: Action) -> TimerKey {
    with(|hub| hub.timers.borrow_mut().add(at, action))
}

/// Cancels a timer of this thread's hub (no-op if it fired).
pub(crate) fn cancel_timer(key: TimerKey) {
    let _ = HUB.try_with(|hub| hub.timers.borrow_mut().cancel(key));
}

/// The error a blocking I/O call returns when a kill or timeout reached its fiber while that
/// fiber was already unwinding (the interrupt is not turned into a second unwind).
pub(crate) fn interrupted_error() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "grove: a kill or timeout interrupted this call while the task was already unwinding",
    )
}
