//! Sleep hooks: `nanosleep`, `clock_nanosleep`, `usleep`, `sleep`.

use std::time::Duration;

use libc::{c_int, c_uint, clockid_t, timespec};

use super::{duration_of, patched, raw};
use crate::hub::foreign::{self, Foreign};

/// Every hook of this file (see `keep_hooks_linked`).
pub(super) const ALL: &[*const ()] = &[
    nanosleep as *const (),
    clock_nanosleep as *const (),
    usleep as *const (),
    sleep as *const (),
];

/// Sleeps `d` in the current task. False if an interrupt ended it early (it is held back: see
/// `hub::foreign`). A zero sleep yields.
fn sleep_here(foreign: &Foreign, d: Duration) -> bool {
    if foreign.held_back() {
        foreign.yield_now();
        let _ = foreign.why(); // on a thread that is exiting, this never returns
        return false;
    }
    crate::sleep(d);
    if foreign.held_back() {
        let _ = foreign.why();
        return false;
    }
    true
}

/// Writes "nothing left" to a `rem` pointer: an interrupted sleep must not be resumed by a
/// caller that loops on `EINTR` (std's `thread::sleep` does), or a killed task would sleep on.
fn nothing_left(rem: *mut timespec) {
    if !rem.is_null() {
        // SAFETY: a non-null `rem` points at a timespec the caller lets us write (libc's
        // contract for this argument).
        unsafe {
            *rem = timespec {
                tv_sec: 0,
                tv_nsec: 0,
            }
        };
    }
}

#[no_mangle]
pub unsafe extern "C" fn nanosleep(req: *const timespec, rem: *mut timespec) -> c_int {
    if !patched() || req.is_null() {
        return raw::nanosleep(req, rem);
    }
    // SAFETY: a non-null `req` points at a timespec (libc's contract).
    let Some(d) = duration_of(unsafe { &*req }) else {
        return raw::nanosleep(req, rem); // EINVAL, as the kernel says
    };
    let Some(foreign) = foreign::enter() else {
        return raw::nanosleep(req, rem);
    };
    if sleep_here(&foreign, d) {
        return 0;
    }
    nothing_left(rem);
    raw::fail(libc::EINTR)
}

/// Returns the error number (0 on success), as `clock_nanosleep` does.
#[no_mangle]
pub unsafe extern "C" fn clock_nanosleep(
    clock: clockid_t,
    flags: c_int,
    req: *const timespec,
    rem: *mut timespec,
) -> c_int {
    let cooperative_clock = matches!(
        clock,
        libc::CLOCK_REALTIME | libc::CLOCK_MONOTONIC | libc::CLOCK_BOOTTIME
    );
    if !patched() || !cooperative_clock || req.is_null() {
        return raw::clock_nanosleep(clock, flags, req, rem);
    }
    // SAFETY: a non-null `req` points at a timespec (libc's contract).
    let ts = unsafe { *req };
    let Some(mut d) = duration_of(&ts) else {
        return raw::clock_nanosleep(clock, flags, req, rem); // EINVAL
    };
    let Some(foreign) = foreign::enter() else {
        return raw::clock_nanosleep(clock, flags, req, rem);
    };
    let absolute = flags & libc::TIMER_ABSTIME != 0;
    if absolute {
        let Some(now) = raw::clock_gettime(clock).as_ref().and_then(duration_of) else {
            return raw::clock_nanosleep(clock, flags, req, rem);
        };
        d = d.saturating_sub(now);
    }
    if sleep_here(&foreign, d) {
        return 0;
    }
    if !absolute {
        nothing_left(rem);
    }
    libc::EINTR
}

#[no_mangle]
pub unsafe extern "C" fn usleep(us: libc::useconds_t) -> c_int {
    let d = Duration::from_micros(us.into());
    match patched().then(foreign::enter).flatten() {
        Some(foreign) if sleep_here(&foreign, d) => 0,
        Some(_) => raw::fail(libc::EINTR),
        None => {
            let ts = super::timespec_of(d);
            raw::nanosleep(&ts, std::ptr::null_mut())
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn sleep(secs: c_uint) -> c_uint {
    let d = Duration::from_secs(secs.into());
    let start = std::time::Instant::now();
    match patched().then(foreign::enter).flatten() {
        Some(foreign) if sleep_here(&foreign, d) => 0,
        Some(_) => {
            let left = d.saturating_sub(start.elapsed());
            (left.as_secs() + u64::from(left.subsec_nanos() > 0)) as c_uint
        }
        None => {
            let ts = super::timespec_of(d);
            let mut rem = timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            if raw::nanosleep(&ts, &mut rem) < 0 {
                return rem.tv_sec as c_uint + c_uint::from(rem.tv_nsec > 0);
            }
            0
        }
    }
}
