//! A fiber: one stackful coroutine that the hub can switch to. Tasks and greenlets are fibers;
//! the thread's own stack is the root fiber (it has no coroutine and runs the trampoline).
//!
//! Every switch is "suspend to the trampoline on the root stack, which resumes the target", so a
//! fiber only ever calls [`Fiber::suspend`] on itself and only the trampoline calls
//! [`Fiber::resume`]. What a fiber wants next travels in the suspend value ([`Next`]).

use std::cell::{Cell, RefCell};
use std::io;
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

/// An unwinding request delivered to a fiber at its park or switch point.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Interrupt {
    /// `JoinHandle::kill`.
    Kill,
    /// A `Timeout` with this id fired.
    Timeout(u64),
    /// `Greenlet::throw`.
    Exit,
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
/// `repr(C)` keeps the fields a switch touches (the first ten) together at the front, in as few
/// cache lines as possible; the rest are read only when a fiber starts, dies or is reported.
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
    pub(crate) park_obj: Cell<usize>,
    pub(crate) waiting_on: Cell<&'static str>,
    pub(crate) interrupt: Cell<Option<Interrupt>>,
    /// Bumped on every wake and every return from a park: a waker is good for one park only.
    pub(crate) gen: Cell<u32>,
    pub(crate) state: Cell<State>,
    pub(crate) wake_reason: Cell<WakeReason>,
    pub(crate) kind: Kind,
    pub(crate) id: u64,
    pub(crate) name: Option<Rc<str>>,
    /// Greenlets: who receives control when this one dies.
    pub(crate) parent: RefCell<Option<Rc<Fiber>>>,
    /// Index in the hub's registry of live tasks.
    pub(crate) slot: Cell<usize>,
    stack_size: usize,
    guard: (usize, usize),
}

impl Fiber {
    /// The root fiber of the current thread.
    pub(crate) fn root() -> Rc<Fiber> {
        Rc::new(Fiber::bare(Kind::Root, 0, None, State::Running, 0, (0, 0)))
    }

    fn bare(
        kind: Kind,
        id: u64,
        name: Option<Rc<str>>,
        state: State,
        stack_size: usize,
        guard: (usize, usize),
    ) -> Fiber {
        Fiber {
            co: RefCell::new(None),
            yielder: Cell::new(ptr::null()),
            kind,
            id,
            name,
            state: Cell::new(state),
            gen: Cell::new(0),
            wake_reason: Cell::new(WakeReason::Notified),
            interrupt: Cell::new(None),
            waiting_on: Cell::new(""),
            parent: RefCell::new(None),
            slot: Cell::new(usize::MAX),
            stack_size,
            guard,
            park_sp: Cell::new(0),
            park_obj: Cell::new(0),
        }
    }

    /// Creates a fiber that will run `body` on a pooled stack of `stack_size` bytes.
    ///
    /// `body` must never unwind: the task and greenlet entries catch panics themselves.
    pub(crate) fn new<F>(
        kind: Kind,
        id: u64,
        name: Option<Rc<str>>,
        stack_size: usize,
        body: F,
    ) -> io::Result<Rc<Fiber>>
    where
        F: FnOnce() -> Next + 'static,
    {
        let stack = PooledStack::get(stack_size)?;
        let (usable, guard) = (stack.usable(), stack.guard_range());
        let co = Co::with_stack(stack, move |y: &FiberYielder, ()| {
            with_current(|f| f.yielder.set(y));
            body()
        });
        let fiber = Fiber::bare(kind, id, name, State::Fresh, usable, guard);
        *fiber.co.borrow_mut() = Some(co);
        Ok(Rc::new(fiber))
    }

    /// Asks the CPU to start loading what resuming this fiber will touch first: the fields of
    /// the fiber a switch uses, the wait queue it parked on and the top of its suspended stack. The trampoline calls it for the next fiber in the run
    /// queue while the current one runs, so those loads overlap with useful work instead of
    /// stalling the switch (after a syscall-heavy task they are rarely still in cache).
    #[inline]
    pub(crate) fn prefetch(&self) {
        let sp = self.park_sp.get();
        prefetch_range(
            self as *const Fiber as usize,
            std::mem::offset_of!(Fiber, id),
        );
        let obj = self.park_obj.get();
        if obj != 0 {
            prefetch_range(obj.saturating_sub(64), 192);
        }
        if sp != 0 {
            prefetch_range(sp.saturating_sub(64), PREFETCH_STACK_BYTES);
        }
    }

    /// Whether this is the thread's root fiber.
    #[inline]
    pub(crate) fn is_root(&self) -> bool {
        self.kind == Kind::Root
    }

    /// The name for messages: the task name, or `#id`.
    pub(crate) fn label(&self) -> String {
        match (&self.name, self.kind) {
            (Some(n), _) => format!("'{n}'"),
            (None, Kind::Root) => "main".to_string(),
            (None, Kind::Task) => format!("task #{}", self.id),
            (None, Kind::Greenlet) => format!("greenlet #{}", self.id),
        }
    }

    /// Runs the fiber until it suspends or finishes. Only the trampoline calls this.
    ///
    /// Returns what the fiber asked for next; on completion the stack goes back to the pool.
    #[inline]
    pub(crate) fn resume(&self) -> Next {
        let result = {
            let mut co = self.co.borrow_mut();
            let co = co.as_mut().expect("resumed a fiber without a coroutine");
            let prev = CUR.replace(self);
            let r = co.resume(());
            CUR.set(prev);
            r
        };
        match result {
            CoroutineResult::Yield(next) => next,
            CoroutineResult::Return(next) => {
                self.state.set(State::Dead);
                self.recycle_stack();
                next
            }
        }
    }

    fn recycle_stack(&self) {
        if let Some(co) = self.co.borrow_mut().take() {
            co.into_stack().recycle();
        }
    }

    /// Whether the body was ever entered (true for the root and for finished fibers).
    pub(crate) fn is_started(&self) -> bool {
        match self.co.try_borrow() {
            Ok(co) => co.as_ref().is_none_or(|c| c.started()),
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

    /// Unwinds a suspended fiber from where it stopped, running its `Drop`s, on the caller's
    /// stack. The fiber is dead afterwards.
    pub(crate) fn force_unwind(&self) {
        let co = self.co.borrow_mut().take();
        if let Some(mut co) = co {
            self.state.set(State::Running);
            FORCE_UNWINDING.set(FORCE_UNWINDING.get() + 1);
            co.force_unwind();
            FORCE_UNWINDING.set(FORCE_UNWINDING.get() - 1);
            co.into_stack().recycle();
        }
        self.state.set(State::Dead);
    }
}

thread_local! {
    /// The fiber on the CPU.
    ///
    /// # Invariant
    /// Null (no hub yet on this thread, or it is gone), or a pointer to the running fiber, kept
    /// alive for as long as it is stored here: a task or greenlet by the trampoline's `Rc` while
    /// it runs (`Fiber::resume` stores and restores it), the root by the hub (which clears this
    /// before it drops the root).
    static CUR: Cell<*const Fiber> = const { Cell::new(ptr::null()) };
}

/// Runs `f` with the fiber on the CPU.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(&Fiber) -> R) -> R {
    let mut p = CUR.get();
    if p.is_null() {
        p = install_root();
    }
    // SAFETY: by CUR's invariant a non-null pointer refers to a live fiber for as long as it is
    // stored, and it stays stored while `f` runs (a switch away and back restores it).
    f(unsafe { &*p })
}

#[cold]
fn install_root() -> *const Fiber {
    let root = crate::hub::with(|hub| hub.root_fiber());
    let p = Rc::as_ptr(&root);
    CUR.set(p);
    p
}

/// The fiber on the CPU, as a new `Rc`.
#[inline]
pub(crate) fn current_rc() -> Rc<Fiber> {
    let p = with_current(|f| f as *const Fiber);
    // SAFETY: `p` came from `Rc::as_ptr` of a live `Rc<Fiber>` (CUR's invariant), so adding a
    // strong reference and materialising it as an `Rc` is balanced by that Rc's drop.
    unsafe {
        Rc::increment_strong_count(p);
        Rc::from_raw(p)
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
    /// The task's name, if any.
    pub(crate) name: Option<&'static str>,
    /// The fiber's id.
    pub(crate) id: u64,
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
        guard: f.guard,
        stack_size: f.stack_size,
        name: f.name.as_deref(),
        id: f.id,
    })
}

/// Suspends the fiber on the CPU and hands `next` to the trampoline; returns when the
/// trampoline resumes it. No `Rc` of the fiber is held across the suspension: a suspended fiber
/// is kept alive only by those who can wake or switch to it, so dropping the last of those
/// unwinds it.
#[inline]
pub(crate) fn suspend_current(next: Next) {
    let marker = 0u8;
    let y = with_current(|f| {
        f.park_sp.set(ptr::addr_of!(marker) as usize);
        f.yielder.get()
    });
    assert!(!y.is_null(), "suspend called outside a fiber");
    // SAFETY: by the field's invariant `y` points at the Yielder on the running fiber's own
    // stack, which is the stack we are executing on; the trampoline holds the fiber (and so its
    // coroutine and stack) alive for as long as it runs.
    unsafe { (*y).suspend(next) }
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

thread_local! {
    static FORCE_UNWINDING: Cell<u32> = const { Cell::new(0) };
}

/// Whether grove is force-unwinding a fiber on this thread: an entry that catches a panic now
/// must let it continue (it is corosensei's own unwind, which must reach the coroutine root).
pub(crate) fn force_unwinding() -> bool {
    FORCE_UNWINDING.get() > 0
}

impl Drop for Fiber {
    fn drop(&mut self) {
        if !self.is_suspended_mid_body() {
            return;
        }
        if crate::hub::alive() {
            self.force_unwind();
        } else if let Some(co) = self.co.get_mut().take() {
            // The thread is exiting and its hub is gone: there is no context left to run the
            // fiber's destructors in, so its stack is leaked rather than unwound.
            std::mem::forget(co);
        }
    }
}
