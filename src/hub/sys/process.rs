//! Process syscalls behind safe wrappers (except `fork` itself): pidfds, `waitpid`, `kill`,
//! `_exit`, the thread's signal mask, and Unix `SOCK_SEQPACKET` pairs with their record I/O.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use super::syscall;

/// Who returned from [`fork`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Forked {
    /// The calling process; the child has this pid.
    Parent(libc::pid_t),
    /// The new process (only the calling thread exists in it).
    Child,
}

/// Forks the process.
///
/// # Safety
/// In the child only the calling thread exists: any lock another thread held at the fork stays
/// locked forever there. The caller holds (or resets in the child) every lock the child will
/// take, and documents that other threads' locks are the user's business.
pub(crate) unsafe fn fork() -> io::Result<Forked> {
    // SAFETY: fork takes no arguments; the caller upholds the contract above.
    let pid = unsafe { libc_fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(if pid == 0 {
        Forked::Child
    } else {
        Forked::Parent(pid)
    })
}

/// libc's `fork`. With the `monkey` feature grove defines `fork` itself (a hook that resets the
/// child's hub around the real call); grove's own forks, which do that themselves, call the next
/// definition — libc's — directly.
///
/// # Safety
/// As `fork`.
pub(crate) unsafe fn libc_fork() -> libc::pid_t {
    #[cfg(feature = "monkey")]
    {
        type ForkFn = unsafe extern "C" fn() -> libc::pid_t;
        static NEXT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name returns the next `fork` in
        // lookup order (libc's), or null.
        let p = *NEXT
            .get_or_init(|| unsafe { libc::dlsym(libc::RTLD_NEXT, c"fork".as_ptr()) } as usize);
        if p != 0 {
            // SAFETY: a non-null dlsym result for "fork" is that function.
            return unsafe { std::mem::transmute::<usize, ForkFn>(p)() };
        }
    }
    // SAFETY: as the caller's contract.
    unsafe { libc::fork() }
}

/// Ends the process at once with `code`: no destructors, no `atexit` handlers (the caller
/// flushes what it must first).
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes an integer and never returns.
    unsafe { libc::_exit(code) }
}

/// This process's id.
pub(crate) fn getpid() -> libc::pid_t {
    // SAFETY: getpid takes no arguments and cannot fail.
    unsafe { libc::getpid() }
}

/// A pidfd for child `pid` (close-on-exec): readable once the process has exited.
pub(crate) fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags (0: the fd is close-on-exec by default).
    let fd = syscall!(syscall(libc::SYS_pidfd_open, pid, 0))?;
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Sends signal `sig` to process `pid`.
pub(crate) fn kill(pid: libc::pid_t, sig: i32) -> io::Result<()> {
    // SAFETY: kill takes integers; a bad pid or signal is reported as an error.
    syscall!(kill(pid, sig)).map(drop)
}

/// Reaps child `pid` if it has exited (`block`: waits until it does).
pub(crate) fn waitpid(pid: libc::pid_t, block: bool) -> io::Result<Option<ExitStatus>> {
    let mut status = 0;
    let flags = if block { 0 } else { libc::WNOHANG };
    // SAFETY: `status` is a valid, writable int for the call.
    let got = syscall!(waitpid(pid, &mut status, flags))?;
    Ok((got != 0).then(|| ExitStatus::from_raw(status)))
}

/// A signal set, as the thread's mask.
pub(crate) struct SigMask(libc::sigset_t);

impl SigMask {
    /// Blocks every signal in the calling thread; returns the mask to restore.
    pub(crate) fn block_all() -> SigMask {
        // SAFETY: sigset_t is plain data; sigfillset initialises it before use.
        let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `all` is a valid sigset_t.
        unsafe { libc::sigfillset(&mut all) };
        // SAFETY: as above; `old` is overwritten by the call.
        let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are valid sigsets; SIG_BLOCK cannot fail with them.
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old) };
        SigMask(old)
    }

    /// Makes this the calling thread's mask again.
    pub(crate) fn restore(&self) {
        // SAFETY: `self.0` is a valid sigset; a null old-set pointer is allowed.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
    }
}

/// A connected pair of non-blocking, close-on-exec `SOCK_SEQPACKET` Unix sockets: every send
/// is one record, every receive takes one whole record.
pub(crate) fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    let ty = libc::SOCK_SEQPACKET | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: `fds` has room for the two fds the call writes.
    syscall!(socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()))?;
    // SAFETY: both fds were just returned by the kernel and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sends `buf` as one record (never raises `SIGPIPE`).
pub(crate) fn send_record(fd: &OwnedFd, buf: &[u8]) -> io::Result<usize> {
    let flags = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;
    // SAFETY: `buf` is valid for reads of its length for the call.
    let n = syscall!(send(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), flags))?;
    Ok(n as usize)
}

/// Receives one record into `buf`; returns the record's full length (more than `buf.len()`
/// if it was truncated). 0 with an empty `buf` cannot tell EOF from an empty record: callers
/// never send empty records.
pub(crate) fn recv_record(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    let flags = libc::MSG_TRUNC | libc::MSG_DONTWAIT;
    // SAFETY: `buf` is valid for writes of its length for the call.
    let n = syscall!(recv(
        fd.as_raw_fd(),
        buf.as_mut_ptr().cast(),
        buf.len(),
        flags
    ))?;
    Ok(n as usize)
}

/// Sets or clears `O_NONBLOCK` on `fd`'s open file description.
pub(crate) fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFL takes no argument; a bad fd is reported as an error.
    let flags = syscall!(fcntl(fd, libc::F_GETFL))?;
    let flags = match on {
        true => flags | libc::O_NONBLOCK,
        false => flags & !libc::O_NONBLOCK,
    };
    // SAFETY: F_SETFL takes an int of flags.
    syscall!(fcntl(fd, libc::F_SETFL, flags)).map(drop)
}
