//! Waiting for a child process to exit without blocking the thread: a pidfd registered with
//! the reactor (readable once the child has exited), or — on kernels before 5.3 — polling
//! with a short, growing sleep.

#![deny(unsafe_code)]

use std::io;
use std::os::fd::OwnedFd;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use crate::hub::reactor::{is_deadline, Interest, Share};
use crate::hub::sys::process as sys;
use crate::net::evented::Evented;

/// Watches one child's exit.
pub(crate) struct ExitWatch {
    pidfd: Option<Evented<OwnedFd>>,
}

impl ExitWatch {
    /// Watches child `pid` (which must not be reaped yet).
    pub(crate) fn new(pid: libc::pid_t) -> ExitWatch {
        let pidfd = match sys::pidfd_open(pid).and_then(Evented::new) {
            Ok(p) => Some(p),
            Err(e) => {
                log::debug!("grove: no pidfd for child {pid} ({e}); polling its exit");
                None
            }
        };
        ExitWatch { pidfd }
    }

    /// Parks until `try_wait` reports an exit status, or `deadline` passes (`Ok(None)`).
    pub(crate) fn wait_until(
        &self,
        deadline: Option<Instant>,
        mut try_wait: impl FnMut() -> io::Result<Option<ExitStatus>>,
    ) -> io::Result<Option<ExitStatus>> {
        let Some(pidfd) = &self.pidfd else {
            return poll_until(deadline, try_wait);
        };
        let got = pidfd.io_until(Interest::Read, Share::Shared, deadline, |_| {
            try_wait()?.ok_or_else(|| io::ErrorKind::WouldBlock.into())
        });
        match got {
            Ok(status) => Ok(Some(status)),
            Err(e) if is_deadline(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn poll_until(
    deadline: Option<Instant>,
    mut try_wait: impl FnMut() -> io::Result<Option<ExitStatus>>,
) -> io::Result<Option<ExitStatus>> {
    let mut nap = Duration::from_millis(1);
    loop {
        if let Some(status) = try_wait()? {
            return Ok(Some(status));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
        crate::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(50));
    }
}
