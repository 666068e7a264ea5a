//! `getaddrinfo` on the thread pool: glibc's resolver opens and reads its own sockets through
//! internal calls no hook sees, so the whole call moves off the hub while the task parks.

use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use libc::{addrinfo, c_char, c_int};

use super::{errno_for, patched, raw};
use crate::hub::foreign;

/// Every hook of this file (see `keep_hooks_linked`).
pub(super) const ALL: &[*const ()] = &[getaddrinfo as *const ()];

type GetAddrInfo = unsafe extern "C" fn(
    *const c_char,
    *const c_char,
    *const addrinfo,
    *mut *mut addrinfo,
) -> c_int;

static REAL: AtomicUsize = AtomicUsize::new(0);

/// libc's own `getaddrinfo` (the next definition after grove's).
fn real() -> Option<GetAddrInfo> {
    let mut p = REAL.load(Relaxed);
    if p == 0 {
        // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name; it returns the address of
        // the next `getaddrinfo` in lookup order (libc's) or null.
        p = unsafe { libc::dlsym(libc::RTLD_NEXT, c"getaddrinfo".as_ptr()) } as usize;
        REAL.store(p, Relaxed);
    }
    // SAFETY: a non-null result of dlsym for "getaddrinfo" is that function, whose C
    // signature `GetAddrInfo` spells out.
    (p != 0).then(|| unsafe { std::mem::transmute::<usize, GetAddrInfo>(p) })
}

/// A resolved list, freed unless handed to the caller (a task that gave up waiting leaves it
/// to be freed on the worker).
struct List(*mut addrinfo);

// SAFETY: the list is plain heap memory owned by this value alone until handed over.
unsafe impl Send for List {}

impl Drop for List {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: a list returned by getaddrinfo and not handed to anyone.
            unsafe { libc::freeaddrinfo(self.0) };
        }
    }
}

/// The caller's hints, copied (the job outlives a caller that gives up).
#[derive(Clone, Copy)]
struct Hints {
    flags: c_int,
    family: c_int,
    socktype: c_int,
    protocol: c_int,
}

#[no_mangle]
pub unsafe extern "C" fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
) -> c_int {
    let Some(real) = real() else {
        return libc::EAI_SYSTEM;
    };
    if !patched() || !foreign::can_park_here() || res.is_null() {
        // SAFETY: forwarded with the caller's arguments.
        return unsafe { real(node, service, hints, res) };
    }
    // SAFETY: non-null strings are NUL-terminated and hints points at an addrinfo (libc's
    // contract); everything is copied before the call moves to another thread.
    let (node, service, hints) = unsafe {
        let copy = |s: *const c_char| (!s.is_null()).then(|| CString::from(CStr::from_ptr(s)));
        let hints = (!hints.is_null()).then(|| Hints {
            flags: (*hints).ai_flags,
            family: (*hints).ai_family,
            socktype: (*hints).ai_socktype,
            protocol: (*hints).ai_protocol,
        });
        (copy(node), copy(service), hints)
    };
    let Some(foreign) = foreign::enter() else {
        return libc::EAI_SYSTEM;
    };
    let job = move || resolve(real, node, service, hints);
    match crate::threadpool::spawn_blocking_in_hook(job) {
        Some((rc, mut list, err)) => {
            // SAFETY: `res` is the caller's non-null out-pointer.
            unsafe { *res = std::mem::replace(&mut list.0, std::ptr::null_mut()) };
            if rc == libc::EAI_SYSTEM {
                raw::set_errno(err);
            }
            rc
        }
        None => {
            raw::set_errno(errno_for(foreign.why()));
            libc::EAI_SYSTEM
        }
    }
}

/// Runs libc's `getaddrinfo` (on a pool worker): its code, the list, and errno.
fn resolve(
    real: GetAddrInfo,
    node: Option<CString>,
    service: Option<CString>,
    hints: Option<Hints>,
) -> (c_int, List, c_int) {
    // SAFETY: all-zero is a valid addrinfo (null pointers, zero numbers), as hints require.
    let mut h: addrinfo = unsafe { std::mem::zeroed() };
    if let Some(x) = hints {
        h.ai_flags = x.flags;
        h.ai_family = x.family;
        h.ai_socktype = x.socktype;
        h.ai_protocol = x.protocol;
    }
    let as_ptr = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    let hp = if hints.is_some() {
        &h as *const addrinfo
    } else {
        std::ptr::null()
    };
    let mut out = std::ptr::null_mut();
    // SAFETY: valid C strings or nulls, valid hints or null, a valid out-pointer.
    let rc = unsafe { real(as_ptr(&node), as_ptr(&service), hp, &mut out) };
    (rc, List(out), raw::errno())
}
