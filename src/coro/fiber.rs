//! A fiber: one stackful coroutine that the hub can switch to. Tasks and greenlets are fibers;
//! the thread's own stack is the root fiber (it has no coroutine and runs the trampoline).
//!
//! Every switch is "suspend to the trampoline on the root stack, which resumes the target", so a
//! fiber only ever calls [`suspend_current`] on itself and only the trampoline calls
//! [`Fiber::resume`]. What a fiber wants next travels in the suspend value ([`Next`]).
//!
//! The rules this file keeps (DESIGN.md, "Unwinding rules"):
//! - the current-fiber pointer is restored by a guard on every exit from a resume;
//! - no panic leaves a fiber body: the body wrapper aborts the process, naming the fiber, if one
//!   would (task and greenlet entries catch user panics themselves, so only a bug gets there);
//! - "being unwound" is a property of the fiber ([`Fiber::unwinding`]), not of the thread;
//! - a fiber is never unwound nested on another stack: a started fiber that is dropped
//!   mid-body (only possible if a thread exits past the hub's teardown) is leaked, not
//!   force-unwound.
//!
//! A fiber never calls the hub: the hub hands it what it needs.

use std::any::{Any, TypeId};
use std::cell::{Cell, OnceCell, RefCell};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::ptr;
use std::rc::Rc;

use corosensei::{Coroutine, CoroutineResult, Yielder};

use super::stack::PooledStack;

type Co = Coroutine<(), Next, Next, PooledStack>;
type FiberYielder = Yielder<(), Next>;

/// What the trampoline does once a fiber stops running.
pub(crate) enum Next {
    /// Run whatever the run queue holds next (the fiber parked, yielded or finished).
    Park,
    /// Resume this fiber next (a greenlet-style switch).
    SwitchTo(Rc<Fiber>),
    /// Put the fiber that suspended at the back of the run queue (`yield_now`): the trampoline
    /// already holds it, so yielding costs no reference count and no hub look-up.
    Yield,
}

/// The code a fiber runs, behind an `Rc` its owner may share (a task's body is also its result
/// slot, so a spawn allocates once for both). The stack is taken when the fiber first runs, not
/// at spawn, so tasks spawned in bulk touch no new memory until they run.
pub(crate) trait Body {
    /// Runs the fiber's code. Must not unwind (entries catch their panics).
    fn run(self: Rc<Self>) -> Next;
    /// No stack could be had for the fiber: report `err` to whoever waits for it.
    fn cannot_start(self: Rc<Self>, err: io::Error, label: &str);
    /// The fiber will never run: drop its code (its captures' `Drop`s run) and finish it.
    fn cancel(self: Rc<Self>);
}

/// Where a fiber is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Created, never resumed.
    Fresh,
    /// On the CPU now.
    Running,
    /// In the run queue.
    Ready,
    /// Waiting in the hub for a wake-up.
    Parked,
    /// Switched away from by a greenlet-style switch; only a switch brings it back.
    Suspended,
    /// Its body returned or unwound.
    Dead,
}

/// Why a parked fiber was woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WakeReason {
    /// A wait queue or the owner of the thing it waited for woke it.
    Notified,
    /// The deadline of its wait passed.
    TimedOut,
    /// It is being killed or timed out (an [`Interrupt`] is pending).
    Interrupted,
}

/// [`Fiber::foreign`]: inside a hooked libc call.
pub(crate) const FOREIGN_IN: u8 = 1;
/// [`Fiber::foreign`]: an interrupt landed inside a hooked call and is held back, pending.
pub(crate) const FOREIGN_REFUSED: u8 = 2;

/// An unwinding request delivered to a fiber at its park or switch point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Interrupt {
    /// `JoinHandle::kill`.
    Kill,
    /// A `Timeout` fired: its id, where it was armed, and after how long.
    Timeout(TimeoutOrigin),
    /// `Greenlet::throw`, or the last handle of a suspended greenlet went away.
    Exit,
}

impl Switch {
    /// Moves `value` into this fiber's inbox, reusing the slot while the type stays the same
    /// (no allocation per switch). A value still there is dropped.
    #[inline(always)]
    pub(crate) fn put_value<T: 'static>(&self, value: T) {
        self.inbox_full.set(true);
        let mut inbox = self.inbox.borrow_mut();
        if self.inbox_type.get() == Some(TypeId::of::<Option<T>>()) {
            if let Some(b) = inbox.as_mut() {
                let p = &mut **b as *mut dyn Any as *mut Option<T>;
                // SAFETY: by the field's invariant the box holds an `Option<T>` (its type id was
                // just compared), and the `RefCell` borrow makes this the only access.
                unsafe { *p = Some(value) };
                return;
            }
        }
        *inbox = Some(Box::new(Some(value)));
        self.inbox_type.set(Some(TypeId::of::<Option<T>>()));
    }

    /// Takes the inbox value if it holds one of type `T`; `Err(true)` if it holds one of another
    /// type, `Err(false)` if it is empty.
    #[inline(always)]
    pub(crate) fn take_value<T: 'static>(&self) -> Result<T, bool> {
        if !self.inbox_full.get() {
            return Err(false);
        }
        if self.inbox_type.get() != Some(TypeId::of::<Option<T>>()) {
            return Err(true);
        }
        let mut inbox = self.inbox.borrow_mut();
        let Some(b) = inbox.as_mut() else {
            return Err(false);
        };
        let p = &mut **b as *mut dyn Any as *mut Option<T>;
        // SAFETY: as in `put_value`: the recorded type id matches and the borrow is exclusive.
        let v = unsafe { (*p).take() };
        self.inbox_full.set(false);
        v.ok_or(false)
    }

    /// Drops whatever value the inbox holds.
    pub(crate) fn clear_inbox(&self) {
        self.inbox_full.set(false);
        self.inbox_type.set(None);
        let old = self.inbox.borrow_mut().take();
        drop(old);
    }
}

/// A fiber's greenlet-switching state: the inbox a switched value travels in, and the links
/// that say where control goes when a greenlet dies.
#[derive(Default)]
pub(crate) struct Switch {
    /// A value switched to this fiber and not yet received: the target owns it. Holds an
    /// `Option<T>` that is reused while the value type stays the same.
    ///
    /// # Invariant
    /// When `inbox_type` is `Some(id)`, `inbox` holds a box whose contents are of the type
    /// `id` identifies.
    inbox: RefCell<Option<Box<dyn Any>>>,
    inbox_type: Cell<Option<TypeId>>,
    /// Whether `inbox` holds a value now.
    inbox_full: Cell<bool>,
    /// A finished child's panic (or `GreenletExit`) for this fiber's pending switch.
    pub(crate) inbox_panic: Cell<Option<Box<dyn Any + Send>>>,
    /// Greenlets: who receives control when this one dies.
    pub(crate) parent: RefCell<Option<Rc<Fiber>>>,
    /// Greenlets being unwound because their last handle went away: who gets control back
    /// when the unwinding ends (instead of the parent).
    pub(crate) return_to: RefCell<Option<Rc<Fiber>>>,
}

/// Which `Timeout` fired, for its unwind payload and the report if nothing catches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimeoutOrigin {
    /// The timeout's id (unique per thread).
    pub(crate) id: u64,
    /// Where it was armed.
    pub(crate) armed_at: &'static std::panic::Location<'static>,
}

/// A `&'static str` in one word (a fiber's `waiting_on`): its address in the low 48 bits and
/// its length in the high 16, so the field costs 8 bytes instead of 16 (a million parked tasks
/// is a million of them). A string that does not fit (longer than 65535 bytes, or at an address
/// above 2^48) is stored as a fixed stand-in.
///
/// # Invariant
/// The word is 0 or encodes the address and length of a `&'static str`.
pub(crate) struct WaitingOn(Cell<usize>);

impl WaitingOn {
    const LEN_SHIFT: u32 = 48;

    pub(crate) fn new(s: &'static str) -> WaitingOn {
        let w = WaitingOn(Cell::new(0));
        w.set(s);
        w
    }

    #[inline(always)]
    fn encode(s: &'static str) -> usize {
        let (addr, len) = (s.as_ptr() as usize, s.len());
        if cfg!(target_pointer_width = "64") && addr >> Self::LEN_SHIFT == 0 && len <= 0xffff {
            addr | len << Self::LEN_SHIFT
        } else {
            let fallback: &'static str = "(a wait whose name does not fit)";
            fallback.as_ptr() as usize | fallback.len() << Self::LEN_SHIFT
        }
    }

    /// Records `s`.
    #[inline(always)]
    pub(crate) fn set(&self, s: &'static str) {
        self.0.set(if s.is_empty() { 0 } else { Self::encode(s) });
    }

    /// The string last recorded.
    pub(crate) fn get(&self) -> &'static str {
        let w = self.0.get();
        if w == 0 {
            return "";
        }
        let (addr, len) = (w & ((1 << Self::LEN_SHIFT) - 1), w >> Self::LEN_SHIFT);
        // SAFETY: by the invariant, `addr` and `len` are those of a `&'static str` that `set`
        // was given: valid UTF-8, alive forever, never written to.
        unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(addr as *const u8, len)) }
    }
}

/// Which flavour of fiber this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The thread's own stack.
    Root,
    /// A hub task (`spawn`).
    Task,
    /// A greenlet (`Greenlet::new`).
    Greenlet,
}

/// One switchable context.
///
/// `repr(C)` keeps the fields a switch touches together at the front, in as few cache lines as
/// possible; the rest are read only when a fiber starts, dies or is reported.
#[repr(C)]
pub(crate) struct Fiber {
    co: RefCell<Option<Co>>,
    /// # Invariant
    /// While the fiber runs, points at the `Yielder` on its own stack (set at entry).
    yielder: Cell<*const FiberYielder>,
    /// Roughly where the stack pointer was when the fiber last suspended (0: never).
    park_sp: Cell<usize>,
    /// The address of what the fiber last parked on (a wait queue), or 0. Only ever used as a
    /// prefetch hint, so it may be stale.
    ///
    /// While the fiber is parked it is exact (set just before the park, cleared when the park
    /// returns): a wait queue's address (8-aligned), or an odd note — `deadline_ms << 2 | 1` for
    /// a sleep, `task_id << 2 | 3` for a join — what `grove::debug::dump` and the "would block
    /// forever" report read to say what a task waits on (`hub::inspect`).
    pub(crate) park_obj: Cell<usize>,
    /// What the fiber waits on, for reports (`"Mutex::lock"`), `""` when nothing.
    pub(crate) waiting_on: WaitingOn,
    /// Where the task or greenlet was created (`#[track_caller]` through `spawn`).
    pub(crate) spawned_at: &'static Location<'static>,
    pub(crate) interrupt: Cell<Option<Interrupt>>,
    /// Bumped on every wake and every return from a park: a waker is good for one park only.
    pub(crate) gen: Cell<u32>,
    /// Greenlets: how many user handles exist.
    pub(crate) handles: Cell<u32>,
    /// Index in the hub's registry of live fibers (`u32::MAX`: none).
    pub(crate) slot: Cell<u32>,
    /// The hub's coarse clock (ms, wrapping) when the fiber last parked (see `hub::now_ms`).
    pub(crate) parked_at: Cell<u32>,
    pub(crate) state: Cell<State>,
    pub(crate) wake_reason: Cell<WakeReason>,
    pub(crate) kind: Kind,
    /// The fiber is unwinding (an interrupt or a panic is on its way up its stack). An
    /// interrupt that lands now is not turned into a second unwind.
    pub(crate) unwinding: Cell<bool>,
    /// Greenlets: it dies with no one to return to (its last handle went away where no switch
    /// was possible); when it finishes, control goes back to the hub, not to its parent.
    pub(crate) orphaned: Cell<bool>,
    /// Monkey patching: the fiber is inside a hooked libc call (`FOREIGN_IN`), where unwinding
    /// cannot pass (the C frames between it and the user's code cannot unwind), and whether an
    /// interrupt was held back there (`FOREIGN_REFUSED`). See `hub::foreign`.
    pub(crate) foreign: Cell<u8>,
    /// What greenlet-style switching needs (made on first use: most tasks never switch).
    switch: OnceCell<Box<Switch>>,
    pub(crate) id: u64,
    /// Boxed so that the field is one word: most fibers have no name, and every byte of a
    /// fiber counts a million times over.
    #[allow(clippy::box_collection)]
    pub(crate) name: Option<Box<String>>,
    /// Until the fiber starts running (a prepared fiber keeps it too, to cancel it).
    body: Cell<Option<Rc<dyn Body>>>,
    /// Requested stack size until the stack is taken; then its usable size.
    stack_size: Cell<usize>,
    /// The guard page's address (one page).
    guard: Cell<usize>,
}

impl Fiber {
    /// The root fiber of the current thread.
    pub(crate) fn root() -> Rc<Fiber> {
        let f = Fiber::bare(Kind::Root, 0, None, None, 0, Location::caller());
        f.state.set(State::Running);
        Rc::new(f)
    }

    #[allow(clippy::box_collection)] // see the `name` field
    fn bare(
        kind: Kind,
        id: u64,
        name: Option<Box<String>>,
        body: Option<Rc<dyn Body>>,
        stack_size: usize,
        spawned_at: &'static Location<'static>,
    ) -> Fiber {
        Fiber {
            co: RefCell::new(None),
            yielder: Cell::new(ptr::null()),
            park_sp: Cell::new(0),
            park_obj: Cell::new(0),
            waiting_on: WaitingOn::new(""),
            spawned_at,
            parked_at: Cell::new(0),
            interrupt: Cell::new(None),
            gen: Cell::new(0),
            state: Cell::new(State::Fresh),
            wake_reason: Cell::new(WakeReason::Notified),
            switch: OnceCell::new(),
            kind,
            unwinding: Cell::new(false),
            id,
            name,
            handles: Cell::new(0),
            orphaned: Cell::new(false),
            foreign: Cell::new(0),
            slot: Cell::new(u32::MAX),
            body: Cell::new(body),
            stack_size: Cell::new(stack_size),
            guard: Cell::new(0),
        }
    }

    /// A fiber that will run `body` on a pooled stack of `stack_size` bytes, taken when it
    /// first runs.
    #[allow(clippy::box_collection)] // see the `name` field
    pub(crate) fn new(
        kind: Kind,
        id: u64,
        name: Option<Box<String>>,
        stack_size: usize,
        body: Rc<dyn Body>,
        spawned_at: &'static Location<'static>,
    ) -> Rc<Fiber> {
        Rc::new(Fiber::bare(
            kind,
            id,
            name,
            Some(body),
            stack_size,
            spawned_at,
        ))
    }

    /// Takes the stack now rather than at the first run (greenlets: the error goes to the
    /// creator).
    pub(crate) fn prepare(&self) -> io::Result<()> {
        if self.co.borrow().is_some() {
            return Ok(());
        }
        let Some(body) = self.body.take() else {
            return Ok(());
        };
        let stack = PooledStack::get(self.stack_size.get());
        let for_co = body.clone();
        self.body.set(Some(body));
        let stack = stack?;
        self.guard.set(stack.guard_range().0);
        self.stack_size.set(stack.usable());
        *self.co.borrow_mut() = Some(Co::with_stack(stack, wrap(for_co)));
        Ok(())
    }

    /// Asks the CPU to start loading what resuming this fiber will touch first: the fields of
    /// the fiber a switch uses, the wait queue it parked on and the top of its suspended stack.
    /// The trampoline calls it for the next fiber in the run queue while the current one runs,
    /// so those loads overlap with useful work instead of stalling the switch.
    #[inline]
    pub(crate) fn prefetch(&self) {
        let sp = self.park_sp.get();
        prefetch_range(
            self as *const Fiber as usize,
            std::mem::offset_of!(Fiber, kind),
        );
        let obj = self.park_obj.get();
        if obj & 1 == 0 && obj != 0 {
            prefetch_range(obj.saturating_sub(64), 192);
        }
        if sp != 0 {
            prefetch_range(sp.saturating_sub(64), PREFETCH_STACK_BYTES);
        }
    }

    /// This fiber's switching state, made on first use.
    #[inline(always)]
    pub(crate) fn switch(&self) -> &Switch {
        self.switch.get_or_init(Box::default)
    }

    /// Moves `value` into this fiber's inbox (see [`Switch::put_value`]).
    #[inline(always)]
    pub(crate) fn put_value<T: 'static>(&self, value: T) {
        self.switch().put_value(value);
    }

    /// Takes the inbox value (see [`Switch::take_value`]); `Err(false)` if there is none.
    #[inline(always)]
    pub(crate) fn take_value<T: 'static>(&self) -> Result<T, bool> {
        match self.switch.get() {
            Some(s) => s.take_value(),
            None => Err(false),
        }
    }

    /// Drops whatever value the inbox holds.
    pub(crate) fn clear_inbox(&self) {
        if let Some(s) = self.switch.get() {
            s.clear_inbox();
        }
    }

    /// Greenlets: the parent's id, if it has one.
    pub(crate) fn parent_id(&self) -> Option<u64> {
        let s = self.switch.get()?;
        let p = s.parent.try_borrow().ok()?;
        p.as_ref().map(|p| p.id)
    }

    /// Whether this is the thread's root fiber.
    #[inline]
    pub(crate) fn is_root(&self) -> bool {
        self.kind == Kind::Root
    }

    /// The name for messages: `'name'`, `task #3`, `greenlet #4` or `main`.
    pub(crate) fn label(&self) -> String {
        match (&self.name, self.kind) {
            (Some(n), _) => format!("'{n}'"),
            (None, Kind::Root) => "main".to_string(),
            (None, Kind::Task) => format!("task #{}", self.id),
            (None, Kind::Greenlet) => format!("greenlet #{}", self.id),
        }
    }

    /// What kind of fiber this is, as a word for messages.
    pub(crate) fn kind_word(&self) -> &'static str {
        match self.kind {
            Kind::Root => "thread",
            Kind::Task => "task",
            Kind::Greenlet => "greenlet",
        }
    }

    /// Runs the fiber until it suspends or finishes. Only the trampoline calls this.
    ///
    /// Returns what the fiber asked for next; on completion the stack goes back to the pool.
    #[inline(always)]
    pub(crate) fn resume(&self) -> Next {
        let result = {
            let mut co = self.co.borrow_mut();
            match co.as_mut() {
                Some(co) => {
                    let _current = SetCurrent::enter(self);
                    co.resume(())
                }
                None => {
                    drop(co);
                    return self.start_cold();
                }
            }
        };
        match result {
            CoroutineResult::Yield(next) => next,
            CoroutineResult::Return(next) => {
                self.finished();
                next
            }
        }
    }

    /// First resume of a lazily started fiber: take a stack, then run it.
    #[cold]
    #[inline(never)]
    fn start_cold(&self) -> Next {
        match self.prepare() {
            Ok(()) if self.co.borrow().is_some() => self.resume(),
            Ok(()) => {
                self.state.set(State::Dead);
                Next::Park
            }
            Err(e) => {
                self.state.set(State::Dead);
                if let Some(body) = self.body.take() {
                    body.cannot_start(e, &self.label());
                }
                Next::Park
            }
        }
    }

    fn finished(&self) {
        self.state.set(State::Dead);
        self.unwinding.set(false);
        if let Some(co) = self.co.borrow_mut().take() {
            co.into_stack().recycle();
        }
    }

    /// Whether the body was ever entered (true for the root and for finished fibers).
    pub(crate) fn is_started(&self) -> bool {
        if self.is_root() {
            return true;
        }
        match self.co.try_borrow() {
            Ok(co) => co
                .as_ref()
                .map_or(self.state.get() == State::Dead, |c| c.started()),
            Err(_) => true,
        }
    }

    /// Whether the body is mid-way: started and neither finished nor unwound.
    pub(crate) fn is_suspended_mid_body(&self) -> bool {
        match self.co.try_borrow() {
            Ok(co) => co.as_ref().is_some_and(|c| c.started() && !c.done()),
            Err(_) => false,
        }
    }

    /// Drops the body of a fiber that never ran (its captures' `Drop`s run on the caller's
    /// stack) and marks it dead. Returns whether it had not started.
    pub(crate) fn cancel_unstarted(&self) -> bool {
        if self.state.get() == State::Dead || self.is_started() {
            return false;
        }
        let body = self.body.take();
        let co = self.co.borrow_mut().take();
        self.state.set(State::Dead);
        if let Some(body) = body {
            body.cancel();
        }
        if let Some(co) = co {
            // Prepared but never resumed: dropping it drops the body; the stack is reused.
            let mut co = co;
            co.force_unwind();
            co.into_stack().recycle();
        }
        true
    }
}

impl Drop for Fiber {
    fn drop(&mut self) {
        if let Some(body) = self.body.get_mut().take() {
            body.cancel();
        }
        if let Some(co) = self.co.get_mut().take() {
            if co.started() && !co.done() {
                // Only reachable when a thread exits in a way that skipped the hub's teardown:
                // there is no context left to run the fiber's destructors in, so its stack is
                // leaked rather than unwound on a stack that is not its own.
                std::mem::forget(co);
            } else if !co.started() {
                let mut co = co;
                co.force_unwind();
                co.into_stack().recycle();
            }
        }
    }
}

/// Builds the coroutine body around `body`: records the yielder, runs the body, and makes sure
/// no panic leaves it.
fn wrap(body: Rc<dyn Body>) -> impl FnOnce(&FiberYielder, ()) -> Next {
    move |y: &FiberYielder, ()| {
        let kept = with_running(|f| {
            f.yielder.set(y);
            f.body.take()
        });
        drop(kept);
        match catch_unwind(AssertUnwindSafe(|| body.run())) {
            Ok(next) => next,
            Err(p) => escaped(p),
        }
    }
}

/// A panic reached a fiber's root: a bug in grove (entries catch user panics). Continuing would
/// unwind into the trampoline with the hub in an unknown state, so stop here, loudly.
#[cold]
fn escaped(p: Box<dyn Any + Send>) -> ! {
    let label = with_running(|f| f.label());
    let msg = crate::coro::unwind::payload_text(p.as_ref());
    eprintln!("grove: a panic escaped the body of {label} ({msg}); aborting");
    std::process::abort()
}

/// Sets the current fiber for the duration of a resume; restores the previous one however the
/// resume ends (a guard, never straight-line code).
struct SetCurrent(*const Fiber);

impl SetCurrent {
    #[inline(always)]
    fn enter(f: &Fiber) -> SetCurrent {
        SetCurrent(CUR.replace(f))
    }
}

impl Drop for SetCurrent {
    #[inline(always)]
    fn drop(&mut self) {
        CUR.set(self.0);
    }
}

thread_local! {
    /// The fiber on the CPU.
    ///
    /// # Invariant
    /// Null (no hub yet on this thread, or it is gone), or a pointer to the running fiber, kept
    /// alive for as long as it is stored here: a task or greenlet by the trampoline's `Rc` while
    /// it runs (`SetCurrent` stores and restores it), the root by the hub (which clears this
    /// before it drops the root).
    static CUR: Cell<*const Fiber> = const { Cell::new(ptr::null()) };
}

/// Runs `f` with the fiber on the CPU, or returns `None` if this thread has none yet.
#[inline(always)]
pub(crate) fn try_with_current<R>(f: impl FnOnce(&Fiber) -> R) -> Option<R> {
    let p = CUR.get();
    if p.is_null() {
        return None;
    }
    // SAFETY: by CUR's invariant a non-null pointer refers to a live fiber for as long as it is
    // stored, and it stays stored while `f` runs (a switch away and back restores it).
    Some(f(unsafe { &*p }))
}

/// Runs `f` with the fiber on the CPU; if this thread has none yet, `install` makes one first
/// (the hub installs the root).
#[inline(always)]
pub(crate) fn with_current_or<R>(install: impl FnOnce(), f: impl FnOnce(&Fiber) -> R) -> R {
    if CUR.get().is_null() {
        install();
    }
    try_with_current(f).expect("grove: no current fiber after installing the root")
}

/// The fiber running now, as a token only this module can make (from `CUR`): code holding it
/// runs on that fiber's stack, so it may suspend it.
#[derive(Clone, Copy)]
pub(crate) struct Running<'a>(&'a Fiber);

impl std::ops::Deref for Running<'_> {
    type Target = Fiber;

    #[inline(always)]
    fn deref(&self) -> &Fiber {
        self.0
    }
}

impl Running<'_> {
    /// Suspends this (the running) fiber and hands `next` to the trampoline; returns when the
    /// trampoline resumes it.
    ///
    /// # Panics
    /// On the root fiber, which has no coroutine to suspend.
    #[inline(always)]
    pub(crate) fn suspend(self, next: Next) {
        let marker = 0u8;
        self.0.park_sp.set(ptr::addr_of!(marker) as usize);
        let y = self.0.yielder.get();
        assert!(!y.is_null(), "suspend called outside a fiber");
        // SAFETY: a `Running` is only made from `CUR`, so `self.0` is the fiber whose stack
        // this code runs on (a switch away and back makes it current again before this code
        // continues), and by the field's invariant `y` points at the Yielder on that stack. The
        // trampoline holds the fiber alive for as long as it runs.
        unsafe { (*y).suspend(next) }
    }
}

/// Like [`with_current_or`], with a [`Running`] token that can suspend the fiber.
#[inline(always)]
pub(crate) fn with_running_or<R>(install: impl FnOnce(), f: impl FnOnce(Running<'_>) -> R) -> R {
    with_current_or(install, |cur| f(Running(cur)))
}

/// Runs `f` with the fiber on the CPU, which must exist (inside a fiber body it always does).
#[inline]
fn with_running<R>(f: impl FnOnce(&Fiber) -> R) -> R {
    try_with_current(f).expect("grove: no current fiber inside a fiber body")
}

/// Makes `root` the current fiber of this thread (the hub does this once).
pub(crate) fn install_root(root: &Rc<Fiber>) {
    CUR.set(Rc::as_ptr(root));
}

/// The fiber on the CPU, as a new `Rc`, or `None` if this thread has none yet.
#[inline(always)]
pub(crate) fn current_rc() -> Option<Rc<Fiber>> {
    let p = CUR.get();
    if p.is_null() {
        return None;
    }
    // SAFETY: `p` came from `Rc::as_ptr` of a live `Rc<Fiber>` (CUR's invariant), so adding a
    // strong reference and materialising it as an `Rc` is balanced by that Rc's drop.
    unsafe {
        Rc::increment_strong_count(p);
        Some(Rc::from_raw(p))
    }
}

/// Whether `f` is the fiber on the CPU.
#[inline]
pub(crate) fn is_current(f: &Fiber) -> bool {
    ptr::eq(CUR.get(), f)
}

/// Forgets the current fiber (the hub calls this before it drops the root).
pub(crate) fn clear_current() {
    let _ = CUR.try_with(|c| c.set(ptr::null()));
}

/// What the overflow handler needs to know about the fiber on the CPU.
pub(crate) struct SignalInfo {
    /// The guard page's address range.
    pub(crate) guard: (usize, usize),
    /// Usable stack bytes.
    pub(crate) stack_size: usize,
    /// The fiber's name, if any.
    pub(crate) name: Option<&'static str>,
    /// The fiber's id.
    pub(crate) id: u64,
    /// "task" or "greenlet" ("thread" for the root).
    pub(crate) kind: &'static str,
    /// Where it was spawned.
    pub(crate) spawned_at: &'static Location<'static>,
}

/// The fiber on the CPU, read without allocating (called from a signal handler).
pub(crate) fn current_for_signal() -> Option<SignalInfo> {
    let p = CUR.try_with(Cell::get).ok()?;
    if p.is_null() {
        return None;
    }
    // SAFETY: CUR's invariant; the fiber cannot be freed while the thread is inside this signal
    // handler, since the fault interrupted the code that keeps it alive. The `'static` name
    // borrow is only used by the handler before it aborts the process.
    let f: &'static Fiber = unsafe { &*p };
    Some(SignalInfo {
        guard: (f.guard.get(), f.guard.get() + super::stack::page_size()),
        stack_size: f.stack_size.get(),
        name: f.name.as_deref().map(String::as_str),
        id: f.id,
        kind: f.kind_word(),
        spawned_at: f.spawned_at,
    })
}

/// Suspends the fiber on the CPU and hands `next` to the trampoline; returns when the
/// trampoline resumes it. No `Rc` of the fiber is held across the suspension by this code.
#[inline(always)]
pub(crate) fn suspend_current(next: Next) {
    with_running(|f| Running(f).suspend(next));
}

/// How much of a suspended stack, from its stack pointer up, [`Fiber::prefetch`] loads: the
/// first frames a resumed task returns through. More does not pay: the echo benchmark did no
/// better with 768 bytes, and `yield_now` among 1000 tasks was 10% slower (the extra lines
/// crowd the cache and the CPU's few outstanding-miss slots).
const PREFETCH_STACK_BYTES: usize = 256;

/// Prefetches the cache lines of `[addr, addr + len)`.
#[inline]
fn prefetch_range(addr: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let mut line = addr & !63;
        let end = addr.saturating_add(len);
        while line < end {
            // SAFETY: a prefetch is only a hint; it never faults and reads nothing into the
            // program, whatever the address.
            unsafe {
                core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                    line as *const i8,
                )
            };
            line += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (addr, len);
}
#[cfg(test)]
mod tests {
    /// A fiber is allocated once per task: 1,000,000 parked tasks must fit in 4.5 GiB, and glibc
    /// hands out `Rc<Fiber>` (16 + 200 bytes, plus its 8-byte header) in a 224-byte chunk with
    /// nothing to spare. A field added here must take the place of another.
    #[test]
    fn a_fiber_stays_200_bytes() {
        assert_eq!(std::mem::size_of::<super::Fiber>(), 200);
    }

    #[test]
    fn waiting_on_round_trips_a_static_str() {
        let w = super::WaitingOn::new("");
        assert_eq!(w.get(), "");
        w.set("Mutex::lock");
        assert_eq!(w.get(), "Mutex::lock");
    }
}
