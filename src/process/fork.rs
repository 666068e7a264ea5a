//! The one place grove forks: everything the child must reset, in order.
//!
//! Before the fork, in the parent: stdout is flushed (else the child would print the parent's
//! buffered text again), the thread pool's and the signal table's locks are taken (so no other
//! thread holds them at the instant of the fork; the child finds them consistent), and every
//! signal is blocked on the forking thread (a signal that reached the child before it reset its
//! handlers would be reported to the *parent's* subscribers through their shared pipe).
//!
//! In the child: the thread pool is emptied (its workers did not come along), the parent's
//! signal subscriptions are dropped and their handlers restored, the hub is reset
//! ([`crate::hub::fork::reset_in_child`]: the parent's tasks are leaked, fds re-registered with
//! a new epoll), and only then are signals unblocked — by the child's code, when it is ready
//! (a pre-fork worker subscribes to SIGTERM first, so an early SIGTERM is handled, not fatal).

use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};

use crate::hub::sys::process::{self as sys, Forked, SigMask};

/// Restores the forking thread's signal mask when dropped (in the child: when the child's code
/// is ready for signals).
#[derive(Debug)]
pub(crate) struct Unmask(Option<SigMask>);

impl Drop for Unmask {
    fn drop(&mut self) {
        if let Some(mask) = self.0.take() {
            mask.restore();
        }
    }
}

impl std::fmt::Debug for SigMask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigMask")
    }
}

/// The exit code of a forked child whose code panicked (Rust's own code for a panicking `main`).
pub(crate) const PANIC_EXIT_CODE: i32 = 101;

/// Everything held across a fork: take it with [`prepare`] right before `fork`, then call
/// [`ForkGuard::in_parent`] or [`ForkGuard::in_child`] on each side. This is the whole
/// protocol; [`fork_then`] is built on it, and a hook on libc's `fork` (the monkey module)
/// uses it around the real call.
pub(crate) struct ForkGuard {
    pool: crate::threadpool::ForkLock,
    signals: crate::hub::sys::signal::ForkLock,
    mask: SigMask,
}

/// Flushes stdout, takes the thread pool's and the signal table's locks and blocks every
/// signal on this thread, ready for a fork.
pub(crate) fn prepare() -> ForkGuard {
    let _ = io::stdout().flush();
    let pool = crate::threadpool::fork_lock();
    if pool.busy() > 0 {
        log::debug!(
            "grove: forking while {} thread-pool job(s) run; they stay in the parent",
            pool.busy()
        );
    }
    let signals = crate::hub::sys::signal::fork_lock();
    let mask = SigMask::block_all();
    ForkGuard {
        pool,
        signals,
        mask,
    }
}

impl ForkGuard {
    /// In the parent (or after a failed fork): the mask comes back, the locks are released.
    pub(crate) fn in_parent(self) {
        self.mask.restore();
    }

    /// In the child: the thread pool is emptied, the signal subscriptions dropped, the hub
    /// reset ([`crate::hub::fork::reset_in_child`]). Signals stay blocked until the returned
    /// [`Unmask`] is dropped.
    pub(crate) fn in_child(self) -> Unmask {
        self.pool.reset_in_child();
        self.signals.reset_in_child();
        crate::hub::fork::reset_in_child();
        if crate::hub::fork::forked_inside_a_task() {
            guard_parents_main();
        }
        Unmask(Some(self.mask))
    }
}

/// Forks; the child runs `child` (with signals blocked until it drops the [`Unmask`]) and exits
/// with the code it returns (or [`PANIC_EXIT_CODE`] if it panics). Returns the child's pid.
pub(crate) fn fork_then(child: impl FnOnce(Unmask) -> i32) -> io::Result<libc::pid_t> {
    let guard = prepare();
    // SAFETY: the locks the child's grove code takes (thread pool, signal table) are held
    // across the fork and reset in the child; the hub is thread-local and reset in the child.
    // Locks of other threads are the caller's business (documented in `grove::process`).
    match unsafe { sys::fork() } {
        Err(e) => {
            guard.in_parent();
            Err(e)
        }
        Ok(Forked::Parent(pid)) => {
            guard.in_parent();
            Ok(pid)
        }
        Ok(Forked::Child) => {
            let unmask = guard.in_child();
            let code =
                panic::catch_unwind(AssertUnwindSafe(|| child(unmask))).unwrap_or(PANIC_EXIT_CODE);
            exit_child(code)
        }
    }
}

/// In a child forked inside a task, a panic on the root stack (a "would block forever" report
/// of the child's hub) would unwind the parent's `main` in the child: report it and end the
/// child there instead.
fn guard_parents_main() {
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        previous(info);
        if crate::hub::fork::on_parents_root() {
            let _ = io::stderr().write_all(
                b"grove: this forked child panicked on its parent's main stack; it exits here\n",
            );
            sys::exit_now(PANIC_EXIT_CODE);
        }
    }));
}

/// Ends a forked child: its own tasks are torn down as when `main` returns (so their `Drop`s
/// run), stdout is flushed, and the process exits without running the parent's `atexit`
/// handlers or thread-local destructors a second time.
fn exit_child(code: i32) -> ! {
    crate::hub::fork::finish_child();
    let _ = io::stdout().flush();
    sys::exit_now(code)
}
