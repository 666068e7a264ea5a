//! `syscall!`: the C convention (-1 and `errno`) as `io::Result`, with `EINTR` retried.
//!
//! Defined in a module of its own so that its textual scope covers nothing: every user imports
//! it by path (`use crate::coro::syscall::syscall`); it sits in `coro/`, the lowest layer, so
//! both `coro/stack` and `hub/sys` import it downwards, and a module that denies unsafe code cannot use
//! it at all (the expansion is an `unsafe` block).

/// Calls `libc::$fn(args..)`, retrying on `EINTR`, mapping -1 to `io::Error::last_os_error()`.
///
/// The call site documents, in a `// SAFETY:` line, why its arguments satisfy the libc
/// contract.
macro_rules! syscall {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        loop {
            #[allow(unused_unsafe)]
            // SAFETY: the call site documents why its arguments satisfy the libc contract.
            let res = unsafe { libc::$fn($($arg),*) };
            if res == -1 {
                let err = std::io::Error::last_os_error();
                if err.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                break Err(err);
            }
            break Ok(res);
        }
    }};
}
pub(crate) use syscall;
