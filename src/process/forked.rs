//! `Process`: a closure run in a forked child (multiprocessing's `Process(target=f)`).

#![deny(unsafe_code)]

use std::cell::Cell;
use std::fmt;
use std::io;
use std::process::ExitStatus;
use std::time::Duration;

use super::exit::ExitWatch;
use super::fork::fork_then;
use crate::hub::sys::process as sys;
use crate::hub::timers::deadline_after;

/// A child process running a closure, made by `fork` (multiprocessing's
/// `Process(target=f).start()`).
///
/// The child is a copy of this process at the moment of the call, with a **fresh hub**: the
/// closure runs as the child's `main` (it may spawn tasks, sleep, use sockets; grove sockets,
/// [`Connection`](super::Connection)s and [`Queue`](super::Queue)s made before the fork work in
/// both processes). When the closure returns the child's remaining tasks are torn down as at
/// the end of `main`, and the child exits with code 0; if it panics, with code 101.
///
/// [`join`](Process::join) parks only the calling task. Dropping a `Process` neither kills nor
/// waits for the child (as with `std::process::Child`); an unjoined child stays a zombie until
/// this process exits.
///
/// ```
/// use grove::process::{pipe, Process};
///
/// let (parent_end, child_end) = pipe()?;
/// let child = Process::spawn(move || {
///     child_end.send(&String::from("hello from the child")).unwrap();
/// })?;
/// let greeting: String = parent_end.recv()?;
/// assert_eq!(greeting, "hello from the child");
/// assert!(child.join()?.success());
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// See the [module docs](super) for what fork copies and what it does not (other threads).
pub struct Process {
    pid: libc::pid_t,
    exit: ExitWatch,
    status: Cell<Option<ExitStatus>>,
}

impl Process {
    /// Forks and runs `f` in the child; returns at once in the parent (which drops `f`
    /// unrun, closing what it captured by `move`).
    ///
    /// `f` need not be `'static`: in the child, what it borrows is the child's own copy of
    /// this stack, which stays in place until the child exits.
    ///
    /// # Errors
    /// If `fork` fails (`EAGAIN`: too many processes, `ENOMEM`).
    pub fn spawn<F: FnOnce()>(f: F) -> io::Result<Process> {
        let pid = fork_then(|unmask| {
            drop(unmask);
            f();
            0
        })?;
        log::debug!("grove: forked child {pid}");
        Ok(Process::adopt(pid))
    }

    /// Watches a child this process forked itself (not reaped yet).
    pub(crate) fn adopt(pid: libc::pid_t) -> Process {
        Process {
            pid,
            exit: ExitWatch::new(pid),
            status: Cell::new(None),
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Parks the calling task until the child exits; returns its exit status (again on later
    /// calls).
    ///
    /// # Errors
    /// If `waitpid` fails (the child was reaped by someone else: `ECHILD`).
    pub fn join(&self) -> io::Result<ExitStatus> {
        self.wait_until(None)
            .map(|s| s.expect("no deadline: the wait ends with a status"))
    }

    /// Like [`join`](Self::join), giving up after `timeout` (`Ok(None)`: still running).
    ///
    /// # Errors
    /// As [`join`](Self::join).
    pub fn join_timeout(&self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        self.wait_until(deadline_after(timeout))
    }

    /// The exit status if the child has exited, without waiting.
    ///
    /// # Errors
    /// As [`join`](Self::join).
    pub fn try_join(&self) -> io::Result<Option<ExitStatus>> {
        self.try_wait()
    }

    /// Whether the child is still running (multiprocessing's `is_alive`).
    pub fn is_alive(&self) -> bool {
        matches!(self.try_wait(), Ok(None))
    }

    /// The child's exit code once it has exited normally (multiprocessing's `exitcode`; `None`
    /// while it runs or if a signal ended it).
    pub fn exit_code(&self) -> Option<i32> {
        self.try_wait().ok().flatten().and_then(|s| s.code())
    }

    /// Sends `SIGTERM` (multiprocessing's `terminate`). Does nothing once the child is reaped.
    ///
    /// # Errors
    /// If `kill` fails.
    pub fn terminate(&self) -> io::Result<()> {
        self.signal(libc::SIGTERM)
    }

    /// Sends `SIGKILL`. Does nothing once the child is reaped.
    ///
    /// # Errors
    /// If `kill` fails.
    pub fn kill(&self) -> io::Result<()> {
        self.signal(libc::SIGKILL)
    }

    /// Sends signal `sig` (e.g. [`crate::signal::SIGUSR1`]). Does nothing once the child is
    /// reaped (its pid may belong to another process by then).
    ///
    /// # Errors
    /// If `kill` fails (`InvalidInput` for a bad signal number).
    pub fn signal(&self, sig: i32) -> io::Result<()> {
        if self.status.get().is_some() {
            return Ok(());
        }
        sys::kill(self.pid, sig)
    }

    /// Waits for the child blocking the thread (for use right after `SIGKILL`, in `Drop`s).
    pub(crate) fn reap_blocking(&self) {
        if self.status.get().is_none() {
            if let Ok(s) = sys::waitpid(self.pid, true) {
                self.status.set(s);
            }
        }
    }

    fn try_wait(&self) -> io::Result<Option<ExitStatus>> {
        if let Some(s) = self.status.get() {
            return Ok(Some(s));
        }
        let s = sys::waitpid(self.pid, false)?;
        if s.is_some() {
            self.status.set(s);
        }
        Ok(s)
    }

    fn wait_until(&self, deadline: Option<std::time::Instant>) -> io::Result<Option<ExitStatus>> {
        self.exit.wait_until(deadline, || self.try_wait())
    }
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.pid)
            .field("status", &self.status.get())
            .finish()
    }
}
