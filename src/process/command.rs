//! [`Command`] and [`Child`]: std's process API, cooperative. Spawning is std's own (a short
//! `posix_spawn`/`fork`+`exec` that does not park); waiting parks the task on a pidfd, and the
//! child's pipes are non-blocking and registered with the hub's reactor.

#![deny(unsafe_code)]

use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::{self as std_process, ExitStatus, Output, Stdio};
use std::time::Duration;

use super::exit::ExitWatch;
use crate::hub::sys::process as sys;
use crate::hub::timers::deadline_after;
use crate::net::evented::Evented;

/// A process builder with std's API (`std::process::Command`) whose `status`, `output` and the
/// [`Child`]'s waits and pipe I/O park only the calling task (gevent's `subprocess`).
///
/// ```
/// use grove::process::Command;
///
/// let out = Command::new("echo").arg("hello").output()?;
/// assert!(out.status.success());
/// assert_eq!(out.stdout, b"hello\n");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Command {
    inner: std_process::Command,
    stdin_set: bool,
    stdout_set: bool,
    stderr_set: bool,
}

impl Command {
    /// A command for `program` (looked up in `PATH` if it has no `/`), with no arguments, this
    /// process's environment and working directory, and inherited stdin/stdout/stderr for
    /// `spawn` and `status`.
    pub fn new<S: AsRef<OsStr>>(program: S) -> Command {
        Command::from(std_process::Command::new(program))
    }

    /// Adds an argument.
    pub fn arg<S: AsRef<OsStr>>(&mut self, arg: S) -> &mut Command {
        self.inner.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.inner.args(args);
        self
    }

    /// Sets an environment variable for the child.
    pub fn env<K: AsRef<OsStr>, V: AsRef<OsStr>>(&mut self, key: K, val: V) -> &mut Command {
        self.inner.env(key, val);
        self
    }

    /// Sets environment variables for the child.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.inner.envs(vars);
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove<K: AsRef<OsStr>>(&mut self, key: K) -> &mut Command {
        self.inner.env_remove(key);
        self
    }

    /// Starts the child with an empty environment (plus what `env` adds).
    pub fn env_clear(&mut self) -> &mut Command {
        self.inner.env_clear();
        self
    }

    /// Sets the child's working directory.
    pub fn current_dir<P: AsRef<Path>>(&mut self, dir: P) -> &mut Command {
        self.inner.current_dir(dir);
        self
    }

    /// The child's stdin (`Stdio::piped()` gives a cooperative [`ChildStdin`]).
    pub fn stdin<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.inner.stdin(cfg);
        self.stdin_set = true;
        self
    }

    /// The child's stdout (`Stdio::piped()` gives a cooperative [`ChildStdout`]).
    pub fn stdout<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.inner.stdout(cfg);
        self.stdout_set = true;
        self
    }

    /// The child's stderr (`Stdio::piped()` gives a cooperative [`ChildStderr`]).
    pub fn stderr<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.inner.stderr(cfg);
        self.stderr_set = true;
        self
    }

    /// The program's name as given.
    pub fn get_program(&self) -> &OsStr {
        self.inner.get_program()
    }

    /// The std command inside, for what this type does not forward (`CommandExt`: `uid`,
    /// `process_group`, `pre_exec`, ...).
    pub fn as_std_mut(&mut self) -> &mut std_process::Command {
        &mut self.inner
    }

    /// Starts the child. Its piped stdin/stdout/stderr are cooperative.
    ///
    /// # Errors
    /// As `std::process::Command::spawn` (`NotFound` for a missing program), or if a pipe
    /// cannot be registered with the reactor.
    pub fn spawn(&mut self) -> io::Result<Child> {
        Child::from_std(self.inner.spawn()?)
    }

    /// Runs the child to completion with inherited stdio (unless set), parking until it exits.
    ///
    /// # Errors
    /// As [`spawn`](Self::spawn) and [`Child::wait`].
    pub fn status(&mut self) -> io::Result<ExitStatus> {
        self.spawn()?.wait()
    }

    /// Runs the child to completion and collects its stdout and stderr (piped unless set;
    /// stdin is null unless set), parking until it exits.
    ///
    /// # Errors
    /// As [`spawn`](Self::spawn) and [`Child::wait_with_output`].
    pub fn output(&mut self) -> io::Result<Output> {
        let defaults = [!self.stdin_set, !self.stdout_set, !self.stderr_set];
        if defaults[0] {
            self.inner.stdin(Stdio::null());
        }
        if defaults[1] {
            self.inner.stdout(Stdio::piped());
        }
        if defaults[2] {
            self.inner.stderr(Stdio::piped());
        }
        let child = self.spawn();
        // `spawn` and `status` keep inheriting what the caller did not set.
        if defaults[0] {
            self.inner.stdin(Stdio::inherit());
        }
        if defaults[1] {
            self.inner.stdout(Stdio::inherit());
        }
        if defaults[2] {
            self.inner.stderr(Stdio::inherit());
        }
        child?.wait_with_output()
    }
}

impl From<std_process::Command> for Command {
    fn from(inner: std_process::Command) -> Command {
        Command {
            inner,
            stdin_set: false,
            stdout_set: false,
            stderr_set: false,
        }
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

/// A running (or exited) child process with std's API (`std::process::Child`); waiting and
/// its pipes' I/O park only the calling task.
///
/// As with std, dropping a `Child` neither kills nor waits for the process.
pub struct Child {
    /// The child's stdin, if it was piped.
    pub stdin: Option<ChildStdin>,
    /// The child's stdout, if it was piped.
    pub stdout: Option<ChildStdout>,
    /// The child's stderr, if it was piped.
    pub stderr: Option<ChildStderr>,
    inner: std_process::Child,
    exit: ExitWatch,
}

impl Child {
    /// Takes over a child std spawned: its pipes become cooperative and its exit is watched
    /// through a pidfd.
    ///
    /// # Errors
    /// If a pipe cannot be registered with the reactor.
    pub fn from_std(mut inner: std_process::Child) -> io::Result<Child> {
        let exit = ExitWatch::new(inner.id() as libc::pid_t);
        Ok(Child {
            stdin: inner
                .stdin
                .take()
                .map(|p| PipeEnd::new(p.into()))
                .transpose()?
                .map(ChildStdin),
            stdout: inner
                .stdout
                .take()
                .map(|p| PipeEnd::new(p.into()))
                .transpose()?
                .map(ChildStdout),
            stderr: inner
                .stderr
                .take()
                .map(|p| PipeEnd::new(p.into()))
                .transpose()?
                .map(ChildStderr),
            inner,
            exit,
        })
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.inner.id()
    }

    /// Sends `SIGKILL` (nothing once the child was reaped).
    ///
    /// # Errors
    /// As `std::process::Child::kill`.
    pub fn kill(&mut self) -> io::Result<()> {
        self.inner.kill()
    }

    /// Sends signal `sig` (gevent's `Popen.send_signal`). Does nothing once the child was
    /// reaped (by a wait of this `Child`): its pid may belong to another process by then.
    ///
    /// # Errors
    /// If `kill` fails (`InvalidInput` for a bad signal number).
    pub fn send_signal(&mut self, sig: i32) -> io::Result<()> {
        match self.inner.try_wait()? {
            Some(_) => Ok(()),
            None => sys::kill(self.inner.id() as libc::pid_t, sig),
        }
    }

    /// Sends `SIGTERM` (gevent's `Popen.terminate`); see [`send_signal`](Self::send_signal).
    ///
    /// # Errors
    /// As [`send_signal`](Self::send_signal).
    pub fn terminate(&mut self) -> io::Result<()> {
        self.send_signal(libc::SIGTERM)
    }

    /// Closes stdin (so a child reading it sees EOF) and parks until the child exits.
    ///
    /// # Errors
    /// If `waitpid` fails.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        let inner = &mut self.inner;
        let status = self.exit.wait_until(None, || inner.try_wait())?;
        Ok(status.expect("no deadline: the wait ends with a status"))
    }

    /// Like [`wait`](Self::wait), giving up after `timeout` (`Ok(None)`: still running; stdin
    /// stays open).
    ///
    /// # Errors
    /// If `waitpid` fails.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let inner = &mut self.inner;
        self.exit
            .wait_until(deadline_after(timeout), || inner.try_wait())
    }

    /// The exit status if the child has exited, without waiting.
    ///
    /// # Errors
    /// If `waitpid` fails.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.inner.try_wait()
    }

    /// Closes stdin, reads stdout and stderr to their ends (concurrently: stderr in a task of
    /// its own) and waits for the child.
    ///
    /// # Errors
    /// I/O errors on the pipes, and as [`wait`](Self::wait).
    pub fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let errs = self.stderr.take().map(|mut e| {
            crate::spawn(move || {
                let mut v = Vec::new();
                e.read_to_end(&mut v).map(|_| v)
            })
        });
        let mut stdout = Vec::new();
        if let Some(mut out) = self.stdout.take() {
            out.read_to_end(&mut stdout)?;
        }
        let stderr = match errs {
            None => Vec::new(),
            Some(task) => task
                .join()
                .map_err(|e| io::Error::other(format!("reading stderr: {e}")))??,
        };
        let status = self.wait()?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.inner.id())
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .finish()
    }
}

/// One end of a pipe to a child, non-blocking and registered with the reactor.
struct PipeEnd(Evented<File>);

impl PipeEnd {
    fn new(fd: OwnedFd) -> io::Result<PipeEnd> {
        sys::set_nonblocking(fd.as_raw_fd(), true)?;
        Ok(PipeEnd(Evented::new(File::from(fd))?))
    }

    /// Unregisters and hands the fd back in blocking mode (for another child's stdio).
    fn into_blocking(self) -> io::Result<OwnedFd> {
        let fd = OwnedFd::from(self.0.into_inner());
        sys::set_nonblocking(fd.as_raw_fd(), false)?;
        Ok(fd)
    }
}

macro_rules! pipe_end {
    ($ty:ident, $what:literal) => {
        impl AsRawFd for $ty {
            fn as_raw_fd(&self) -> RawFd {
                self.0 .0.get_ref().as_raw_fd()
            }
        }

        impl AsFd for $ty {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.0 .0.get_ref().as_fd()
            }
        }

        impl TryFrom<$ty> for Stdio {
            type Error = io::Error;

            /// The pipe as another child's stdio (back in blocking mode, as a child expects).
            fn try_from(end: $ty) -> io::Result<Stdio> {
                Ok(Stdio::from(end.0.into_blocking()?))
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple($what).field(&self.as_raw_fd()).finish()
            }
        }
    };
}

/// A child's stdin: writes park the task while the pipe is full. Writing after the child
/// exited (or closed its stdin) fails with `BrokenPipe`.
pub struct ChildStdin(PipeEnd);

/// A child's stdout: reads park the task until data or end of file. After the child exits
/// (and every process that shared the pipe closed it), reads return 0.
pub struct ChildStdout(PipeEnd);

/// A child's stderr: as [`ChildStdout`].
pub struct ChildStderr(PipeEnd);

pipe_end!(ChildStdin, "ChildStdin");
pipe_end!(ChildStdout, "ChildStdout");
pipe_end!(ChildStderr, "ChildStderr");

impl Write for ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 .0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for ChildStdout {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0 .0.read(buf)
    }
}

impl Read for ChildStderr {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0 .0.read(buf)
    }
}
