//! The task dump: every task of this thread's hub, what it waits on, for how long, who holds
//! it, where it was spawned — written in chunks so a million tasks never stall the hub long.

use std::fmt;
use std::io::{self, Write};

use crate::hub::{self, inspect::TaskInfo};

/// Tasks formatted per chunk: the hub pauses for one chunk at a time (see [`dump_to`]); at
/// ~50 ns a task that is ~25 µs.
const CHUNK: usize = 500;

/// A snapshot of every task of this thread's hub, as text (see [`dump`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dump {
    text: String,
    tasks: usize,
}

impl Dump {
    /// How many tasks and greenlets it lists (main not counted).
    pub fn tasks(&self) -> usize {
        self.tasks
    }

    /// The dump as text, one line per task.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Dump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A snapshot of every task and greenlet of this thread's hub: id, name, state, what it waits
/// on (fd and direction, a sleep's deadline, the primitive — and for a `Mutex` or `Semaphore`,
/// which task holds it), how long it has waited, where it was spawned, a greenlet's parent, and
/// "can never wake" for a task parked on a primitive only its waiters can still reach.
///
/// Taken in one go (the hub does nothing else meanwhile); for many tasks prefer [`dump_to`],
/// which streams.
///
/// ```
/// let sem = grove::sync::Semaphore::new(0);
/// let s = sem.clone();
/// let t = grove::Builder::new().name("waiter").spawn(move || s.acquire()).unwrap();
/// grove::yield_now();
/// let dump = grove::debug::dump();
/// assert!(dump.to_string().contains("'waiter': parked"), "{dump}");
/// sem.release();
/// t.join().unwrap();
/// ```
pub fn dump() -> Dump {
    let mut text = String::new();
    let mut tasks = 0;
    write_header(&mut text);
    let now = hub::sys::coarse_ms();
    let mut from = Some(0);
    while let Some(start) = from {
        from = hub::with(|h| {
            h.inspect(start, usize::MAX, now, |t| {
                tasks += 1;
                write_task(t, &mut text);
            })
        });
    }
    Dump { text, tasks }
}

/// Writes the same dump as [`dump`] to `out`, 500 tasks at a time: the hub formats a
/// chunk, writes it, and — when called from a task or main and more chunks remain — yields,
/// so other tasks run between chunks (each chunk is a consistent view; the whole is not).
/// Returns how many tasks it wrote.
///
/// # Errors
/// What writing to `out` fails with.
pub fn dump_to(out: &mut impl Write) -> io::Result<usize> {
    dump_chunked(out, hub::can_switch())
}

/// [`dump_to`], optionally without yielding (the hub itself dumping on a signal).
pub(crate) fn dump_chunked(out: &mut impl Write, yield_between: bool) -> io::Result<usize> {
    let mut buf = String::with_capacity(CHUNK * 128);
    write_header(&mut buf);
    let mut tasks = 0;
    let mut from = Some(0);
    while let Some(start) = from {
        let now = hub::sys::coarse_ms();
        from = hub::with(|h| {
            h.inspect(start, CHUNK, now, |t| {
                tasks += 1;
                write_task(t, &mut buf);
            })
        });
        out.write_all(buf.as_bytes())?;
        buf.clear();
        if from.is_some() && yield_between {
            crate::yield_now();
        }
    }
    out.flush()?;
    Ok(tasks)
}

fn write_header(out: &mut String) {
    let m = super::metrics();
    let thread = std::thread::current();
    out.push_str("grove task dump, thread '");
    out.push_str(thread.name().unwrap_or("unnamed"));
    out.push_str(&format!(
        "': {} tasks ({} ready, {} parked), {} timers, {} fds\n",
        m.tasks_alive, m.tasks_ready, m.tasks_parked, m.timers_armed, m.fds_registered
    ));
    let now = hub::sys::coarse_ms();
    let root = hub::root();
    let main = TaskInfo::of(&root, now);
    out.push_str("  ");
    main.write_line(out);
}

fn write_task(t: &TaskInfo<'_>, out: &mut String) {
    out.push_str("  ");
    t.write_line(out);
}
