//! `spawn_on`'s tasks: how one starts on its hub, how its result reaches a
//! [`RemoteJoinHandle`] on any thread, and how a kill crosses hubs.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::lock;
use crate::coro::unwind::{self, payload_text, KillSignal};
use crate::hub::control::TaskRef;
use crate::hub::reactor::Remote;
use crate::hub::remote::{remote_wait, RemoteWaker};
use crate::JoinError;

thread_local! {
    /// Tasks started here by `spawn_on`, by id, so a `RemoteJoinHandle::kill` can find them.
    static REMOTE_TASKS: RefCell<HashMap<u64, TaskRef>> = RefCell::new(HashMap::new());
}

/// On the target hub: spawns the task that runs `f` and reports to the join slot.
pub(super) fn start_task<F, T>(id: u64, stack: Option<usize>, f: F, completer: Completer<T>)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let forget = ForgetTask(id);
    let body = move || {
        let _forget = forget;
        let mut completer = completer;
        let result = match catch_unwind(AssertUnwindSafe(f)) {
            Ok(v) => Ok(v),
            Err(p) if p.is::<KillSignal>() => Err(JoinError::Killed),
            Err(p) => {
                unwind::claim(p.as_ref());
                Err(JoinError::Panicked(p))
            }
        };
        completer.finish(result);
    };
    let spawned = match stack {
        None => Ok(crate::spawn(body)),
        Some(size) => crate::Builder::new().stack_size(size).spawn(body),
    };
    match spawned {
        Ok(handle) => {
            let _ = REMOTE_TASKS.try_with(|t| t.borrow_mut().insert(id, handle.task().clone()));
        }
        // The closure was dropped: its completer reports `Killed`.
        Err(e) => log::error!("grove: a spawn_on task could not start: {e}"),
    }
}

/// Removes a `spawn_on` task from this hub's table when its closure is gone.
struct ForgetTask(u64);

impl Drop for ForgetTask {
    fn drop(&mut self) {
        let _ = REMOTE_TASKS.try_with(|t| t.borrow_mut().remove(&self.0));
    }
}

/// The result of a `spawn_on` task, shared by the task and its [`RemoteJoinHandle`].
pub(super) struct Slot<T> {
    pub(super) result: Option<Result<T, JoinError>>,
    pub(super) waiters: Vec<RemoteWaker>,
    pub(super) detached: bool,
}

/// The task's side of the slot: publishes the result once; dropped unused (the task never
/// ran), it publishes [`JoinError::Killed`].
pub(super) struct Completer<T> {
    pub(super) slot: Option<Arc<Mutex<Slot<T>>>>,
    pub(super) id: u64,
}

impl<T> Completer<T> {
    fn finish(&mut self, result: Result<T, JoinError>) {
        let Some(slot) = self.slot.take() else {
            return;
        };
        let mut s = lock(&slot);
        if let (Err(JoinError::Panicked(p)), true) = (&result, s.detached) {
            log::error!(
                "grove: spawn_on task #{} panicked and nobody joined it: {}",
                self.id,
                payload_text(p.as_ref())
            );
        }
        s.result = Some(result);
        let waiters = std::mem::take(&mut s.waiters);
        drop(s);
        for w in waiters {
            w.wake();
        }
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        self.finish(Err(JoinError::Killed));
    }
}

/// The `Send` join handle of a task started with [`spawn_on`](crate::Runtime::spawn_on): join it from
/// any hub (the joining task parks) or any plain thread. Dropping it detaches the task.
pub struct RemoteJoinHandle<T> {
    pub(super) slot: Arc<Mutex<Slot<T>>>,
    pub(super) hub: usize,
    pub(super) id: u64,
    pub(super) remote: Remote,
}

impl<T> RemoteJoinHandle<T> {
    /// Waits for the task to finish and returns its value.
    ///
    /// # Errors
    /// [`JoinError::Panicked`] with the payload if it panicked, [`JoinError::Killed`] if it
    /// was killed (by [`kill`](Self::kill) or by its runtime's shutdown) or never ran.
    ///
    /// # Panics
    /// Like every blocking call, inside a generator body.
    #[track_caller]
    pub fn join(self) -> Result<T, JoinError> {
        self.wait_finished("RemoteJoinHandle::join");
        let result = lock(&self.slot).result.take();
        result.expect("a finished task has a result")
    }

    /// Whether the task has finished (returned, panicked, was killed or never ran).
    pub fn is_finished(&self) -> bool {
        lock(&self.slot).result.is_some()
    }

    /// The hub the task runs on.
    pub fn hub(&self) -> usize {
        self.hub
    }

    /// Kills the task and waits until it is dead (as [`JoinHandle::kill`](crate::JoinHandle::kill),
    /// across hubs): a task that has not started never runs; a parked one unwinds from its
    /// park point. Killing a finished task does nothing.
    ///
    /// # Panics
    /// Like every blocking call, inside a generator body.
    #[track_caller]
    pub fn kill(&self) {
        if self.is_finished() {
            return;
        }
        let id = self.id;
        let kill = Box::new(move || {
            let task = REMOTE_TASKS
                .try_with(|t| t.borrow().get(&id).cloned())
                .ok()
                .flatten();
            if let Some(task) = task {
                task.kill();
            }
        });
        // A hub that refuses is shutting down: it kills the task itself.
        let _ = self.remote.run(kill);
        self.wait_finished("RemoteJoinHandle::kill");
    }

    #[track_caller]
    fn wait_finished(&self, what: &'static str) {
        loop {
            let mut s = lock(&self.slot);
            if s.result.is_some() {
                return;
            }
            match remote_wait() {
                Ok((waker, wait)) => {
                    s.waiters.push(waker);
                    drop(s);
                    wait.wait(what, None);
                }
                Err(e) => {
                    drop(s);
                    log::warn!("grove: {what} cannot park ({e}); polling");
                    crate::sleep(Duration::from_millis(1));
                }
            }
        }
    }
}

impl<T> Drop for RemoteJoinHandle<T> {
    fn drop(&mut self) {
        let mut s = lock(&self.slot);
        s.detached = true;
        s.waiters.clear();
        if let Some(Err(JoinError::Panicked(p))) = &s.result {
            log::error!(
                "grove: spawn_on task #{} panicked and nobody joined it: {}",
                self.id,
                payload_text(p.as_ref())
            );
        }
    }
}

impl<T> fmt::Debug for RemoteJoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJoinHandle")
            .field("hub", &self.hub)
            .field("task", &self.id)
            .field("finished", &self.is_finished())
            .finish()
    }
}
