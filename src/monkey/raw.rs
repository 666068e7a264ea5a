//! The real calls behind the hooks: raw system calls through `libc::syscall` (which sets
//! `errno` like any libc wrapper), never a hooked symbol. Each takes and returns exactly what the
//! kernel does; arguments are widened to `c_long`, the type the variadic `syscall` reads.
//!
//! The generic forms are used where x86_64 and aarch64 differ (`ppoll` for `poll`, `pselect6`
//! for `select`, `epoll_pwait` for `epoll_wait`, `dup3` for `dup2`, `accept4` for `accept`).

use libc::{c_int, c_long, c_void, sockaddr, socklen_t};

macro_rules! raw {
    ($nr:expr $(, $arg:expr)*) => {
        // SAFETY: the caller passes the kernel what the libc function it stands for received;
        // the kernel validates every argument (bad pointers give EFAULT, not UB here).
        unsafe { syscall_args($nr, &[$($arg as c_long),*]) }
    };
}

/// A system call with up to six arguments, returning the C way (-1 and `errno`).
///
/// On x86_64 the `syscall` instruction is issued right here, inlined into the hook: going
/// through libc's `syscall()` adds a call level whose return mispredicts after every kernel
/// entry on this machine (its return-stack buffer is cleared on the way out of the kernel),
/// ~8 ns per hooked call. Elsewhere, libc's `syscall()`.
///
/// # Safety
/// As for the system call `nr` with these arguments.
#[inline(always)]
unsafe fn syscall_args(nr: c_long, args: &[c_long]) -> c_long {
    let a = |i: usize| args.get(i).copied().unwrap_or(0);
    #[cfg(target_arch = "x86_64")]
    {
        let ret: c_long;
        // SAFETY: the x86_64 Linux system call convention: number in rax, arguments in rdi,
        // rsi, rdx, r10, r8, r9; the kernel clobbers rcx and r11 and returns in rax. Memory
        // the arguments point at is the caller's business (see the function's contract).
        unsafe {
            std::arch::asm!(
                "syscall",
                inlateout("rax") nr => ret,
                in("rdi") a(0),
                in("rsi") a(1),
                in("rdx") a(2),
                in("r10") a(3),
                in("r8") a(4),
                in("r9") a(5),
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        if (-4095..0).contains(&ret) {
            set_errno(-ret as c_int);
            return -1;
        }
        ret
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: by the caller.
    unsafe {
        libc::syscall(nr, a(0), a(1), a(2), a(3), a(4), a(5))
    }
}

pub(super) fn read(fd: c_int, buf: *mut c_void, n: usize) -> isize {
    raw!(libc::SYS_read, fd, buf, n) as isize
}

pub(super) fn write(fd: c_int, buf: *const c_void, n: usize) -> isize {
    raw!(libc::SYS_write, fd, buf, n) as isize
}

pub(super) fn readv(fd: c_int, iov: *const libc::iovec, n: c_int) -> isize {
    raw!(libc::SYS_readv, fd, iov, n) as isize
}

pub(super) fn writev(fd: c_int, iov: *const libc::iovec, n: c_int) -> isize {
    raw!(libc::SYS_writev, fd, iov, n) as isize
}

pub(super) fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: usize,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> isize {
    raw!(libc::SYS_recvfrom, fd, buf, n, flags, addr, len) as isize
}

pub(super) fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: usize,
    flags: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> isize {
    raw!(libc::SYS_sendto, fd, buf, n, flags, addr, len) as isize
}

pub(super) fn recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> isize {
    raw!(libc::SYS_recvmsg, fd, msg, flags) as isize
}

pub(super) fn sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> isize {
    raw!(libc::SYS_sendmsg, fd, msg, flags) as isize
}

pub(super) fn socket(domain: c_int, ty: c_int, proto: c_int) -> c_int {
    raw!(libc::SYS_socket, domain, ty, proto) as c_int
}

pub(super) fn socketpair(domain: c_int, ty: c_int, proto: c_int, sv: *mut c_int) -> c_int {
    raw!(libc::SYS_socketpair, domain, ty, proto, sv) as c_int
}

pub(super) fn accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int {
    raw!(libc::SYS_accept4, fd, addr, len, flags) as c_int
}

pub(super) fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    raw!(libc::SYS_connect, fd, addr, len) as c_int
}

pub(super) fn close(fd: c_int) -> c_int {
    raw!(libc::SYS_close, fd) as c_int
}

pub(super) fn shutdown(fd: c_int, how: c_int) -> c_int {
    raw!(libc::SYS_shutdown, fd, how) as c_int
}

pub(super) fn dup(fd: c_int) -> c_int {
    raw!(libc::SYS_dup, fd) as c_int
}

pub(super) fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    raw!(libc::SYS_dup3, old, new, flags) as c_int
}

pub(super) fn fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    raw!(libc::SYS_fcntl, fd, cmd, arg) as c_int
}

pub(super) fn ioctl(fd: c_int, req: libc::c_ulong, arg: usize) -> c_int {
    raw!(libc::SYS_ioctl, fd, req, arg) as c_int
}

pub(super) fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    raw!(libc::SYS_setsockopt, fd, level, name, val, len) as c_int
}

pub(super) fn getsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    raw!(libc::SYS_getsockopt, fd, level, name, val, len) as c_int
}

pub(super) fn fstat_mode(fd: c_int) -> Result<libc::mode_t, c_int> {
    // SAFETY: `stat` is plain old data; all-zero is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if raw!(libc::SYS_fstat, fd, &mut st as *mut libc::stat) < 0 {
        return Err(errno());
    }
    Ok(st.st_mode)
}

pub(super) fn ppoll(
    fds: *mut libc::pollfd,
    n: libc::nfds_t,
    ts: *const libc::timespec,
    mask: *const libc::sigset_t,
) -> c_int {
    // The kernel's sigset size argument: 8 bytes (64 signals), what glibc passes.
    raw!(libc::SYS_ppoll, fds, n, ts, mask, 8usize) as c_int
}

pub(super) fn pselect6(
    n: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    ts: *mut libc::timespec,
) -> c_int {
    raw!(libc::SYS_pselect6, n, r, w, e, ts, 0usize) as c_int
}

pub(super) fn epoll_pwait(
    epfd: c_int,
    events: *mut libc::epoll_event,
    max: c_int,
    timeout: c_int,
    mask: *const libc::sigset_t,
) -> c_int {
    raw!(
        libc::SYS_epoll_pwait,
        epfd,
        events,
        max,
        timeout,
        mask,
        8usize
    ) as c_int
}

pub(super) fn nanosleep(req: *const libc::timespec, rem: *mut libc::timespec) -> c_int {
    raw!(libc::SYS_nanosleep, req, rem) as c_int
}

/// Returns the error number (0 on success), as `clock_nanosleep` does.
pub(super) fn clock_nanosleep(
    clock: libc::clockid_t,
    flags: c_int,
    req: *const libc::timespec,
    rem: *mut libc::timespec,
) -> c_int {
    if raw!(libc::SYS_clock_nanosleep, clock, flags, req, rem) < 0 {
        errno()
    } else {
        0
    }
}

/// Reads `clock` (`None` if the kernel refuses it).
pub(super) fn clock_gettime(clock: libc::clockid_t) -> Option<libc::timespec> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; clock_gettime (vDSO) is async-signal-safe and not
    // hooked.
    let r = unsafe { libc::clock_gettime(clock, &mut ts) };
    (r == 0).then_some(ts)
}

/// This thread's `errno`.
pub(super) fn errno() -> c_int {
    // SAFETY: `__errno_location` returns this thread's errno slot, valid for the thread's life.
    unsafe { *libc::__errno_location() }
}

/// Sets this thread's `errno`.
pub(super) fn set_errno(e: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = e }
}

/// Fails a call the C way: sets `errno`, returns -1.
pub(super) fn fail<T: From<i8>>(e: c_int) -> T {
    set_errno(e);
    T::from(-1)
}
