//! Hooks that create, copy, configure and close fds — keeping each fd's entry true.
//!
//! `fcntl` and `ioctl` are variadic in C. On the x86_64 and aarch64 Linux ABIs a variadic
//! integer or pointer argument travels in the same register as a named one, so they are
//! defined here with their third argument as a machine word (what every caller passes).

use std::time::Instant;

use libc::{c_int, c_ulong, c_void, sockaddr, socklen_t};

use super::fdtable::{self, Entry, COOP, KNOWN, USER_NB};
use super::io_hooks::note_new_socket;
use super::{drop_source, patched, raw, state_of};
use crate::hub::foreign;

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
compile_error!("grove's `monkey` feature supports Linux on x86_64 and aarch64");

/// Every hook of this file (see `keep_hooks_linked`).
pub(super) const ALL: &[*const ()] = &[
    socket as *const (),
    socketpair as *const (),
    close as *const (),
    shutdown as *const (),
    dup as *const (),
    dup2 as *const (),
    dup3 as *const (),
    fcntl as *const (),
    fcntl64 as *const (),
    ioctl as *const (),
    setsockopt as *const (),
    getsockopt as *const (),
];

/// `SO_RCVTIMEO_NEW` / `SO_SNDTIMEO_NEW` (64-bit time on every architecture).
const SO_RCVTIMEO_NEW: c_int = 66;
const SO_SNDTIMEO_NEW: c_int = 67;

#[no_mangle]
pub unsafe extern "C" fn socket(domain: c_int, ty: c_int, proto: c_int) -> c_int {
    if !patched() {
        return raw::socket(domain, ty, proto);
    }
    let here = foreign::can_park_here();
    let kernel_ty = if here { ty | libc::SOCK_NONBLOCK } else { ty };
    let fd = raw::socket(domain, kernel_ty, proto);
    if fd >= 0 {
        note_new_socket(fd, ty, here, (0, 0));
    }
    fd
}

#[no_mangle]
pub unsafe extern "C" fn socketpair(
    domain: c_int,
    ty: c_int,
    proto: c_int,
    sv: *mut c_int,
) -> c_int {
    if !patched() {
        return raw::socketpair(domain, ty, proto, sv);
    }
    let here = foreign::can_park_here();
    let kernel_ty = if here { ty | libc::SOCK_NONBLOCK } else { ty };
    let r = raw::socketpair(domain, kernel_ty, proto, sv);
    if r == 0 {
        // SAFETY: the kernel just wrote both fds through `sv`.
        let fds = unsafe { [*sv, *sv.add(1)] };
        for fd in fds {
            note_new_socket(fd, ty, here, (0, 0));
        }
    }
    r
}

/// `fd` is being closed or replaced: forget what the hooks knew, wake this hub's waiters.
fn forget_fd(fd: c_int) {
    if let Some(e) = fdtable::existing(fd) {
        e.closed();
    }
    if foreign::has_hub() {
        drop_source(fd, false);
    }
}

#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    if patched() {
        forget_fd(fd);
    }
    raw::close(fd)
}

#[no_mangle]
pub unsafe extern "C" fn shutdown(fd: c_int, how: c_int) -> c_int {
    // Parked readers and writers see the shutdown through epoll (EOF, EPIPE) by themselves.
    raw::shutdown(fd, how)
}

/// `new` now refers to the same open file as `old` (after a dup): same mode, same timeouts.
fn copy_entry(old: c_int, new: c_int) {
    forget_fd(new);
    let Some(from) = fdtable::existing(old).filter(|e| e.state() & KNOWN != 0) else {
        return;
    };
    if let Some(to) = fdtable::entry(new) {
        let (rcv, snd) = from.timeouts();
        to.set(from.state(), rcv, snd);
    }
}

#[no_mangle]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    let new = raw::dup(fd);
    if new >= 0 && patched() {
        copy_entry(fd, new);
    }
    new
}

#[no_mangle]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    if old == new {
        // dup2 onto itself only checks that the fd is open.
        return if raw::fcntl(old, libc::F_GETFD, 0) < 0 {
            -1
        } else {
            new
        };
    }
    // SAFETY: forwarded.
    unsafe { dup3(old, new, 0) }
}

#[no_mangle]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    let r = raw::dup3(old, new, flags);
    if r >= 0 && patched() {
        copy_entry(old, r);
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    if !patched() {
        return raw::fcntl(fd, cmd, arg);
    }
    match cmd {
        libc::F_GETFL => {
            let r = raw::fcntl(fd, cmd, arg);
            let (state, _) = state_of(fd);
            if r < 0 || state & COOP == 0 {
                return r;
            }
            let user = if state & USER_NB != 0 {
                libc::O_NONBLOCK
            } else {
                0
            };
            (r & !libc::O_NONBLOCK) | user
        }
        libc::F_SETFL => {
            let (state, e) = state_of(fd);
            let Some(e) = e.filter(|_| state & COOP != 0) else {
                return raw::fcntl(fd, cmd, arg);
            };
            let r = raw::fcntl(fd, cmd, arg | libc::O_NONBLOCK as usize);
            if r == 0 {
                set_user_nonblocking(fd, e, arg as c_int & libc::O_NONBLOCK != 0);
            }
            r
        }
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => {
            let new = raw::fcntl(fd, cmd, arg);
            if new >= 0 {
                copy_entry(fd, new);
            }
            new
        }
        _ => raw::fcntl(fd, cmd, arg),
    }
}

#[no_mangle]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    // SAFETY: forwarded.
    unsafe { fcntl(fd, cmd, arg) }
}

/// Records the user's non-blocking mode. Turning it on hands the fd back to its owner's own
/// readiness handling (grove's `net`, mio): this hub's registration goes, so they can make
/// theirs.
fn set_user_nonblocking(fd: c_int, e: &Entry, on: bool) {
    let was = e.state() & USER_NB != 0;
    e.set_user_nonblocking(on);
    if on && !was && foreign::has_hub() {
        drop_source(fd, true);
    }
}

#[no_mangle]
pub unsafe extern "C" fn ioctl(fd: c_int, req: c_ulong, arg: usize) -> c_int {
    if !patched() || req != libc::FIONBIO as c_ulong || arg == 0 {
        return raw::ioctl(fd, req, arg);
    }
    let (state, e) = state_of(fd);
    let Some(e) = e.filter(|_| state & COOP != 0) else {
        return raw::ioctl(fd, req, arg);
    };
    // SAFETY: FIONBIO's argument points at an int (a null one was passed to the kernel above).
    let on = unsafe { *(arg as *const c_int) } != 0;
    // The kernel fd stays non-blocking; only the user's view changes.
    set_user_nonblocking(fd, e, on);
    0
}

#[no_mangle]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    let r = raw::setsockopt(fd, level, name, val, len);
    if r != 0 || !patched() || level != libc::SOL_SOCKET {
        return r;
    }
    let write = match name {
        libc::SO_RCVTIMEO | SO_RCVTIMEO_NEW => false,
        libc::SO_SNDTIMEO | SO_SNDTIMEO_NEW => true,
        _ => return r,
    };
    // SAFETY: the kernel accepted `val` as a timeval of `len` bytes (the _NEW form is the same
    // layout on 64-bit targets).
    let tv = unsafe { *(val as *const libc::timeval) };
    if let Some(e) = fdtable::entry(fd) {
        e.set_timeout(write, timeval_nanos(&tv));
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn getsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    // The kernel keeps the user's timeouts (setsockopt passes them on), so it answers.
    raw::getsockopt(fd, level, name, val, len)
}

fn timeval_nanos(tv: &libc::timeval) -> u64 {
    (tv.tv_sec.max(0) as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(tv.tv_usec.max(0) as u64 * 1000)
}

/// The socket's `SO_RCVTIMEO` or `SO_SNDTIMEO` in nanoseconds (0: none, or unreadable).
pub(super) fn socket_timeout(fd: c_int, name: c_int) -> u64 {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = std::mem::size_of::<libc::timeval>() as socklen_t;
    let p = (&mut tv as *mut libc::timeval).cast();
    if raw::getsockopt(fd, libc::SOL_SOCKET, name, p, &mut len) < 0 {
        return 0;
    }
    timeval_nanos(&tv)
}

/// The socket's type (`SOCK_STREAM`, ...; -1 if unreadable).
pub(super) fn socket_type(fd: c_int) -> c_int {
    let mut ty: c_int = -1;
    let mut len = std::mem::size_of::<c_int>() as socklen_t;
    let p = (&mut ty as *mut c_int).cast();
    if raw::getsockopt(fd, libc::SOL_SOCKET, libc::SO_TYPE, p, &mut len) < 0 {
        return -1;
    }
    ty
}

/// A Unix-domain `connect` said `EAGAIN`: the listener's backlog is full, and a blocking
/// connect would wait for room. No readiness event announces room, so retry with growing
/// pauses (1 ms to 50 ms), until the socket's send timeout (then `EAGAIN`).
pub(super) fn connect_backlog_full(
    fd: c_int,
    addr: *const sockaddr,
    alen: socklen_t,
    e: &Entry,
) -> c_int {
    let deadline = super::deadline_in(e.timeout(true));
    let mut pause = std::time::Duration::from_millis(1);
    let foreign = foreign::enter();
    loop {
        match &foreign {
            Some(f) if f.held_back() => return raw::fail(super::errno_for(f.why())),
            Some(_) => crate::sleep(pause),
            None => {
                let ts = super::timespec_of(pause);
                raw::nanosleep(&ts, std::ptr::null_mut());
            }
        }
        if let Some(f) = foreign.as_ref().filter(|f| f.held_back()) {
            return raw::fail(super::errno_for(f.why()));
        }
        let r = raw::connect(fd, addr, alen);
        if r == 0 || raw::errno() != libc::EAGAIN {
            return r;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return raw::fail(libc::EAGAIN);
        }
        pause = (pause * 2).min(std::time::Duration::from_millis(50));
    }
}
