//! The reactor's operating-system layer. Every backend offers the same contract:
//!
//! - a poller where each fd is registered once, edge-triggered, for read and write readiness
//!   together, with a 64-bit token returned in its events;
//! - `wait` fills a buffer with ready events, blocking at most the given milliseconds
//!   (`None`: until an event arrives), and returns how many arrived; `EINTR` is retried;
//! - a notifier another thread can poke to interrupt `wait`.
//!
//! Only Linux's epoll is implemented; this module picks it.
//!
//! The one way grove calls libc is `syscall!` (defined in `coro/syscall.rs`, the lowest layer).
//! The macro expands to an `unsafe` block, so the compiler accepts it only where unsafe code is
//! allowed: here and in `coro/` (stacks), which import it explicitly
//! (`use crate::coro::syscall::syscall`).
//! Every other module denies unsafe code, and a `syscall!` there does not compile.

mod epoll;
pub(crate) mod process;
pub(crate) mod signal;
pub(crate) mod socket;

pub(crate) use crate::coro::syscall::syscall;
pub(crate) use epoll::{Event, EventFd, Poller};
