//! Hooks that wait for several fds: `poll`, `ppoll`, `select`, `epoll_wait`, `epoll_pwait`.
//!
//! Each asks the kernel first with a zero timeout (which also validates the arguments exactly
//! as libc's call would); only if nothing is ready does the task park — on the hub's epoll
//! registration of every fd it watches — and then asks again, until the deadline.

use std::time::Instant;

use libc::{c_int, epoll_event, fd_set, nfds_t, pollfd, sigset_t, timespec, timeval};

use super::{duration_of, fdtable, patched, raw, source_for, timespec_of};
use crate::hub::foreign::{self, Foreign};
use crate::hub::reactor::Interest;
use crate::hub::timers::{deadline_after, Action};

/// Every hook of this file (see `keep_hooks_linked`).
pub(super) const ALL: &[*const ()] = &[
    poll as *const (),
    ppoll as *const (),
    select as *const (),
    epoll_wait as *const (),
    epoll_pwait as *const (),
];

const ZERO: timespec = timespec {
    tv_sec: 0,
    tv_nsec: 0,
};

/// What a wait on several fds came to.
enum Waited {
    /// Something may be ready, or the deadline passed: ask the kernel again.
    Again,
    /// An interrupt ended it (the call fails with `EINTR`).
    Interrupted,
    /// An fd cannot be watched through the hub: block in the kernel instead.
    CannotPark,
}

/// One fd to watch, and in which directions.
#[derive(Clone, Copy)]
struct Want {
    fd: c_int,
    read: bool,
    write: bool,
}

/// Parks until one of `wants` reports readiness, or `deadline`.
fn wait_any(foreign: &Foreign, wants: &[Want], deadline: Option<Instant>) -> Waited {
    if foreign.held_back() {
        foreign.yield_now();
        let _ = foreign.why();
        return Waited::Interrupted;
    }
    let mut sources = Vec::with_capacity(wants.len());
    for w in wants {
        let Some(e) = fdtable::entry(w.fd) else {
            return Waited::CannotPark;
        };
        match source_for(w.fd, e) {
            Ok(s) => sources.push((s, *w)),
            Err(_) => return Waited::CannotPark,
        }
    }
    let mut places = Vec::with_capacity(sources.len() * 2);
    for (s, w) in &sources {
        for (on, interest) in [(w.read, Interest::Read), (w.write, Interest::Write)] {
            if on {
                let mut p = s.dir(interest).place();
                p.arm_for_park();
                places.push(p);
            }
        }
    }
    let timer =
        deadline.map(|d| crate::hub::add_timer(d, Action::Wake(crate::hub::current_waker())));
    let reason = {
        let _io = crate::hub::reactor::IoWaiter::new();
        crate::hub::park("poll")
    };
    if let Some(key) = timer {
        crate::hub::cancel_timer(key);
    }
    drop(places);
    if reason == crate::coro::fiber::WakeReason::Interrupted {
        let _ = foreign.why(); // on a thread that is exiting, this never returns
        Waited::Interrupted
    } else {
        Waited::Again
    }
}

fn passed(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

fn remaining(deadline: Option<Instant>) -> Option<timespec> {
    deadline.map(|d| timespec_of(d.saturating_duration_since(Instant::now())))
}

fn ptr_or_null(ts: &Option<timespec>) -> *const timespec {
    ts.as_ref()
        .map_or(std::ptr::null(), |t| t as *const timespec)
}

#[no_mangle]
pub unsafe extern "C" fn poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int {
    let deadline = match timeout {
        t if t < 0 => None,
        t => deadline_after(std::time::Duration::from_millis(t as u64)),
    };
    if !patched() || timeout == 0 {
        let ts =
            (timeout >= 0).then(|| timespec_of(std::time::Duration::from_millis(timeout as u64)));
        return raw::ppoll(fds, n, ptr_or_null(&ts), std::ptr::null());
    }
    // SAFETY: forwarded with the caller's arguments.
    unsafe { poll_until(fds, n, deadline, std::ptr::null()) }
}

#[no_mangle]
pub unsafe extern "C" fn ppoll(
    fds: *mut pollfd,
    n: nfds_t,
    ts: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    if !patched() {
        return raw::ppoll(fds, n, ts, mask);
    }
    let deadline = if ts.is_null() {
        None
    } else {
        // SAFETY: a non-null `ts` points at a timespec (libc's contract).
        match duration_of(unsafe { &*ts }) {
            Some(d) if d.is_zero() => return raw::ppoll(fds, n, ts, mask),
            Some(d) => deadline_after(d),
            None => return raw::ppoll(fds, n, ts, mask), // EINVAL
        }
    };
    // SAFETY: forwarded with the caller's arguments.
    unsafe { poll_until(fds, n, deadline, mask) }
}

/// `poll` until `deadline`, parking between zero-timeout checks.
///
/// # Safety
/// `fds[..n]` must be a valid pollfd array (the kernel checks it before it is read here).
unsafe fn poll_until(
    fds: *mut pollfd,
    n: nfds_t,
    deadline: Option<Instant>,
    mask: *const sigset_t,
) -> c_int {
    let Some(foreign) = foreign::enter() else {
        let ts = remaining(deadline);
        return raw::ppoll(fds, n, ptr_or_null(&ts), mask);
    };
    loop {
        let r = raw::ppoll(fds, n, &ZERO, mask);
        if r != 0 || passed(deadline) {
            return r;
        }
        // SAFETY: the kernel just read (and wrote) `fds[..n]`, so the array is valid.
        let list = unsafe { std::slice::from_raw_parts(fds, n as usize) };
        let wants: Vec<Want> = list
            .iter()
            .filter(|p| p.fd >= 0)
            .map(|p| Want {
                fd: p.fd,
                read: p.events & libc::POLLOUT == 0
                    || p.events & (libc::POLLIN | libc::POLLPRI | libc::POLLRDHUP) != 0,
                write: p.events & libc::POLLOUT != 0,
            })
            .collect();
        match wait_any(&foreign, &wants, deadline) {
            Waited::Again => {}
            Waited::Interrupted => return raw::fail(libc::EINTR),
            Waited::CannotPark => {
                drop(foreign);
                let ts = remaining(deadline);
                return raw::ppoll(fds, n, ptr_or_null(&ts), mask);
            }
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn select(
    n: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    tv: *mut timeval,
) -> c_int {
    let timeout = if tv.is_null() {
        None
    } else {
        // SAFETY: a non-null `tv` points at a timeval (libc's contract).
        let t = unsafe { *tv };
        if t.tv_sec < 0 || t.tv_usec < 0 {
            return raw::fail(libc::EINVAL);
        }
        Some(
            std::time::Duration::from_secs(t.tv_sec as u64)
                .saturating_add(std::time::Duration::from_micros(t.tv_usec as u64)),
        )
    };
    let cooperative = patched()
        && timeout != Some(std::time::Duration::ZERO)
        && (0..=libc::FD_SETSIZE as c_int).contains(&n);
    let foreign = if cooperative { foreign::enter() } else { None };
    let Some(foreign) = foreign else {
        // SAFETY: forwarded with the caller's arguments.
        return unsafe { select_blocking(n, r, w, e, tv, timeout) };
    };
    let deadline = timeout.and_then(deadline_after);
    let sets = [r, w, e];
    // SAFETY: non-null sets point at fd_sets (libc's contract); copied before the kernel
    // overwrites them.
    let wanted: [Option<fd_set>; 3] = sets.map(|s| (!s.is_null()).then(|| unsafe { *s }));
    loop {
        let mut out = wanted;
        let mut ts = ZERO;
        let ptr = |o: &mut Option<fd_set>| {
            o.as_mut()
                .map_or(std::ptr::null_mut(), |s| s as *mut fd_set)
        };
        let [a, b, c] = &mut out;
        let res = raw::pselect6(n, ptr(a), ptr(b), ptr(c), &mut ts);
        if res != 0 || passed(deadline) {
            if res >= 0 {
                for (user, got) in sets.iter().zip(out) {
                    if let Some(got) = got {
                        // SAFETY: `user` is the caller's non-null set.
                        unsafe { **user = got };
                    }
                }
                write_remaining(tv, deadline);
            }
            return res;
        }
        let wants = wants_of(n, &wanted);
        match wait_any(&foreign, &wants, deadline) {
            Waited::Again => {}
            Waited::Interrupted => return raw::fail(libc::EINTR),
            Waited::CannotPark => {
                drop(foreign);
                // SAFETY: forwarded with the caller's arguments.
                return unsafe {
                    select_blocking(
                        n,
                        r,
                        w,
                        e,
                        tv,
                        remaining(deadline).map(|t| duration_of(&t).unwrap_or_default()),
                    )
                };
            }
        }
    }
}

/// The fds a select watches, from its (copied) sets.
fn wants_of(n: c_int, sets: &[Option<fd_set>; 3]) -> Vec<Want> {
    let is_in = |s: &Option<fd_set>, fd: c_int| {
        // SAFETY: FD_ISSET reads bit `fd` of a set; `fd < n <= FD_SETSIZE`.
        s.as_ref().is_some_and(|s| unsafe { libc::FD_ISSET(fd, s) })
    };
    (0..n)
        .filter_map(|fd| {
            let read = is_in(&sets[0], fd) || is_in(&sets[2], fd);
            let write = is_in(&sets[1], fd);
            (read || write).then_some(Want { fd, read, write })
        })
        .collect()
}

/// Linux's `select` leaves the time not slept in `tv`.
fn write_remaining(tv: *mut timeval, deadline: Option<Instant>) {
    if tv.is_null() {
        return;
    }
    let left = deadline.map_or(std::time::Duration::ZERO, |d| {
        d.saturating_duration_since(Instant::now())
    });
    // SAFETY: the caller's non-null timeval.
    unsafe {
        *tv = timeval {
            tv_sec: left.as_secs() as libc::time_t,
            tv_usec: left.subsec_micros() as libc::suseconds_t,
        }
    };
}

/// `select` in the kernel (blocking the thread for up to `timeout`).
///
/// # Safety
/// The caller's arguments, as libc's `select` takes them.
unsafe fn select_blocking(
    n: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    tv: *mut timeval,
    timeout: Option<std::time::Duration>,
) -> c_int {
    let mut ts = timeout.map(timespec_of);
    let tsp = ts
        .as_mut()
        .map_or(std::ptr::null_mut(), |t| t as *mut timespec);
    let res = raw::pselect6(n, r, w, e, tsp);
    if !tv.is_null() {
        if let Some(t) = ts {
            // SAFETY: the caller's non-null timeval.
            unsafe {
                *tv = timeval {
                    tv_sec: t.tv_sec,
                    tv_usec: (t.tv_nsec / 1000) as libc::suseconds_t,
                }
            };
        }
    }
    res
}

#[no_mangle]
pub unsafe extern "C" fn epoll_wait(
    epfd: c_int,
    events: *mut epoll_event,
    max: c_int,
    timeout: c_int,
) -> c_int {
    // SAFETY: forwarded with the caller's arguments.
    unsafe { epoll_pwait(epfd, events, max, timeout, std::ptr::null()) }
}

#[no_mangle]
pub unsafe extern "C" fn epoll_pwait(
    epfd: c_int,
    events: *mut epoll_event,
    max: c_int,
    timeout: c_int,
    mask: *const sigset_t,
) -> c_int {
    let foreign = if patched() && timeout != 0 {
        foreign::enter()
    } else {
        None
    };
    let Some(foreign) = foreign else {
        return raw::epoll_pwait(epfd, events, max, timeout, mask);
    };
    let deadline = match timeout {
        t if t < 0 => None,
        t => deadline_after(std::time::Duration::from_millis(t as u64)),
    };
    let me = [Want {
        fd: epfd,
        read: true,
        write: false,
    }];
    loop {
        let r = raw::epoll_pwait(epfd, events, max, 0, mask);
        if r != 0 || passed(deadline) {
            return r;
        }
        match wait_any(&foreign, &me, deadline) {
            Waited::Again => {}
            Waited::Interrupted => return raw::fail(libc::EINTR),
            Waited::CannotPark => {
                drop(foreign);
                let ms = remaining(deadline).map_or(-1, |t| {
                    (t.tv_sec * 1000 + (t.tv_nsec + 999_999) / 1_000_000).min(i32::MAX as i64)
                        as c_int
                });
                return raw::epoll_pwait(epfd, events, max, ms, mask);
            }
        }
    }
}
