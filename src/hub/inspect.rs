//! A read-only view of the hub's fibers, for `grove::debug::dump` and the "would block forever"
//! report: what each task waits on, for how long, who holds the primitive it waits for, where it
//! was spawned — and the wait-for graph those make.
//!
//! Nothing here is on a hot path. What the hot paths keep for it is small: a fiber records,
//! while it is parked, the address of the wait queue it parked on (or the deadline of its
//! sleep) and the hub's coarse clock ([`super::now_ms`]); a queue's owner writes who holds it
//! into the queue's [`QueueMeta`](super::wait::QueueMeta) (one store per lock).

use std::fmt::Write as _;
use std::panic::Location;

use super::sys;
use crate::coro::fiber::{Fiber, Kind, State};

/// One fiber as a dump shows it.
pub(crate) struct TaskInfo<'a> {
    pub(crate) id: u64,
    pub(crate) kind: Kind,
    pub(crate) name: Option<&'a str>,
    pub(crate) state: State,
    /// What it waits on (`"Mutex::lock"`), `""` if it does not wait.
    pub(crate) waiting_on: &'static str,
    /// How long it has been parked (ms).
    pub(crate) waited_ms: Option<u32>,
    pub(crate) detail: Detail,
    pub(crate) spawned_at: Option<&'static Location<'static>>,
    /// Greenlets: the parent's id (0: the thread's main greenlet).
    pub(crate) parent: Option<u64>,
}

/// What a parked fiber's record says about the thing it waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detail {
    None,
    /// A sleep (or `spawn_later`) due in this many ms (negative: overdue).
    WakesIn(i64),
    /// `JoinHandle::join` (or `kill`) of this task.
    Joins(u64),
    /// A wait queue: its address, its tag (holder id + 1, or fd + 1), and how many handles to
    /// its primitive no waiting call is using (`Some(0)`: it can never be woken).
    Queue {
        addr: usize,
        tag: u64,
        free_refs: Option<i32>,
    },
}

impl Detail {
    /// The task whose progress the waiter depends on: the holder of a Mutex or Semaphore, the
    /// task being joined.
    pub(crate) fn holder(&self, waiting_on: &str) -> Option<u64> {
        match *self {
            Detail::Queue { tag, .. } if tag != 0 && holds(waiting_on) => Some(tag - 1),
            Detail::Joins(id) => Some(id),
            _ => None,
        }
    }

    /// Whether nothing can ever wake the waiter: only waiters still hold the primitive.
    pub(crate) fn can_never_wake(&self) -> bool {
        matches!(
            self,
            Detail::Queue {
                free_refs: Some(0),
                ..
            }
        )
    }
}

/// Whether a wait's tag names a holder (rather than an fd).
fn holds(waiting_on: &str) -> bool {
    waiting_on.starts_with("Mutex") || waiting_on.starts_with("Semaphore")
}

/// Encodes a sleep's deadline for a fiber's `park_obj`: `at << 2 | 1` (odd, so never taken
/// for an address).
pub(crate) fn deadline_note(in_ms: u64) -> usize {
    let at = u64::from(sys::coarse_ms()).wrapping_add(in_ms) as u32;
    (at as usize) << 2 | 1
}

/// Encodes "joins task `id`" for a fiber's `park_obj`: `id << 2 | 3`.
pub(crate) fn join_note(id: u64) -> usize {
    (id as usize) << 2 | 3
}

impl<'a> TaskInfo<'a> {
    /// Reads `f` (on its hub's thread, between switches), with `now` from [`sys::coarse_ms`].
    pub(crate) fn of(f: &'a Fiber, now: u32) -> TaskInfo<'a> {
        let state = f.state.get();
        let parked = state == State::Parked;
        let obj = f.park_obj.get();
        let detail = match (sys::parked_queue_meta(f), obj) {
            (Some(meta), addr) => Detail::Queue {
                addr,
                tag: meta.tag(),
                free_refs: meta.free_refs(),
            },
            (None, obj) if parked && obj & 3 == 3 => Detail::Joins((obj >> 2) as u64),
            (None, obj) if parked && obj & 1 == 1 => {
                Detail::WakesIn(i64::from(((obj >> 2) as u32).wrapping_sub(now) as i32))
            }
            _ => Detail::None,
        };
        let waiting_on = match state {
            State::Parked => f.waiting_on.get(),
            State::Suspended => "a greenlet switch",
            _ => "",
        };
        TaskInfo {
            id: f.id,
            kind: f.kind,
            name: f.name.as_deref().map(String::as_str),
            state,
            waiting_on,
            waited_ms: (parked || state == State::Suspended)
                .then(|| now.wrapping_sub(f.parked_at.get())),
            detail,
            spawned_at: (f.kind != Kind::Root).then_some(f.spawned_at),
            parent: match f.kind {
                Kind::Greenlet => f.parent_id(),
                _ => None,
            },
        }
    }

    /// `task #3 'name'`, `greenlet #4`, `main`.
    pub(crate) fn write_label(&self, out: &mut String) {
        match self.kind {
            Kind::Root => out.push_str("main"),
            Kind::Task => push_id(out, "task #", self.id),
            Kind::Greenlet => push_id(out, "greenlet #", self.id),
        }
        if let Some(n) = self.name {
            out.push_str(" '");
            out.push_str(n);
            out.push('\'');
        }
    }

    /// One line of a dump: label, state, what it waits on, for how long, where it was spawned.
    pub(crate) fn write_line(&self, out: &mut String) {
        self.write_label(out);
        out.push_str(": ");
        out.push_str(match self.state {
            State::Fresh => "not started",
            State::Running => "running",
            State::Ready => "ready",
            State::Parked => "parked",
            State::Suspended => "suspended",
            State::Dead => "finished",
        });
        if let Some(ms) = self.waited_ms {
            out.push_str(" for ");
            push_ms(out, u64::from(ms));
        }
        if !self.waiting_on.is_empty() {
            out.push_str(" on ");
            self.write_wait(out);
        }
        if let Some(p) = self.parent {
            match p {
                0 => out.push_str("; parent: main"),
                p => push_id(out, "; parent: greenlet #", p),
            }
        }
        if let Some(at) = self.spawned_at {
            out.push_str(match self.kind {
                Kind::Greenlet => "; created at ",
                _ => "; spawned at ",
            });
            push_location(out, at);
        }
        out.push('\n');
    }

    /// What it waits on, with the holder, fd or deadline, and whether it can never wake.
    pub(crate) fn write_wait(&self, out: &mut String) {
        match self.detail {
            Detail::Queue { tag, .. } if tag != 0 && self.waiting_on.starts_with("fd ") => {
                push_id(out, "fd ", tag - 1);
                out.push_str(&self.waiting_on[2..]);
            }
            Detail::Joins(id) => {
                out.push_str(self.waiting_on);
                push_id(out, " of task #", id);
            }
            _ => out.push_str(self.waiting_on),
        }
        if let (Some(h), false) = (
            self.detail.holder(self.waiting_on),
            matches!(self.detail, Detail::Joins(_)),
        ) {
            out.push_str(if self.waiting_on.starts_with("Mutex") {
                " held by "
            } else {
                " last taken by "
            });
            match h {
                0 => out.push_str("main"),
                h => push_id(out, "task #", h),
            }
        }
        if let Detail::WakesIn(ms) = self.detail {
            if ms >= 0 {
                out.push_str(" (wakes in ");
                push_ms(out, ms as u64);
                out.push(')');
            } else {
                out.push_str(" (due)");
            }
        }
        if self.detail.can_never_wake() {
            out.push_str(" — can never wake: only its waiters still hold it");
        }
    }
}

fn push_id(out: &mut String, prefix: &str, id: u64) {
    out.push_str(prefix);
    push_u64(out, id);
}

/// Appends a decimal number without going through `fmt` (dumps write millions of them), two
/// digits at a time.
fn push_u64(out: &mut String, mut n: u64) {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    while n >= 100 {
        let d = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[d..d + 2]);
    }
    if n >= 10 {
        let d = n as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[d..d + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + n as u8;
    }
    for &b in &buf[i..] {
        out.push(char::from(b));
    }
}

/// `850 ms`, `3.2 s`, `15 min`.
fn push_ms(out: &mut String, ms: u64) {
    if ms < 1000 {
        push_u64(out, ms);
        out.push_str(" ms");
    } else if ms < 600_000 {
        push_u64(out, ms / 1000);
        out.push('.');
        push_u64(out, ms / 100 % 10);
        out.push_str(" s");
    } else {
        push_u64(out, ms / 60_000);
        out.push_str(" min");
    }
}

fn push_location(out: &mut String, at: &Location<'_>) {
    out.push_str(at.file());
    out.push(':');
    push_u64(out, u64::from(at.line()));
    out.push(':');
    push_u64(out, u64::from(at.column()));
}

/// The wait-for graph of the parked fibers, as the "would block forever" report tells it: who
/// waits on what, who holds it, and every cycle.
pub(crate) fn wait_for_report(infos: &[TaskInfo<'_>], out: &mut String) {
    let label = |id: u64| {
        let mut s = String::new();
        match infos.iter().find(|i| i.id == id) {
            Some(i) => i.write_label(&mut s),
            None if id == 0 => s.push_str("main"),
            None => push_id(&mut s, "task #", id),
        }
        s
    };
    for i in infos {
        out.push(' ');
        i.write_label(out);
        out.push_str(" waits on ");
        i.write_wait(out);
        if let Some(h) = i.detail.holder(i.waiting_on) {
            if let Some(name) = infos.iter().find(|x| x.id == h).and_then(|x| x.name) {
                let _ = write!(out, " '{name}'");
            }
            if let Some(hi) = infos.iter().find(|x| x.id == h) {
                out.push_str(", which waits on ");
                hi.write_wait(out);
            }
        }
        out.push(';');
    }
    out.pop();
    for cycle in cycles(infos) {
        out.push_str(". Wait-for cycle: ");
        for id in &cycle {
            out.push_str(&label(*id));
            out.push_str(" → ");
        }
        out.push_str(&label(cycle[0]));
    }
}

/// Every cycle of "waits on something held by" among `infos`, each once.
fn cycles(infos: &[TaskInfo<'_>]) -> Vec<Vec<u64>> {
    let next = |id: u64| {
        infos
            .iter()
            .find(|i| i.id == id)
            .and_then(|i| i.detail.holder(i.waiting_on))
    };
    let mut found: Vec<Vec<u64>> = Vec::new();
    for start in infos {
        let mut path = vec![start.id];
        let mut cur = start.id;
        while let Some(h) = next(cur) {
            if let Some(pos) = path.iter().position(|&p| p == h) {
                let cycle = path[pos..].to_vec();
                let seen = found
                    .iter()
                    .any(|c| c.len() == cycle.len() && c.contains(&cycle[0]));
                if pos == 0 && !seen {
                    found.push(cycle);
                }
                break;
            }
            path.push(h);
            cur = h;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_are_written_in_decimal() {
        for n in [0, 7, 10, 99, 100, 101, 12_345, 1_000_000, u64::MAX] {
            let mut s = String::new();
            super::push_u64(&mut s, n);
            assert_eq!(s, n.to_string());
        }
    }
}
