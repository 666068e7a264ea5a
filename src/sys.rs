//! The one way grove calls libc: `syscall!` turns the C convention (-1 and `errno`) into
//! `io::Result` and retries calls interrupted by a signal (`EINTR`).
//!
//! The macro contains the `unsafe` block, so it may only be used in the modules DESIGN.md
//! allows unsafe code in (the coroutine/stack core and the reactor's sys layer); each use
//! carries its own `// SAFETY:` line about the arguments it passes.

/// Calls `libc::$fn(args..)`, retrying on `EINTR`, mapping -1 to `io::Error::last_os_error()`.
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
