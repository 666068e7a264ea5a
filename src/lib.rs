//! # grove — green threads for Rust, the gevent way
//!
//! grove runs thousands of tasks on one OS thread. Each task is a *stackful* coroutine: it is
//! written as plain blocking code — `sleep`, `join`, a socket `read` — and when it would block,
//! it parks and the thread's **hub** runs another task until the first can continue. This is
//! Python's gevent and greenlet, in Rust: no `async`, no colouring, no `Send` bounds.
//!
//! ## The model
//! - **One hub per OS thread**, created on first use. It owns a run queue, timers and an epoll
//!   reactor. Tasks never move between threads, so `spawn` takes `'static` closures that need
//!   not be `Send`: `Rc` and `RefCell` work across tasks of one hub.
//! - **The hub is implicit.** Plain `main` can [`spawn`], [`sleep`] and `join`: when code outside
//!   any task blocks, the hub runs on the thread's own stack until that code may continue.
//!   Spawned tasks first run when the spawner blocks or [`yield_now`]s.
//! - **Switching is cooperative**: a task runs until it blocks or yields. Every switch goes
//!   through one trampoline on the thread's own stack ([corosensei] does the stack switch).
//! - **When nothing can ever wake the waiting code**, the blocking call panics with a "would
//!   block forever" message naming the parked tasks and what each waits on (gevent's
//!   `LoopExit`), instead of hanging.
//!
//! ```
//! use std::time::Duration;
//!
//! let foo = grove::spawn(|| {
//!     grove::sleep(Duration::from_millis(20));
//!     "foo"
//! });
//! let bar = grove::spawn(|| "bar");
//! let results = grove::join_all([foo, bar]);
//! let names: Vec<&str> = results.into_iter().map(Result::unwrap).collect();
//! assert_eq!(names, ["foo", "bar"]);
//! ```
//!
//! ## From gevent / greenlet to grove
//! | gevent / greenlet | grove |
//! |---|---|
//! | `gevent.spawn(f)` | [`spawn`]`(f)` → [`JoinHandle`] |
//! | `gevent.spawn_later(s, f)` | [`spawn_later`]`(d, f)` |
//! | `g.join()`, `g.get()` | [`JoinHandle::join`] → `Result<T, JoinError>` |
//! | `gevent.joinall(gs)` | [`join_all`]`(handles)` |
//! | `g.kill()` | [`JoinHandle::kill`] (unwinds the task; its `Drop`s run) |
//! | `gevent.sleep(s)`, `gevent.sleep(0)` | [`sleep`]`(d)`, [`yield_now`]`()` |
//! | `gevent.Timeout(s)`, `with_timeout(s, f)` | [`Timeout::start`]`(d)`, [`with_timeout`]`(d, f)` |
//! | `LoopExit: This operation would block forever` | a panic with the same message |
//! | `greenlet(f)`, `g.switch(v)` | [`greenlet::Greenlet::new`]`(f)`, [`greenlet::Greenlet::switch`] |
//! | `greenlet.getcurrent()`, `g.parent`, `g.throw()` | [`greenlet::getcurrent`], [`greenlet::Greenlet::parent`], [`greenlet::Greenlet::throw`] |
//! | `getcurrent().parent.switch(v)` | [`greenlet::switch_to_parent`]`(v)` |
//! | `gevent.event.Event`, `AsyncResult` | [`sync::Event`], [`sync::AsyncResult`] |
//! | `gevent.queue.Queue`, `Channel`; `gevent.lock.Semaphore` | [`sync::Queue`], [`sync::Channel`]; [`sync::Semaphore`], [`sync::Mutex`] |
//! | `gevent.pool.Pool`, `Group`; `gevent.local.local` | [`sync::Pool`], [`sync::Group`]; [`sync::Local`] |
//! | `gevent.socket`, `socket.create_connection` | [`net::TcpStream`], [`net::TcpListener`], [`net::UdpSocket`], [`net::UnixStream`] (std's API) |
//! | `gevent.server.StreamServer(addr, handle, spawn=Pool(n))` | [`net::StreamServer::bind`]`(addr, handler)`, `.max_connections(n)` |
//! | `gevent.select.select(r, w, x, t)`; `wait_read(fd)` | [`select::select`]`(r, w, t)`; [`io::wait_readable`]`(fd, t)` |
//! | gunicorn workers / `multiprocessing` for more cores | [`Runtime`] (a hub per core), [`Runtime::spawn_on`], [`net::RuntimeServer`] |
//! | `queue.Queue` between threads | [`sync::mpsc::channel`], [`sync::mpsc::sync_channel`] |
//! | `gevent.get_hub().threadpool.spawn(f)`; the threadpool resolver | [`threadpool::spawn_blocking`]`(f)`; [`net::lookup_host`] |
//! | `gevent.subprocess.Popen`, `check_output` | [`process::Command`] (std's API; waits and pipes park the task) |
//! | `multiprocessing.Process(target=f)`, `Pipe()`, `Queue()`, `Lock()` | [`process::Process::spawn`]`(f)`, [`process::pipe`], [`process::Queue`], [`process::Lock`] |
//! | `multiprocessing.Pool(5).apply_async(f, args, callback)`, `map` | [`process::Pool`] |
//! | gunicorn's pre-fork workers | [`process::Prefork`] |
//! | `gevent.signal_handler(SIGTERM, f)` | [`signal::signal_handler`], [`signal::Signals`] |
//! | `from gevent import monkey; monkey.patch_all()` | `grove::monkey::patch_all()` (cargo feature `monkey`) |
//! | a generator with `x = yield v` / `send(x)` | [`generator::Generator`], [`generator::Yielder::suspend`] / [`generator::Generator::resume`] |
//!
//! ## Monkey patching: unmodified blocking code
//! With the cargo feature `monkey`, `grove::monkey::patch_all()` makes code that was never
//! written for grove cooperative, as gevent's `patch_all` does: grove defines libc's socket,
//! poll, sleep, `getaddrinfo` and `fork` functions itself, so `std::net`, `std::thread::sleep`
//! and blocking client crates built on them (ureq, redis, tungstenite, ...) park only their task.
//! A ready fd costs no extra system call. The `monkey` module's docs say what is covered, what is
//! not (`std::sync` locks, crates that wait for their own thread, two sync `postgres` clients on
//! one thread — tokio's `block_on` refuses to nest), how a kill or `Timeout` reaches a task
//! blocked inside patched code, and how it compares with gevent.
//!
//! ## Many hubs (every core)
//! One hub uses one core. A [`Runtime`] runs N hubs, one OS thread each (default: one per
//! available core; [`runtime::RuntimeBuilder::pin_cores`] pins them), each with its own run queue,
//! timers and reactor — thread-per-core, as in seastar or glommio, but with blocking-style code.
//! **Tasks never migrate**, so inside a hub nothing changes: `spawn` takes non-`Send` closures and
//! `Rc` works. Only three things cross hubs, and each wakes the other hub through its eventfd at
//! most once per batch (no syscall at all while that hub is busy):
//!
//! - [`Runtime::spawn_on`]`(hub, f)` (or [`spawn_on`] from inside a hub) starts a task from a
//!   `Send` closure and returns a `Send` [`RemoteJoinHandle`]: join it from any hub (the task
//!   parks) or any plain thread; [`current_hub`] says where you are;
//! - [`sync::mpsc`]: std's `channel` / `sync_channel` shapes, senders usable from any thread, a
//!   receiver that parks its task;
//! - [`net::RuntimeServer`]: a [`net::StreamServer`] per hub, each on its own `SO_REUSEPORT`
//!   listener, so connections spread over the hubs without crossing them.
//!
//! ```
//! use std::io::{Read, Write};
//! use grove::{net::RuntimeServer, sync::mpsc, Runtime};
//!
//! let rt = Runtime::builder().hubs(2).build()?;
//! let (seen, log) = mpsc::channel();
//! let server = RuntimeServer::bind(&rt, "127.0.0.1:0", move |mut conn: grove::net::TcpStream, _| {
//!     let mut buf = [0; 16];
//!     let n = conn.read(&mut buf).unwrap_or(0);
//!     let _ = conn.write_all(&buf[..n]);
//!     let _ = seen.send(grove::current_hub()); // crosses to whoever holds `log`
//! })?;
//! let mut client = std::net::TcpStream::connect(server.local_addr())?;
//! client.write_all(b"hi")?;
//! let mut reply = [0; 2];
//! client.read_exact(&mut reply)?;
//! assert!(log.recv().unwrap().is_some()); // main parks; a hub answered
//! server.stop();
//! rt.shutdown(std::time::Duration::from_secs(1));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Shutdown ([`Runtime::shutdown`], or dropping the runtime) stops the servers' acceptors, lets
//! running tasks finish within a timeout and then kills the rest; `spawn_on` to a hub that has shut
//! down returns [`runtime::SpawnError::ShutDown`]. A panic in one hub's task is caught like any
//! task's and never takes down a hub. See [`runtime`] for the details and
//! `examples/multicore_echo_server.rs` for a complete server.

//! ## Every core: processes
//! One hub uses one core. [`process`] is the seed's answer: child processes with std's
//! `Command` API whose waits and pipes park only the task, closures run in forked children
//! (each with a fresh hub) talking through pipes and queues, a process [`process::Pool`], and
//! [`process::Prefork`] servers — N worker processes, each with its own hub and its own
//! `SO_REUSEPORT` listener. [`signal`] lets a task wait for SIGTERM. The [`process`] module
//! docs say what a fork copies (only the calling thread; the parent's tasks are leaked in the
//! child, never run or dropped) and what grove resets.
//!
//! ## Seeing inside the hub
//! [`debug::metrics`] is a cheap `Copy` snapshot of this thread's hub (tasks alive, ready and
//! parked, switches, polls, timers, registered fds, idle stacks). [`debug::set_trace`] calls a
//! hook on every switch (greenlet's `settrace`) — enough to build a per-task CPU-time table.
//! [`debug::set_seed`] (or `GROVE_SEED=n`) runs ready tasks in a reproducible pseudo-random
//! order, so a test can shake out ordering bugs and replay the failing seed.
//! [`debug::dump`] lists every task with what it waits on, for how long, who holds it and where
//! it was spawned (`kill -USR2` prints it with `GROVE_DUMP_SIGNAL=1`); [`debug::watchdog`]
//! reports a task that keeps the hub from switching; "would block forever" panics name holders
//! and wait-for cycles. The debugging chapter, `docs/debugging.md`, shows each output.
//!
//! ## Caveats
//! - **A call that blocks the OS thread blocks every task on it**: `std::thread::sleep`, std's
//!   blocking sockets, a long computation without [`yield_now`]. Use grove's own calls, or
//!   [`threadpool::spawn_blocking`] for what has no cooperative form (file I/O, C libraries).
//! - **One reader and one writer per socket at a time**: a second task reading a stream another
//!   task is parked reading gets `ErrorKind::ResourceBusy` (see [`net`]).
//! - **Do not hold a `std::sync::Mutex` (or a `RefCell` borrow) across a park**: another task
//!   on the same thread may try to take it and the thread deadlocks (or the borrow panics).
//! - **Stacks are fixed-size** (128 KiB of address space by default; only touched pages use
//!   memory). Deep recursion needs [`Builder::stack_size`] or [`set_default_stack_size`]. An
//!   overflow hits a guard page and the process aborts with a message naming the task and its
//!   stack size — never silent corruption.
//! - **Blocking inside a generator body panics**: generators run on their resumer's stack and
//!   cannot park; greenlets and tasks can.
//! - **When a thread exits** (or `main` returns), tasks that never started are dropped unrun
//!   (their `JoinHandle`s see [`JoinError::Killed`]) and tasks still parked are killed and run
//!   until they finish, so their `Drop`s run; a `Drop` that blocks then gets its blocking call
//!   ended early (a sleep returns, I/O fails) — one that waits for a lock nobody will release is
//!   left where it is.
//! - **Kills and timeouts never start a second unwind.** If a task is already unwinding (it
//!   panicked, or a kill is on its way up) and a `Drop` blocks, a further kill or timeout makes
//!   that blocking call return early — `sleep` returns, I/O fails with `TimedOut`, a wait with a
//!   deadline gives up — instead of aborting the process. And a result that arrived first always
//!   wins: a timeout whose deadline passed after the task was woken by its data waits for the
//!   next blocking call. grove installs a panic hook (chained in front of yours) to know which
//!   task is unwinding; if you replace the hook later, wrap the one you take.
//! - **Greenlets live while they have handles**: dropping the last handle of a suspended
//!   greenlet unwinds it as itself. Write Python's `getcurrent().parent.switch(v)` as
//!   [`greenlet::switch_to_parent`]`(v)`: the temporary `getcurrent()` handle would keep the
//!   current greenlet alive across the switch.
//!
//! [corosensei]: https://docs.rs/corosensei

#![deny(missing_docs, unsafe_op_in_unsafe_fn, unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks, missing_debug_implementations)]

// The only modules allowed `unsafe`: stacks and stack switching here, syscalls in `hub::sys`.
#[allow(unsafe_code)]
mod coro;
pub mod debug;
pub mod greenlet;
mod hub;
pub mod io;
#[cfg(feature = "monkey")]
#[allow(unsafe_code)]
pub mod monkey;
pub mod net;
pub mod runtime;
// fork, and calling a pool job through a function address, live in `process`.
#[allow(unsafe_code)]
pub mod process;
pub mod select;
pub mod signal;
pub mod sync;
mod task;
pub mod threadpool;
mod timeout;

pub use coro::generator;
pub use coro::stack::{
    default_stack_size, set_default_stack_size, DEFAULT_STACK_SIZE, MIN_STACK_SIZE,
};
pub use runtime::{current_hub, spawn_on, RemoteJoinHandle, Runtime};
pub use task::{
    join_all, sleep, sleep_until, spawn, spawn_later, yield_now, Builder, JoinError, JoinHandle,
};
pub use timeout::{with_timeout, Elapsed, Timeout};
