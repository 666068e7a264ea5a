//! Tasks: `spawn`, `Builder`, `JoinHandle`, `sleep`, `yield_now`, `join_all`.
//!
//! A task is a fiber whose parent is the hub. It starts when the spawning code next blocks (or
//! yields), runs until it blocks, and so on; it never moves to another thread.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::coro::fiber::{Body, Fiber, Kind, Next, State, WakeReason};
use crate::coro::stack::default_stack_size;
use crate::coro::unwind::{payload_str, payload_text, KillSignal};
use crate::hub::control::{Killed, TaskRef};
use crate::hub::wait::WaitQueue;
use crate::hub::{self, timers::Action, Waker};

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
    /// The panic message for `&str` and `String` payloads; otherwise what the payload was.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked(p) => write!(f, "task panicked: {}", payload_text(p.as_ref())),
            JoinError::Killed => f.write_str("task was killed"),
        }
    }
}

impl std::error::Error for JoinError {}

/// The result slot shared by a task and its handle.
struct Shared<T> {
    result: RefCell<Option<Result<T, JoinError>>>,
    /// The first who waits in `join` or `kill` (the common case, without allocating).
    waiter: Cell<Option<Waker>>,
    /// Anyone else waiting at the same time (several tasks killing the same task).
    /// Made on first use: most tasks have at most one waiter.
    others: std::cell::OnceCell<Box<WaitQueue>>,
    /// The handle was dropped: nobody will look at the result.
    detached: Cell<bool>,
}

impl<T> Shared<T> {
    fn complete(&self, result: Result<T, JoinError>, label: impl FnOnce() -> String) {
        if let (Err(JoinError::Panicked(p)), true) = (&result, self.detached.get()) {
            log_panic(&label(), p.as_ref());
        }
        *self.result.borrow_mut() = Some(result);
        if let Some(w) = self.waiter.take() {
            w.wake(WakeReason::Notified);
        }
        if let Some(q) = self.others.get() {
            q.notify_all();
        }
    }
}

fn log_panic(label: &str, p: &(dyn Any + Send)) {
    log::error!(
        "grove: {label} panicked and nobody joined it: {}",
        payload_text(p)
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
    task: TaskRef,
    /// The task's code and result, one allocation ([`Task`]); seen here without the closure's
    /// type.
    body: Rc<dyn HasShared<T>>,
    _not_send: PhantomData<*const ()>,
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("task", &self.task.label())
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
    #[track_caller]
    pub fn join(self) -> Result<T, JoinError> {
        self.wait_finished("JoinHandle::join");
        let result = self.shared().result.borrow_mut().take();
        result.expect("a finished task has a result")
    }

    /// Whether the task has finished (returned, panicked or was killed).
    pub fn is_finished(&self) -> bool {
        self.shared().result.borrow().is_some()
    }

    /// The task's name, if it was given one with [`Builder::name`].
    pub fn name(&self) -> Option<&str> {
        self.task.name()
    }

    fn shared(&self) -> &Shared<T> {
        self.body.shared()
    }

    /// The task's id: unique among this thread's tasks and greenlets, never 0 (0 is the
    /// thread's main code in [`debug`](crate::debug) traces).
    pub fn id(&self) -> u64 {
        self.task.id()
    }

    /// The task's control reference (for `Group` and `StreamServer`).
    pub(crate) fn task(&self) -> &TaskRef {
        &self.task
    }

    /// Kills the task and waits until it is dead (gevent's `kill(block=True)`).
    ///
    /// A task that has not started never runs. A parked task unwinds from its park point, so its
    /// `Drop`s run; it is then finished and `join` returns [`JoinError::Killed`]. Killing a
    /// finished task does nothing. A task killing itself unwinds at once.
    ///
    /// A kill that reaches a task which is already unwinding (it panicked, or an earlier kill or
    /// timeout is on its way up) does not start a second unwind: a blocking call in one of its
    /// `Drop`s returns early instead (`sleep` returns, I/O fails with `TimedOut`, a wait with a
    /// deadline gives up) and the unwind that was in progress finishes the task.
    #[track_caller]
    pub fn kill(&self) {
        if self.is_finished() {
            return;
        }
        if self.task.kill() == Killed::Interrupted && !self.task.is_current() {
            self.wait_finished("JoinHandle::kill");
        }
    }

    #[track_caller]
    fn wait_finished(&self, what: &'static str) {
        if self.is_finished() {
            return;
        }
        if self.task.is_current() {
            panic!("grove: {} tried to join itself", self.task.label());
        }
        while !self.is_finished() {
            let slot = self.shared().waiter.take();
            if slot.as_ref().is_some_and(|w| !w.is_for_current()) {
                // Someone else waits in the slot: queue up behind it.
                self.shared().waiter.set(slot);
                let q = self
                    .shared()
                    .others
                    .get_or_init(|| Box::new(WaitQueue::new()));
                q.wait(what, None);
            } else {
                self.shared().waiter.set(Some(hub::current_waker()));
                hub::note_join(self.task.id());
                hub::park(what);
            }
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        self.shared().detached.set(true);
        self.shared().waiter.set(None);
        if let Some(Err(JoinError::Panicked(p))) = &*self.shared().result.borrow() {
            log_panic(&self.task.label(), p.as_ref());
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
    /// Unlike [`spawn`], which takes a stack only when the task first runs, this takes the
    /// stack now, so running out of stacks is this call's error.
    ///
    /// # Errors
    /// An `io::Error` (kind `OutOfMemory`) naming the limit that was hit if no stack can be
    /// allocated.
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let (handle, fiber) = self.create(f);
        if let Err(e) = fiber.prepare() {
            fiber.cancel_unstarted();
            hub::with(|h| h.forget(&fiber));
            return Err(e);
        }
        hub::with(|h| h.schedule(fiber));
        Ok(handle)
    }

    /// Spawns the task lazily: its stack is taken when it first runs (see [`spawn`]).
    #[track_caller]
    fn spawn_lazy<F, T>(self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let (handle, fiber) = self.create(f);
        hub::with(|h| h.schedule(fiber));
        handle
    }

    /// Spawns the task to start after `delay` (gevent's `spawn_later`). A delay too large to
    /// represent as an instant (`Duration::MAX`) means the task never starts on its own.
    ///
    /// # Errors
    /// As [`Builder::spawn`]: the stack is taken now.
    #[track_caller]
    pub fn spawn_later<F, T>(self, delay: Duration, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let (handle, fiber) = self.create(f);
        if let Err(e) = fiber.prepare() {
            fiber.cancel_unstarted();
            hub::with(|h| h.forget(&fiber));
            return Err(e);
        }
        fiber.state.set(State::Parked);
        fiber.waiting_on.set("spawn_later");
        fiber.parked_at.set(hub::now_ms());
        fiber.park_obj.set(hub::inspect::deadline_note(
            delay.as_millis().min(1 << 40) as u64
        ));
        if let Some(at) = hub::timers::deadline_after(delay) {
            hub::add_timer(at, Action::Wake(Waker::for_park(fiber)));
        }
        Ok(handle)
    }

    #[track_caller]
    fn create<F, T>(self, f: F) -> (JoinHandle<T>, Rc<Fiber>)
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let size = self.stack_size.unwrap_or_else(default_stack_size);
        let name = self.name.map(Box::new);
        let id = hub::with(|h| h.next_id());
        let task = Rc::new(Task {
            shared: Shared {
                result: RefCell::new(None),
                waiter: Cell::new(None),
                others: std::cell::OnceCell::new(),
                detached: Cell::new(false),
            },
            f: Cell::new(Some(f)),
        });
        let fiber = Fiber::new(
            Kind::Task,
            id,
            name,
            size,
            task.clone(),
            std::panic::Location::caller(),
        );
        hub::with(|h| h.register(&fiber));
        let handle = JoinHandle {
            task: TaskRef::new(fiber.clone()),
            body: task,
            _not_send: PhantomData,
        };
        (handle, fiber)
    }
}

/// Marks a payload a task entry caught as handled (it is reported through the `JoinError`).
fn outcome_claimed(p: Box<dyn Any + Send>) -> Box<dyn Any + Send> {
    crate::coro::unwind::claim(p.as_ref());
    p
}

/// A task: its code (until it runs) and its result slot, shared by the fiber (as its
/// [`Body`]) and the `JoinHandle`.
struct Task<F, T> {
    shared: Shared<T>,
    /// `None` once the task ran or was cancelled.
    f: Cell<Option<F>>,
}

/// The result slot of a [`Task`] without the closure's type.
trait HasShared<T> {
    fn shared(&self) -> &Shared<T>;
}

impl<F, T> HasShared<T> for Task<F, T> {
    fn shared(&self) -> &Shared<T> {
        &self.shared
    }
}

impl<F: FnOnce() -> T + 'static, T: 'static> Body for Task<F, T> {
    /// The task entry: run `f`, catching its panic or kill, and publish the outcome.
    fn run(self: Rc<Self>) -> Next {
        let f = self.f.take().expect("a task runs once");
        let outcome = catch_unwind(AssertUnwindSafe(f));
        let result = match outcome {
            Ok(v) => Ok(v),
            Err(p) if p.is::<KillSignal>() => {
                drop(outcome_claimed(p));
                Err(JoinError::Killed)
            }
            Err(p) => Err(JoinError::Panicked(outcome_claimed(p))),
        };
        self.shared
            .complete(result, || hub::with_current(|f| f.label()));
        Next::Park
    }

    fn cannot_start(self: Rc<Self>, err: io::Error, label: &str) {
        let msg = format!("grove: {label} could not start: {err}");
        log::error!("{msg}");
        drop(self.f.take());
        self.shared
            .complete(Err(JoinError::Panicked(Box::new(msg))), || {
                label.to_string()
            });
    }

    /// A task that never runs (killed before it started, or its thread exited) is finished as
    /// killed; its closure is dropped first.
    fn cancel(self: Rc<Self>) {
        if let Some(f) = self.f.take() {
            drop(f);
            if self.shared.result.borrow().is_none() {
                self.shared.complete(Err(JoinError::Killed), String::new);
            }
        }
    }
}

/// Spawns a task running `f` and returns its handle (gevent's `spawn`).
///
/// The task takes its stack when it first runs; if none can be had then (address space or
/// `vm.max_map_count` exhausted), the task finishes with a [`JoinError::Panicked`] carrying
/// the `io::Error`'s message, which is also logged.
///
/// The task starts when the current code next blocks or yields; `f` needs `'static` but not
/// `Send`: the task stays on this thread, so `Rc` and `RefCell` are fine.
///
/// ```
/// let h = grove::spawn(|| 6 * 7);
/// assert_eq!(h.join().unwrap(), 42);
/// ```
///
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    Builder::new().spawn_lazy(f)
}

/// Spawns a task that starts after `delay` (gevent's `spawn_later`).
///
/// # Panics
/// Panics if no stack can be allocated; [`Builder::spawn_later`] returns that error instead.
#[track_caller]
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
#[track_caller]
pub fn join_all<T, I>(handles: I) -> Vec<Result<T, JoinError>>
where
    I: IntoIterator<Item = JoinHandle<T>>,
{
    handles.into_iter().map(|h| h.join()).collect()
}

/// Parks the current task (or main) for at least `d`; other tasks run meanwhile.
/// `sleep(Duration::ZERO)` is [`yield_now`], as gevent's `sleep(0)`; a duration too large to
/// represent as an instant (`Duration::MAX`) sleeps forever.
///
/// A kill or timeout that reaches a task which is already unwinding (this `sleep` is in a
/// `Drop`) makes the sleep return early instead of starting a second unwind.
///
/// # Panics
/// With "would block forever" if main sleeps forever and nothing else can run.
#[track_caller]
pub fn sleep(d: Duration) {
    if d.is_zero() {
        yield_now();
        return;
    }
    match hub::timers::deadline_after(d) {
        Some(deadline) => sleep_until(deadline),
        None => sleep_forever(),
    }
}

/// Parks the current task until `deadline` (never returns before it, except as [`sleep`]
/// says for an interrupt during unwinding).
#[track_caller]
pub fn sleep_until(deadline: Instant) {
    loop {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        hub::note_sleep(deadline - now);
        let key = hub::add_timer(deadline, Action::Wake(hub::current_waker()));
        let _cancel = CancelTimer(key);
        if hub::park("sleep") == WakeReason::Interrupted {
            return;
        }
    }
}

#[track_caller]
fn sleep_forever() {
    while hub::park("sleep forever") != WakeReason::Interrupted {}
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
