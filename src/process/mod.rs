//! Processes, the seed's way (gevent's `subprocess`, Python's `multiprocessing`, gunicorn).

mod command;
mod connection;
mod exit;
mod fork;
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
