//! `select`: wait until any of several fds is ready (Python's `select.select`, cooperative).
//!
//! ```
//! use std::io::Write;
//! use std::os::fd::AsRawFd;
//! use std::time::{Duration, Instant};
//! use grove::net::UnixStream;
//!
//! let (a, mut b) = UnixStream::pair()?;
//! let (readable, _) = grove::select::select(&[a.as_raw_fd()], &[], Some(Duration::from_millis(10)))?;
//! assert!(readable.is_empty()); // nothing sent yet: timed out
//! b.write_all(b"x")?;
//! let (readable, _) = grove::select::select(&[a.as_raw_fd()], &[], None)?;
//! assert_eq!(readable, [a.as_raw_fd()]);
//! # Ok::<(), std::io::Error>(())
//! ```

#![deny(unsafe_code)]

use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::hub::reactor::{deadline_error, is_deadline, Interest, Share};
use crate::hub::sys::socket::{poll_now, Readiness};
use crate::hub::sys::Poller;
use crate::hub::timers::deadline_after;
use crate::net::evented::Evented;

/// Parks the task until at least one fd in `readers` is readable or one in `writers` is
/// writable, or `timeout` passes; returns the ready fds of each list (both empty on timeout),
/// in the order given.
///
/// Works on any fd (sockets, pipes, terminals, grove's own sockets); readiness is
/// level-triggered, as in Python. `Some(Duration::ZERO)` polls without parking; a timeout too
/// large to add to the clock (`Duration::MAX`) waits forever, like `None`. With both lists
/// empty it sleeps for `timeout`.
///
/// A process out of file descriptors can still `select`: the wait normally needs one fd of its
/// own (an epoll set of the fds given); without it, `select` polls instead (1 ms doubling to
/// 50 ms between tries), so a server keeps serving the clients it has.
///
/// # Errors
/// `InvalidInput` if an fd is not open, or if both lists are empty and there is no timeout
/// (that would wait forever). Regular files are always ready, as with `select(2)`.
pub fn select(
    readers: &[RawFd],
    writers: &[RawFd],
    timeout: Option<Duration>,
) -> io::Result<(Vec<RawFd>, Vec<RawFd>)> {
    let fds = merge(readers, writers);
    if fds.is_empty() {
        return match timeout {
            Some(t) => {
                crate::sleep(t);
                Ok((Vec::new(), Vec::new()))
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "select with no fds and no timeout would wait forever",
            )),
        };
    }
    match wait_any(&fds, timeout) {
        Ok(ready) => Ok(split(&fds, &ready)),
        Err(e) if is_deadline(&e) => Ok((Vec::new(), Vec::new())),
        Err(e) => Err(e),
    }
}

/// Parks until one of `fds` (fd, read, write) is ready; [`deadline_error`] after `timeout`.
pub(crate) fn wait_any(
    fds: &[(RawFd, bool, bool)],
    timeout: Option<Duration>,
) -> io::Result<Vec<Readiness>> {
    let ready = poll_now(fds)?;
    if any(&ready) || timeout == Some(Duration::ZERO) {
        return if any(&ready) {
            Ok(ready)
        } else {
            Err(deadline_error())
        };
    }
    let deadline = timeout.and_then(deadline_after);
    let set = Poller::interest_set(fds).and_then(Evented::<OwnedFd>::new);
    let set = match set {
        Ok(set) => set,
        Err(e) if out_of_fds(&e) => return poll_until(fds, deadline),
        Err(e) => return Err(e),
    };
    set.io_until(Interest::Read, Share::Shared, deadline, |_| {
        let ready = poll_now(fds)?;
        match any(&ready) {
            true => Ok(ready),
            false => Err(io::ErrorKind::WouldBlock.into()),
        }
    })
}

/// Whether creating the interest set failed for lack of fds or memory (`EMFILE`, `ENFILE`,
/// `ENOMEM`): then `select` still works, by polling.
fn out_of_fds(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM)
    )
}

/// Waits without an fd of its own: asks the kernel with `poll(2)` (no timeout), sleeping
/// between tries, 1 ms doubling to 50 ms, until an fd is ready or `deadline` passes. Only for a
/// process out of file descriptors, so that a server keeps serving the clients it has.
fn poll_until(
    fds: &[(RawFd, bool, bool)],
    deadline: Option<Instant>,
) -> io::Result<Vec<Readiness>> {
    log::debug!("grove: select: no fd for an interest set; polling");
    let mut step = Duration::from_millis(1);
    loop {
        let ready = poll_now(fds)?;
        if any(&ready) {
            return Ok(ready);
        }
        let nap = match deadline {
            Some(d) if Instant::now() >= d => return Err(deadline_error()),
            Some(d) => step.min(d.saturating_duration_since(Instant::now())),
            None => step,
        };
        crate::sleep(nap);
        step = (step * 2).min(Duration::from_millis(50));
    }
}

fn any(ready: &[Readiness]) -> bool {
    ready.iter().any(|r| r.readable || r.writable)
}

/// One entry per distinct fd, wanting read and/or write.
fn merge(readers: &[RawFd], writers: &[RawFd]) -> Vec<(RawFd, bool, bool)> {
    let mut fds: Vec<(RawFd, bool, bool)> = Vec::with_capacity(readers.len() + writers.len());
    for (&fd, read) in readers
        .iter()
        .map(|f| (f, true))
        .chain(writers.iter().map(|f| (f, false)))
    {
        match fds.iter_mut().find(|e| e.0 == fd) {
            Some(e) if read => e.1 = true,
            Some(e) => e.2 = true,
            None => fds.push((fd, read, !read)),
        }
    }
    fds
}

fn split(fds: &[(RawFd, bool, bool)], ready: &[Readiness]) -> (Vec<RawFd>, Vec<RawFd>) {
    let pick = |want: fn(&Readiness) -> bool| -> Vec<RawFd> {
        fds.iter()
            .zip(ready)
            .filter(|(_, r)| want(r))
            .map(|(e, _)| e.0)
            .collect()
    };
    (pick(|r| r.readable), pick(|r| r.writable))
}
