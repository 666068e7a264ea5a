//! Running thread-blocking calls off the hub (gevent's `threadpool`).
//!
//! Some calls block the OS thread no matter what: name resolution (`getaddrinfo`), file I/O on
//! slow disks, a C library's blocking API, a long computation. On a hub thread such a call
//! would stall every task. [`spawn_blocking`] runs it on a small, shared pool of worker threads
//! and parks only the calling task until it finishes; the worker wakes the hub through an
//! eventfd.
//!
//! ```
//! let sum = grove::threadpool::spawn_blocking(|| (1..=100u64).sum::<u64>());
//! assert_eq!(sum, 5050);
//! ```
//!
//! ## Nested calls and stalls
//! A job that itself calls [`spawn_blocking`] (or resolves a name with
//! [`net::lookup_host`](crate::net::lookup_host)) runs the inner call **inline**, on the worker
//! it already occupies: a worker may block, so nothing is lost, while queueing the inner call
//! behind the outer one would deadlock as soon as every worker held an outer job (with
//! `set_max_threads(1)`, at once). Growing the pool for nested calls instead would let a
//! recursive job start threads without bound.
//!
//! Jobs that wait for *each other* (one blocks on a channel another job feeds) can still
//! exhaust the pool. Such a pool is reported, not silent: a task whose job has not started
//! after a second logs a warning (`log::warn!`) naming the busy workers, the queue and the
//! limit, and again at doubling intervals. Raising the limit with [`set_max_threads`] starts
//! workers for the queued jobs at once.

#![deny(unsafe_code)]

use std::cell::Cell;
use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::hub::timers::deadline_after;

/// How many worker threads the pool may run at once unless changed (gevent's default).
pub const DEFAULT_MAX_THREADS: usize = 10;

/// How long an idle worker waits for work before it exits.
const IDLE_EXIT: Duration = Duration::from_secs(10);

/// How long a job may wait to start before the waiting task reports a stalled pool; the
/// interval doubles after each report, up to [`STALL_REPORT_MAX`].
const STALL_REPORT: Duration = Duration::from_secs(1);
const STALL_REPORT_MAX: Duration = Duration::from_secs(60);

static MAX_THREADS: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_THREADS);

thread_local! {
    /// Set on the pool's worker threads: a `spawn_blocking` there runs inline.
    static ON_WORKER: Cell<bool> = const { Cell::new(false) };
}

type Job = Box<dyn FnOnce() + Send>;

struct State {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

struct Pool {
    state: Mutex<State>,
    work: Condvar,
}

static POOL: Pool = Pool {
    state: Mutex::new(State {
        jobs: VecDeque::new(),
        threads: 0,
        idle: 0,
    }),
    work: Condvar::new(),
};

/// Sets how many worker threads the pool may run at once (at least 1). Jobs beyond that wait
/// in a FIFO queue. Raising the limit starts workers for jobs already queued.
pub fn set_max_threads(n: usize) {
    MAX_THREADS.store(n.max(1), Ordering::Relaxed);
    start_workers(lock(&POOL.state));
}

/// The current limit on worker threads.
pub fn max_threads() -> usize {
    MAX_THREADS.load(Ordering::Relaxed)
}

/// Runs `f` on a worker thread and parks the calling task (only that task) until it returns.
///
/// Called outside any task, the hub keeps running other tasks while `f` runs. Called on one of
/// the pool's own workers (from inside a job), `f` runs inline there: see the module docs. If
/// the calling task is killed or times out meanwhile, it unwinds at once; `f` still runs to
/// completion on its worker and its result is dropped there. A job that cannot start because
/// every worker is busy is reported with a `log::warn!` after a second, and again at doubling
/// intervals.
///
/// # Panics
/// If `f` panics, the panic is resumed in the caller. Like any blocking call, it panics inside
/// a generator body.
pub fn spawn_blocking<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    run(f).expect("grove: a thread-pool call gave up waiting outside a hooked call")
}

/// [`spawn_blocking`] for a hooked libc call (monkey patching): `None` if an interrupt ended the
/// wait (inside a hook it is held back rather than unwinding; `f` still runs to completion on
/// its worker and its result is dropped there).
#[cfg_attr(not(feature = "monkey"), allow(dead_code))]
pub(crate) fn spawn_blocking_in_hook<F, T>(f: F) -> Option<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    run(f)
}

fn run<F, T>(f: F) -> Option<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if ON_WORKER.get() {
        return Some(f());
    }
    let remote = match crate::hub::with(|hub| hub.reactor.remote()) {
        Ok(r) => r,
        Err(e) => {
            log::warn!("grove: no reactor for the thread pool ({e}); running the call inline");
            return Some(f());
        }
    };
    let id = crate::hub::with(|hub| hub.reactor.begin_job());
    let slot = Arc::new(Mutex::new(None));
    let started = Arc::new(AtomicBool::new(false));
    let (out, begun) = (slot.clone(), started.clone());
    submit(Box::new(move || {
        begun.store(true, Ordering::Relaxed);
        let result = panic::catch_unwind(AssertUnwindSafe(f));
        *lock(&out) = Some(result);
        remote.complete(id);
    }));
    if !wait_reporting_stalls(id, &started) {
        return None;
    }
    let result = lock(&slot).take();
    match result.expect("grove: a thread-pool job finished without a result") {
        Ok(v) => Some(v),
        Err(payload) => panic::resume_unwind(payload),
    }
}

/// Parks until job `id` completes, warning whenever it has waited too long to start. False if
/// an interrupt held back inside a hooked call ended the wait.
fn wait_reporting_stalls(id: u64, started: &AtomicBool) -> bool {
    let queued_at = Instant::now();
    let mut every = STALL_REPORT;
    let what = "a call on the thread pool";
    while !crate::hub::with(|hub| hub.reactor.wait_job(id, what, deadline_after(every))) {
        if crate::hub::foreign::inside() && crate::hub::foreign::held_back_now() {
            return false;
        }
        if !started.load(Ordering::Relaxed) {
            report_stall(queued_at.elapsed());
        }
        every = (every * 2).min(STALL_REPORT_MAX);
    }
    true
}

fn report_stall(waited: Duration) {
    let st = lock(&POOL.state);
    let (busy, queued) = (st.threads - st.idle.min(st.threads), st.jobs.len());
    drop(st);
    log::warn!(
        "grove: the thread pool is stalled: a job has waited {waited:.1?} to start; {busy} \
         worker thread(s) busy (max_threads {}), {queued} job(s) queued. If pool jobs wait for \
         each other, raise grove::threadpool::set_max_threads",
        max_threads()
    );
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Queues a job, waking an idle worker or starting a new one when under the limit.
fn submit(job: Job) {
    let mut st = lock(&POOL.state);
    st.jobs.push_back(job);
    if st.idle > 0 {
        POOL.work.notify_one();
    }
    start_workers(st);
}

/// Starts workers for the queued jobs no idle worker will take, up to the limit. If not even
/// one worker exists or can be started, the newest job runs inline on the calling thread.
fn start_workers(mut st: MutexGuard<'_, State>) {
    let wanted = st.jobs.len().saturating_sub(st.idle);
    let room = max_threads().saturating_sub(st.threads);
    let n = wanted.min(room);
    st.threads += n;
    drop(st);
    for _ in 0..n {
        let started = std::thread::Builder::new()
            .name("grove-pool".into())
            .spawn(worker);
        if let Err(e) = started {
            let mut st = lock(&POOL.state);
            st.threads -= 1;
            let orphan = if st.threads == 0 {
                st.jobs.pop_back()
            } else {
                None
            };
            drop(st);
            log::warn!("grove: cannot start a pool thread ({e})");
            if let Some(job) = orphan {
                log::warn!("grove: no pool thread at all; running the call inline");
                job();
            }
        }
    }
}

/// A worker: runs jobs in FIFO order; exits after [`IDLE_EXIT`] without work.
fn worker() {
    ON_WORKER.set(true);
    let mut st = lock(&POOL.state);
    loop {
        if let Some(job) = st.jobs.pop_front() {
            drop(st);
            job();
            st = lock(&POOL.state);
            continue;
        }
        st.idle += 1;
        let (guard, timeout) = POOL
            .work
            .wait_timeout(st, IDLE_EXIT)
            .unwrap_or_else(|e| e.into_inner());
        st = guard;
        st.idle -= 1;
        if timeout.timed_out() && st.jobs.is_empty() {
            st.threads -= 1;
            return;
        }
    }
}

/// The pool's lock, held across a `fork` (see `grove::process`): no worker is inside the pool's
/// bookkeeping when the child is made, so the child finds it consistent.
pub(crate) struct ForkLock(MutexGuard<'static, State>);

/// Takes the pool's lock before a fork.
pub(crate) fn fork_lock() -> ForkLock {
    ForkLock(lock(&POOL.state))
}

impl ForkLock {
    /// Workers running a job right now (their jobs will not exist in a forked child).
    pub(crate) fn busy(&self) -> usize {
        self.0.threads - self.0.idle.min(self.0.threads)
    }

    /// In a forked child: the workers did not come along (fork copies only the calling thread),
    /// so the pool starts empty and the next job starts a worker. Queued jobs belong to the
    /// parent's tasks, which never run here: they are leaked, not run or dropped.
    pub(crate) fn reset_in_child(mut self) {
        std::mem::forget(std::mem::take(&mut self.0.jobs));
        self.0.threads = 0;
        self.0.idle = 0;
    }
}
