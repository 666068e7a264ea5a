//! The one wait queue every blocking primitive parks on, and the one "try, wait, retry until the
//! deadline" loop they all use.
//!
//! # Shape
//! A queue is a slab of *slots* (a `Vec`, reused through a free list) threaded into a FIFO by a
//! doubly linked list of slot indices. A blocking call that has to wait takes one slot — its
//! [`Place`] — and keeps it until it returns: every operation on it is O(1) (join at the back,
//! leave from anywhere, be popped from the front), so draining n waiters costs O(n) whatever
//! order they leave in. A slot is freed only by its `Place`, so an index never points at
//! someone else's wait; a slab that grew large is given back once its last slot is freed.
//!
//! A slot is `Queued` while it is in the list. Leaving the list marks it with who took it out:
//! - `Notified` — [`WaitQueue::notify_one`] picked it and its fiber accepted the wake-up;
//! - `Broadcast` — [`WaitQueue::notify_all`] woke it (nobody else was owed that wake-up);
//! - `Taken` — [`WaitQueue::take`] moved its payload out (a channel's offer was taken);
//! - `Skipped` — a notify popped it, but its fiber had already been woken by something else
//!   (its deadline, a kill), so the notify went on to the next slot instead.
//!
//! A notify never searches: it pops the front slot and, if that fiber was woken already, marks
//! it `Skipped` and pops the next (O(1) each, lazily, instead of the timed-out waiter having
//! had to be found); a waiter that times out or is killed unlinks its own slot in O(1). A slot
//! leaves the slab only when its `Place` is dropped, which also tells it whether it is leaving
//! with a wake-up it never used.
//!
//! # Payloads
//! A slot can carry a payload `P` (a channel's putters queue carries their items): `take` pops
//! the oldest one and wakes its owner, so exactly the putter whose item was taken wakes up. A
//! payload can also be queued without a waiting fiber ([`WaitQueue::push_detached`], a channel's
//! `try_put`); `notify_one` and `notify_all` step over those and leave them for `take`. Queues of
//! plain waiters never hold one, so there a notify never steps over anything.
//!
//! # The loop, and the rules it keeps
//! [`WaitQueue::wait_until`] (and [`Place::wait_until`]) is the only "try, wait, retry until the
//! deadline" loop in grove's primitives:
//! - It tries first and parks only if the try fails; after every wake-up it tries again.
//! - **Deadlines.** `None` waits forever; a deadline that passed gives up after one last try.
//!   Callers turn a user `Duration` into a deadline with
//!   [`deadline_after`](super::timers::deadline_after), so `Duration::MAX` means forever.
//! - **Interrupted waits.** When a kill or timeout lands on a fiber that is already unwinding,
//!   `park` returns instead of starting a second unwind ([`Waited::Interrupted`]). A wait with a
//!   deadline then gives up as if it had timed out; a wait without one (an infallible call such
//!   as `Mutex::lock` inside a `Drop`) keeps waiting, since it has no way to report failure.
//! - **No lost wake-ups.** A waiter that `notify_one` picked owes that wake-up to the queue until
//!   its retry succeeds. If it leaves without using it — killed or timed out while already in the
//!   run queue (the park unwinds), its retry panics, or it gives up after the wake-up — its
//!   `Place` passes the wake-up to the next waiter as it is dropped. This is decided per wait, by
//!   the slot's state and whether the retry succeeded, never from thread-global state (with
//!   stackful fibers, *another* fiber may be unwinding while this one runs normally).
//! - A waiter whose retry finds nothing after a real wake-up (a running task took the item or
//!   permit first: no hand-off, as in gevent) simply waits again at the back; it does not pass
//!   the wake-up on, since whatever it announced is gone.

use std::cell::{Cell, RefCell};
use std::time::Instant;

use super::timers::{Action, TimerKey};
use super::Waker;
use crate::coro::fiber::WakeReason;

/// The end of a list (and of the free list).
const NIL: u32 = u32::MAX;

/// An emptied queue with more slots than this frees its slab instead of keeping it for reuse.
const KEEP_SLOTS: usize = 1024;

/// A FIFO of parked fibers, each slot optionally carrying a payload `P`.
///
/// `repr(C)` puts [`QueueMeta`] at offset 0 whatever `P` is, so a task dump can read it from
/// the address a parked fiber records (see `hub::inspect`).
#[repr(C)]
pub(crate) struct WaitQueue<P = ()> {
    meta: QueueMeta,
    list: RefCell<List<P>>,
}

/// What a task dump and the deadlock report may learn about a queue from a fiber parked on it:
/// who holds the primitive, or which fd it belongs to, and how many handles to it are left
/// outside its waiters. Written by the primitive that owns the queue; plain `Cell`s, so keeping
/// it costs a store.
#[repr(C)]
pub(crate) struct QueueMeta {
    /// `Holder(id + 1)` of the task holding a Mutex / last taking a Semaphore permit, the fd
    /// of an I/O direction, or 0.
    tag: Cell<u64>,
    /// Handles to the primitive not in use by a waiting call (see
    /// [`WaitQueue::track_refs`]); meaningful only when `tracked`.
    free_refs: Cell<i32>,
    tracked: Cell<bool>,
}

impl QueueMeta {
    /// The tag (see the field).
    pub(crate) fn tag(&self) -> u64 {
        self.tag.get()
    }

    /// `Some(n)`: handles to the primitive that no waiting call is using (0: only its waiters
    /// can reach it, so nobody can ever wake them); `None`: the primitive does not count them.
    pub(crate) fn free_refs(&self) -> Option<i32> {
        self.tracked.get().then(|| self.free_refs.get())
    }
}

/// While a waiting call holds it, the handle it waits through is not counted as one that can
/// wake the queue (see [`WaitQueue::waiting_ref`]).
pub(crate) struct WaitingRef<'a>(&'a QueueMeta);

impl Drop for WaitingRef<'_> {
    fn drop(&mut self) {
        self.0.free_refs.set(self.0.free_refs.get() + 1);
    }
}

/// How a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waited {
    /// `notify_one` / `notify_all` (or `take`) picked this waiter.
    Notified,
    /// The deadline passed first.
    TimedOut,
    /// A kill or timeout reached a fiber that is already unwinding: no second unwind is
    /// started, so the wait returns this instead. A wait with a deadline gives up as if timed
    /// out; an infallible wait may keep waiting; I/O returns [`super::interrupted_error`].
    Interrupted,
}

/// Where a slot is (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Free,
    Queued,
    Notified,
    Broadcast,
    Taken,
    Skipped,
}

struct Slot<P> {
    /// Wakes the owner's current park; `None` for a detached payload and before the first park.
    waker: Option<Waker>,
    payload: Option<P>,
    /// Neighbours while `Queued`; `next` links the free list while `Free`.
    prev: u32,
    next: u32,
    state: State,
    /// Whether a [`Place`] owns the slot (false: a detached payload, freed by `take`).
    owned: bool,
}

struct List<P> {
    slots: Vec<Slot<P>>,
    head: u32,
    tail: u32,
    free: u32,
    /// Slots in the list.
    queued: usize,
    /// Slots not free.
    used: usize,
}

/// What leaves the list with a slot; dropped (or woken) after the `RefCell` borrow ends, since
/// dropping a payload or the last handle of a fiber may run arbitrary code.
type Out<P> = (Option<Waker>, Option<P>);

impl<P> List<P> {
    const fn new() -> List<P> {
        List {
            slots: Vec::new(),
            head: NIL,
            tail: NIL,
            free: NIL,
            queued: 0,
            used: 0,
        }
    }

    /// Takes a free slot and appends it to the list.
    fn push(&mut self, waker: Option<Waker>, payload: Option<P>, owned: bool) -> u32 {
        let i = if self.free != NIL {
            let i = self.free;
            let s = &mut self.slots[i as usize];
            self.free = s.next;
            debug_assert!(s.state == State::Free && s.waker.is_none() && s.payload.is_none());
            (s.waker, s.payload, s.owned) = (waker, payload, owned);
            i
        } else {
            let i = u32::try_from(self.slots.len())
                .ok()
                .filter(|&i| i != NIL)
                .expect("grove: more than 4 billion waiters on one queue");
            self.slots.push(Slot {
                waker,
                payload,
                prev: NIL,
                next: NIL,
                state: State::Free,
                owned,
            });
            i
        };
        self.used += 1;
        self.link_back(i);
        i
    }

    fn link_back(&mut self, i: u32) {
        let tail = self.tail;
        let s = &mut self.slots[i as usize];
        s.prev = tail;
        s.next = NIL;
        s.state = State::Queued;
        match tail {
            NIL => self.head = i,
            t => self.slots[t as usize].next = i,
        }
        self.tail = i;
        self.queued += 1;
    }

    fn unlink(&mut self, i: u32, now: State) {
        let s = &mut self.slots[i as usize];
        debug_assert_eq!(s.state, State::Queued);
        s.state = now;
        let (prev, next) = (s.prev, s.next);
        match prev {
            NIL => self.head = next,
            p => self.slots[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.slots[n as usize].prev = prev,
        }
        self.queued -= 1;
    }

    /// Frees slot `i` (unlinking it if queued); returns what it held, for the caller to drop
    /// once the borrow ends, and the state it was in when it left the list.
    fn release(&mut self, i: u32) -> (State, Out<P>) {
        let s = &mut self.slots[i as usize];
        let out = (s.waker.take(), s.payload.take());
        let state = s.state;
        if state == State::Queued {
            self.unlink(i, State::Free);
        }
        self.free_slot(i);
        (state, out)
    }

    /// Puts slot `i`, out of the list and empty, on the free list.
    #[inline]
    fn free_slot(&mut self, i: u32) {
        let s = &mut self.slots[i as usize];
        s.state = State::Free;
        s.next = self.free;
        self.free = i;
        self.used -= 1;
        if self.used == 0 && self.slots.len() > KEEP_SLOTS {
            self.shrink();
        }
    }

    /// A burst is over: gives its memory back.
    #[cold]
    fn shrink(&mut self) {
        self.slots = Vec::new();
        self.free = NIL;
    }

    /// The first queued slot owned by a waiter (detached payloads stay where they are).
    fn first_owned(&self, mut i: u32) -> u32 {
        while i != NIL && !self.slots[i as usize].owned {
            i = self.slots[i as usize].next;
        }
        i
    }
}

impl<P> Default for WaitQueue<P> {
    fn default() -> Self {
        WaitQueue::new()
    }
}

impl<P> WaitQueue<P> {
    /// Creates an empty queue.
    pub(crate) const fn new() -> WaitQueue<P> {
        WaitQueue {
            meta: QueueMeta {
                tag: Cell::new(0),
                free_refs: Cell::new(0),
                tracked: Cell::new(false),
            },
            list: RefCell::new(List::new()),
        }
    }

    /// Sets the tag a task dump shows for waiters of this queue (a holder's id + 1, an fd).
    #[inline(always)]
    pub(crate) fn set_tag(&self, tag: u64) {
        self.meta.tag.set(tag);
    }

    /// The owner counts its handles (`add_ref` / `drop_ref` on clone and drop) so a dump can
    /// tell when only waiters can still reach it: a leak.
    pub(crate) fn track_refs(&self) {
        self.meta.tracked.set(true);
    }

    /// One more handle to the primitive.
    #[inline(always)]
    pub(crate) fn add_ref(&self) {
        self.meta.free_refs.set(self.meta.free_refs.get() + 1);
    }

    /// One handle fewer.
    #[inline(always)]
    pub(crate) fn drop_ref(&self) {
        self.meta.free_refs.set(self.meta.free_refs.get() - 1);
    }

    /// Marks one handle as in use by a waiting call until the guard drops.
    pub(crate) fn waiting_ref(&self) -> WaitingRef<'_> {
        self.meta.free_refs.set(self.meta.free_refs.get() - 1);
        WaitingRef(&self.meta)
    }

    /// Parks the current fiber once, until notified or until `deadline`.
    ///
    /// `what` names the wait in "would block forever" reports. Unwinds (kill, `Timeout`) leave
    /// the queue consistent and pass on a notification the fiber had already been picked for.
    /// Callers re-check their condition: a notification is a hint. Prefer
    /// [`wait_until`](Self::wait_until), which also keeps the deadline and interrupt rules.
    #[track_caller]
    pub(crate) fn wait(&self, what: &'static str, deadline: Option<Instant>) -> Waited {
        let mut place = self.armed_place();
        let waited = place.park(what, deadline);
        place.used = true; // the caller decides what the wake-up was good for
        waited
    }

    /// The loop every blocking primitive runs: `try_once`, and while it returns `None`, park
    /// and try again, until `deadline` (`None`: forever). Returns what `try_once` produced, or
    /// `None` if the deadline passed (or an interrupted wait with a deadline gave up) first.
    ///
    /// `try_once` must not block. See the module doc for the rules this keeps.
    #[track_caller]
    pub(crate) fn wait_until<R>(
        &self,
        what: &'static str,
        deadline: Option<Instant>,
        mut try_once: impl FnMut() -> Option<R>,
    ) -> Option<R> {
        if let Some(r) = try_once() {
            return Some(r);
        }
        self.armed_place()
            .wait_until(what, deadline, |_: &Place<'_, P>| try_once())
    }

    /// A place without payload, queued with a waker for the current fiber's next park.
    #[inline(always)]
    fn armed_place(&self) -> Place<'_, P> {
        let waker = super::current_waker();
        self.hint(&waker);
        let slot = self.list.borrow_mut().push(Some(waker), None, true);
        Place {
            queue: self,
            slot,
            timer: None,
            used: false,
            armed: true,
        }
    }

    /// Tells the hub where this fiber parks, so it can prefetch the queue before resuming it.
    fn hint(&self, waker: &Waker) {
        waker
            .fiber()
            .park_obj
            .set(self as *const WaitQueue<P> as usize);
    }

    /// Joins the queue now, at the back, optionally with a payload; the returned place keeps
    /// the slot until it is dropped. Park with [`Place::wait_until`].
    pub(crate) fn place(&self, payload: Option<P>) -> Place<'_, P> {
        // The waker comes with each park. A notify that picks the slot before then finds
        // none, marks it skipped and wakes the next waiter instead: nothing is lost.
        let slot = self.list.borrow_mut().push(None, payload, true);
        Place {
            queue: self,
            slot,
            timer: None,
            used: false,
            armed: false,
        }
    }

    /// Queues `payload` without a waiting fiber, for [`take`](Self::take) to hand out in FIFO
    /// order with the others.
    pub(crate) fn push_detached(&self, payload: P) {
        self.list.borrow_mut().push(None, Some(payload), false);
    }

    /// Pops the oldest payload, waking the fiber that offered it (if it still waits).
    pub(crate) fn take(&self) -> Option<P> {
        let (waker, payload) = {
            let mut l = self.list.borrow_mut();
            let i = l.head;
            if i == NIL {
                return None;
            }
            if l.slots[i as usize].owned {
                l.unlink(i, State::Taken);
                let s = &mut l.slots[i as usize];
                (s.waker.take(), s.payload.take())
            } else {
                l.release(i).1
            }
        };
        debug_assert!(
            payload.is_some(),
            "take on a queue of waiters without payload"
        );
        if let Some(w) = waker {
            // The owner may have been woken already (deadline, kill): then it finds its
            // payload gone when it runs, which is the same outcome.
            w.wake(WakeReason::Notified);
        }
        payload
    }

    /// Wakes the longest-waiting fiber; returns whether one was woken.
    #[inline]
    pub(crate) fn notify_one(&self) -> bool {
        // Most puts and gets find nobody waiting on the other side: keep that check inline.
        !self.is_empty() && self.notify_first()
    }

    fn notify_first(&self) -> bool {
        loop {
            let (i, waker) = {
                let mut l = self.list.borrow_mut();
                let i = l.first_owned(l.head);
                if i == NIL {
                    return false;
                }
                l.unlink(i, State::Notified);
                (i, l.slots[i as usize].waker.take())
            };
            if waker.is_some_and(|w| w.wake(WakeReason::Notified)) {
                return true;
            }
            // Already woken by its deadline or a kill: it was not notified after all.
            self.list.borrow_mut().slots[i as usize].state = State::Skipped;
        }
    }

    /// Wakes every waiter; returns how many were woken.
    pub(crate) fn notify_all(&self) -> usize {
        // Waking only schedules a fiber, so nobody joins the queue while it is being emptied:
        // walking it once wakes exactly the waiters present at the call.
        let mut woken = 0;
        let mut next = self.list.borrow().head;
        loop {
            let waker = {
                let mut l = self.list.borrow_mut();
                let i = l.first_owned(next);
                if i == NIL {
                    return woken;
                }
                next = l.slots[i as usize].next;
                l.unlink(i, State::Broadcast);
                l.slots[i as usize].waker.take()
            };
            woken += usize::from(waker.is_some_and(|w| w.wake(WakeReason::Notified)));
        }
    }

    /// Whether nothing is queued.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.list.borrow().queued == 0
    }

    /// Number of queued waiters (and detached payloads).
    pub(crate) fn len(&self) -> usize {
        self.list.borrow().queued
    }
}

/// One blocking call's place in a [`WaitQueue`]: a slot it holds from its first park until it
/// returns. Dropping it leaves the queue, cancels a pending deadline, drops an untaken payload,
/// and passes on a notification it was picked for and did not use.
pub(crate) struct Place<'a, P = ()> {
    queue: &'a WaitQueue<P>,
    slot: u32,
    timer: Option<TimerKey>,
    /// Whether the last wake-up was put to use (or handed to the caller).
    used: bool,
    /// Whether the slot is queued with a waker for the next park already (saves a borrow).
    armed: bool,
}

impl<P> Place<'_, P> {
    /// The loop of [`WaitQueue::wait_until`], parking first: park, then `try_once`, until it
    /// returns something or the wait gives up. `try_once` sees the place (for its payload).
    #[track_caller]
    pub(crate) fn wait_until<R>(
        &mut self,
        what: &'static str,
        deadline: Option<Instant>,
        mut try_once: impl FnMut(&Self) -> Option<R>,
    ) -> Option<R> {
        loop {
            let waited = self.park(what, deadline);
            if let Some(r) = try_once(self) {
                self.used = true;
                return Some(r);
            }
            match waited {
                // What the wake-up announced is gone already (someone running took it).
                Waited::Notified => self.used = true,
                Waited::Interrupted if deadline.is_none() => {}
                Waited::TimedOut | Waited::Interrupted => return None,
            }
        }
    }

    /// Queues the place with a waker for the current fiber's next park, for a caller that
    /// parks on several queues at once (`hub::park` itself, then drops the places).
    #[cfg_attr(not(feature = "monkey"), allow(dead_code))]
    pub(crate) fn arm_for_park(&mut self) {
        self.arm();
        self.armed = true;
    }

    /// Whether [`WaitQueue::take`] took this place's payload.
    pub(crate) fn taken(&self) -> bool {
        self.state() == State::Taken
    }

    /// Takes the payload back, if nobody took it.
    pub(crate) fn withdraw(&mut self) -> Option<P> {
        self.queue.list.borrow_mut().slots[self.slot as usize]
            .payload
            .take()
    }

    fn state(&self) -> State {
        self.queue.list.borrow().slots[self.slot as usize].state
    }

    /// Queues the slot again (at the back) unless it still is, with a waker for the next park.
    fn arm(&mut self) {
        let waker = super::current_waker();
        self.queue.hint(&waker);
        let old = {
            let mut l = self.queue.list.borrow_mut();
            if l.slots[self.slot as usize].state != State::Queued {
                l.link_back(self.slot);
            }
            l.slots[self.slot as usize].waker.replace(waker)
        };
        drop(old);
    }

    /// Parks once, queued at the back unless still queued from an earlier park.
    ///
    /// This, `armed_place` and `drop` are inlined into the loop: with them out of line a Queue
    /// ping-pong round trip measured ~10% slower (more frames to return through after the
    /// switch back), with them inlined ~10% faster than the old `VecDeque` queue.
    #[inline(always)]
    #[track_caller]
    fn park(&mut self, what: &'static str, deadline: Option<Instant>) -> Waited {
        if !std::mem::take(&mut self.armed) {
            self.arm();
        }
        self.used = false;
        if let Some(d) = deadline {
            let waker = super::current_waker();
            self.timer = Some(super::add_timer(d, Action::Wake(waker)));
        }
        let reason = super::park(what);
        if let Some(key) = self.timer.take() {
            super::cancel_timer(key);
        }
        match reason {
            WakeReason::Notified => Waited::Notified,
            WakeReason::TimedOut => Waited::TimedOut,
            WakeReason::Interrupted => Waited::Interrupted,
        }
    }
}

impl<P> Place<'_, P> {
    /// Leaves a slot that is still queued or still holds a payload.
    #[cold]
    fn leave_holding(&mut self) -> State {
        let (state, out) = self.queue.list.borrow_mut().release(self.slot);
        drop(out); // after the borrow: dropping a payload or a fiber may run any code
        state
    }

    /// Passes on a wake-up this place was picked for and did not use.
    #[cold]
    fn pass_on(&self) {
        if super::alive() {
            log::trace!(
                "grove: a waiter picked by notify_one left without using it; passing the wake-up on"
            );
            self.queue.notify_one();
        }
    }
}

impl<P> Drop for Place<'_, P> {
    #[inline(always)]
    fn drop(&mut self) {
        if let Some(key) = self.timer.take() {
            super::cancel_timer(key); // the park unwound
        }
        let state = {
            let mut l = self.queue.list.borrow_mut();
            let s = &l.slots[self.slot as usize];
            let state = s.state;
            // Whoever took the slot out of the list took its waker too.
            if state == State::Queued || s.payload.is_some() {
                None
            } else {
                debug_assert!(s.waker.is_none());
                l.free_slot(self.slot);
                Some(state)
            }
        };
        let state = state.unwrap_or_else(|| self.leave_holding());
        if state == State::Notified && !self.used {
            self.pass_on();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::rc::Rc;
    use std::time::Duration;

    fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
        p.downcast_ref::<String>().cloned().unwrap_or_default()
    }

    #[test]
    fn main_joining_a_task_that_waits_forever_fails_naming_it() {
        let start = std::time::Instant::now();
        let queue = Rc::new(WaitQueue::<()>::new());
        let q = queue.clone();
        let stuck = crate::Builder::new()
            .name("stuck")
            .spawn(move || {
                q.wait("a queue nobody notifies", None);
            })
            .unwrap();
        let err = catch_unwind(AssertUnwindSafe(|| stuck.join())).unwrap_err();
        let text = panic_text(err.as_ref());
        assert!(
            text.contains("this operation would block forever"),
            "{text}"
        );
        assert!(text.contains("main waits on JoinHandle::join"), "{text}");
        assert!(
            text.contains("'stuck' waits on a queue nobody notifies"),
            "{text}"
        );
        assert!(start.elapsed() < Duration::from_secs(5));
        // The waiter is still parked; the hub works on.
        assert_eq!(queue.len(), 1);
        assert_eq!(crate::spawn(|| 5).join().unwrap(), 5);
        assert!(queue.notify_one());
    }

    #[test]
    fn a_timed_wait_returns_timed_out_and_leaves_no_entry() {
        let queue = WaitQueue::<()>::new();
        let r = queue.wait(
            "test",
            Some(std::time::Instant::now() + Duration::from_millis(5)),
        );
        assert_eq!(r, Waited::TimedOut);
        assert!(queue.is_empty());
        assert_eq!(queue.list.borrow().used, 0);
    }

    #[test]
    fn a_kill_after_the_notification_does_not_steal_it() {
        let queue = Rc::new(WaitQueue::<()>::new());
        let woken = Rc::new(std::cell::Cell::new(0));
        let spawn_waiter = |name: &str| {
            let (q, w) = (queue.clone(), woken.clone());
            crate::Builder::new()
                .name(name)
                .spawn(move || {
                    if q.wait("test", None) == Waited::Notified {
                        w.set(w.get() + 1);
                    }
                })
                .unwrap()
        };
        let first = spawn_waiter("first");
        let second = spawn_waiter("second");
        crate::yield_now();
        assert_eq!(queue.len(), 2);
        assert!(queue.notify_one()); // picks `first`, which is now runnable...
        first.kill(); // ...so the completion wins: the kill waits for its next park.
        assert_eq!(woken.get(), 1);
        assert!(first.join().is_ok());
        assert!(queue.notify_one());
        second.join().unwrap();
        assert_eq!(woken.get(), 2);
    }

    #[test]
    fn waiters_leave_from_the_middle_and_the_rest_keep_their_order() {
        let queue = Rc::new(WaitQueue::<()>::new());
        let order = Rc::new(RefCell::new(Vec::new()));
        let tasks: Vec<_> = (0..5)
            .map(|n| {
                let (q, order) = (queue.clone(), order.clone());
                crate::spawn(move || {
                    q.wait("test", None);
                    order.borrow_mut().push(n);
                })
            })
            .collect();
        crate::yield_now();
        tasks[1].kill();
        tasks[3].kill();
        assert_eq!(queue.len(), 3);
        while queue.notify_one() {
            crate::yield_now();
        }
        assert_eq!(*order.borrow(), [0, 2, 4]);
        assert_eq!(queue.list.borrow().used, 0, "every slot was freed");
    }

    #[test]
    fn take_hands_out_payloads_in_order_and_wakes_only_their_owner() {
        let queue = Rc::new(WaitQueue::<u32>::new());
        let done = Rc::new(RefCell::new(Vec::new()));
        let offer = |v: u32| {
            let (q, done) = (queue.clone(), done.clone());
            crate::spawn(move || {
                let mut place = q.place(Some(v));
                place.wait_until("offer", None, |p| p.taken().then_some(()));
                done.borrow_mut().push(v);
            })
        };
        let a = offer(1);
        crate::yield_now();
        queue.push_detached(2);
        let b = offer(3);
        crate::yield_now();
        assert_eq!(queue.len(), 3);
        assert_eq!(queue.notify_all(), 2, "detached payloads are not woken...");
        assert_eq!(queue.len(), 1, "...and stay queued");
        crate::yield_now();
        assert!(done.borrow().is_empty(), "a broadcast does not take offers");
        assert_eq!(queue.take(), Some(2));
        assert_eq!(queue.take(), Some(1));
        crate::yield_now();
        assert_eq!(*done.borrow(), [1]);
        assert_eq!(queue.take(), Some(3));
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(*done.borrow(), [1, 3]);
        assert_eq!(queue.take(), None);
    }
}
