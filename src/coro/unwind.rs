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
use std::sync::Once;

use super::fiber::{self, Fiber, Interrupt};

/// The payload a killed task unwinds with.
pub(crate) struct KillSignal;

/// The error of [`with_timeout`](crate::with_timeout), and the unwind payload of a fired
/// [`Timeout`](crate::Timeout).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Elapsed {
    id: u64,
}

impl Elapsed {
    pub(crate) fn new(id: u64) -> Elapsed {
        Elapsed { id }
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
        Interrupt::Timeout(id) => resume_unwind(Box::new(Elapsed::new(id))),
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
    } else if p.is::<Elapsed>() {
        "a grove Timeout fired (Elapsed)".into()
    } else if p.is::<GreenletExit>() {
        "GreenletExit".into()
    } else {
        "a panic payload that is not a string".into()
    }
}
