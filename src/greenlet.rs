//! Greenlets: symmetric coroutines you switch between by hand (Python's `greenlet`).
//!
//! Every thread has a main greenlet (the thread's own stack, [`getcurrent`] in plain code). A new
//! greenlet's parent is the greenlet that created it. `g.switch(v)` transfers control to `g`:
//! the first switch starts `g`'s function with `v`; later ones make `g`'s own pending `switch`
//! return `v`. When a greenlet's function returns, its value goes to its parent's pending switch.
//!
//! ```
//! use grove::greenlet::{getcurrent, Greenlet};
//!
//! let main = getcurrent::<i32>();
//! let child = Greenlet::new(move |x: i32| {
//!     let y = main.switch(x + 1); // back to main with 2
//!     y * 10                       // finishing sends 30 to the parent (main)
//! });
//! assert_eq!(child.switch(1), 2);
//! assert_eq!(child.switch(3), 30);
//! assert!(child.is_dead());
//! ```
//!
//! Handles are `!Send`: a greenlet belongs to the thread that made it, so switching to another
//! thread's greenlet is a compile error rather than undefined behaviour:
//!
//! ```compile_fail
//! let g = grove::greenlet::Greenlet::new(|x: ()| x);
//! std::thread::spawn(move || g.switch(()));
//! ```
//!
//! Switches are also how grove tasks run: a greenlet may call `sleep`, socket reads and other
//! blocking calls, which park it in the hub like a task until they complete.
//!
//! ## Values belong to the receiver
//! A switched value is moved into the target greenlet before control moves: if the sender
//! vanishes (a task that finishes, a greenlet that is killed), the value is still there for
//! the target's pending `switch` to return. Switching allocates nothing once a greenlet has
//! received a value of its type.
//!
//! ## Lifetime: the last handle
//! A greenlet lives while there are handles to it. When the last handle of a greenlet that is
//! suspended mid-function goes away, the greenlet is unwound *as itself*, as Python's greenlet
//! does: the dropping code switches to it and it unwinds from its pending `switch` with
//! [`GreenletExit`]; inside its `Drop`s, [`getcurrent`] is the dying greenlet, it may block in
//! the hub, and control comes back to the code that dropped the handle once it is dead.
//!
//! Python code often writes `getcurrent().parent.switch(v)`. In Rust the temporary
//! `getcurrent()` would be a handle to the current greenlet held across the switch — a handle
//! that keeps it alive, so dropping the greenlet's other handles would never unwind it. Use
//! [`switch_to_parent`]`(v)` (or [`current_parent`]`()`), which hold no handle to the current
//! greenlet.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::rc::Rc;

use crate::coro::fiber::{self, Body, Fiber, Interrupt, Kind, Next, State};
use crate::coro::stack::default_stack_size;
use crate::coro::unwind;
use crate::hub;

pub use crate::coro::unwind::GreenletExit;

/// Setting this parent would make a greenlet its own ancestor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParentCycle;

impl fmt::Display for ParentCycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cyclic parent chain: a greenlet cannot be its own ancestor")
    }
}

impl std::error::Error for ParentCycle {}

/// A handle to a greenlet whose switch values are `T`.
///
/// Dropping the last handle of a greenlet that is suspended mid-function unwinds it (its
/// `Drop`s run, as the greenlet itself), as greenlet does on garbage collection.
pub struct Greenlet<T: 'static = ()> {
    fiber: Rc<Fiber>,
    _values: PhantomData<fn(T) -> T>,
}

impl<T: 'static> Clone for Greenlet<T> {
    fn clone(&self) -> Self {
        Greenlet::from_fiber(self.fiber.clone())
    }
}

impl<T: 'static> PartialEq for Greenlet<T> {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.fiber, &other.fiber)
    }
}

impl<T: 'static> fmt::Debug for Greenlet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Greenlet")
            .field("id", &self.fiber.label())
            .field("state", &self.fiber.state.get())
            .finish()
    }
}

/// The greenlet running now (the thread's main greenlet outside any greenlet or task).
///
/// The handle keeps the current greenlet alive while it exists; to switch to the parent, use
/// [`switch_to_parent`], which holds none.
pub fn getcurrent<T: 'static>() -> Greenlet<T> {
    Greenlet::from_fiber(hub::current())
}

/// The current greenlet's parent (`None` for a thread's main greenlet and for tasks), without
/// taking a handle to the current greenlet.
pub fn current_parent<T: 'static>() -> Option<Greenlet<T>> {
    hub::with_current(|me| me.switch().parent.borrow().clone()).map(Greenlet::from_fiber)
}

/// Switches to the current greenlet's parent, sending `value` — Python's
/// `getcurrent().parent.switch(value)` — without holding a handle to the current greenlet
/// across the switch (so dropping its last outside handle meanwhile unwinds it).
///
/// # Panics
/// If the current greenlet has no parent (the thread's main greenlet, a task), and as
/// [`Greenlet::switch`].
#[track_caller]
pub fn switch_to_parent<T: 'static>(value: T) -> T {
    match current_parent::<T>() {
        Some(parent) => parent.switch(value),
        None => panic!("grove: switch_to_parent called where there is no parent greenlet"),
    }
}

impl<T: 'static> Greenlet<T> {
    fn from_fiber(fiber: Rc<Fiber>) -> Self {
        let n = fiber.handles.get().checked_add(1);
        fiber
            .handles
            .set(n.expect("grove: more than 4 billion handles to one greenlet"));
        Greenlet {
            fiber,
            _values: PhantomData,
        }
    }

    /// Creates a greenlet that runs `f` on its first switch; its parent is the current greenlet.
    ///
    /// # Panics
    /// Panics if no stack can be allocated; [`Greenlet::with_stack_size`] returns the error.
    #[track_caller]
    pub fn new<F>(f: F) -> Self
    where
        F: FnOnce(T) -> T + 'static,
    {
        Self::with_stack_size(default_stack_size(), f)
            .unwrap_or_else(|e| panic!("grove: cannot create a greenlet: {e}"))
    }

    /// Creates a greenlet with a stack of `size` bytes (rounded up to pages, at least
    /// [`MIN_STACK_SIZE`](crate::MIN_STACK_SIZE)); one page of it is the guard page.
    ///
    /// # Errors
    /// An `io::Error` (kind `OutOfMemory`) naming the limit that was hit if no stack can be
    /// allocated.
    #[track_caller]
    pub fn with_stack_size<F>(size: usize, f: F) -> io::Result<Self>
    where
        F: FnOnce(T) -> T + 'static,
    {
        let id = hub::with(|h| h.next_id());
        let body: Rc<dyn Body> = Rc::new(Entry::<T, F> {
            f: std::cell::Cell::new(Some(f)),
            _values: PhantomData,
        });
        let fiber = Fiber::new(
            Kind::Greenlet,
            id,
            None,
            size,
            body,
            std::panic::Location::caller(),
        );
        fiber.prepare()?;
        *fiber.switch().parent.borrow_mut() = Some(hub::current());
        hub::with(|h| h.register(&fiber));
        Ok(Greenlet::from_fiber(fiber))
    }

    /// Transfers control to this greenlet, sending `value`; returns the value of whichever
    /// switch next comes back to the caller.
    ///
    /// Switching to a dead greenlet goes to its (first live) parent. Switching to yourself
    /// returns `value` at once.
    ///
    /// # Panics
    /// Re-raises a panic of a child that finished into this switch; panics with
    /// [`GreenletExit`] if the child was killed by [`Greenlet::throw`] thrown by someone else;
    /// panics if the target is waiting in the hub (parked by `sleep`, a join, I/O), if the values
    /// are of another type, or with "would block forever" if the main greenlet waits for a
    /// switch that nothing can make.
    #[inline(always)]
    #[track_caller]
    pub fn switch(&self, value: T) -> T {
        let target = &self.fiber;
        if !matches!(target.state.get(), State::Suspended | State::Fresh) {
            return self.switch_slow(value);
        }
        put_value(target, value);
        match hub::switch_to_then(target, Fiber::take_value::<T>) {
            Ok(v) => v,
            Err(_) => receive_slow(),
        }
    }

    #[cold]
    #[inline(never)]
    #[track_caller]
    fn switch_slow(&self, value: T) -> T {
        let target = live_target(&self.fiber);
        if fiber::is_current(&target) {
            return value;
        }
        check_switchable(&target);
        put_value(&target, value);
        hub::switch_to(target);
        receive::<T>()
    }

    /// Kills this greenlet: it unwinds from where it is suspended with [`GreenletExit`] (its
    /// `Drop`s run) and is dead afterwards; control then goes to its parent. A greenlet that
    /// never started dies without running. Returns when control comes back to the caller.
    ///
    /// # Panics
    /// As [`Greenlet::switch`], except that the child's `GreenletExit` is not re-raised here.
    #[track_caller]
    pub fn throw(&self) {
        let g = &self.fiber;
        if g.state.get() == State::Dead {
            return;
        }
        if fiber::is_current(g) {
            if !unwind::is_unwinding(g) {
                unwind::unwind_for(g, Interrupt::Exit);
            }
            return;
        }
        if g.cancel_unstarted() {
            hub::with(|h| h.forget(g));
            return;
        }
        check_switchable(g);
        g.interrupt.set(Some(Interrupt::Exit));
        hub::switch_to(g.clone());
        let panic = hub::with_current(|me| {
            me.clear_inbox();
            me.switch().inbox_panic.take()
        });
        match panic {
            Some(p) if !p.is::<GreenletExit>() => resume_unwind(p),
            _ => hub::check_interrupt(),
        }
    }

    /// The parent greenlet (`None` for a thread's main greenlet and for tasks).
    pub fn parent(&self) -> Option<Greenlet<T>> {
        self.fiber
            .switch()
            .parent
            .borrow()
            .clone()
            .map(Greenlet::from_fiber)
    }

    /// Makes `parent` this greenlet's parent.
    ///
    /// # Errors
    /// [`ParentCycle`] if `self` is `parent` or one of its ancestors.
    pub fn set_parent(&self, parent: &Greenlet<T>) -> Result<(), ParentCycle> {
        let mut cur = Some(parent.fiber.clone());
        while let Some(f) = cur {
            if Rc::ptr_eq(&f, &self.fiber) {
                return Err(ParentCycle);
            }
            cur = f.switch().parent.borrow().clone();
        }
        *self.fiber.switch().parent.borrow_mut() = Some(parent.fiber.clone());
        Ok(())
    }

    /// Whether the function finished (returned, panicked or was thrown out).
    pub fn is_dead(&self) -> bool {
        self.fiber.state.get() == State::Dead
    }

    /// Whether the greenlet was ever switched to.
    pub fn is_started(&self) -> bool {
        self.fiber.state.get() != State::Fresh
    }
}

impl<T: 'static> Drop for Greenlet<T> {
    fn drop(&mut self) {
        let f = &self.fiber;
        let left = f.handles.get() - 1;
        f.handles.set(left);
        if left == 0 && f.kind == Kind::Greenlet && f.state.get() != State::Dead {
            last_handle_gone(f);
        }
    }
}

/// The last handle of a live greenlet went away: nobody can switch to it again.
#[cold]
fn last_handle_gone(g: &Rc<Fiber>) {
    match g.state.get() {
        State::Fresh if g.cancel_unstarted() => {
            let _ = hub::try_with(|h| h.forget(g));
        }
        State::Suspended if g.is_suspended_mid_body() => die_as_itself(g),
        // Running (it dropped its own last handle) or waiting in the hub: it dies when it next
        // suspends in a switch with no handle left (see `orphan_if_unreachable`).
        _ => {}
    }
}

/// Unwinds a suspended greenlet as itself: switch to it with `GreenletExit` pending and come
/// back here when it is dead (Python greenlet's behaviour on garbage collection).
fn die_as_itself(g: &Rc<Fiber>) {
    if !hub::can_switch() {
        // Inside a generator or during thread exit: let the hub run it later, to die quietly.
        g.orphaned.set(true);
        let _ = hub::try_with(|h| h.interrupt(g, Interrupt::Exit));
        return;
    }
    let me = hub::current();
    *g.switch().return_to.borrow_mut() = Some(me.clone());
    g.interrupt.set(Some(Interrupt::Exit));
    // If this code unwinds while waiting (a kill of its own), the greenlet must not come back
    // here when it is done.
    let orphan_on_unwind = OrphanOnUnwind(g);
    hub::switch_to(g.clone());
    while g.state.get() != State::Dead {
        // Resumed by an interrupt of our own: unwind for it, or — if this code is already
        // unwinding — keep waiting for the greenlet to finish.
        hub::check_interrupt();
        hub::wait_for_switch();
    }
    std::mem::forget(orphan_on_unwind);
    let panic = me.switch().inbox_panic.take();
    if let Some(p) = panic.filter(|p| !p.is::<GreenletExit>()) {
        log::error!(
            "grove: greenlet #{} panicked while it was unwound after its last handle was \
             dropped: {}",
            g.id,
            unwind::payload_text(p.as_ref())
        );
    }
}

struct OrphanOnUnwind<'a>(&'a Rc<Fiber>);

impl Drop for OrphanOnUnwind<'_> {
    fn drop(&mut self) {
        self.0.switch().return_to.borrow_mut().take();
        self.0.orphaned.set(true);
    }
}

/// The greenlet entry: receive the first value, run `f`, hand the outcome on.
struct Entry<T, F> {
    /// `None` once it ran or was cancelled.
    f: std::cell::Cell<Option<F>>,
    _values: PhantomData<fn(T) -> T>,
}

impl<T: 'static, F: FnOnce(T) -> T + 'static> Body for Entry<T, F> {
    fn run(self: Rc<Self>) -> Next {
        let f = self.f.take().expect("a greenlet runs once");
        drop(self);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            hub::check_interrupt();
            f(receive::<T>())
        }));
        let me = hub::current();
        me.state.set(State::Dead);
        me.unwinding.set(false);
        let Some(target) = finish_target(&me) else {
            return Next::Park;
        };
        drop(me);
        match outcome {
            Ok(v) => put_value(&target, v),
            Err(p) => target.switch().inbox_panic.set(Some(p)),
        }
        Next::SwitchTo(target)
    }

    fn cannot_start(self: Rc<Self>, _err: io::Error, _label: &str) {
        // Greenlets take their stack when created, so this is never reached.
        drop(self.f.take());
    }

    fn cancel(self: Rc<Self>) {
        drop(self.f.take());
    }
}

/// Where a finished greenlet sends its outcome: whoever waits for it to die, else its first
/// live parent; `None` (back to the hub) if that cannot be switched to now.
fn finish_target(me: &Rc<Fiber>) -> Option<Rc<Fiber>> {
    if me.orphaned.get() {
        return None;
    }
    let target = match me.switch().return_to.borrow_mut().take() {
        Some(t) => t,
        None => live_target(me),
    };
    if switchable(&target) {
        return Some(target);
    }
    log::error!(
        "grove: {} finished but {} cannot be switched to now (it is {:?})",
        me.label(),
        target.label(),
        target.state.get()
    );
    None
}

/// Moves `value` into `target`'s inbox: from now on the target owns it.
#[inline(always)]
fn put_value<T: 'static>(target: &Fiber, value: T) {
    target.put_value(value);
}

/// Takes the current fiber's inbox value (see [`Fiber::take_value`]).
#[inline(always)]
fn take_value<T: 'static>() -> Result<T, bool> {
    hub::with_current(Fiber::take_value::<T>)
}

/// Takes what the last switch into the current fiber sent.
///
/// # Panics
/// Re-raises a child's panic; panics with [`GreenletExit`] if the child died of it; panics if
/// the sender used another value type. An interrupt (kill, timeout) that resumed the fiber
/// unwinds it here.
#[inline(always)]
#[track_caller]
fn receive<T: 'static>() -> T {
    match take_value::<T>() {
        Ok(v) => v,
        Err(_) => receive_slow(),
    }
}

#[cold]
#[track_caller]
fn receive_slow<T: 'static>() -> T {
    loop {
        match take_value::<T>() {
            Ok(v) => return v,
            Err(true) => panic!(
                "grove: a greenlet switch sent a value of another type than the receiver's {}",
                std::any::type_name::<T>()
            ),
            Err(false) => {}
        }
        if let Some(p) = hub::with_current(|me| me.switch().inbox_panic.take()) {
            resume_unwind(p);
        }
        // Resumed without a value: by an interrupt. Unwind for it; if this fiber is already
        // unwinding, the interrupt ends nothing here: keep waiting for a switch.
        hub::check_interrupt();
        hub::wait_for_switch();
    }
}

/// `f` itself if alive, else its first live ancestor (the main greenlet at the end).
fn live_target(f: &Rc<Fiber>) -> Rc<Fiber> {
    let mut cur = f.clone();
    while cur.state.get() == State::Dead {
        let parent = cur.switch().parent.borrow().clone();
        cur = parent.unwrap_or_else(hub::root);
    }
    cur
}

#[inline]
fn switchable(f: &Fiber) -> bool {
    matches!(f.state.get(), State::Fresh | State::Suspended)
}

#[track_caller]
fn check_switchable(target: &Fiber) {
    if !switchable(target) {
        panic!(
            "grove: cannot switch to {}: it is {:?} (waiting in the hub or running), not \
             suspended in a switch",
            target.label(),
            target.state.get()
        );
    }
}
