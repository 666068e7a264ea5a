//! The hub's timers: an ordered map keyed by (deadline, sequence number).
//!
//! Ordering by sequence number makes timers with equal deadlines fire in the order they were
//! added. Cancelling removes the entry outright, so a cancelled sleep or timeout leaves no work
//! behind (O(log n), never proportional to the number of timers).

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::Waker;
use crate::coro::fiber::{Fiber, Interrupt};

/// Identifies one timer, for cancelling it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimerKey(Instant, u64);

/// What happens when a timer fires.
pub(crate) enum Action {
    /// Wake a parked fiber with `WakeReason::TimedOut` (sleep, waits with a deadline).
    Wake(Waker),
    /// Deliver an interrupt to a fiber (a `Timeout` firing). Boxed: sleeps and waits (the
    /// `Wake`s) far outnumber timeouts, and every timer entry is as big as the largest action.
    Interrupt(Box<(Rc<Fiber>, Interrupt)>),
}

/// All pending timers of one hub.
pub(crate) struct Timers {
    map: BTreeMap<TimerKey, Action>,
    seq: u64,
}

impl Timers {
    /// No timers.
    pub(crate) const fn new() -> Timers {
        Timers {
            map: BTreeMap::new(),
            seq: 0,
        }
    }

    /// Adds a timer firing at `at`.
    pub(crate) fn add(&mut self, at: Instant, action: Action) -> TimerKey {
        self.seq += 1;
        let key = TimerKey(at, self.seq);
        self.map.insert(key, action);
        key
    }

    /// Removes a timer; a key that already fired is ignored.
    pub(crate) fn cancel(&mut self, key: TimerKey) {
        self.map.remove(&key);
    }

    /// How many timers are pending.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no timer is pending.
    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The earliest deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.map.first_key_value().map(|(k, _)| k.0)
    }

    /// Removes and returns the earliest timer if its deadline is at or before `now`.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<Action> {
        let first = self.map.first_entry()?;
        if first.key().0 > now {
            return None;
        }
        Some(first.remove())
    }
}

/// Converts the time until `deadline` to an epoll timeout, rounded *up* to whole milliseconds so
/// the hub never wakes before a timer is due.
pub(crate) fn timeout_ms(now: Instant, deadline: Instant) -> i32 {
    let d = deadline.saturating_duration_since(now);
    let ms = d.as_nanos().div_ceil(Duration::from_millis(1).as_nanos());
    ms.min(i32::MAX as u128) as i32
}

/// `d` from now, or `None` when that instant cannot be represented (`Duration::MAX` and the
/// like): a deadline that never comes, so callers wait forever instead of panicking.
pub(crate) fn deadline_after(d: Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
}
