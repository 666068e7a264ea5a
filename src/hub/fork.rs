//! The hub in a forked child: a fresh start without touching the parent's tasks.
//!
//! `fork` copies the whole address space but only the calling thread. The child therefore holds
//! a copy of every fiber of the parent's hub — their stacks, their captured values, the run
//! queue, the timers, the reactor's registrations — none of which belongs to it: running one of
//! those tasks would repeat the parent's work, and running their `Drop`s would release, a
//! second time, things the parent still owns (flush its buffers, send its goodbyes, delete its
//! files). So the child **leaks** them, on purpose: every fiber except the one that called
//! `fork` is marked dead (wakers and interrupts aimed at it do nothing), and the registry, run
//! queue and timers that refer to them are forgotten, not dropped. Their memory is the child's
//! copy of the parent's memory; it goes away when the child exits.
//!
//! What the child keeps: the calling fiber (it goes on running the code after the fork), the
//! stack pool, and every fd still registered with the reactor, which is registered again with
//! a new epoll instance (the inherited one is shared with the parent and would steal its
//! events), as is the eventfd other threads wake the hub through.
//!
//! Forking from the root (plain `main`, outside any task) is the common case. Forking from
//! inside a task also works: the child carries on as that task, on its stack; the thread's
//! root is then one of the parent's fibers and is marked dead too, so the child never runs
//! the parent's `main` again. One thing still reaches the root's stack: a "would block
//! forever" report panics there (in the root's call into the trampoline), which would unwind
//! the parent's `main` — and run its `Drop`s — in the child. [`on_parents_root`] lets the
//! process module's panic hook end such a child at once instead.
//!
//! [`reset_in_child`] is for every fork grove does or sees: `grove::process` calls it, and so
//! does the monkey-patched `fork`.

#![deny(unsafe_code)]

use std::cell::Cell;
use std::rc::Rc;

use super::Timers;

thread_local! {
    /// Set in a child forked inside a task: the thread's root fiber is the parent's `main`.
    static PARENTS_ROOT: Cell<bool> = const { Cell::new(false) };
}

/// Whether the code running now is on the root stack of a child that was forked inside a task
/// — the parent's `main`, which must not be unwound (or resumed) in the child.
pub(crate) fn on_parents_root() -> bool {
    PARENTS_ROOT.get() && super::fiber::current_rc().is_none_or(|f| f.is_root())
}

/// Whether this thread is a forked child's that was forked inside a task.
pub(crate) fn forked_inside_a_task() -> bool {
    PARENTS_ROOT.get()
}
use crate::coro::fiber::State;

/// Discards the parent's hub state in a forked child (see the module docs). Call it in the
/// child, right after `fork`, before any other grove call, on the thread that forked.
pub(crate) fn reset_in_child() {
    let _ = super::try_with(|hub| {
        let me = super::fiber::current_rc();
        let registry = std::mem::take(&mut *hub.registry.borrow_mut());
        for f in registry.slots.iter().flatten() {
            bury(f, me.as_ref());
        }
        // A task forked: the root is the parent's main, which must never run here.
        if let (Some(root), Some(me)) = (hub.root.get(), me.as_ref()) {
            if !Rc::ptr_eq(root, me) {
                root.state.set(State::Dead);
                PARENTS_ROOT.set(true);
            }
        }
        std::mem::forget(registry);
        std::mem::forget(std::mem::take(&mut *hub.run_queue.borrow_mut()));
        std::mem::forget(std::mem::replace(
            &mut *hub.timers.borrow_mut(),
            Timers::new(),
        ));
        hub.batch.set(0);
        hub.live.set(0);
        if let Some(me) = me.filter(|m| !m.is_root()) {
            // The forking task goes on living here: it is the child's first task.
            me.slot.set(u32::MAX);
            hub.register(&me);
        }
        hub.reactor.reset_in_child();
    });
}

/// Marks a fiber of the parent dead unless it is the one that forked.
fn bury(f: &Rc<super::Fiber>, me: Option<&Rc<super::Fiber>>) {
    if me.is_some_and(|m| Rc::ptr_eq(m, f)) {
        return;
    }
    f.state.set(State::Dead);
}

/// Ends a forked child's hub as a thread exit would: the tasks the child spawned and left
/// running are killed and run until their `Drop`s finish. Only from the root: a child forked
/// inside a task leaves its tasks as they are (it cannot drive them from a task's stack).
pub(crate) fn finish_child() {
    let _ = super::try_with(|hub| {
        if super::fiber::current_rc().is_none_or(|f| f.is_root()) {
            hub.teardown();
        }
    });
}
