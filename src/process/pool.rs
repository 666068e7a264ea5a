//! [`Pool`]: pre-forked worker processes that run functions on arguments (multiprocessing's
//! `Pool`: `apply`, `apply_async` with a callback, `map`).
//!
//! A job names a plain function (`fn(A) -> R`; a closure that captures nothing coerces to
//! one). Python pickles the function by name; grove sends its *address*: the workers are forks
//! of this process, so every function sits at the same address in them. The argument and the
//! result cross as [`Message`] bytes.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::process::ExitStatus;
use std::rc::Rc;

use super::connection::{pipe, Connection};
use super::forked::Process;
use super::message::{from_bytes, to_bytes, Message};
use crate::sync::{Group, Queue};
use crate::JoinHandle;

/// Why a pool job produced no result.
#[derive(Debug)]
#[non_exhaustive]
pub enum JobError {
    /// The function panicked in the worker; the panic's message.
    Panicked(String),
    /// The worker process died while running the job (it was killed, or called `exit`); the
    /// pool starts a replacement.
    WorkerDied(Option<ExitStatus>),
    /// The pool was closed or terminated before the job could run.
    Closed,
    /// Talking to the worker failed (or the result did not decode).
    Io(io::Error),
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Panicked(msg) => write!(f, "the job panicked in its worker: {msg}"),
            JobError::WorkerDied(Some(s)) => write!(f, "the worker died running the job ({s})"),
            JobError::WorkerDied(None) => f.write_str("the worker died running the job"),
            JobError::Closed => f.write_str("the pool was closed"),
            JobError::Io(e) => write!(f, "talking to the worker failed: {e}"),
        }
    }
}

impl std::error::Error for JobError {}

/// The pending result of [`Pool::apply_async`] (multiprocessing's `AsyncResult`).
pub struct ApplyResult<R> {
    task: JoinHandle<Result<R, JobError>>,
}

impl<R> ApplyResult<R> {
    /// Parks until the job is done and returns its result.
    ///
    /// # Errors
    /// The job's [`JobError`].
    pub fn get(self) -> Result<R, JobError> {
        self.task.join().unwrap_or(Err(JobError::Closed))
    }

    /// Whether the job is done.
    pub fn ready(&self) -> bool {
        self.task.is_finished()
    }
}

impl<R> fmt::Debug for ApplyResult<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApplyResult")
            .field("ready", &self.ready())
            .finish()
    }
}

/// The trampoline a worker calls: decodes the argument, calls the function, encodes the result.
type Call = fn(usize, &[u8]) -> Result<Vec<u8>, String>;

fn call<A: Message, R: Message>(f: usize, arg: &[u8]) -> Result<Vec<u8>, String> {
    // SAFETY: `f` is the address of a `fn(A) -> R` taken in the process this worker was forked
    // from (see `encode_job`); fork keeps the code at the same addresses, and only the pool
    // writes jobs into the worker's private socket.
    let f: fn(A) -> R = unsafe { std::mem::transmute::<usize, fn(A) -> R>(f) };
    let arg = from_bytes::<A>(arg).map_err(|e| e.to_string())?;
    Ok(to_bytes(&f(arg)))
}

fn encode_job<A: Message, R: Message>(f: fn(A) -> R, arg: &A) -> Vec<u8> {
    let trampoline: Call = call::<A, R>;
    let mut job = Vec::new();
    (trampoline as usize).encode(&mut job);
    (f as usize).encode(&mut job);
    arg.encode(&mut job);
    job
}

/// A worker's loop: run jobs until the pool closes the connection.
fn serve(conn: &Connection) {
    while let Ok(job) = conn.recv_bytes() {
        let reply = run_job(&job);
        if conn.send(&reply).is_err() {
            break;
        }
    }
}

fn run_job(job: &[u8]) -> Result<Vec<u8>, String> {
    let mut input = job;
    let (trampoline, f) = <(usize, usize)>::decode(&mut input).map_err(|e| e.to_string())?;
    // SAFETY: `trampoline` is the address of `call::<A, R>` taken in the process this worker
    // was forked from (see `encode_job`), so it is a `Call` here too.
    let trampoline: Call = unsafe { std::mem::transmute::<usize, Call>(trampoline) };
    panic::catch_unwind(AssertUnwindSafe(|| trampoline(f, input)))
        .unwrap_or_else(|p| Err(panic_message(&*p)))
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    match (p.downcast_ref::<&str>(), p.downcast_ref::<String>()) {
        (Some(s), _) => (*s).to_owned(),
        (_, Some(s)) => s.clone(),
        _ => "a panic with a non-string payload".to_owned(),
    }
}

struct Worker {
    process: Process,
    conn: Connection,
}

struct Inner {
    /// `None`: the worker died or was abandoned mid-job; the next job that takes the slot
    /// starts a new one.
    workers: RefCell<Vec<Option<Rc<Worker>>>>,
    idle: Queue<usize>,
    jobs: Group,
    closed: Cell<bool>,
    terminated: Cell<bool>,
}

impl Inner {
    fn start_worker(self: &Rc<Inner>, slot: usize) -> io::Result<Rc<Worker>> {
        let (ours, theirs) = pipe()?;
        // The child must not keep the parent's end of its own pipe open (it would never see
        // EOF when the pool closes it): the end travels in a cell the child empties.
        let ours = Rc::new(RefCell::new(Some(ours)));
        let (me, our_end) = (self.clone(), ours.clone());
        let process = Process::spawn(move || {
            drop(our_end.borrow_mut().take());
            // Likewise this copy of the parent's ends of the other workers' pipes.
            drop(std::mem::take(&mut *me.workers.borrow_mut()));
            serve(&theirs);
        })?;
        let conn = ours.borrow_mut().take().expect("the parent keeps its end");
        log::debug!("grove: pool worker {slot} is process {}", process.pid());
        Ok(Rc::new(Worker { process, conn }))
    }

    /// The worker in `slot`, started if the slot is empty.
    fn worker(self: &Rc<Inner>, slot: usize) -> Result<Rc<Worker>, JobError> {
        let current = self.workers.borrow()[slot].clone();
        if let Some(w) = current {
            return Ok(w);
        }
        if self.terminated.get() {
            return Err(JobError::Closed);
        }
        let w = self.start_worker(slot).map_err(JobError::Io)?;
        self.workers.borrow_mut()[slot] = Some(w.clone());
        Ok(w)
    }

    /// Forgets the worker in `slot` (if it is still `worker`), killing it if asked.
    fn drop_worker(&self, slot: usize, worker: &Rc<Worker>, kill: bool) {
        let mut workers = self.workers.borrow_mut();
        if workers[slot]
            .as_ref()
            .is_some_and(|w| Rc::ptr_eq(w, worker))
        {
            workers[slot] = None;
        }
        drop(workers);
        if kill {
            let _ = worker.process.kill();
        }
    }

    /// Runs one job on an idle worker (parking until one is free).
    fn run(self: &Rc<Inner>, job: &[u8]) -> Result<Vec<u8>, JobError> {
        let slot = self.idle.get().map_err(|_| JobError::Closed)?;
        let worker = match self.worker(slot) {
            Ok(w) => w,
            Err(e) => {
                let _ = self.idle.put(slot);
                return Err(e);
            }
        };
        let mut held = Held {
            inner: self,
            slot,
            worker: &worker,
            done: false,
        };
        let reply = worker
            .conn
            .send_bytes(job)
            .and_then(|()| worker.conn.recv::<Result<Vec<u8>, String>>());
        held.done = true;
        match reply {
            Ok(r) => r.map_err(JobError::Panicked),
            Err(e) if self.terminated.get() => {
                log::debug!("grove: pool job ended by terminate: {e}");
                Err(JobError::Closed)
            }
            Err(e) => {
                self.drop_worker(slot, &worker, true);
                let status = worker.process.join().ok();
                match e.kind() {
                    io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe => {
                        Err(JobError::WorkerDied(status))
                    }
                    _ => Err(JobError::Io(e)),
                }
            }
        }
    }
}

/// Gives a worker's slot back when a job ends, however it ends. A worker abandoned mid-job (the
/// job's task was killed) is killed and its slot emptied, so its late reply is never read as
/// another job's; the slot's next job starts a new worker.
struct Held<'a> {
    inner: &'a Inner,
    slot: usize,
    worker: &'a Rc<Worker>,
    done: bool,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if !self.done {
            log::debug!("grove: a pool job was abandoned; its worker will be replaced");
            self.inner.drop_worker(self.slot, self.worker, true);
        }
        let _ = self.inner.idle.put(self.slot);
    }
}

/// A pool of worker processes (multiprocessing's `Pool(processes=n)`).
///
/// The workers are forked when the pool is made, each with a fresh hub. Jobs are plain
/// functions with one [`Message`] argument (use a tuple for more) and a [`Message`] result; a
/// closure that captures nothing is a plain function. Each job runs on the first idle worker;
/// the calling side only parks its task. A job that panics reports [`JobError::Panicked`] and
/// the worker goes on; a worker that dies is replaced.
///
/// Dropping the pool terminates it (multiprocessing's `with Pool() as p:`): workers are killed,
/// unfinished jobs fail with [`JobError::Closed`]. For a graceful end call
/// [`close`](Pool::close) and [`join`](Pool::join) first.
///
/// ```
/// use grove::process::Pool;
///
/// let pool = Pool::new(3)?;
/// let squares = pool.map(|x: u64| x * x, 0..10)?;
/// assert_eq!(squares, [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
/// assert_eq!(pool.apply(|(a, b): (u32, u32)| a + b, (2, 3))?, 5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Pool {
    inner: Rc<Inner>,
}

impl Pool {
    /// Forks `processes` workers (at least 1).
    ///
    /// # Errors
    /// If a fork or a pipe fails; the workers already made are killed.
    pub fn new(processes: usize) -> io::Result<Pool> {
        let n = processes.max(1);
        let inner = Rc::new(Inner {
            workers: RefCell::new(Vec::new()),
            idle: Queue::new(),
            jobs: Group::new(),
            closed: Cell::new(false),
            terminated: Cell::new(false),
        });
        let pool = Pool { inner };
        for slot in 0..n {
            let worker = pool.inner.start_worker(slot)?;
            pool.inner.workers.borrow_mut().push(Some(worker));
            // (on error, `pool` is dropped: the workers made so far are terminated)
            let _ = pool.inner.idle.put(slot);
        }
        Ok(pool)
    }

    /// How many worker processes the pool runs.
    pub fn processes(&self) -> usize {
        self.inner.workers.borrow().len()
    }

    /// The pids of the workers alive now.
    pub fn worker_pids(&self) -> Vec<u32> {
        let workers = self.inner.workers.borrow();
        workers.iter().flatten().map(|w| w.process.pid()).collect()
    }

    /// Runs `f(arg)` on a worker in the background; the result is collected through the
    /// returned handle (multiprocessing's `apply_async`).
    pub fn apply_async<A, R>(&self, f: fn(A) -> R, arg: A) -> ApplyResult<R>
    where
        A: Message + 'static,
        R: Message + 'static,
    {
        let inner = self.inner.clone();
        let job = encode_job(f, &arg);
        let closed = self.inner.closed.get();
        let task = self.inner.jobs.spawn(move || {
            if closed {
                return Err(JobError::Closed);
            }
            let bytes = inner.run(&job)?;
            from_bytes(&bytes).map_err(JobError::Io)
        });
        ApplyResult { task }
    }

    /// Like [`apply_async`](Self::apply_async), and calls `callback` with the result in this
    /// process when it arrives (multiprocessing's `callback=`; a failed job is logged instead,
    /// and reported by the returned handle).
    pub fn apply_async_with_callback<A, R, C>(
        &self,
        f: fn(A) -> R,
        arg: A,
        callback: C,
    ) -> ApplyResult<()>
    where
        A: Message + 'static,
        R: Message + 'static,
        C: FnOnce(R) + 'static,
    {
        let pending = self.apply_async(f, arg);
        let task = self.inner.jobs.spawn(move || match pending.get() {
            Ok(r) => {
                callback(r);
                Ok(())
            }
            Err(e) => {
                log::error!("grove: pool job failed: {e}");
                Err(e)
            }
        });
        ApplyResult { task }
    }

    /// Runs `f(arg)` on a worker and parks until it is done (multiprocessing's `apply`).
    ///
    /// # Errors
    /// The job's [`JobError`].
    pub fn apply<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<R, JobError>
    where
        A: Message + 'static,
        R: Message + 'static,
    {
        self.apply_async(f, arg).get()
    }

    /// Runs `f` on every item, spread over the workers, and returns the results in order
    /// (multiprocessing's `map`).
    ///
    /// # Errors
    /// The first failed job's [`JobError`] (the other jobs still run to their end).
    pub fn map<A, R, I>(&self, f: fn(A) -> R, items: I) -> Result<Vec<R>, JobError>
    where
        A: Message + 'static,
        R: Message + 'static,
        I: IntoIterator<Item = A>,
    {
        let pending: Vec<ApplyResult<R>> =
            items.into_iter().map(|a| self.apply_async(f, a)).collect();
        pending.into_iter().map(ApplyResult::get).collect()
    }

    /// Accepts no more jobs; those already submitted still run (multiprocessing's `close`).
    pub fn close(&self) {
        self.inner.closed.set(true);
    }

    /// Parks until every submitted job (and callback) is done, then lets the workers exit and
    /// reaps them. Call [`close`](Self::close) first, as in multiprocessing.
    ///
    /// # Errors
    /// If reaping a worker fails.
    pub fn join(&self) -> io::Result<()> {
        self.inner.jobs.join();
        self.inner.terminated.set(true);
        let workers: Vec<Rc<Worker>> = std::mem::take(&mut *self.inner.workers.borrow_mut())
            .into_iter()
            .flatten()
            .collect();
        // Every connection first: a worker forked later may hold a copy of an earlier one's
        // parent end, which closes only when that later worker exits.
        let processes: Vec<Process> = workers
            .into_iter()
            .filter_map(|w| Rc::try_unwrap(w).ok())
            .map(|w| w.process)
            .collect();
        for p in processes {
            p.join()?;
        }
        Ok(())
    }

    /// Kills the workers at once; unfinished jobs fail with [`JobError::Closed`] or
    /// [`JobError::WorkerDied`] (multiprocessing's `terminate`).
    pub fn terminate(&self) {
        self.inner.closed.set(true);
        self.inner.terminated.set(true);
        let workers = std::mem::take(&mut *self.inner.workers.borrow_mut());
        for w in workers.iter().flatten() {
            let _ = w.process.kill();
        }
        for w in workers.iter().flatten() {
            w.process.reap_blocking();
        }
        self.inner.idle.close();
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if !self.inner.terminated.get() {
            self.terminate();
        }
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("workers", &self.worker_pids())
            .field("closed", &self.inner.closed.get())
            .finish()
    }
}
