//! The unwind payloads grove raises in a fiber — kill, timeout, greenlet exit — and how a fiber
//! learns that it is unwinding.
//!
//! An interrupt (kill, timeout) is delivered by unwinding the fiber from its park or switch
//! point with one of these payloads; the task or greenlet entry catches it at the fiber's root.
//! A fiber that is already unwinding — a panic, a kill, a dying greenlet's `GreenletExit` on
//! its way up — never gets a second unwind: std would abort the process ("panic in a
//! destructor during cleanup"). Instead the blocking call it made from a `Drop` returns early
//! with an error (see `hub::park`). To know that a fiber is unwinding, grove marks it when it
//! raises one of its own payloads, and a panic hook (installed once, chained in front of the
//! hook that was there) marks the current fiber when user code panics.

use std::any::Any;
use std::fmt;
use std::panic::resume_unwind;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use super::fiber::{self, Fiber, Interrupt, TimeoutOrigin};

/// The payload a killed fiber unwinds with.
pub(crate) struct KillSignal;

impl Drop for KillSignal {
    fn drop(&mut self) {
        // Task entries keep the payload out of sight (they report `JoinError::Killed`); one
        // dropped on the root is a kill that unwound main itself.
        if on_root() {
            eprintln!("grove: main was killed (a kill aimed at the current task unwound it)");
        }
    }
}

/// The payload a fiber unwinds with when a `Timeout` fires in it. Whoever handles it (a
/// `Timeout::catch`, `with_timeout`, `Timeout::is_mine`, a task entry) claims it; one dropped
/// unclaimed on the root fiber escaped `main`, and says so on stderr, as gevent prints an
/// uncaught `Timeout`.
pub(crate) struct TimeoutFired {
    pub(crate) origin: TimeoutOrigin,
    claimed: AtomicBool,
}

impl TimeoutFired {
    /// Marks the payload as handled.
    pub(crate) fn claim(&self) {
        self.claimed.store(true, Ordering::Relaxed);
    }
}

impl Drop for TimeoutFired {
    fn drop(&mut self) {
        if self.claimed.load(Ordering::Relaxed) || !on_root() {
            return;
        }
        eprintln!(
            "grove: uncaught Timeout (armed at {}) unwound main",
            self.origin.armed_at
        );
    }
}

/// Claims a payload that is a fired timeout (see [`TimeoutFired`]); returns its origin.
pub(crate) fn claim_timeout(p: &(dyn Any + Send)) -> Option<TimeoutOrigin> {
    let t = p.downcast_ref::<TimeoutFired>()?;
    t.claim();
    Some(t.origin)
}

/// Claims any grove payload a task entry turns into a `JoinError`.
pub(crate) fn claim(p: &(dyn Any + Send)) {
    claim_timeout(p);
}

fn on_root() -> bool {
    fiber::try_with_current(Fiber::is_root).unwrap_or(true)
}

/// The error of [`with_timeout`](crate::with_timeout) and [`Timeout::catch`](crate::Timeout::catch).
///
/// When a [`Timeout`](crate::Timeout) fires, its task unwinds with a payload private to grove;
/// [`Elapsed::from_payload`] (or [`Timeout::is_mine`](crate::Timeout::is_mine)) recognises it
/// in a `catch_unwind` result.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Elapsed {
    id: u64,
}

impl Elapsed {
    pub(crate) fn new(id: u64) -> Elapsed {
        Elapsed { id }
    }

    /// The timeout that `payload` (from `catch_unwind`) is, if it is a fired grove `Timeout`.
    /// Recognising it marks it handled: it is not reported as having escaped `main`.
    pub fn from_payload(payload: &(dyn Any + Send)) -> Option<Elapsed> {
        claim_timeout(payload).map(|o| Elapsed::new(o.id))
    }
}

impl fmt::Debug for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Elapsed")
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

/// The payload a greenlet unwinds with when [`Greenlet::throw`](crate::greenlet::Greenlet::throw)
/// is called on it or its last handle goes away (Python's `GreenletExit`). It ends the greenlet
/// quietly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GreenletExit;

impl fmt::Display for GreenletExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("greenlet exited (GreenletExit)")
    }
}

impl std::error::Error for GreenletExit {}

/// Unwinds `fiber` (the current one) for an interrupt delivered at its park or switch point.
pub(crate) fn unwind_for(fiber: &Fiber, why: Interrupt) -> ! {
    fiber.unwinding.set(true);
    match why {
        Interrupt::Kill => resume_unwind(Box::new(KillSignal)),
        Interrupt::Timeout(origin) => resume_unwind(Box::new(TimeoutFired {
            origin,
            claimed: AtomicBool::new(false),
        })),
        Interrupt::Exit => resume_unwind(Box::new(GreenletExit)),
    }
}

/// Whether `fiber` is unwinding now. A mark left by a panic that user code caught inside the
/// fiber is cleared here once no unwind is in progress on the thread at all.
pub(crate) fn is_unwinding(fiber: &Fiber) -> bool {
    if fiber.unwinding.get() && !std::thread::panicking() {
        fiber.unwinding.set(false);
    }
    fiber.unwinding.get()
}

/// Installs (once per process) the panic hook that marks the panicking fiber as unwinding. The
/// hook that was installed before runs right after, so messages are printed as usual.
pub(crate) fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            fiber::try_with_current(|f| f.unwinding.set(true));
            previous(info);
        }));
    });
}

/// The text of a panic payload, when it is a `&str` or `String`.
pub(crate) fn payload_str(p: &(dyn Any + Send)) -> Option<&str> {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
}

/// A description of any payload, for messages: its text, or what kind of payload it is.
pub(crate) fn payload_text(p: &(dyn Any + Send)) -> String {
    if let Some(s) = payload_str(p) {
        return s.to_string();
    }
    if p.is::<KillSignal>() {
        "killed".into()
    } else if let Some(t) = p.downcast_ref::<TimeoutFired>() {
        format!("a grove Timeout fired (armed at {})", t.origin.armed_at)
    } else if p.is::<GreenletExit>() {
        "GreenletExit".into()
    } else {
        "a panic payload that is not a string".into()
    }
}
