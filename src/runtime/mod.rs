//! Many hubs: a [`Runtime`] runs N hub threads (default: one per available core), each with
//! its own run queue, timers and epoll reactor — thread-per-core, like glommio or seastar, with
//! blocking-style code.
//!
//! Tasks never move between hubs, so everything that makes a single hub sound stays true: a
//! task's closure need not be `Send`, `Rc` and `RefCell` work between the tasks of one hub, and
//! [`JoinHandle`](crate::JoinHandle)s stay `!Send`. Exactly three things cross hubs:
//!
//! - the closure given to [`Runtime::spawn_on`] / [`spawn_on`] (it must be `Send`) and its
//!   result, through a [`RemoteJoinHandle`], which is `Send` and can be joined from any hub
//!   (the joining task parks) or from a plain thread;
//! - values sent on [`sync::mpsc`](crate::sync::mpsc) channels;
//! - connections, in the sense that each hub of a
//!   [`RuntimeServer`](crate::net::RuntimeServer) accepts on its own `SO_REUSEPORT` listener.
//!
//! Each of these wakes the receiving hub through its inbox: the poster writes the hub's eventfd
//! only when the hub sleeps in `epoll_wait`, and only once per batch of posts. A busy hub finds
//! the news between two batches without a syscall. Nothing on a task's path that stays on its
//! hub (spawn, park, I/O, the `sync` primitives) costs an atomic read-modify-write.
//!
//! ```
//! use grove::Runtime;
//!
//! let rt = Runtime::builder().hubs(2).build()?;
//! let a = rt.spawn_on(0, || grove::current_hub())?;
//! let b = rt.spawn_on(1, || grove::current_hub())?;
//! assert_eq!(a.join().unwrap(), Some(0));
//! assert_eq!(b.join().unwrap(), Some(1));
//! rt.shutdown(std::time::Duration::from_secs(1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The closure must be `Send` (it crosses to the hub); what it does there need not be:
//!
//! ```compile_fail
//! let rt = grove::Runtime::builder().hubs(1).build().unwrap();
//! let not_send = std::rc::Rc::new(1);
//! rt.spawn_on(0, move || *not_send); // Rc is not Send: create it inside the closure instead
//! ```
//!
//! ## Shutdown
//! [`Runtime::shutdown`] (and dropping the runtime, with the builder's
//! [`shutdown_timeout`](RuntimeBuilder::shutdown_timeout), 1 s by default), on every hub at
//! once: refuse further `spawn_on` (they fail with [`SpawnError::ShutDown`]; requests already
//! queued still start), stop every server's acceptors and close their listeners, let running
//! tasks finish until the timeout, then kill the rest (they unwind; their `Drop`s run, and
//! their `RemoteJoinHandle`s report [`JoinError::Killed`](crate::JoinError::Killed)). A panic in a task is caught at the
//! task's entry (see [`JoinError`](crate::JoinError)) and never takes down its hub or another one.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crate::hub::reactor::Remote;
use crate::hub::remote::{remote_wait, this_hub, RemoteWaker};

mod join;

use crate::hub::sys::affinity;
use crate::hub::timers::deadline_after;
pub use join::RemoteJoinHandle;
use join::{start_task, Completer, Slot};

/// How long dropping a [`Runtime`] lets its tasks finish unless changed.
const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);

thread_local! {
    /// The runtime and hub index of this thread, if it is one of a runtime's hubs.
    static CURRENT: RefCell<Option<(Arc<Shared>, usize)>> = const { RefCell::new(None) };
    /// What to do on this hub when its runtime shuts down (stop servers), with the deadline.
    static AT_SHUTDOWN: RefCell<Vec<ShutdownHook>> = const { RefCell::new(Vec::new()) };
}

type ShutdownHook = Box<dyn FnOnce(Option<Instant>)>;

/// What every hub thread and handle of one runtime share.
struct Shared {
    /// Filled once every hub thread is up.
    hubs: OnceLock<Vec<HubEntry>>,
    /// Set by the first shutdown: until when tasks may finish (`None` inside: forever).
    stopping: Mutex<Option<Option<Instant>>>,
    stack_size: Option<usize>,
    next_task: AtomicU64,
}

struct HubEntry {
    remote: Remote,
    /// Wakes the hub's thread for shutdown (used once).
    stop: Mutex<Option<RemoteWaker>>,
    thread: thread::ThreadId,
}

impl Shared {
    fn hubs(&self) -> &[HubEntry] {
        self.hubs.get().map_or(&[], Vec::as_slice)
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why [`spawn_on`](Runtime::spawn_on) could not start a task.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpawnError {
    /// There is no hub with this index (the runtime has `hubs` hubs).
    NoSuchHub {
        /// The index asked for.
        hub: usize,
        /// How many hubs the runtime has.
        hubs: usize,
    },
    /// The hub has shut down (or is shutting down) and takes no more tasks.
    ShutDown {
        /// The hub asked for.
        hub: usize,
    },
    /// [`spawn_on`] was called on a thread that is not one of a runtime's hubs.
    NoRuntime,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::NoSuchHub { hub, hubs } => {
                write!(f, "grove: no hub {hub} (the runtime has {hubs} hubs)")
            }
            SpawnError::ShutDown { hub } => write!(f, "grove: hub {hub} has shut down"),
            SpawnError::NoRuntime => {
                f.write_str("grove: spawn_on outside a runtime's hub (use Runtime::spawn_on)")
            }
        }
    }
}

impl std::error::Error for SpawnError {}

impl From<SpawnError> for io::Error {
    fn from(e: SpawnError) -> io::Error {
        let kind = match e {
            SpawnError::NoSuchHub { .. } => io::ErrorKind::InvalidInput,
            SpawnError::ShutDown { .. } => io::ErrorKind::BrokenPipe,
            SpawnError::NoRuntime => io::ErrorKind::NotFound,
        };
        io::Error::new(kind, e)
    }
}

/// Configures a [`Runtime`] (see [`Runtime::builder`]).
#[derive(Debug, Clone)]
pub struct RuntimeBuilder {
    hubs: Option<usize>,
    pin_cores: bool,
    stack_size: Option<usize>,
    thread_name: String,
    shutdown_timeout: Duration,
}

impl RuntimeBuilder {
    /// The number of hub threads (default: [`std::thread::available_parallelism`]). More hubs
    /// than cores is allowed.
    pub fn hubs(mut self, n: usize) -> RuntimeBuilder {
        self.hubs = Some(n);
        self
    }

    /// Pins hub `i` to the `i`-th CPU this process may run on (modulo their number). Off by
    /// default. A pin that fails is logged (`log::warn!`) and the hub runs unpinned.
    pub fn pin_cores(mut self, pin: bool) -> RuntimeBuilder {
        self.pin_cores = pin;
        self
    }

    /// The stack size of tasks started with [`Runtime::spawn_on`] (default:
    /// [`default_stack_size`](crate::default_stack_size)). Tasks those tasks spawn with
    /// [`spawn`](crate::spawn) use the default, as everywhere.
    pub fn stack_size(mut self, size: usize) -> RuntimeBuilder {
        self.stack_size = Some(size);
        self
    }

    /// The hub threads' name prefix: hub `i` is called `"{name}-{i}"` (default `grove-hub`).
    pub fn thread_name(mut self, name: impl Into<String>) -> RuntimeBuilder {
        self.thread_name = name.into();
        self
    }

    /// How long dropping the runtime lets tasks finish before killing them (default 1 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> RuntimeBuilder {
        self.shutdown_timeout = timeout;
        self
    }

    /// Starts the hub threads and returns once every hub is ready.
    ///
    /// # Errors
    /// `InvalidInput` for zero hubs; the `io::Error` of a hub thread that could not start (or
    /// could not create its epoll reactor); the hubs already started are shut down.
    pub fn build(self) -> io::Result<Runtime> {
        let n = match self.hubs {
            Some(n) => n,
            None => thread::available_parallelism().map_or(1, |n| n.get()),
        };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "grove: a runtime needs at least one hub",
            ));
        }
        let shared = Arc::new(Shared {
            hubs: OnceLock::new(),
            stopping: Mutex::new(None),
            stack_size: self.stack_size,
            next_task: AtomicU64::new(1),
        });
        let cpus = if self.pin_cores {
            affinity::allowed_cpus()
        } else {
            Vec::new()
        };
        let mut threads = Vec::with_capacity(n);
        let mut entries = Vec::with_capacity(n);
        let mut failed = None;
        for i in 0..n {
            let pin = (!cpus.is_empty()).then(|| cpus[i % cpus.len()]);
            match start_hub(&shared, i, pin, &self.thread_name) {
                Ok((thread, entry)) => {
                    threads.push(thread);
                    entries.push(entry);
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let _ = shared.hubs.set(entries);
        let rt = Runtime {
            handle: Handle { shared },
            threads: Mutex::new(threads),
            shutdown_timeout: self.shutdown_timeout,
        };
        match failed {
            None => Ok(rt),
            Some(e) => {
                rt.shutdown(Duration::ZERO);
                Err(e)
            }
        }
    }
}

/// Starts hub thread `index` and waits until its inbox is ready.
fn start_hub(
    shared: &Arc<Shared>,
    index: usize,
    pin: Option<usize>,
    name: &str,
) -> io::Result<(thread::JoinHandle<()>, HubEntry)> {
    let (tx, rx) = std::sync::mpsc::channel();
    let shared = shared.clone();
    let thread = thread::Builder::new()
        .name(format!("{name}-{index}"))
        .spawn(move || hub_main(shared, index, pin, tx))?;
    match rx.recv() {
        Ok(Ok((remote, stop))) => {
            let entry = HubEntry {
                remote,
                stop: Mutex::new(Some(stop)),
                thread: thread.thread().id(),
            };
            Ok((thread, entry))
        }
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(io::Error::other("grove: a hub thread died while starting"))
        }
    }
}

type Ready = io::Result<(Remote, RemoteWaker)>;

/// A hub thread: announces its inbox, runs tasks until shutdown, then winds down.
fn hub_main(
    shared: Arc<Shared>,
    index: usize,
    pin: Option<usize>,
    ready: std::sync::mpsc::Sender<Ready>,
) {
    if let Some(cpu) = pin {
        if let Err(e) = affinity::pin_to_cpu(cpu) {
            log::warn!("grove: hub {index} cannot be pinned to cpu {cpu}: {e}");
        }
    }
    CURRENT.with(|c| *c.borrow_mut() = Some((shared.clone(), index)));
    let setup = this_hub().and_then(|remote| Ok((remote, remote_wait()?)));
    let (remote, wait) = match setup {
        Ok((remote, (stop, wait))) => {
            let _ = ready.send(Ok((remote.clone(), stop)));
            (remote, wait)
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    drop(ready);
    log::debug!("grove: hub {index} running");
    // The thread's own code waits here; the hub runs the tasks meanwhile.
    while !wait.wait("the runtime to shut down", None) {}
    wind_down(&shared, &remote, index);
}

/// Shutdown on one hub: refuse new tasks, run the shutdown hooks (servers stop accepting), let
/// tasks finish until the deadline. Returning ends the thread, whose teardown kills the rest.
fn wind_down(shared: &Shared, remote: &Remote, index: usize) {
    let deadline = lock(&shared.stopping).unwrap_or(None);
    log::debug!("grove: hub {index} shutting down");
    for queued in remote.close() {
        queued();
    }
    let hooks = AT_SHUTDOWN.with(|h| std::mem::take(&mut *h.borrow_mut()));
    for hook in hooks {
        hook(deadline);
    }
    let mut pause = Duration::from_micros(200);
    while crate::debug::metrics().tasks_alive > 0 {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            log::debug!("grove: hub {index}: shutdown timeout, killing what is left");
            break;
        }
        crate::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// Runs `hook(deadline)` on this hub when its runtime starts shutting down (servers use it to
/// stop accepting). Does nothing outside a runtime's hub.
pub(crate) fn at_shutdown(hook: ShutdownHook) {
    if current_hub().is_some() {
        AT_SHUTDOWN.with(|h| h.borrow_mut().push(hook));
    }
}

/// N hub threads, each with its own run queue, timers and reactor (see the
/// [module docs](self)).
///
/// Dropping the runtime shuts it down (see [`Runtime::shutdown`]) with the builder's
/// [`shutdown_timeout`](RuntimeBuilder::shutdown_timeout).
pub struct Runtime {
    handle: Handle,
    threads: Mutex<Vec<thread::JoinHandle<()>>>,
    shutdown_timeout: Duration,
}

impl Runtime {
    /// A builder: number of hubs, CPU pinning, stack size, thread names.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder {
            hubs: None,
            pin_cores: false,
            stack_size: None,
            thread_name: "grove-hub".into(),
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }

    /// A runtime with one hub per available core.
    ///
    /// # Errors
    /// As [`RuntimeBuilder::build`].
    pub fn new() -> io::Result<Runtime> {
        Runtime::builder().build()
    }

    /// How many hubs the runtime has.
    pub fn hubs(&self) -> usize {
        self.handle.hubs()
    }

    /// A cheap `Send + Sync` handle that can spawn onto this runtime's hubs.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Starts `f` as a task on hub `hub`; see [`Handle::spawn_on`].
    ///
    /// # Errors
    /// [`SpawnError::NoSuchHub`], or [`SpawnError::ShutDown`] once the hub is shutting down.
    pub fn spawn_on<F, T>(&self, hub: usize, f: F) -> Result<RemoteJoinHandle<T>, SpawnError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.handle.spawn_on(hub, f)
    }

    /// Shuts every hub down at once: no more `spawn_on`, servers stop accepting, tasks get
    /// `timeout` to finish (`Duration::MAX`: forever), then the rest are killed. Returns when
    /// every hub thread has exited — unless it is called on one of the runtime's own hubs, in
    /// which case it only starts the shutdown (a hub cannot wait for itself). A task that
    /// blocks its hub's *thread* (a `std::thread::sleep`, a std socket) holds that hub's
    /// shutdown until the call returns, as it holds everything else on that hub.
    pub fn shutdown(self, timeout: Duration) {
        self.stop(timeout);
    }

    fn stop(&self, timeout: Duration) {
        let shared = &self.handle.shared;
        {
            let mut stopping = lock(&shared.stopping);
            if stopping.is_none() {
                *stopping = Some(deadline_after(timeout));
            }
        }
        for hub in shared.hubs() {
            if let Some(stop) = lock(&hub.stop).take() {
                stop.wake();
            }
        }
        let me = thread::current().id();
        if shared.hubs().iter().any(|h| h.thread == me) {
            return;
        }
        let threads = std::mem::take(&mut *lock(&self.threads));
        for t in threads {
            if t.join().is_err() {
                log::error!("grove: a hub thread panicked during shutdown");
            }
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop(self.shutdown_timeout);
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("hubs", &self.hubs())
            .finish()
    }
}

/// A `Send + Sync + Clone` handle to a [`Runtime`]: spawns onto its hubs from anywhere.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    /// The runtime whose hub this thread is, if any.
    pub fn current() -> Option<Handle> {
        CURRENT
            .try_with(|c| {
                c.borrow().as_ref().map(|(shared, _)| Handle {
                    shared: shared.clone(),
                })
            })
            .ok()
            .flatten()
    }

    /// How many hubs the runtime has.
    pub fn hubs(&self) -> usize {
        self.shared.hubs().len()
    }

    /// Starts `f` as a task on hub `hub` and returns a `Send` handle to join it.
    ///
    /// The task starts at the hub's next poll; it stays on that hub. Call it from any thread
    /// or hub, including `hub` itself.
    ///
    /// # Errors
    /// [`SpawnError::NoSuchHub`] for an index out of range, [`SpawnError::ShutDown`] once the
    /// hub is shutting down or gone (never a hang).
    pub fn spawn_on<F, T>(&self, hub: usize, f: F) -> Result<RemoteJoinHandle<T>, SpawnError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let hubs = self.shared.hubs();
        let entry = hubs.get(hub).ok_or(SpawnError::NoSuchHub {
            hub,
            hubs: hubs.len(),
        })?;
        // Crosses hubs anyway: one atomic for a process-wide task id is fine here.
        let id = self.shared.next_task.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Mutex::new(Slot {
            result: None,
            waiters: Vec::new(),
            detached: false,
        }));
        let completer = Completer {
            slot: Some(slot.clone()),
            id,
        };
        let stack = self.shared.stack_size;
        let start = Box::new(move || start_task(id, stack, f, completer));
        if entry.remote.run(start).is_err() {
            return Err(SpawnError::ShutDown { hub });
        }
        Ok(RemoteJoinHandle {
            slot,
            hub,
            id,
            remote: entry.remote.clone(),
        })
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("hubs", &self.hubs())
            .finish()
    }
}

/// Starts `f` as a task on hub `hub` of the runtime this thread is a hub of (see
/// [`Handle::spawn_on`]).
///
/// # Errors
/// [`SpawnError::NoRuntime`] on a thread that is not a runtime's hub; otherwise as
/// [`Handle::spawn_on`].
pub fn spawn_on<F, T>(hub: usize, f: F) -> Result<RemoteJoinHandle<T>, SpawnError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Handle::current()
        .ok_or(SpawnError::NoRuntime)?
        .spawn_on(hub, f)
}

/// The index of the runtime hub this thread is, or `None` on a thread that is not a
/// runtime's hub (a plain thread with its implicit hub).
pub fn current_hub() -> Option<usize> {
    CURRENT
        .try_with(|c| c.borrow().as_ref().map(|(_, i)| *i))
        .ok()
        .flatten()
}
