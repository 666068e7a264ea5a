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

pub(crate) mod affinity;
pub(crate) mod debug_signal;
mod epoll;
pub(crate) mod process;
pub(crate) mod signal;
pub(crate) mod socket;
pub(crate) mod watchdog;

pub(crate) use crate::coro::syscall::syscall;
pub(crate) use epoll::{Event, EventFd, Poller};

/// The coarse monotonic clock in milliseconds, wrapping at 2^32 (`CLOCK_MONOTONIC_COARSE`: a
/// read of the kernel's last tick through the vDSO, a few ns, millisecond-ish resolution). The
/// hub stamps parks with it for task dumps.
pub(crate) fn coarse_ms() -> u32 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1000)
        .wrapping_add(ts.tv_nsec as u64 / 1_000_000) as u32
}

/// The [`QueueMeta`](super::wait::QueueMeta) of the wait queue `f` is parked on, if it is
/// parked on one (not a sleep, not a greenlet switch).
pub(crate) fn parked_queue_meta(f: &crate::coro::fiber::Fiber) -> Option<&super::wait::QueueMeta> {
    let addr = f.park_obj.get();
    if f.state.get() != crate::coro::fiber::State::Parked || addr == 0 || addr & 1 == 1 {
        return None;
    }
    // SAFETY: a parked fiber's even, non-zero `park_obj` is exactly the address of the wait
    // queue it parked on (set by `WaitQueue::hint` just before the park, cleared by `hub::park`
    // when the park returns, so never stale while the fiber is parked). The fiber's suspended
    // stack holds the `Place` that borrows that queue until the park returns, so the queue is
    // alive for as long as the fiber stays parked, which it does while `f` is borrowed here: no
    // fiber runs on this thread while the caller (the hub, between switches) reads it. The
    // queue is `repr(C)` with its `QueueMeta` first, whatever its payload type.
    Some(unsafe { &*(addr as *const super::wait::QueueMeta) })
}
