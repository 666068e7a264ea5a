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

use std::any::{Any, TypeId};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::rc::Rc;

use super::fiber::{self, Fiber, Interrupt, Kind, Next, State};
use super::stack::default_stack_size;
use crate::hub;

/// The payload a greenlet unwinds with when [`Greenlet::throw`] is called on it (Python's
/// `GreenletExit`). It ends the greenlet quietly; its parent is told through [`GreenletExit`]
/// as well (see [`Greenlet::switch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GreenletExit;

impl fmt::Display for GreenletExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("greenlet exited (GreenletExit)")
    }
}

impl std::error::Error for GreenletExit {}

/// Setting this parent would make a greenlet its own ancestor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParentCycle;

impl fmt::Display for ParentCycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cyclic parent chain: a greenlet cannot be its own ancestor")
    }
}

impl std::error::Error for ParentCycle {}

/// What travels with a switch (values take the fast path in `VALUE`).
enum Handoff {
    Empty,
    /// A finished greenlet's return value.
    Boxed(Box<dyn Any>),
    /// A finished greenlet's panic, re-raised in the receiver.
    Panic(Box<dyn Any + Send>),
    /// The previous greenlet died of `GreenletExit`.
    Exited,
}

thread_local! {
    static HANDOFF: RefCell<Handoff> = const { RefCell::new(Handoff::Empty) };
    /// A switched value: points at an `Option<T>` on the stack of the suspended sender, with
    /// `T`'s type id. Null when the handoff is in `HANDOFF` instead.
    static VALUE: Cell<(*mut (), TypeId)> = const { Cell::new((std::ptr::null_mut(), TypeId::of::<()>())) };
}

fn put(h: Handoff) {
    VALUE.set((std::ptr::null_mut(), TypeId::of::<()>()));
    HANDOFF.with(|s| *s.borrow_mut() = h);
}

#[inline]
fn put_value<T: 'static>(slot: &mut Option<T>) {
    VALUE.set(((slot as *mut Option<T>).cast(), TypeId::of::<T>()));
}

/// Takes what the last switch into the current fiber sent.
///
/// # Panics
/// Re-raises a child's panic; panics with [`GreenletExit`] if the child died of it; panics if
/// the sender used another value type.
#[inline]
fn receive<T: 'static>() -> T {
    let (p, ty) = VALUE.replace((std::ptr::null_mut(), TypeId::of::<()>()));
    if !p.is_null() {
        if ty != TypeId::of::<T>() {
            type_mismatch::<T>();
        }
        // SAFETY: `p` was set by a sender now suspended inside `switch`, where the `Option<T>`
        // it points to (of type `T`, checked above) lives on its stack until that switch
        // returns; nothing ran between its suspension and this take (see `Greenlet::switch`).
        let slot = unsafe { &mut *p.cast::<Option<T>>() };
        return slot.take().unwrap_or_else(|| type_mismatch::<T>());
    }
    receive_slow()
}

#[cold]
fn receive_slow<T: 'static>() -> T {
    match HANDOFF.with(|s| std::mem::replace(&mut *s.borrow_mut(), Handoff::Empty)) {
        Handoff::Boxed(b) => match b.downcast::<T>() {
            Ok(v) => *v,
            Err(_) => type_mismatch::<T>(),
        },
        Handoff::Panic(p) => resume_unwind(p),
        Handoff::Exited => resume_unwind(Box::new(GreenletExit)),
        Handoff::Empty => panic!("grove: greenlet resumed without a value"),
    }
}

#[cold]
fn type_mismatch<T>() -> ! {
    panic!(
        "grove: a greenlet switch sent a value of another type than the receiver's {}",
        std::any::type_name::<T>()
    )
}

/// A handle to a greenlet whose switch values are `T`.
///
/// Dropping the last handle of a greenlet that is suspended mid-function unwinds it (its
/// `Drop`s run), as greenlet does on garbage collection.
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
pub fn getcurrent<T: 'static>() -> Greenlet<T> {
    Greenlet::from_fiber(hub::current())
}

impl<T: 'static> Greenlet<T> {
    fn from_fiber(fiber: Rc<Fiber>) -> Self {
        Greenlet {
            fiber,
            _values: PhantomData,
        }
    }

    /// Creates a greenlet that runs `f` on its first switch; its parent is the current greenlet.
    ///
    /// # Panics
    /// Panics if no stack can be allocated; [`Greenlet::with_stack_size`] returns the error.
    pub fn new<F>(f: F) -> Self
    where
        F: FnOnce(T) -> T + 'static,
    {
        Self::with_stack_size(default_stack_size(), f)
            .unwrap_or_else(|e| panic!("grove: cannot create a greenlet: {e}"))
    }

    /// Creates a greenlet with a stack of at least `size` bytes.
    pub fn with_stack_size<F>(size: usize, f: F) -> io::Result<Self>
    where
        F: FnOnce(T) -> T + 'static,
    {
        let id = hub::with(|h| h.next_id());
        let fiber = Fiber::new(Kind::Greenlet, id, None, size, move || entry(f))?;
        *fiber.parent.borrow_mut() = Some(hub::current());
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
    pub fn switch(&self, value: T) -> T {
        let target = live_target(&self.fiber);
        if fiber::is_current(&target) {
            return value;
        }
        check_switchable(&target);
        let mut slot = Some(value);
        put_value(&mut slot);
        transfer(target);
        receive::<T>()
    }

    /// Kills this greenlet: it unwinds from where it is suspended with [`GreenletExit`] (its
    /// `Drop`s run) and is dead afterwards; control then goes to its parent. A greenlet that
    /// never started dies without running. Returns when control comes back to the caller.
    ///
    /// # Panics
    /// As [`Greenlet::switch`], except that the child's `GreenletExit` is not re-raised here.
    pub fn throw(&self) {
        if self.is_dead() {
            return;
        }
        if fiber::is_current(&self.fiber) {
            resume_unwind(Box::new(GreenletExit));
        }
        check_switchable(&self.fiber);
        self.fiber.interrupt.set(Some(Interrupt::Exit));
        put(Handoff::Empty);
        transfer(self.fiber.clone());
        // A value switched back to us stays in its sender's slot (and is dropped there).
        VALUE.set((std::ptr::null_mut(), TypeId::of::<()>()));
        match HANDOFF.with(|s| std::mem::replace(&mut *s.borrow_mut(), Handoff::Empty)) {
            Handoff::Panic(p) => resume_unwind(p),
            Handoff::Exited | Handoff::Empty | Handoff::Boxed(_) => {}
        }
    }

    /// The parent greenlet (`None` for a thread's main greenlet and for tasks).
    pub fn parent(&self) -> Option<Greenlet<T>> {
        self.fiber.parent.borrow().clone().map(Greenlet::from_fiber)
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
            cur = f.parent.borrow().clone();
        }
        *self.fiber.parent.borrow_mut() = Some(parent.fiber.clone());
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

/// The greenlet entry: receive the first value, run `f`, hand the outcome to the parent.
fn entry<T: 'static, F: FnOnce(T) -> T>(f: F) -> Next {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        fiber::with_current(hub::check_interrupt);
        f(receive::<T>())
    }));
    let handoff = match outcome {
        Ok(v) => Handoff::Boxed(Box::new(v)),
        Err(p) if fiber::force_unwinding() => resume_unwind(p),
        Err(p) if p.is::<GreenletExit>() => Handoff::Exited,
        Err(p) => Handoff::Panic(p),
    };
    let me = hub::current();
    me.state.set(State::Dead);
    let parent = live_target(&me);
    drop(me);
    if !switchable(&parent) {
        log::error!("grove: a greenlet finished but its parent cannot be switched to now");
        return Next::Park;
    }
    put(handoff);
    Next::SwitchTo(parent)
}

/// `f` itself if alive, else its first live ancestor (the main greenlet at the end).
#[inline]
fn live_target(f: &Rc<Fiber>) -> Rc<Fiber> {
    if f.state.get() != State::Dead {
        return f.clone();
    }
    live_ancestor(f)
}

#[cold]
fn live_ancestor(f: &Rc<Fiber>) -> Rc<Fiber> {
    let mut cur = f.clone();
    while cur.state.get() == State::Dead {
        let parent = cur.parent.borrow().clone();
        cur = parent.unwrap_or_else(hub::root);
    }
    cur
}

#[inline]
fn switchable(f: &Fiber) -> bool {
    matches!(f.state.get(), State::Fresh | State::Suspended)
}

#[inline]
fn check_switchable(target: &Fiber) {
    if !switchable(target) {
        not_switchable(target);
    }
}

#[cold]
fn not_switchable(target: &Fiber) -> ! {
    {
        panic!(
            "grove: cannot switch to {}: it is {:?} (waiting in the hub or running), not \
             suspended in a switch",
            target.label(),
            target.state.get()
        );
    }
}

/// Switches to `target`; on return, delivers any interrupt addressed to the current fiber.
#[inline]
fn transfer(target: Rc<Fiber>) {
    struct ClearOnUnwind;
    impl Drop for ClearOnUnwind {
        fn drop(&mut self) {
            if std::thread::panicking() {
                put(Handoff::Empty);
            }
        }
    }
    let guard = ClearOnUnwind;
    hub::switch_to(target);
    std::mem::forget(guard);
    fiber::with_current(hub::check_interrupt);
}
