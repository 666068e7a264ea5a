//! Hooks for reading, writing, accepting and connecting.

use libc::{c_int, c_void, iovec, msghdr, size_t, sockaddr, socklen_t, ssize_t};

use super::fdtable::{self, Entry, COOP, KNOWN, SOCKET, STREAM, USER_NB};
use super::{patched, raw, registered_source, should_wait, state_of, wait_and_retry};
use crate::hub::foreign;
use crate::hub::reactor::Interest;

/// Every hook of this file (see `keep_hooks_linked`).
pub(super) const ALL: &[*const ()] = &[
    read as *const (),
    write as *const (),
    readv as *const (),
    writev as *const (),
    recv as *const (),
    send as *const (),
    recvfrom as *const (),
    sendto as *const (),
    recvmsg as *const (),
    sendmsg as *const (),
    accept as *const (),
    accept4 as *const (),
    connect as *const (),
];

/// A read-type call: try `op`; on `EAGAIN` in blocking mode, park until readable and retry.
/// The first try is the one call site of `op` on the fast path, inlined into the hook (an
/// extra call level costs a mispredicted return after every kernel entry here).
///
/// On a byte stream, a read that returned less than `want()` bytes emptied the receive queue:
/// the hub's registration (once there is one) remembers that, and the next read parks straight
/// away instead of trying and getting `EAGAIN` first — a system call saved per wait, as grove's
/// own sockets do. `want` is asked only after the kernel accepted the buffers; 0 disables this
/// (peeks, datagrams, message calls).
#[inline(always)]
fn read_call(
    fd: c_int,
    dontwait: bool,
    want: impl Fn() -> usize,
    mut op: impl FnMut() -> isize,
) -> isize {
    let (state, e) = if patched() { state_of(fd) } else { (0, None) };
    let tracked = state & (COOP | USER_NB | STREAM) == COOP | STREAM && !dontwait;
    if tracked {
        if let Some(e) = e {
            if let Some(src) = registered_source(fd, e) {
                return tracked_read(fd, e, &src, want, &mut op);
            }
        }
    }
    let n = op();
    if n >= 0 || !should_wait(state, dontwait) {
        return n;
    }
    match e {
        Some(e) => {
            let n = wait_and_retry(fd, e, false, libc::EAGAIN, &mut op);
            if tracked && n >= 0 && (n as usize) < want() {
                if let Some(src) = registered_source(fd, e) {
                    src.dir(Interest::Read).drained();
                }
            }
            n
        }
        None => n,
    }
}

/// [`read_call`] on a byte stream the hub has registered: skips the try when the last read
/// drained the queue, and records whether this one did.
#[inline(always)]
fn tracked_read(
    fd: c_int,
    e: &Entry,
    src: &crate::hub::reactor::Source,
    want: impl Fn() -> usize,
    op: &mut impl FnMut() -> isize,
) -> isize {
    let dir = src.dir(Interest::Read);
    let mut n = if dir.is_ready() { op() } else { -1 };
    if n < 0 && (!dir.is_ready() || raw::errno() == libc::EAGAIN) {
        n = wait_and_retry(fd, e, false, libc::EAGAIN, op);
    }
    if n >= 0 && (n as usize) < want() {
        dir.drained();
    }
    n
}

/// A write-type call: `op(done)` writes what is left after `done` bytes. In blocking mode
/// everything is written (parking as needed), as on a blocking socket; an error after some
/// progress reports the progress. `total` is asked only once the kernel has seen the caller's
/// buffers.
#[inline(always)]
fn write_call(
    fd: c_int,
    dontwait: bool,
    total: impl FnOnce() -> usize,
    mut op: impl FnMut(usize) -> isize,
) -> isize {
    let (state, e) = if patched() { state_of(fd) } else { (0, None) };
    let n = op(0);
    let blocking = state & (COOP | USER_NB) == COOP && !dontwait;
    if !blocking || (n < 0 && raw::errno() != libc::EAGAIN) {
        return n;
    }
    let Some(e) = e else { return n };
    // The kernel has validated the caller's buffers by now (it wrote some, or said EAGAIN).
    let len = total();
    if n >= 0 && (n as usize >= len || n == 0) {
        return n;
    }
    finish_write(fd, e, n, len, &mut op)
}

/// The rest of [`write_call`] after a partial write or `EAGAIN` (in blocking mode): writes the
/// rest of `len` bytes, parking whenever the buffer is full.
#[cold]
#[inline(never)]
fn finish_write(
    fd: c_int,
    e: &Entry,
    first: isize,
    len: usize,
    op: &mut dyn FnMut(usize) -> isize,
) -> isize {
    let mut done = 0usize;
    let mut n = first;
    loop {
        if n < 0 && raw::errno() == libc::EAGAIN {
            n = wait_and_retry(fd, e, true, libc::EAGAIN, &mut || op(done));
        }
        if n < 0 {
            return if done > 0 { done as isize } else { -1 };
        }
        done += n as usize;
        if done >= len || n == 0 {
            return done as isize;
        }
        n = op(done);
    }
}

#[no_mangle]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    read_call(fd, false, || n, || raw::read(fd, buf, n))
}

#[no_mangle]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t {
    // SAFETY: `want` is asked only after the kernel accepted `iov[..cnt]`.
    read_call(
        fd,
        false,
        || unsafe { iov_total(iov, cnt) },
        || raw::readv(fd, iov, cnt),
    )
}

#[no_mangle]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
    // SAFETY: forwarded as received.
    unsafe {
        recvfrom(
            fd,
            buf,
            n,
            flags,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    }
}

#[no_mangle]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    alen: *mut socklen_t,
) -> ssize_t {
    let dontwait = flags & libc::MSG_DONTWAIT != 0;
    let op = |off: usize| {
        raw::recvfrom(
            fd,
            buf.cast::<u8>().wrapping_add(off).cast(),
            n - off,
            flags,
            addr,
            alen,
        )
    };
    let plain = flags & (libc::MSG_PEEK | libc::MSG_WAITALL | libc::MSG_TRUNC) == 0;
    let want = || if plain { n } else { 0 };
    let first = read_call(fd, dontwait, want, || op(0));
    if flags & libc::MSG_WAITALL == 0 || first <= 0 || first as usize >= n {
        return first;
    }
    // MSG_WAITALL on a non-blocking kernel socket returns what is there: wait for the rest.
    let mut done = first as usize;
    while done < n {
        let r = read_call(fd, dontwait, || 0, || op(done));
        if r <= 0 {
            break;
        }
        done += r as usize;
    }
    done as isize
}

#[no_mangle]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    read_call(
        fd,
        flags & libc::MSG_DONTWAIT != 0,
        || 0,
        || raw::recvmsg(fd, msg, flags),
    )
}

#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    write_call(
        fd,
        false,
        || n,
        |off| raw::write(fd, buf.cast::<u8>().wrapping_add(off).cast(), n - off),
    )
}

#[no_mangle]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    // SAFETY: forwarded as received.
    unsafe { sendto(fd, buf, n, flags, std::ptr::null(), 0) }
}

#[no_mangle]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const sockaddr,
    alen: socklen_t,
) -> ssize_t {
    write_call(
        fd,
        flags & libc::MSG_DONTWAIT != 0,
        || n,
        |off| {
            let p = buf.cast::<u8>().wrapping_add(off).cast();
            raw::sendto(fd, p, n - off, flags, addr, alen)
        },
    )
}

#[no_mangle]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t {
    write_call(
        fd,
        false,
        // SAFETY: asked only after the kernel accepted `iov[..cnt]` (see `write_call`).
        || unsafe { iov_total(iov, cnt) },
        |off| match off {
            0 => raw::writev(fd, iov, cnt),
            // SAFETY: as above.
            _ => unsafe { with_iov_from(iov, cnt, off, |v, c| raw::writev(fd, v, c)) },
        },
    )
}

#[no_mangle]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    write_call(
        fd,
        flags & libc::MSG_DONTWAIT != 0,
        // SAFETY: asked only after the kernel accepted `msg` and its iovecs.
        || unsafe { iov_total((*msg).msg_iov, (*msg).msg_iovlen as c_int) },
        |off| match off {
            0 => raw::sendmsg(fd, msg, flags),
            // SAFETY: as above; the control data went with the first part.
            _ => unsafe {
                let m = &*msg;
                with_iov_from(m.msg_iov, m.msg_iovlen as c_int, off, |v, c| {
                    let mut rest: msghdr = *m;
                    rest.msg_iov = v.cast_mut();
                    rest.msg_iovlen = c as _;
                    rest.msg_control = std::ptr::null_mut();
                    rest.msg_controllen = 0;
                    raw::sendmsg(fd, &rest, flags)
                })
            },
        },
    )
}

/// The total length of `iov[..cnt]`.
///
/// # Safety
/// `iov[..cnt]` must be readable.
unsafe fn iov_total(iov: *const iovec, cnt: c_int) -> usize {
    // SAFETY: by the caller.
    let v = unsafe { std::slice::from_raw_parts(iov, cnt.max(0) as usize) };
    v.iter().map(|i| i.iov_len).sum()
}

/// Calls `f` with a copy of `iov[..cnt]` that skips its first `off` bytes.
///
/// # Safety
/// `iov[..cnt]` must be readable.
unsafe fn with_iov_from(
    iov: *const iovec,
    cnt: c_int,
    mut off: usize,
    f: impl FnOnce(*const iovec, c_int) -> isize,
) -> isize {
    // SAFETY: by the caller.
    let v = unsafe { std::slice::from_raw_parts(iov, cnt.max(0) as usize) };
    let mut rest = Vec::with_capacity(v.len());
    for i in v {
        if off >= i.iov_len {
            off -= i.iov_len;
            continue;
        }
        rest.push(iovec {
            iov_base: i.iov_base.cast::<u8>().wrapping_add(off).cast(),
            iov_len: i.iov_len - off,
        });
        off = 0;
    }
    f(rest.as_ptr(), rest.len() as c_int)
}

#[no_mangle]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, alen: *mut socklen_t) -> c_int {
    // SAFETY: forwarded as received.
    unsafe { accept4(fd, addr, alen, 0) }
}

#[no_mangle]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    alen: *mut socklen_t,
    flags: c_int,
) -> c_int {
    if !patched() {
        return raw::accept4(fd, addr, alen, flags);
    }
    let here = foreign::can_park_here();
    let kernel_flags = if here {
        flags | libc::SOCK_NONBLOCK
    } else {
        flags
    };
    let new = read_call(
        fd,
        false,
        || 0,
        || raw::accept4(fd, addr, alen, kernel_flags) as isize,
    ) as c_int;
    if new >= 0 {
        let timeouts = fdtable::existing(fd).map_or((0, 0), Entry::timeouts);
        let ty = libc::SOCK_STREAM | (flags & libc::SOCK_NONBLOCK);
        note_new_socket(new, ty, here, timeouts);
    }
    new
}

/// Records a socket the hooks just created: cooperative (made non-blocking in the kernel) if
/// it was created where the caller could park, else unknown (classified on first use).
/// `ty` is the type asked for (`SOCK_NONBLOCK` in it: the user's non-blocking mode).
pub(super) fn note_new_socket(fd: c_int, ty: c_int, cooperative: bool, timeouts: (u64, u64)) {
    if cooperative {
        if let Some(e) = fdtable::entry(fd) {
            let nb = if ty & libc::SOCK_NONBLOCK != 0 {
                USER_NB
            } else {
                0
            };
            let kind = ty & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
            let stream = if kind == libc::SOCK_STREAM { STREAM } else { 0 };
            e.set(KNOWN | COOP | SOCKET | nb | stream, timeouts.0, timeouts.1);
        }
    } else if let Some(e) = fdtable::existing(fd) {
        e.set(0, 0, 0);
    }
}

#[no_mangle]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, alen: socklen_t) -> c_int {
    let r = raw::connect(fd, addr, alen);
    if r == 0 || !patched() {
        return r;
    }
    let err = raw::errno();
    let (state, e) = state_of(fd);
    let Some(e) = e.filter(|_| state & (COOP | USER_NB) == COOP) else {
        return r;
    };
    match err {
        libc::EINPROGRESS => {
            wait_and_retry(fd, e, true, libc::EINPROGRESS, &mut || connect_result(fd)) as c_int
        }
        libc::EAGAIN => super::fds::connect_backlog_full(fd, addr, alen, e),
        _ => r,
    }
}

/// The outcome of a connection attempt that made the socket writable.
fn connect_result(fd: c_int) -> isize {
    let mut err: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as socklen_t;
    let p = (&mut err as *mut c_int).cast();
    if raw::getsockopt(fd, libc::SOL_SOCKET, libc::SO_ERROR, p, &mut len) < 0 {
        return -1;
    }
    if err == 0 {
        0
    } else {
        raw::fail(err)
    }
}
