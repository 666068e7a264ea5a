//! Seeing inside the hub: task dumps (also on `SIGUSR2`), the blocking watchdog, counters, a
//! switch trace hook, and seeded scheduling for tests. The "would block forever" panic and the
//! dump share one view of the tasks: what each waits on, for how long, who holds it, where it
//! was spawned, and whether it can never wake. `docs/debugging.md` shows every output.
//!
//! Everything here costs nothing measurable when unused: the counters are plain increments,
//! the trace hook is one predictable branch per switch while unset, seeded scheduling is one
//! branch per pop of the run queue while off, and dump requests and the watchdog are one
//! relaxed load each per loop iteration. What dumps need is kept in space a task already had
//! (a fiber is still 200 bytes): where it was spawned, when it parked, and what it parked on.
//!
//! ```
//! let before = grove::debug::metrics();
//! let h = grove::spawn(|| grove::sleep(std::time::Duration::from_millis(1)));
//! assert_eq!(grove::debug::metrics().tasks_alive, before.tasks_alive + 1);
//! h.join().unwrap();
//! let after = grove::debug::metrics();
//! assert!(after.switches > before.switches);
//! assert_eq!(after.tasks_alive, before.tasks_alive);
//! ```

use crate::hub;

mod dump;

pub(crate) use dump::dump_chunked;
pub use dump::{dump, dump_to, Dump};

/// Makes `SIGUSR2` print a task dump of every hub to stderr (at each hub's next loop
/// iteration; an idle hub is woken for it). The environment variable `GROVE_DUMP_SIGNAL=1`
/// does the same at the first hub's creation, so a running program can be inspected with
/// `kill -USR2 <pid>` without code changes. The handler only counts the request and writes an
/// eventfd (both async-signal-safe); the printing happens on each hub's own thread.
///
/// # Errors
/// If the eventfd or the signal handler cannot be set up.
pub fn dump_on_signal() -> std::io::Result<()> {
    hub::sys::debug_signal::install()
}

/// The blocking watchdog's default threshold (gevent's `max_blocking_time`).
pub const DEFAULT_WATCHDOG_THRESHOLD: std::time::Duration = std::time::Duration::from_millis(100);

/// Turns the blocking watchdog on (`Some(threshold)`) or off (`None`), for every hub of the
/// process (gevent's `max_blocking_time`). A monitor thread, started on first use, notices a
/// hub that has not switched tasks for longer than `threshold` while it has tasks and is not
/// idle, and reports on stderr which task is running, where it was spawned, for how long the
/// hub has been blocked, and the address of the instruction it was interrupted at (a `SIGURG`
/// sent to the stuck thread; its handler only formats into a stack buffer and calls `write`).
/// One report per stall, then one line when the hub comes back; at most one full report a
/// second per hub, later stalls are counted. The environment variable `GROVE_WATCHDOG=ms`
/// (`GROVE_WATCHDOG=1` for the default 100 ms) turns it on when the first hub is created.
///
/// What it costs the hubs: nothing per switch (the heartbeat is the switch counter the hub
/// keeps anyway), a store before and after each blocking `epoll_wait`, and a relaxed load per
/// loop iteration.
///
/// A program that installs its own `SIGURG` handler should not use the watchdog.
///
/// # Errors
/// If the monitor thread or the signal handler cannot be set up.
pub fn watchdog(threshold: Option<std::time::Duration>) -> std::io::Result<()> {
    hub::sys::watchdog::configure(threshold)
}

/// Applies the debugging environment variables (`GROVE_DUMP_SIGNAL`, `GROVE_WATCHDOG`) when a
/// hub is created.
pub(crate) fn from_env() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Some(v) = std::env::var_os("GROVE_WATCHDOG") {
            let ms: u64 = v.to_str().and_then(|v| v.trim().parse().ok()).unwrap_or(0);
            let t = match ms {
                0 => None,
                1 => Some(DEFAULT_WATCHDOG_THRESHOLD),
                ms => Some(std::time::Duration::from_millis(ms)),
            };
            if let Err(e) = watchdog(t) {
                log::warn!("grove: GROVE_WATCHDOG: {e}");
            }
        }
        if std::env::var_os("GROVE_DUMP_SIGNAL").is_some_and(|v| v != "0") {
            if let Err(e) = dump_on_signal() {
                log::warn!("grove: GROVE_DUMP_SIGNAL: {e}");
            }
        }
    });
}

/// A snapshot of this thread's hub: cheap to take (no walk over tasks), `Copy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Tasks and greenlets that exist and have not finished.
    pub tasks_alive: usize,
    /// Of those, how many are in the run queue.
    pub tasks_ready: usize,
    /// Of those, how many wait: parked in the hub, suspended in a greenlet switch, or not
    /// started yet and not queued (`tasks_alive` − ready − the one running).
    pub tasks_parked: usize,
    /// Fibers resumed on this thread so far.
    pub switches: u64,
    /// Times the hub asked epoll for readiness.
    pub polls: u64,
    /// Pending timers (sleeps, deadlines, `Timeout`s).
    pub timers_armed: usize,
    /// File descriptors registered with the reactor.
    pub fds_registered: usize,
    /// Stacks idle in this thread's pool.
    pub idle_stacks: usize,
    /// Address space of the idle stacks that may still hold memory (an upper bound on the
    /// resident memory the pool keeps; trimmed stacks hold none).
    pub idle_stack_bytes: usize,
}

/// Counters of this thread's hub.
pub fn metrics() -> Metrics {
    hub::with(|h| h.metrics())
}

/// Why the fiber that ran before a [`SwitchEvent`] stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwitchReason {
    /// It blocked (a sleep, a join, I/O, a wait) or is main waiting in the hub.
    Park,
    /// It called `yield_now`.
    Yield,
    /// It switched to a greenlet.
    Switch,
    /// It finished (returned, panicked or was killed).
    Finish,
}

/// One switch, as the trace hook sees it: `from` stopped (for `why`) and `to` runs next. Ids are
/// those of [`JoinHandle::id`](crate::JoinHandle::id); 0 is the thread's main code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwitchEvent {
    /// The fiber that ran last.
    pub from: u64,
    /// The fiber about to run.
    pub to: u64,
    /// Why `from` stopped.
    pub why: SwitchReason,
}

/// Calls `hook` on every switch of this thread (greenlet's `settrace`), until
/// [`clear_trace`]. The hook runs between fibers: it must not block, switch or spawn (those
/// calls are not made from inside it; a hook that tries is skipped for that event).
///
/// ```
/// use std::{cell::RefCell, rc::Rc};
/// let seen = Rc::new(RefCell::new(Vec::new()));
/// let s = seen.clone();
/// grove::debug::set_trace(move |e| s.borrow_mut().push((e.from, e.to)));
/// let h = grove::spawn(|| ());
/// let id = h.id();
/// h.join().unwrap();
/// grove::debug::clear_trace();
/// assert!(seen.borrow().contains(&(0, id)));
/// assert!(seen.borrow().contains(&(id, 0)));
/// ```
pub fn set_trace(hook: impl FnMut(&SwitchEvent) + 'static) {
    hub::with(|h| h.set_trace(Some(Box::new(hook))));
}

/// Removes this thread's switch trace hook.
pub fn clear_trace() {
    hub::with(|h| h.set_trace(None));
}

/// Seeded scheduling for tests: with `Some(seed)`, this thread's hub runs ready tasks in a
/// pseudo-random order that depends only on the seed, so an ordering bug in your code fails the
/// same way on every run with the same seed; `None` restores first in, first out. The seed is
/// printed to stderr when set. The environment variable `GROVE_SEED=n` sets it for every hub at
/// creation.
pub fn set_seed(seed: Option<u64>) {
    hub::with(|h| h.set_seed(seed));
}

/// `GROVE_SEED`, if set to a number.
pub(crate) fn seed_from_env() -> Option<u64> {
    std::env::var("GROVE_SEED").ok()?.trim().parse().ok()
}

/// One step of xorshift64* (never returns 0 for a non-zero input).
pub(crate) fn xorshift(mut x: u64) -> u64 {
    if x == 0 {
        x = 0x2545_f491_4f6c_dd1d;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d).max(1)
}
