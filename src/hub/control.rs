//! The one internal API for controlling a task from outside it: its id and name, whether it
//! finished, and kill. `JoinHandle`, `Group` and `StreamServer` all kill through
//! [`TaskRef::kill`], so the rules live in one place:
//! - a task that never started never runs: its closure is dropped (its captures' `Drop`s run)
//!   and it is finished at once;
//! - a task that waits is woken and unwinds from its park point (its `Drop`s run);
//! - a task that a completion already woke unwinds at its next park, switch or yield;
//! - a task killing itself unwinds at once — unless it is already unwinding, in which case the
//!   kill is what is happening anyway.

use std::rc::{Rc, Weak};

use super::with;
use crate::coro::fiber::{Fiber, Interrupt, State};
use crate::coro::unwind;

/// A reference to a task (or any fiber) that can ask about it and kill it.
#[derive(Clone)]
pub(crate) struct TaskRef(Rc<Fiber>);

/// What [`TaskRef::kill`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Killed {
    /// The task had finished already.
    AlreadyDead,
    /// It had not started: it never will, and it is finished now.
    BeforeStart,
    /// It was interrupted; it finishes once it has unwound (wait for that if you need to).
    Interrupted,
}

impl TaskRef {
    pub(crate) fn new(fiber: Rc<Fiber>) -> TaskRef {
        TaskRef(fiber)
    }

    /// The task running now (or the thread's root).
    pub(crate) fn current() -> TaskRef {
        TaskRef(super::current())
    }

    /// The task's id (unique on its hub).
    pub(crate) fn id(&self) -> u64 {
        self.0.id
    }

    /// The task's name, if it was given one.
    pub(crate) fn name(&self) -> Option<&str> {
        self.0.name.as_deref().map(String::as_str)
    }

    /// The name for messages (`'name'` or `task #3`).
    pub(crate) fn label(&self) -> String {
        self.0.label()
    }

    /// Whether this is the task running now.
    pub(crate) fn is_current(&self) -> bool {
        crate::coro::fiber::is_current(&self.0)
    }

    /// A reference that does not keep the task alive.
    pub(crate) fn downgrade(&self) -> WeakTask {
        WeakTask(Rc::downgrade(&self.0))
    }

    /// Whether both refer to the same task.
    pub(crate) fn ptr_eq(&self, other: &TaskRef) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }

    /// Kills the task (see the module doc for the rules). Does not wait.
    pub(crate) fn kill(&self) -> Killed {
        let f = &self.0;
        if f.state.get() == State::Dead {
            return Killed::AlreadyDead;
        }
        if self.is_current() {
            if unwind::is_unwinding(f) {
                return Killed::Interrupted;
            }
            unwind::unwind_for(f, Interrupt::Kill);
        }
        if f.cancel_unstarted() {
            with(|h| h.forget(f));
            return Killed::BeforeStart;
        }
        with(|h| h.interrupt(f, Interrupt::Kill));
        Killed::Interrupted
    }
}

/// A task reference that does not keep the task alive (for per-task storage).
pub(crate) struct WeakTask(Weak<Fiber>);

impl WeakTask {
    /// Whether the task still exists and has not finished.
    pub(crate) fn is_alive(&self) -> bool {
        self.0
            .upgrade()
            .is_some_and(|f| f.state.get() != State::Dead)
    }
}
