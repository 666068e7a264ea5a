//! Waiting for Unix signals in a task (gevent's `signal_handler`).
//!
//! A [`Signals`] subscribes to a set of signals; [`Signals::recv`] parks the calling task until
//! one arrives and returns its number. [`wait`] waits once for one signal, and
//! [`signal_handler`] runs a closure in a task of its own on every delivery.
//!
//! ```no_run
//! use grove::signal::{Signals, SIGINT, SIGTERM};
//!
//! let signals = Signals::new(&[SIGTERM, SIGINT])?;
//! let server = grove::spawn(|| { /* serve */ });
//! let sig = signals.recv()?; // only this task parks; `server` keeps running
//! println!("got signal {sig}, stopping");
//! server.kill();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ## How it works, and what it changes
//! grove installs a process-wide `sigaction` handler for each signal someone subscribed to. The
//! handler writes the signal's number into a pipe per subscriber, and the subscriber's hub
//! reads it like any other fd — whichever thread the kernel ran the handler on. (A `signalfd`
//! would need the signal blocked in *every* thread, including threads that started before the
//! subscription, or the kernel may deliver it to one of them and the signalfd never sees it.)
//! The signal mask is not touched, so exec'd children start with the usual mask.
//!
//! - While any subscriber for a signal exists, the signal no longer has its default action
//!   (SIGTERM and SIGINT no longer end the process); when the last one is dropped, the action
//!   that was there before comes back.
//! - Signals of one kind that arrive while nobody reads coalesce, as the kernel's do, except
//!   that up to 64 KiB of them are remembered per subscriber.
//! - Faults (`SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE`, `SIGTRAP`) and `SIGKILL`/`SIGSTOP` cannot
//!   be subscribed to (`InvalidInput`).
//! - A forked child ([`crate::process`]) starts with no subscription and the handlers the
//!   process had before grove's; a `Signals` inherited from the parent fails in the child.
//! - At most 64 subscribers exist at once in a process.

#![deny(unsafe_code)]

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::time::Duration;

use crate::hub::reactor::{is_deadline, Interest, Share};
use crate::hub::sys::process::getpid;
use crate::hub::sys::signal as sys;
use crate::hub::timers::deadline_after;
use crate::net::evented::Evented;
use crate::JoinHandle;

/// Hang-up (terminal closed; daemons: reload configuration).
pub const SIGHUP: i32 = libc::SIGHUP;
/// Interrupt from the keyboard (Ctrl-C).
pub const SIGINT: i32 = libc::SIGINT;
/// Quit from the keyboard (Ctrl-\).
pub const SIGQUIT: i32 = libc::SIGQUIT;
/// Termination request (what `kill` and service managers send).
pub const SIGTERM: i32 = libc::SIGTERM;
/// User-defined signal 1.
pub const SIGUSR1: i32 = libc::SIGUSR1;
/// User-defined signal 2.
pub const SIGUSR2: i32 = libc::SIGUSR2;
/// A child process stopped or exited.
pub const SIGCHLD: i32 = libc::SIGCHLD;
/// The terminal window changed size.
pub const SIGWINCH: i32 = libc::SIGWINCH;
/// A timer (`alarm`) expired.
pub const SIGALRM: i32 = libc::SIGALRM;
/// Write to a pipe with no reader (Rust programs ignore it by default).
pub const SIGPIPE: i32 = libc::SIGPIPE;

/// A subscription to some signals; [`recv`](Signals::recv) parks the task until one arrives.
///
/// Dropping it ends the subscription (see the [module docs](self) for what that restores).
pub struct Signals {
    pipe: Evented<File>,
    slot: usize,
    mask: u64,
    /// The process that subscribed: a copy inherited by a forked child is inert there.
    owner: libc::pid_t,
}

impl Signals {
    /// Subscribes to `signals` (e.g. `&[SIGTERM, SIGINT]`).
    ///
    /// # Errors
    /// `InvalidInput` for an empty list, an unknown number, a fault signal or
    /// `SIGKILL`/`SIGSTOP`; `OutOfMemory` if 64 subscribers exist already; `EMFILE`.
    pub fn new(signals: &[i32]) -> io::Result<Signals> {
        let mut mask = 0u64;
        for &sig in signals {
            if !sys::can_handle(sig) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("grove: signal {sig} cannot be waited for"),
                ));
            }
            mask |= 1 << sig;
        }
        if mask == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "grove: Signals::new needs at least one signal",
            ));
        }
        let (slot, fd) = sys::subscribe(mask)?;
        let pipe = match Evented::new(File::from(fd)) {
            Ok(p) => p,
            Err(e) => {
                sys::unsubscribe(slot, mask);
                return Err(e);
            }
        };
        Ok(Signals {
            pipe,
            slot,
            mask,
            owner: getpid(),
        })
    }

    /// Parks until one of the signals arrives; returns its number.
    ///
    /// # Errors
    /// In a forked child, for a `Signals` made by the parent (`Unsupported`); I/O errors.
    pub fn recv(&self) -> io::Result<i32> {
        self.recv_until(None)
    }

    /// Like [`recv`](Self::recv), failing with `TimedOut` after `timeout`.
    ///
    /// # Errors
    /// As [`recv`](Self::recv), and `TimedOut`.
    pub fn recv_timeout(&self, timeout: Duration) -> io::Result<i32> {
        self.recv_until(deadline_after(timeout))
    }

    /// A signal that has arrived, without waiting.
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub fn try_recv(&self) -> io::Result<Option<i32>> {
        self.check_owner()?;
        let mut byte = [0u8];
        let mut pipe = self.pipe.get_ref();
        loop {
            match pipe.read(&mut byte) {
                Ok(1) if self.mask & (1u64 << (byte[0] & 63)) == 0 => continue,
                r => break r,
            }
        }
        .map(|n| (n == 1).then(|| i32::from(byte[0])))
        .or_else(|e| match e.kind() {
            io::ErrorKind::WouldBlock => Ok(None),
            _ => Err(e),
        })
    }

    fn recv_until(&self, deadline: Option<std::time::Instant>) -> io::Result<i32> {
        self.check_owner()?;
        let mut byte = [0u8];
        let got = self
            .pipe
            .io_until(Interest::Read, Share::Shared, deadline, |mut f| {
                f.read(&mut byte)
            });
        match got {
            Ok(1) => Ok(i32::from(byte[0])),
            Ok(_) => Err(io::ErrorKind::UnexpectedEof.into()),
            Err(e) if is_deadline(&e) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no signal arrived in time",
            )),
            Err(e) => Err(e),
        }
    }

    fn check_owner(&self) -> io::Result<()> {
        if self.owner != getpid() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "grove: this Signals was made by the parent process; subscribe again in the \
                 forked child",
            ));
        }
        Ok(())
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        if self.owner == getpid() {
            sys::unsubscribe(self.slot, self.mask);
        }
    }
}

impl AsRawFd for Signals {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.pipe.get_ref().as_raw_fd()
    }
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sigs: Vec<i32> = (1..64).filter(|s| self.mask & (1 << s) != 0).collect();
        f.debug_struct("Signals").field("signals", &sigs).finish()
    }
}

/// Parks the calling task until `sig` arrives once.
///
/// # Errors
/// As [`Signals::new`] and [`Signals::recv`].
pub fn wait(sig: i32) -> io::Result<()> {
    Signals::new(&[sig])?.recv().map(drop)
}

/// Runs `handler` in a task of its own each time `sig` arrives (gevent's
/// `signal_handler(signum, handler)`). Kill the returned handle to stop (dropping it detaches
/// the task, as with every `JoinHandle`).
///
/// # Errors
/// As [`Signals::new`].
pub fn signal_handler<F>(sig: i32, mut handler: F) -> io::Result<JoinHandle<()>>
where
    F: FnMut() + 'static,
{
    let signals = Signals::new(&[sig])?;
    Ok(crate::spawn(move || {
        while signals.recv().is_ok() {
            handler();
        }
    }))
}
