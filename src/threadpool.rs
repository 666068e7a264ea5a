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

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How many worker threads the pool may run at once unless changed (gevent's default).
pub const DEFAULT_MAX_THREADS: usize = 10;

/// How long an idle worker waits for work before it exits.
const IDLE_EXIT: Duration = Duration::from_secs(10);

static MAX_THREADS: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_THREADS);

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
/// in a FIFO queue. Takes effect for jobs submitted afterwards.
pub fn set_max_threads(n: usize) {
    MAX_THREADS.store(n.max(1), Ordering::Relaxed);
}

/// The current limit on worker threads.
pub fn max_threads() -> usize {
    MAX_THREADS.load(Ordering::Relaxed)
}

/// Runs `f` on a worker thread and parks the calling task (only that task) until it returns.
///
/// Called outside any task, the hub keeps running other tasks while `f` runs. If the calling
/// task is killed or times out meanwhile, it unwinds at once; `f` still runs to completion on
/// its worker and its result is dropped there.
///
/// # Panics
/// If `f` panics, the panic is resumed in the caller. Like any blocking call, it panics inside
/// a generator body.
pub fn spawn_blocking<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let remote = match crate::hub::with(|hub| hub.reactor.remote()) {
        Ok(r) => r,
        Err(e) => {
            log::warn!("grove: no reactor for the thread pool ({e}); running the call inline");
            return f();
        }
    };
    let id = crate::hub::with(|hub| hub.reactor.begin_job());
    let slot = Arc::new(Mutex::new(None));
    let out = slot.clone();
    submit(Box::new(move || {
        let result = panic::catch_unwind(AssertUnwindSafe(f));
        *lock(&out) = Some(result);
        remote.complete(id);
    }));
    crate::hub::with(|hub| hub.reactor.wait_job(id, "a call on the thread pool"));
    let result = lock(&slot).take();
    match result.expect("grove: a thread-pool job finished without a result") {
        Ok(v) => v,
        Err(payload) => panic::resume_unwind(payload),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Queues a job, waking an idle worker or starting a new one when under the limit.
fn submit(job: Job) {
    let mut st = lock(&POOL.state);
    st.jobs.push_back(job);
    let wake = st.idle > 0;
    let grow = st.jobs.len() > st.idle && st.threads < max_threads();
    if grow {
        st.threads += 1;
    }
    drop(st);
    if wake {
        POOL.work.notify_one();
    }
    if !grow {
        return;
    }
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
        if let Some(job) = orphan {
            log::warn!("grove: cannot start a pool thread ({e}); running the call inline");
            job();
        }
    }
}

/// A worker: runs jobs in FIFO order; exits after [`IDLE_EXIT`] without work.
fn worker() {
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
