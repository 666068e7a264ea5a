//! `fork`: the child gets a fresh hub, as with gevent's `fork` — grove's own fork protocol
//! (`process::fork`: stdout flushed, the thread pool's and signal table's locks held across the
//! call, the parent's tasks leaked in the child, fds re-registered with a new epoll) around the
//! real call.

use libc::pid_t;

use super::patched;
use crate::hub::foreign;

/// Every hook of this file (see `keep_hooks_linked`).
pub(super) const ALL: &[*const ()] = &[fork as *const ()];

#[no_mangle]
pub unsafe extern "C" fn fork() -> pid_t {
    if !patched() || !foreign::has_hub() {
        // SAFETY: plain libc fork, as the caller asked.
        return unsafe { crate::hub::sys::process::libc_fork() };
    }
    let guard = crate::process::fork::prepare();
    // SAFETY: grove's fork protocol holds its own locks across the call (see the module doc);
    // other threads' locks are the caller's business, as with any fork.
    let pid = unsafe { crate::hub::sys::process::libc_fork() };
    if pid == 0 {
        // Signals come back as soon as the child's hub is ready.
        drop(guard.in_child());
    } else {
        let errno = super::raw::errno();
        guard.in_parent();
        super::raw::set_errno(errno);
    }
    pid
}
