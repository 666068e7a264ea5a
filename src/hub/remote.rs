//! Cross-thread wake-ups: how a task parks until *another thread* says it may go on.
//!
//! The waiting task takes a [`RemoteWaker`] (its hub's [`Remote`] and a fresh job id) and a
//! [`RemoteWait`]; it hands the waker to the other thread (inside a channel's state, a join
//! slot) and parks on the wait. Waking posts the id to the hub's inbox, which wakes the hub
//! through its eventfd only if it sleeps, and only once per batch of posts (see
//! [`reactor`](super::reactor)). A waker is good for one wait; waking a wait that gave up (timed
//! out, was killed) does nothing.

#![deny(unsafe_code)]

use std::io;
use std::time::Instant;

use super::reactor::Remote;

/// Wakes one [`RemoteWait`], from any thread.
pub(crate) struct RemoteWaker {
    remote: Remote,
    id: u64,
}

impl RemoteWaker {
    /// Wakes the wait this waker was made for (no-op if it gave up).
    pub(crate) fn wake(self) {
        self.remote.complete(self.id);
    }
}

/// The waiting side: parks the current task until its [`RemoteWaker`] is used.
pub(crate) struct RemoteWait {
    id: u64,
}

/// A waker for another thread and the wait to park on, for the current task.
///
/// # Errors
/// If this thread's hub cannot create its reactor (out of file descriptors).
pub(crate) fn remote_wait() -> io::Result<(RemoteWaker, RemoteWait)> {
    super::with(|hub| {
        let remote = hub.reactor.remote()?;
        let id = hub.reactor.begin_job();
        Ok((RemoteWaker { remote, id }, RemoteWait { id }))
    })
}

impl RemoteWait {
    /// Parks until woken (true) or until `deadline` passes (false). A kill unwinds out of it;
    /// a kill reaching a task that is already unwinding ends a wait with a deadline (false) and
    /// lets one without a deadline go on waiting.
    #[track_caller]
    pub(crate) fn wait(&self, what: &'static str, deadline: Option<Instant>) -> bool {
        super::with(|hub| hub.reactor.wait_job(self.id, what, deadline))
    }
}

impl Drop for RemoteWait {
    fn drop(&mut self) {
        let _ = super::try_with(|hub| hub.reactor.forget_job(self.id));
    }
}

/// This thread's hub's inbox (for closures other threads want run here).
///
/// # Errors
/// If the hub cannot create its reactor.
pub(crate) fn this_hub() -> io::Result<Remote> {
    super::with(|hub| hub.reactor.remote())
}
