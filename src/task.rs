//! Tasks: `spawn`, `Builder`, `JoinHandle`, `sleep`, `yield_now`, `join_all`.
//!
//! A task is a fiber whose parent is the hub. It starts when the spawning code next blocks (or
//! yields), runs until it blocks, and so on; it never moves to another thread.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::coro::fiber::{self, Fiber, Interrupt, Kind, Next, State};
use crate::coro::greenlet::GreenletExit;
use crate::coro::stack::default_stack_size;
use crate::hub::{self, timers::Action, Waker};
use crate::timeout::Elapsed;

/// The payload a killed task unwinds with.
struct KillSignal;

/// Unwinds the current fiber for an interrupt delivered at its park or switch point.
pub(crate) fn unwind_for(why: Interrupt) -> ! {
    match why {
        Interrupt::Kill => resume_unwind(Box::new(KillSignal)),
        Interrupt::Timeout(id) => resume_unwind(Box::new(Elapsed::new(id))),
        Interrupt::Exit => resume_unwind(Box::new(GreenletExit)),
    }
}

/// Why [`JoinHandle::join`] did not produce the task's value.
pub enum JoinError {
    /// The task panicked; this is the panic payload (as in `std::thread::JoinHandle::join`).
    Panicked(Box<dyn Any + Send + 'static>),
    /// The task was killed with [`JoinHandle::kill`].
    Killed,
}

impl JoinError {
    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panicked(_))
    }

    /// Whether the task was killed.
    pub fn is_killed(&self) -> bool {
        matches!(self, JoinError::Killed)
    }

    /// The panic payload.
    ///
    /// # Panics
    /// Panics if the task was killed rather than panicking.
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        match self {
            JoinError::Panicked(p) => p,
            JoinError::Killed => panic!("grove: JoinError::into_panic on a killed task"),
        }
    }

    /// The panic message, if the payload is a string.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            JoinError::Panicked(p) => payload_str(p.as_ref()),
            JoinError::Killed => None,
        }
    }
}

/// The text of a panic payload, when it is a `&str` or `String`.
pub(crate) fn payload_str(p: &(dyn Any + Send)) -> Option<&str> {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked(_) => match self.panic_message() {
                Some(m) => write!(f, "Panicked({m:?})"),
                None => f.write_str("Panicked(..)"),
            },
            JoinError::Killed => f.write_str("Killed"),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self, self.panic_message()) {
            (JoinError::Panicked(_), Some(m)) => write!(f, "task panicked: {m}"),
            (JoinError::Panicked(_), None) => f.write_str("task panicked"),
            (JoinError::Killed, _) => f.write_str("task was killed"),
        }
    }
}

impl std::error::Error for JoinError {}

/// The result slot shared by a task and its handle.
struct Shared<T> {
    result: RefCell<Option<Result<T, JoinError>>>,
    /// Who waits in `join` or `kill`.
    waiter: Cell<Option<Waker>>,
    /// The handle was dropped: nobody will look at the result.
    detached: Cell<bool>,
}

impl<T> Shared<T> {
    fn complete(&self, result: Result<T, JoinError>, fiber: &Fiber) {
        if let (Err(JoinError::Panicked(p)), true) = (&result, self.detached.get()) {
            log_panic(fiber, p.as_ref());
        }
        *self.result.borrow_mut() = Some(result);
        if let Some(w) = self.waiter.take() {
            w.wake(fiber::WakeReason::Notified);
        }
    }
}

fn log_panic(fiber: &Fiber, p: &(dyn Any + Send)) {
    let msg = payload_str(p).unwrap_or("<non-string payload>");
    log::error!(
        "grove: task {} panicked and nobody joined it: {msg}",
        fiber.label()
    );
}

/// Owns the permission to join a task (and to kill it). Dropping it detaches the task.
///
/// `JoinHandle` is `!Send`: a task lives on the thread that spawned it.
///
/// ```compile_fail
/// let h = grove::spawn(|| 1);
/// std::thread::spawn(move || h.join());
/// ```
pub struct JoinHandle<T> {
    fiber: Rc<Fiber>,
    shared: Rc<Shared<T>>,
    _not_send: PhantomData<*const ()>,
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("task", &self.fiber.label())
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<T> JoinHandle<T> {
    /// Waits for the task to finish and returns its value.
    ///
    /// # Errors
    /// [`JoinError::Panicked`] with the payload if it panicked, [`JoinError::Killed`] if it was
    /// killed.
    ///
    /// # Panics
    /// Panics if a task joins itself, and with a "would block forever" message if the caller is
    /// the main code and nothing can ever let the task finish.
    pub fn join(self) -> Result<T, JoinError> {
        self.wait_finished("JoinHandle::join");
        let result = self.shared.result.borrow_mut().take();
        result.expect("a finished task has a result")
    }

    /// Whether the task has finished (returned, panicked or was killed).
    pub fn is_finished(&self) -> bool {
        self.shared.result.borrow().is_some()
    }

    /// The task's name, if it was given one with [`Builder::name`].
    pub fn name(&self) -> Option<&str> {
        self.fiber.name.as_deref()
    }

    /// Kills the task and waits until it is dead (gevent's `kill(block=True)`).
    ///
    /// A task that has not started never runs. A parked task unwinds from its park point, so its
    /// `Drop`s run; it is then finished and `join` returns [`JoinError::Killed`]. Killing a
    /// finished task does nothing. A task killing itself unwinds at once.
    pub fn kill(&self) {
        if self.is_finished() {
            return;
        }
        if fiber::is_current(&self.fiber) {
            unwind_for(Interrupt::Kill);
        }
        if self.fiber.state.get() == State::Fresh || !self.fiber.is_started() {
            self.fiber.force_unwind();
            hub::with(|h| h.forget(&self.fiber));
            self.shared.complete(Err(JoinError::Killed), &self.fiber);
            return;
        }
        hub::with(|h| h.interrupt(&self.fiber, Interrupt::Kill));
        self.wait_finished("JoinHandle::kill");
    }

    fn wait_finished(&self, what: &'static str) {
        if self.is_finished() {
            return;
        }
        if fiber::is_current(&self.fiber) {
            panic!("grove: task {} tried to join itself", self.fiber.label());
        }
        while !self.is_finished() {
            self.shared.waiter.set(Some(hub::current_waker()));
            hub::park(what);
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        self.shared.detached.set(true);
        self.shared.waiter.set(None);
        if let Some(Err(JoinError::Panicked(p))) = &*self.shared.result.borrow() {
            log_panic(&self.fiber, p.as_ref());
        }
    }
}

/// Configures a task before spawning it (name, stack size), as `std::thread::Builder`.
#[derive(Debug, Default, Clone)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with no name and the default stack size.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the task (shown in logs, overflow reports and "would block forever" messages).
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Sets the task's stack size in bytes (rounded up to pages; at least 16 KiB).
    pub fn stack_size(mut self, size: usize) -> Builder {
        self.stack_size = Some(size);
        self
    }

    /// Spawns the task; it first runs when the current code blocks or yields.
    ///
    /// # Errors
    /// An `io::Error` (kind `OutOfMemory`) naming the limit that was hit if no stack can be
    /// allocated.
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let handle = self.create(f)?;
        hub::with(|h| h.schedule(handle.fiber.clone()));
        Ok(handle)
    }

    /// Spawns the task to start after `delay` (gevent's `spawn_later`).
    ///
    /// # Errors
    /// As [`Builder::spawn`].
    pub fn spawn_later<F, T>(self, delay: Duration, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let handle = self.create(f)?;
        let fiber = handle.fiber.clone();
        fiber.state.set(State::Parked);
        fiber.waiting_on.set("spawn_later");
        let waker = Waker::for_park(fiber);
        hub::add_timer(Instant::now() + delay, Action::Wake(waker));
        Ok(handle)
    }

    fn create<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let shared = Rc::new(Shared {
            result: RefCell::new(None),
            waiter: Cell::new(None),
            detached: Cell::new(false),
        });
        let task_shared = shared.clone();
        let size = self.stack_size.unwrap_or_else(default_stack_size);
        let name = self.name.map(Rc::from);
        let id = hub::with(|h| h.next_id());
        let fiber = Fiber::new(Kind::Task, id, name, size, move || {
            run_task(f, &task_shared);
            Next::Park
        })?;
        hub::with(|h| h.register(&fiber));
        Ok(JoinHandle {
            fiber,
            shared,
            _not_send: PhantomData,
        })
    }
}

/// The task entry: run `f`, catching its panic or kill, and publish the outcome.
fn run_task<T, F: FnOnce() -> T>(f: F, shared: &Shared<T>) {
    let outcome = catch_unwind(AssertUnwindSafe(f));
    let result = match outcome {
        Ok(v) => Ok(v),
        Err(p) if fiber::force_unwinding() => resume_unwind(p),
        Err(p) if p.is::<KillSignal>() => Err(JoinError::Killed),
        Err(p) => Err(JoinError::Panicked(p)),
    };
    fiber::with_current(|me| shared.complete(result, me));
}

/// Spawns a task running `f` and returns its handle (gevent's `spawn`).
///
/// The task starts when the current code next blocks or yields; `f` needs `'static` but not
/// `Send`: the task stays on this thread, so `Rc` and `RefCell` are fine.
///
/// ```
/// let h = grove::spawn(|| 6 * 7);
/// assert_eq!(h.join().unwrap(), 42);
/// ```
///
/// # Panics
/// Panics if no stack can be allocated; [`Builder::spawn`] returns that error instead.
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    Builder::new()
        .spawn(f)
        .unwrap_or_else(|e| panic!("grove::spawn: {e}"))
}

/// Spawns a task that starts after `delay` (gevent's `spawn_later`).
///
/// # Panics
/// As [`spawn`].
pub fn spawn_later<F, T>(delay: Duration, f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    Builder::new()
        .spawn_later(delay, f)
        .unwrap_or_else(|e| panic!("grove::spawn_later: {e}"))
}

/// Waits for every task, in order, and returns their results (gevent's `joinall`).
pub fn join_all<T, I>(handles: I) -> Vec<Result<T, JoinError>>
where
    I: IntoIterator<Item = JoinHandle<T>>,
{
    handles.into_iter().map(JoinHandle::join).collect()
}

/// Parks the current task (or main) for at least `d`; other tasks run meanwhile.
/// `sleep(Duration::ZERO)` is [`yield_now`], as gevent's `sleep(0)`.
pub fn sleep(d: Duration) {
    if d.is_zero() {
        yield_now();
    } else {
        sleep_until(Instant::now() + d);
    }
}

/// Parks the current task until `deadline` (never returns before it).
pub fn sleep_until(deadline: Instant) {
    while Instant::now() < deadline {
        let key = hub::add_timer(deadline, Action::Wake(hub::current_waker()));
        let _cancel = CancelTimer(key);
        hub::park("sleep");
    }
}

struct CancelTimer(hub::timers::TimerKey);

impl Drop for CancelTimer {
    fn drop(&mut self) {
        hub::cancel_timer(self.0);
    }
}

/// Lets every other ready task run once before continuing (gevent's `sleep(0)`). Timers and
/// I/O are polled between rounds, so a loop of `yield_now` never starves them.
pub fn yield_now() {
    hub::yield_now();
}
