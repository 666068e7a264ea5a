//! Monkey patching: unmodified blocking code becomes cooperative (gevent's `patch_all`).
//!
//! ```no_run
//! # #[cfg(feature = "monkey")] {
//! use std::io::{Read, Write};
//! use std::net::{TcpListener, TcpStream};
//!
//! grove::monkey::patch_all();
//! // Plain std code from here on: each blocking call parks only its task.
//! let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//! let addr = listener.local_addr().unwrap();
//! let server = grove::spawn(move || {
//!     let (mut conn, _) = listener.accept().unwrap();
//!     let mut buf = [0; 5];
//!     conn.read_exact(&mut buf).unwrap();
//!     conn.write_all(&buf).unwrap();
//! });
//! let client = grove::spawn(move || {
//!     std::thread::sleep(std::time::Duration::from_millis(10)); // parks this task only
//!     let mut s = TcpStream::connect(addr).unwrap();
//!     s.write_all(b"hello").unwrap();
//!     let mut buf = [0; 5];
//!     s.read_exact(&mut buf).unwrap();
//!     buf
//! });
//! server.join().unwrap();
//! assert_eq!(&client.join().unwrap(), b"hello");
//! # }
//! ```
//!
//! # How it works
//! With the cargo feature `monkey`, grove defines the C library's socket, poll and sleep
//! functions itself (`#[no_mangle] extern "C"`). In the final binary those definitions take the
//! place of libc's for Rust's std and for every statically linked crate, so `std::net`,
//! `std::thread::sleep` and the blocking client crates built on them (ureq, redis, postgres,
//! tungstenite, ...) call grove. The real work is done with raw system calls, never through a
//! hooked symbol again.
//!
//! [`patch_all`] switches the hooks on (once for the whole process; calling it again does
//! nothing) and makes sure the calling thread has a hub. Before it — and at any time on a
//! thread that has no hub, in a generator body, or in the hub's own loop — every hook does
//! exactly what libc does, so threads that never touch grove behave as without it.
//!
//! After it, a call from a task (or from the thread's main code, which runs the hub while it
//! waits, as in gevent) tries the system call first; only if the kernel says `EAGAIN` on an fd
//! the user did not make non-blocking does the task park until the hub's epoll reports the fd
//! ready. A call on a ready fd costs **no extra system call**; an fd is added to epoll once, on
//! its first `EAGAIN`.
//!
//! # What is covered
//! - **Sockets and pipes**: `socket`, `socketpair`, `accept`, `accept4`, `connect`, `read`,
//!   `readv`, `recv`, `recvfrom`, `recvmsg`, `write`, `writev`, `send`, `sendto`, `sendmsg`,
//!   `close`, `shutdown`, `dup`, `dup2`, `dup3`, `fcntl`, `ioctl(FIONBIO)`,
//!   `setsockopt`/`getsockopt`.
//!   - Each fd's state is created lazily, also for fds that existed before `patch_all` or that
//!     other code created: the kernel fd is made non-blocking, but the user's own view of
//!     `O_NONBLOCK` (set through `fcntl`, `ioctl(FIONBIO)` or `SOCK_NONBLOCK`) is kept and
//!     reported by `F_GETFL`; on an fd the user made non-blocking, calls return `EAGAIN`
//!     exactly as libc's would (that is how grove's own `net` sockets and tokio's sockets keep
//!     working unchanged).
//!   - A blocking-mode `write`/`send` writes everything (parking as often as needed), as a
//!     blocking socket does; `recv` with `MSG_WAITALL` waits for the whole buffer.
//!   - Timeouts are the kernel's: `SO_RCVTIMEO`/`SO_SNDTIMEO` (std's `set_read_timeout`) end a
//!     call with `EAGAIN` after exactly that long (`connect`: `EINPROGRESS`); there is no
//!     other timeout and no polling in slices.
//!   - `close` of an fd another task of the hub is parked on wakes that task with `EBADF`; a
//!     new file that reuses the number never wakes or confuses the old waiter.
//!   - Regular files never report `EAGAIN`, so their calls pass straight through (as in
//!     gevent), as do the standard streams 0–2 unless they are sockets (their open file is
//!     shared with the parent process, which must not see it turn non-blocking).
//! - **Waiting for several fds**: `poll`, `ppoll`, `select`, `epoll_wait`, `epoll_pwait`. A
//!   zero timeout never parks; otherwise the task parks until one of the fds is ready or the
//!   timeout passes. `epoll_wait` on a program's own epoll fd (mio, and so tokio and the sync
//!   `postgres` crate's private runtime) parks until that epoll fd becomes readable. The
//!   signal mask of `ppoll`/`epoll_pwait` is not applied while the task is parked.
//! - **Sleeping**: `nanosleep`, `clock_nanosleep` (`CLOCK_REALTIME`, `CLOCK_MONOTONIC`,
//!   `CLOCK_BOOTTIME`, relative or absolute), `usleep`, `sleep`. A zero sleep yields.
//! - **`fork`**: the child starts with a fresh hub, as with gevent's `fork`: the parent's tasks
//!   are left behind (never run, never dropped), grove's fds are re-registered with a new epoll,
//!   the thread pool starts empty (see [`process`](crate::process) for what a fork copies).
//! - **Name resolution**: `getaddrinfo` runs on grove's thread pool
//!   ([`threadpool`](crate::threadpool)) while the task parks (glibc's resolver makes its own
//!   socket calls internally, which no hook can see, so the whole call moves off the hub).
//!
//! # Kill and Timeout inside patched code
//! A task blocked inside a hooked call sits below C-ABI frames that cannot unwind, so a kill or
//! a [`Timeout`](crate::Timeout) cannot unwind it from there. Instead the blocked call fails —
//! `ECANCELED` for a kill, `ETIMEDOUT` for a timeout (`sleep`s return `EINTR` with nothing
//! left to sleep, so std's retry loop ends) — and the interrupt stays pending: the task
//! unwinds at its next grove call (a park, yield, join, grove I/O), and
//! [`Timeout::catch`](crate::Timeout::catch) / [`with_timeout`](crate::with_timeout) report
//! `Err(Elapsed)` when their timeout fired inside patched code even if the closure returned.
//! Until then every further blocking hooked call of that task fails at once (after letting
//! the other tasks run), so code that propagates errors ends promptly.
//!
//! # What is not covered, and why
//! - **`std::sync` locks and condvars, and `std::sync::mpsc`** block in `futex`, which is not a
//!   libc call anyone can hook usefully: a task holding a `std::sync::Mutex` across a park
//!   would deadlock the hub anyway. Use [`grove::sync`](crate::sync).
//! - **Two sync `postgres` clients on one thread.** The sync `postgres` crate runs each query
//!   in its own tokio runtime's `block_on`; one client blocked there parks only its task (its
//!   `epoll_wait` is hooked), but tokio marks the whole *thread* as inside a runtime for that
//!   time, so a second task's `block_on` panics "Cannot start a runtime from within a runtime".
//!   Such a marker lives in a thread-local of tokio's that no hook can see or swap per task. Use
//!   one client per thread (a [`Runtime`](crate::Runtime) hub each), or a client that does its
//!   own blocking I/O.
//! - **Crates that wait for their own background thread** (e.g. `reqwest::blocking`, which
//!   runs a tokio runtime on another thread and blocks on a channel) block in `futex` too.
//! - **C shared libraries** call libc through their own PLT, which resolves to grove's hooks
//!   only if the executable exports them: link with `-C link-arg=-Wl,--export-dynamic` (or
//!   `-rdynamic`). Without it a C library's calls go straight to libc and block the thread.
//! - **glibc's internal calls** (stdio's `fread`/`fwrite`, the resolver's sockets) do not go
//!   through the PLT at all.
//! - Files opened with `open` are not made asynchronous (use
//!   [`spawn_blocking`](crate::threadpool::spawn_blocking) for slow disks).
//! - The hooks are not pthread cancellation points.
//! - std's `TcpListener::bind` listens with a backlog of 128; a server that expects a burst of
//!   thousands of connects at once calls `listen` again with a larger one (as any server would).
//!
//! # Compared with gevent's `patch_all`
//! gevent replaces Python modules (`socket`, `time`, `select`, `ssl`, `threading`, ...); grove
//! replaces the libc functions under Rust's std, so any crate that uses std's blocking I/O is
//! covered without a grove-specific version of it, but `threading` is not: threads stay
//! threads (use tasks, and `grove::sync` instead of `std::sync`). Like gevent, grove resolves
//! names on a thread pool and leaves regular files alone. Unlike libco, fds created before
//! patching and fds from `accept4` are cooperative too; unlike libco and open-coroutine, there is
//! no default timeout and no polling in slices.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use libc::c_int;

use crate::hub::foreign::{self, Foreign, Why};
use crate::hub::reactor::{Deadline, Interest, Share, Source};

mod dns;
mod fds;
mod fdtable;
mod fork;
mod io_hooks;
mod poll;
mod raw;
mod sleep;

use fdtable::{Entry, COOP, KNOWN, SOCKET, STREAM, USER_NB};

static PATCHED: AtomicBool = AtomicBool::new(false);

/// Makes unmodified blocking code cooperative (gevent's `monkey.patch_all()`): from now on,
/// std's (and C's) socket, poll and sleep calls made in a task — or in a thread's main code,
/// which then runs the hub while it waits — park only that task. Gives the calling thread its
/// hub. Calling it again does nothing. See the [module docs](self) for what is covered.
pub fn patch_all() {
    crate::hub::with(|hub| drop(hub.root_fiber()));
    keep_hooks_linked();
    PATCHED.store(true, Relaxed);
}

/// Whether [`patch_all`] has been called in this process.
pub fn is_patched() -> bool {
    PATCHED.load(Relaxed)
}

/// Takes the address of every hook, so the linker keeps the object files that define them
/// whatever the codegen units turn out to be.
fn keep_hooks_linked() {
    std::hint::black_box(io_hooks::ALL);
    std::hint::black_box(fds::ALL);
    std::hint::black_box(poll::ALL);
    std::hint::black_box(sleep::ALL);
    std::hint::black_box(dns::ALL);
    std::hint::black_box(fork::ALL);
}

/// Whether the hooks are on (`patch_all` was called).
#[inline(always)]
fn patched() -> bool {
    PATCHED.load(Relaxed)
}

/// The state bits of `fd` for a hooked call, classifying an fd seen for the first time when
/// the caller could park. 0 (not `COOP`): behave exactly like libc.
#[inline(always)]
fn state_of(fd: c_int) -> (u32, Option<&'static Entry>) {
    match fdtable::existing(fd) {
        Some(e) if e.state() & KNOWN != 0 => (e.state(), Some(e)),
        _ => classify_if_cooperative(fd),
    }
}

/// Learns what `fd` is (once per fd): sockets and pipes are made non-blocking in the kernel
/// and become cooperative; the rest passes through. Only where the caller could park — a
/// thread without a hub never changes an fd's flags.
#[cold]
fn classify_if_cooperative(fd: c_int) -> (u32, Option<&'static Entry>) {
    if !foreign::can_park_here() {
        return (0, fdtable::existing(fd));
    }
    let Some(e) = fdtable::entry(fd) else {
        return (0, None);
    };
    let Ok(mode) = raw::fstat_mode(fd) else {
        return (0, Some(e)); // not open: the call itself reports EBADF
    };
    let kind = mode & libc::S_IFMT;
    let socket = kind == libc::S_IFSOCK;
    let pipe = kind == libc::S_IFIFO && fd > 2;
    if !socket && !pipe {
        e.set(KNOWN, 0, 0);
        return (KNOWN, Some(e));
    }
    let flags = raw::fcntl(fd, libc::F_GETFL, 0);
    if flags < 0 {
        return (0, Some(e));
    }
    let stream = !socket || fds::socket_type(fd) == libc::SOCK_STREAM;
    let mut state =
        KNOWN | COOP | if socket { SOCKET } else { 0 } | if stream { STREAM } else { 0 };
    if flags & libc::O_NONBLOCK != 0 {
        state |= USER_NB;
    } else if raw::fcntl(fd, libc::F_SETFL, (flags | libc::O_NONBLOCK) as usize) < 0 {
        e.set(KNOWN, 0, 0);
        return (KNOWN, Some(e));
    }
    let (rcv, snd) = if socket {
        (
            fds::socket_timeout(fd, libc::SO_RCVTIMEO),
            fds::socket_timeout(fd, libc::SO_SNDTIMEO),
        )
    } else {
        (0, 0)
    };
    e.set(state, rcv, snd);
    (state, Some(e))
}

/// Whether a call on an fd in `state` that just failed with `EAGAIN` should wait (the fd is
/// cooperative and in blocking mode for the user, and the call did not ask not to wait).
#[inline(always)]
fn should_wait(state: u32, dontwait: bool) -> bool {
    state & (COOP | USER_NB) == COOP && !dontwait && raw::errno() == libc::EAGAIN
}

/// This hub's source for `fd` if it has one for the fd's current file (never registers).
#[inline]
fn registered_source(fd: c_int, e: &Entry) -> Option<Rc<Source>> {
    let gen = e.generation();
    SOURCES
        .try_with(|s| {
            let s = s.try_borrow().ok()?;
            match s.0.get(fd as usize) {
                Some(Some((g, src))) if *g == gen => Some(src.clone()),
                _ => None,
            }
        })
        .ok()
        .flatten()
}

/// The hub's registrations by fd number, with the generation of the file they were made for.
struct Sources(Vec<Option<(u32, Rc<Source>)>>);

thread_local! {
    static SOURCES: RefCell<Sources> = const { RefCell::new(Sources(Vec::new())) };
}

/// This hub's source for `fd` (registered with epoll on first use). A registration made for an
/// older file under the same number is forgotten first.
fn source_for(fd: c_int, e: &Entry) -> io::Result<Rc<Source>> {
    let gen = e.generation();
    let i = fd as usize;
    SOURCES.with(|s| {
        let mut s = s.borrow_mut();
        if s.0.len() <= i {
            s.0.resize(i + 1, None);
        }
        match &s.0[i] {
            Some((g, src)) if *g == gen => return Ok(src.clone()),
            Some((_, stale)) => crate::hub::with(|hub| hub.reactor.forget(stale)),
            None => {}
        }
        s.0[i] = None;
        let src = crate::hub::with(|hub| hub.reactor.register(fd))?;
        s.0[i] = Some((gen, src.clone()));
        Ok(src)
    })
}

/// `fd` was closed or replaced: a task of this hub parked on it wakes (and sees `EBADF`).
/// `delete`: the file stays open under the number (the user took it non-blocking), so its
/// epoll registration is removed too.
fn drop_source(fd: c_int, delete: bool) {
    let Ok(i) = usize::try_from(fd) else { return };
    if !crate::hub::alive() {
        return;
    }
    let src = SOURCES
        .try_with(|s| {
            s.try_borrow_mut()
                .ok()
                .and_then(|mut s| s.0.get_mut(i).and_then(Option::take))
        })
        .ok()
        .flatten();
    if let Some((_, src)) = src {
        crate::hub::with(|hub| {
            if delete {
                hub.reactor.deregister(&src)
            } else {
                hub.reactor.forget(&src)
            }
        });
    }
}

/// A deadline `nanos` from now (0: none).
fn deadline_in(nanos: u64) -> Option<Instant> {
    match nanos {
        0 => None,
        n => crate::hub::timers::deadline_after(Duration::from_nanos(n)),
    }
}

/// The errno of a hooked call whose park ended early.
fn errno_for(why: Why) -> c_int {
    match why {
        Why::Killed | Why::Unwinding => libc::ECANCELED,
        Why::TimedOut => libc::ETIMEDOUT,
        Why::WouldBlockForever => libc::EDEADLK,
    }
}

/// The errno for an error of [`Source`]'s I/O loop.
fn errno_of(err: &io::Error, source: &Source, foreign: &Foreign, timeout: c_int) -> c_int {
    if let Some(n) = err.raw_os_error() {
        n
    } else if source.is_closed() {
        libc::EBADF
    } else if crate::hub::reactor::is_deadline(err) {
        timeout
    } else {
        errno_for(foreign.why())
    }
}

/// The rest of a hooked I/O call after its first try said `EAGAIN` on a blocking-mode fd:
/// park until the fd is ready and try again, until the fd's own timeout (then `timeout_errno`).
/// On a thread that cannot park, block in `poll` instead (the kernel fd is non-blocking now).
#[cold]
#[inline(never)]
fn wait_and_retry(
    fd: c_int,
    e: &Entry,
    write: bool,
    timeout_errno: c_int,
    op: &mut dyn FnMut() -> isize,
) -> isize {
    let deadline = deadline_in(e.timeout(write));
    let Some(foreign) = foreign::enter() else {
        return block_in_poll(fd, write, deadline, timeout_errno, op);
    };
    if foreign.held_back() {
        foreign.yield_now();
        return raw::fail(errno_for(foreign.why()));
    }
    let source = match source_for(fd, e) {
        Ok(s) => s,
        Err(err) => {
            log::debug!("grove::monkey: cannot register fd {fd} ({err}); blocking in poll");
            drop(foreign);
            return block_in_poll(fd, write, deadline, timeout_errno, op);
        }
    };
    let dir = source.dir(if write {
        Interest::Write
    } else {
        Interest::Read
    });
    dir.clear();
    let r = dir.io(Share::Shared, false, Deadline::At(deadline), || {
        let n = op();
        if n < 0 {
            Err(io::Error::from_raw_os_error(raw::errno()))
        } else {
            Ok(n)
        }
    });
    match r {
        Ok(n) => n,
        Err(err) => raw::fail(errno_of(&err, &source, &foreign, timeout_errno)),
    }
}

/// Blocks the thread in `poll` until `fd` is ready, retrying `op` (an fd that grove made
/// non-blocking, used from a thread that cannot park).
fn block_in_poll(
    fd: c_int,
    write: bool,
    deadline: Option<Instant>,
    timeout_errno: c_int,
    op: &mut dyn FnMut() -> isize,
) -> isize {
    let events = if write { libc::POLLOUT } else { libc::POLLIN };
    loop {
        let mut pfd = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        let ts = deadline.map(|d| timespec_of(d.saturating_duration_since(Instant::now())));
        let tsp = ts.as_ref().map_or(std::ptr::null(), |t| t as *const _);
        let n = raw::ppoll(&mut pfd, 1, tsp, std::ptr::null());
        if n < 0 && raw::errno() != libc::EINTR {
            return -1;
        }
        if n == 0 {
            return raw::fail(timeout_errno);
        }
        let r = op();
        if r >= 0 || raw::errno() != libc::EAGAIN {
            return r;
        }
    }
}

/// A duration as a `timespec` (saturating).
fn timespec_of(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    }
}

/// A `timespec` as a duration: `None` if it is invalid (negative, or nanoseconds out of range).
fn duration_of(ts: &libc::timespec) -> Option<Duration> {
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return None;
    }
    Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}
