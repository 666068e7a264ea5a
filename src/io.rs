//! Waiting for readiness of any fd (gevent's `wait_read` / `wait_write`).
//!
//! For fds grove does not wrap — a pipe, a terminal, a socket from another library in
//! non-blocking mode: park the task until the fd is ready, then make the non-blocking call.
//! A timeout too large to add to the clock (`Duration::MAX`) waits forever, like `None`.

#![deny(unsafe_code)]

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use crate::hub::reactor::is_deadline;

/// Parks the task until `fd` is readable (data, end of file, hang-up or error), or fails with
/// `TimedOut` after `timeout`. `InvalidInput` if `fd` is not open.
pub fn wait_readable(fd: RawFd, timeout: Option<Duration>) -> io::Result<()> {
    wait(fd, true, timeout)
}

/// Parks the task until `fd` is writable (or hung up / in error), or fails with `TimedOut`
/// after `timeout`. `InvalidInput` if `fd` is not open.
pub fn wait_writable(fd: RawFd, timeout: Option<Duration>) -> io::Result<()> {
    wait(fd, false, timeout)
}

fn wait(fd: RawFd, read: bool, timeout: Option<Duration>) -> io::Result<()> {
    crate::select::wait_any(&[(fd, read, !read)], timeout)
        .map(drop)
        .map_err(|e| match is_deadline(&e) {
            true => io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "timed out waiting for fd {fd} to become {}",
                    if read { "readable" } else { "writable" }
                ),
            ),
            false => e,
        })
}
