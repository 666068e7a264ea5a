//! Processes, the seed's way: gevent's `subprocess`, Python's `multiprocessing`, gunicorn's
//! pre-fork workers.
//!
//! Coroutines use one core. To use more, combine them with processes: each process has its own
//! hub (and can run thousands of tasks), and processes talk through pipes and sockets — which,
//! in grove, park only the task that uses them.
//!
//! | Python | grove |
//! |---|---|
//! | `gevent.subprocess.Popen(args, stdout=PIPE)`, `check_output`, `call` | [`Command`]`::new(p).args(a).stdout(Stdio::piped()).spawn()`, [`Command::output`], [`Command::status`] |
//! | `p.wait()`, `p.poll()`, `p.kill()`, `p.communicate()` | [`Child::wait`], [`Child::try_wait`], [`Child::kill`], [`Child::wait_with_output`] |
//! | `multiprocessing.Process(target=f).start()`, `join`, `terminate`, `is_alive`, `exitcode` | [`Process::spawn`]`(f)`, [`Process::join`], [`Process::terminate`], [`Process::is_alive`], [`Process::exit_code`] |
//! | `Pipe()`, `conn.send(obj)`, `conn.recv()` | [`pipe`]`()`, [`Connection::send`], [`Connection::recv`] |
//! | `Queue()`, `q.put(obj)`, `q.get()`; `Lock()` | [`Queue::new`], [`Queue::put`], [`Queue::get`]; [`Lock`] |
//! | `Pool(5).apply_async(f, (x,), callback=cb)`, `map`, `close`, `join` | [`Pool::new`]`(5)`, [`Pool::apply_async_with_callback`]`(f, x, cb)`, [`Pool::map`], [`Pool::close`], [`Pool::join`] |
//! | `Manager().dict()` | a grove server process over a Unix socket: `examples/mp_manager.rs` |
//! | gunicorn `-w 4` (pre-fork workers, `reuse_port`) | [`Prefork::bind`]`(addr)?.workers(4).serve(handler)` |
//! | `gevent.signal_handler(SIGTERM, f)` | [`crate::signal::signal_handler`], [`crate::signal::Signals`] |
//!
//! ## Child processes ([`Command`])
//! [`Command`] has std's API. Spawning is std's own (a short `posix_spawn` or `fork`+`exec`
//! that does not park). Everything that waits parks only the calling task: the child's exit is
//! watched through a *pidfd* registered with the hub's reactor (Linux 5.3+; older kernels poll
//! with a short sleep), and piped stdin/stdout/stderr are non-blocking and registered too. A
//! hundred children waited on from a hundred tasks of one hub all run at once. A child that
//! dies mid-pipe gives the reader end of file and the writer `BrokenPipe` — never a hang.
//!
//! ## Forking a closure ([`Process`])
//! [`Process::spawn`]`(f)` forks: the child is a copy of this process and runs `f` as its
//! `main`, with a **fresh hub**; when `f` returns, the child's own tasks are torn down (as at
//! the end of `main`) and it exits with code 0 (101 if `f` panicked).
//!
//! What the fork copies, and what grove does about it:
//! - **Only the calling thread.** Every other thread is gone in the child, and a lock one of
//!   them held at that instant stays locked there forever. grove accounts for its own threads:
//!   it holds the thread pool's lock across the fork and empties the pool in the child (its
//!   workers did not come along; the next `spawn_blocking` starts new ones), and does the same
//!   for the signal table. Locks of *your* threads are yours to mind: do not fork while another
//!   thread may hold something the child will need (a logger's lock, stdout's lock). glibc's
//!   `malloc` is safe across fork.
//! - **The parent's tasks.** The child has a copy of every task of the parent's hub — stacks,
//!   captured values, timers. None of them runs in the child, and none of their `Drop`s runs
//!   either (that would release, a second time, what the parent still owns): they are leaked,
//!   deliberately; the memory is the child's copy and goes when it exits. Handles to them
//!   ([`crate::JoinHandle`]) are inert in the child. The fork may happen inside a task: the
//!   child then carries on as that task.
//! - **File descriptors.** The child has all of them. grove's sockets, [`Connection`]s and
//!   [`Queue`]s made before the fork work in both processes: the child's hub registers every fd
//!   again with an epoll instance of its own (the inherited one is shared with the parent). A
//!   copy of an fd keeps its file open: a reader sees end of file only once *every* process
//!   closed the writing end, so close the ends a process does not use (a closure that takes an
//!   end by `move` closes it in the parent when the parent drops the closure).
//! - **Signals.** Signals are blocked around the fork; the child starts with the signal handlers
//!   the process had before grove's and no subscription (a [`Signals`](crate::signal::Signals)
//!   inherited from the parent fails in the child), so a signal sent to the child never reaches
//!   the parent's tasks.
//! - **Buffered output** is flushed before the fork (else the child would print it again), and
//!   the child ends with `_exit` after flushing its own.
//!
//! ## Values between processes ([`Message`])
//! Values cross as bytes through the small [`Message`] trait (numbers, strings, vectors,
//! options, results, tuples; a few lines for your own types). grove adds no serde dependency;
//! to use serde, encode with the format of your choice and send bytes
//! ([`Connection::send_bytes`]).
//!
//! ## A pool of processes ([`Pool`])
//! [`Pool::new`]`(n)` forks `n` workers at once. A job is a plain function `fn(A) -> R` (a
//! closure that captures nothing is one): Python pickles a function by name, grove sends its
//! address — the workers are forks of this process, so every function is at the same address
//! in them. A job that panics reports [`JobError::Panicked`]; a worker that dies reports
//! [`JobError::WorkerDied`] and is replaced.
//!
//! ## Pre-fork servers ([`Prefork`])
//! A master forks N workers, each with its own hub and its own `SO_REUSEPORT` listener; it
//! restarts a worker that dies and stops them all gracefully on SIGTERM or SIGINT. A benchmark
//! or test can run the whole server in a child process with [`Prefork::spawn`].
//!
//! ## Threads
//! Everything here that waits on the hub is tied to the hub (thread) that made it — `!Send` and
//! `!Sync`, like sockets: [`Child`] and its pipes, [`Process`], [`Connection`], [`Queue`],
//! [`Lock`], [`Pool`], [`ApplyResult`]. [`Command`], [`Prefork`] and [`JobError`] are plain
//! values (`Send + Sync`). `tests/send_sync.rs` proves each claim.

mod command;
mod connection;
mod exit;
pub(crate) mod fork;
mod forked;
mod message;
mod pool;
mod prefork;
mod queue;

pub use command::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
pub use connection::{pipe, Connection};
pub use forked::Process;
pub use message::Message;
pub use pool::{ApplyResult, JobError, Pool};
pub use prefork::{Prefork, DEFAULT_GRACE};
pub use queue::{Lock, LockGuard, Queue, MAX_QUEUE_MESSAGE};
pub use std::process::{ExitStatus, Output, Stdio};
