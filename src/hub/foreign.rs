//! Parking inside foreign frames: the rules for a fiber that blocks inside a hooked libc call
//! (monkey patching).
//!
//! Between the user's code and a hook sit C-ABI frames (std's or a C library's call into
//! "libc") that cannot unwind: a kill or a `Timeout` that unwound from a park inside a hook
//! would abort the process. So while a fiber is inside a hook ([`enter`]):
//! - an interrupt that reaches it is **held back**: it stays pending, the fiber's park returns
//!   early, and the hooked call fails (the hook picks the errno from [`Foreign::why`]);
//! - the interrupt is delivered — the fiber unwinds — at its next park, yield or switch outside
//!   a hook (any grove call), and `Timeout::catch` reports a held-back timeout as elapsed;
//! - a root that would block forever gets an error instead of the "would block forever" panic.

#![cfg_attr(not(feature = "monkey"), allow(dead_code))]

use std::rc::Rc;

use crate::coro::fiber::{self, Fiber, Interrupt, State, FOREIGN_IN, FOREIGN_REFUSED};

/// [`Fiber::foreign`]: the root's park inside a hook found nothing that could ever wake it.
const FOREIGN_DEADLOCK: u8 = 4;

/// Why a park inside a hook ended early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Why {
    /// The task was killed (or a greenlet is being made to exit).
    Killed,
    /// A `Timeout` fired.
    TimedOut,
    /// Nothing could ever wake the thread's root.
    WouldBlockForever,
    /// An interrupt reached a fiber that is already unwinding.
    Unwinding,
}

/// The current fiber is inside a hooked call while this lives.
pub(crate) struct Foreign {
    fiber: Rc<Fiber>,
    outer: u8,
}

/// Marks the current fiber as inside a hooked call — if it may park here: the thread has a hub
/// that is not being torn down, the code runs in a task or in the root (not in the hub's loop,
/// nor in a generator body). `None`: the hook must behave like plain libc.
#[inline]
pub(crate) fn enter() -> Option<Foreign> {
    let fiber = fiber::current_rc()?;
    if fiber.state.get() != State::Running || crate::coro::generator::is_inside() || !super::alive()
    {
        return None;
    }
    let outer = fiber.foreign.get();
    fiber.foreign.set((outer | FOREIGN_IN) & !FOREIGN_DEADLOCK);
    Some(Foreign { fiber, outer })
}

/// Whether this thread has a live hub (without creating one).
#[inline]
pub(crate) fn has_hub() -> bool {
    fiber::try_with_current(|_| ()).is_some() && super::alive()
}

/// Whether the current code could park in a hooked call now (what [`enter`] checks).
#[inline]
pub(crate) fn can_park_here() -> bool {
    fiber::try_with_current(|f| f.state.get() == State::Running).unwrap_or(false)
        && !crate::coro::generator::is_inside()
        && super::alive()
}

impl Foreign {
    /// Whether an interrupt is held back already (an earlier hooked call of this fiber was
    /// interrupted and it has not reached a grove call since): a new wait fails at once.
    pub(crate) fn held_back(&self) -> bool {
        self.fiber.foreign.get() & FOREIGN_REFUSED != 0 && self.fiber.interrupt.get().is_some()
    }

    /// Why the last park ended early.
    ///
    /// On a thread that is exiting (its hub is being torn down, killing every task), this
    /// never returns: a task interrupted inside a hooked call cannot unwind, and failing its
    /// call would only make the code above it go on (typically: panic on the error) at a
    /// moment nothing can come of it. It stays suspended, and the teardown leaves it in place.
    /// (A fiber that is unwinding already — the call is in a `Drop` — gets the error: the
    /// code above it is unwinding anyway, and its `Drop` should finish.)
    pub(crate) fn why(&self) -> Why {
        if !super::alive()
            && !self.fiber.is_root()
            && !crate::coro::unwind::is_unwinding(&self.fiber)
        {
            loop {
                self.fiber.state.set(State::Parked);
                fiber::suspend_current(crate::coro::fiber::Next::Park);
            }
        }
        if self.fiber.foreign.get() & FOREIGN_DEADLOCK != 0 {
            return Why::WouldBlockForever;
        }
        match self.fiber.interrupt.get() {
            Some(Interrupt::Timeout(_)) => Why::TimedOut,
            Some(Interrupt::Kill | Interrupt::Exit) => Why::Killed,
            None => Why::Unwinding,
        }
    }

    /// Lets the other ready fibers run once (a hooked call that fails at once because of a
    /// held-back interrupt yields first, so code that retries in a loop cannot starve the hub).
    pub(crate) fn yield_now(&self) {
        super::yield_now();
    }
}

impl Drop for Foreign {
    fn drop(&mut self) {
        let now = self.fiber.foreign.get();
        self.fiber
            .foreign
            .set((self.outer & FOREIGN_IN) | (now & (FOREIGN_REFUSED | FOREIGN_DEADLOCK)));
    }
}

/// Whether the current fiber is inside a hooked call.
pub(crate) fn inside() -> bool {
    fiber::try_with_current(|f| f.foreign.get() & FOREIGN_IN != 0).unwrap_or(false)
}

/// Whether the current fiber has an interrupt held back (see [`Foreign::held_back`]).
pub(crate) fn held_back_now() -> bool {
    fiber::try_with_current(|f| {
        f.foreign.get() & FOREIGN_REFUSED != 0 && f.interrupt.get().is_some()
    })
    .unwrap_or(false)
}

/// The root's park inside a hook found nothing that could ever wake it (see [`Why`]).
pub(crate) fn would_block_forever() {
    let _ = fiber::try_with_current(|f| f.foreign.set(f.foreign.get() | FOREIGN_DEADLOCK));
}

/// Withdraws a held-back interrupt of timeout `id` from the current fiber: true if there was
/// one (the timeout fired while the fiber was inside a hooked call).
pub(crate) fn take_held_back_timeout(id: u64) -> bool {
    fiber::try_with_current(|f| {
        let held = f.foreign.get() & FOREIGN_REFUSED != 0;
        match f.interrupt.get() {
            Some(Interrupt::Timeout(o)) if held && o.id == id => {
                f.interrupt.set(None);
                f.foreign.set(f.foreign.get() & !FOREIGN_REFUSED);
                true
            }
            _ => false,
        }
    })
    .unwrap_or(false)
}
