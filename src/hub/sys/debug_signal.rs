//! `SIGUSR2` asks every hub for a task dump (opt-in: `grove::debug::dump_on_signal`). The
//! handler only counts the request and writes an eventfd every hub's epoll watches, both
//! async-signal-safe; each hub sees the count change at its next loop iteration and prints.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Mutex;

/// Dumps asked for so far.
static REQUESTS: AtomicU64 = AtomicU64::new(0);
/// The eventfd that wakes idle hubs (-1 until installed).
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);
static INSTALL: Mutex<bool> = Mutex::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    REQUESTS.fetch_add(1, Ordering::Relaxed);
    let fd = WAKE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: errno is thread-local and `__errno_location` is async-signal-safe; `write` is
        // async-signal-safe and writes 8 bytes from a live local to an eventfd we own (never
        // closed once installed). errno is restored so the interrupted code does not see ours.
        unsafe {
            let errno = *libc::__errno_location();
            let one: u64 = 1;
            libc::write(fd, (&one as *const u64).cast(), 8);
            *libc::__errno_location() = errno;
        }
    }
}

/// Installs the `SIGUSR2` handler (once per process).
pub(crate) fn install() -> io::Result<()> {
    let mut done = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return Ok(());
    }
    // SAFETY: plain libc calls with valid arguments: an eventfd we keep open for the life of
    // the process, and a `sigaction` whose handler only does async-signal-safe work.
    unsafe {
        let fd = libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        WAKE_FD.store(fd, Ordering::Relaxed);
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(libc::SIGUSR2, &sa, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    *done = true;
    Ok(())
}

/// Dumps asked for so far (a relaxed load: the hub checks it once per loop iteration).
#[inline(always)]
pub(crate) fn requests() -> u64 {
    REQUESTS.load(Ordering::Relaxed)
}

/// The eventfd idle hubs should watch, once installed.
pub(crate) fn wake_fd() -> Option<RawFd> {
    let fd = WAKE_FD.load(Ordering::Relaxed);
    (fd >= 0).then_some(fd)
}
