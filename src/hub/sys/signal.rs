//! Signals through a self-pipe: a process-wide `sigaction` handler writes the signal's number
//! into the pipe of every subscriber that asked for it; a subscriber's hub reads its pipe.
//!
//! Why not signalfd: a process-directed signal (`kill(pid, SIGTERM)`) goes to *any* thread that
//! does not block it, and signalfd only sees signals that every thread blocks. grove's pool
//! threads, and the user's, may have started before the signal was blocked, so a signalfd
//! would miss signals those threads take (and their default action would end the process).
//! A handler runs on whichever thread the kernel picks, and the pipe brings the news to the
//! right hub. The signal mask is left alone, so children (exec'd or forked) inherit nothing.
//!
//! The handler is async-signal-safe: it reads atomics and calls `write`. A subscriber's pipe
//! is never closed while the process lives (a slot keeps its pipe for the next subscriber), so
//! the handler can never write into an fd that was closed and reused under it.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::syscall;

/// How many subscribers may exist at once in a process.
pub(crate) const MAX_SUBSCRIBERS: usize = 64;

/// One subscriber as the handler sees it: the pipe's write end and the signals it wants.
struct Slot {
    write_fd: AtomicI32,
    mask: AtomicU64,
}

static SLOTS: [Slot; MAX_SUBSCRIBERS] = [const {
    Slot {
        write_fd: AtomicI32::new(-1),
        mask: AtomicU64::new(0),
    }
}; MAX_SUBSCRIBERS];

/// The bookkeeping outside the handler.
struct Table {
    /// Each slot's pipe, once made: (read end, write end).
    pipes: [Option<(RawFd, RawFd)>; MAX_SUBSCRIBERS],
    used: [bool; MAX_SUBSCRIBERS],
    /// Per signal: how many subscribers want it, and the action grove's handler replaced.
    installed: [Option<(usize, libc::sigaction)>; 64],
}

// SAFETY: `libc::sigaction` is plain data (a function address, flags, a mask); the table is
// only touched under its mutex.
unsafe impl Send for Table {}

static TABLE: Mutex<Table> = Mutex::new(Table {
    pipes: [None; MAX_SUBSCRIBERS],
    used: [false; MAX_SUBSCRIBERS],
    installed: [None; 64],
});

fn table() -> MutexGuard<'static, Table> {
    TABLE.lock().unwrap_or_else(PoisonError::into_inner)
}

extern "C" fn on_signal(sig: libc::c_int) {
    // SAFETY: __errno_location returns this thread's errno slot; saved and restored so the
    // interrupted code does not see the handler's errno.
    let errno = unsafe { *libc::__errno_location() };
    let byte = sig as u8;
    for slot in &SLOTS {
        if slot.mask.load(Ordering::Acquire) & (1 << sig) != 0 {
            let fd = slot.write_fd.load(Ordering::Acquire);
            if fd >= 0 {
                // SAFETY: write is async-signal-safe; `byte` is valid for one byte. A full
                // pipe (EAGAIN) drops the byte: the reader will wake for the earlier ones.
                unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
            }
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Whether grove may take over `sig`: a real signal number, not one the kernel reserves
/// (SIGKILL, SIGSTOP) and not a fault (grove's stack-overflow handler owns SIGSEGV/SIGBUS).
pub(crate) fn can_handle(sig: i32) -> bool {
    let faults = [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGILL,
        libc::SIGFPE,
        libc::SIGTRAP,
    ];
    (1..64).contains(&sig) && !faults.contains(&sig)
}

/// Subscribes to the signals in `mask` (bit `n`: signal `n`): returns the slot and a
/// non-blocking, close-on-exec read end (a dup of the slot's pipe) that receives one byte,
/// the signal's number, per delivery.
pub(crate) fn subscribe(mask: u64) -> io::Result<(usize, OwnedFd)> {
    let mut t = table();
    let Some(slot) = t.used.iter().position(|u| !u) else {
        return Err(io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!("grove: at most {MAX_SUBSCRIBERS} signal subscribers at once"),
        ));
    };
    let (read, write) = match t.pipes[slot] {
        Some(p) => p,
        None => {
            let p = pipe()?;
            t.pipes[slot] = Some(p);
            p
        }
    };
    drain(read);
    // SAFETY: F_DUPFD_CLOEXEC duplicates an fd the table keeps open.
    let dup = syscall!(fcntl(read, libc::F_DUPFD_CLOEXEC, 0))?;
    // SAFETY: `dup` was just returned by the kernel and is owned by nobody else.
    let dup = unsafe { OwnedFd::from_raw_fd(dup) };
    for sig in signals_in(mask) {
        install(&mut t, sig)?;
    }
    t.used[slot] = true;
    SLOTS[slot].write_fd.store(write, Ordering::Release);
    SLOTS[slot].mask.store(mask, Ordering::Release);
    Ok((slot, dup))
}

/// Ends a subscription; a signal nobody wants any more gets its previous action back.
pub(crate) fn unsubscribe(slot: usize, mask: u64) {
    let mut t = table();
    SLOTS[slot].mask.store(0, Ordering::Release);
    t.used[slot] = false;
    for sig in signals_in(mask) {
        uninstall(&mut t, sig);
    }
}

fn signals_in(mask: u64) -> impl Iterator<Item = i32> {
    (1..64).filter(move |s| mask & (1u64 << s) != 0)
}

fn install(t: &mut Table, sig: i32) -> io::Result<()> {
    if let Some((n, _)) = &mut t.installed[sig as usize] {
        *n += 1;
        return Ok(());
    }
    // SAFETY: sigaction is plain data; every field grove relies on is set below.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    act.sa_flags = libc::SA_RESTART;
    // SAFETY: as above.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; `sig` was checked by `can_handle`.
    syscall!(sigaction(sig, &act, &mut old))?;
    t.installed[sig as usize] = Some((1, old));
    Ok(())
}

fn uninstall(t: &mut Table, sig: i32) {
    let entry = &mut t.installed[sig as usize];
    if let Some((n, old)) = entry {
        *n -= 1;
        if *n == 0 {
            // SAFETY: `old` is the action sigaction returned when grove installed its own.
            let _ = syscall!(sigaction(sig, &*old, std::ptr::null_mut()));
            *entry = None;
        }
    }
}

fn pipe() -> io::Result<(RawFd, RawFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds pipe2 writes.
    syscall!(pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC))?;
    Ok((fds[0], fds[1]))
}

fn drain(fd: RawFd) {
    let mut buf = [0u8; 64];
    // SAFETY: `buf` is valid for writes of its length; the fd is non-blocking.
    while unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
}

/// Holds the table's lock across a fork, so the child finds it unlocked and consistent.
pub(crate) struct ForkLock(MutexGuard<'static, Table>);

/// Takes the table's lock before a fork.
pub(crate) fn fork_lock() -> ForkLock {
    ForkLock(table())
}

impl ForkLock {
    /// In a forked child: no subscriber of the parent's lives here. Every signal grove took over
    /// gets its previous action back and the inherited pipes (shared with the parent) are
    /// closed, so the child's signals never reach the parent's hubs.
    pub(crate) fn reset_in_child(mut self) {
        let t = &mut *self.0;
        for (i, slot) in SLOTS.iter().enumerate() {
            slot.mask.store(0, Ordering::Release);
            slot.write_fd.store(-1, Ordering::Release);
            t.used[i] = false;
            if let Some((r, w)) = t.pipes[i].take() {
                // SAFETY: the child's copies of the slot's pipe; nothing else owns them.
                unsafe {
                    libc::close(r);
                    libc::close(w);
                }
            }
        }
        for sig in 1..64 {
            if let Some((_, old)) = t.installed[sig as usize].take() {
                // SAFETY: `old` is the action sigaction returned when grove installed its own.
                let _ = syscall!(sigaction(sig, &old, std::ptr::null_mut()));
            }
        }
    }
}
