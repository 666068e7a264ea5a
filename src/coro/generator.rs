//! Generators: Python's `yield` as a stackful coroutine (the seed's producer/consumer).
//!
//! A [`Generator`] runs its body on a pooled stack. `resume(x)` is Python's `send(x)`:
//! it runs the body until it calls [`Yielder::suspend`] (Python's `v = yield y`) or returns.
//!
//! ```
//! use grove::generator::{Generator, GeneratorState};
//!
//! let mut doubler = Generator::new(|y, mut x: i32| loop {
//!     x = y.suspend(x * 2);
//! });
//! assert_eq!(doubler.resume(1), GeneratorState::Yielded(2));
//! assert_eq!(doubler.resume(21), GeneratorState::Yielded(42));
//! ```
//!
//! Generators never touch the hub: they run on the stack of whoever resumes them. A blocking
//! grove call (`sleep`, `join`, a socket read, a greenlet switch) made *inside* a generator body
//! panics with a message saying so; the panic propagates out of `resume` like any other panic in
//! the body. Call blocking code between resumes, or use a task instead.

use std::cell::Cell;
use std::io;

use corosensei::{Coroutine, CoroutineResult};

use super::stack::{default_stack_size, PooledStack};

pub use corosensei::Yielder;

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Panics if a generator body is running on this thread (hub calls cannot park from there).
#[inline]
pub(crate) fn assert_not_inside(what: &str) {
    if DEPTH.get() > 0 {
        inside_generator(what);
    }
}

/// Whether a generator body is running on this thread.
pub(crate) fn is_inside() -> bool {
    DEPTH.get() > 0
}

#[cold]
fn inside_generator(what: &str) -> ! {
    panic!(
        "grove: cannot {what} inside a generator body: a generator runs on the stack of the \
         code that resumes it and cannot park; do the blocking call between resumes or use a task"
    )
}

/// What [`Generator::resume`] produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeneratorState<Y, R> {
    /// The body called `suspend(y)`.
    Yielded(Y),
    /// The body returned.
    Complete(R),
}

/// A coroutine you drive by hand: `Generator<I, Y, R>` takes `I` on each resume, yields `Y`,
/// and finally returns `R`.
///
/// Dropping an unfinished generator unwinds its stack, so the body's `Drop`s run.
pub struct Generator<I: 'static, Y: 'static, R: 'static> {
    co: Option<Coroutine<I, Y, R, PooledStack>>,
    /// The stack's guard page and usable size, for the overflow report.
    guard: (usize, usize),
    size: usize,
}

impl<I: 'static, Y: 'static, R: 'static> std::fmt::Debug for Generator<I, Y, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator")
            .field("done", &self.is_done())
            .finish()
    }
}

impl<I: 'static, Y: 'static, R: 'static> Generator<I, Y, R> {
    /// Creates a generator with the default stack size.
    ///
    /// # Panics
    /// Panics if no stack can be allocated; use [`Generator::with_stack_size`] to get the error.
    pub fn new<F>(body: F) -> Self
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
    {
        Self::with_stack_size(default_stack_size(), body)
            .unwrap_or_else(|e| panic!("grove: cannot create a generator: {e}"))
    }

    /// Creates a generator whose stack has `size` bytes (rounded up to pages, at least
    /// [`MIN_STACK_SIZE`](crate::MIN_STACK_SIZE)); one page of it is the guard page.
    pub fn with_stack_size<F>(size: usize, body: F) -> io::Result<Self>
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
    {
        super::overflow::install();
        let stack = PooledStack::get(size)?;
        let (guard, size) = (stack.guard_range(), stack.usable());
        Ok(Generator {
            co: Some(Coroutine::with_stack(stack, body)),
            guard,
            size,
        })
    }

    /// Runs the body until it yields or returns. The first resume's `input` is the body's
    /// second argument; later ones are what `suspend` returns inside the body.
    ///
    /// # Panics
    /// Panics if the generator already completed, and re-raises a panic from the body (the
    /// generator is then done).
    pub fn resume(&mut self, input: I) -> GeneratorState<Y, R> {
        let co = self
            .co
            .as_mut()
            .expect("grove: resumed a generator that already completed");
        let _depth = DepthGuard::enter();
        let saved = super::overflow::enter_generator(self.guard, self.size);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| co.resume(input)));
        super::overflow::leave_generator(saved);
        drop(_depth);
        match result {
            Ok(CoroutineResult::Yield(y)) => GeneratorState::Yielded(y),
            Ok(CoroutineResult::Return(r)) => {
                self.finish();
                GeneratorState::Complete(r)
            }
            Err(payload) => {
                self.finish();
                std::panic::resume_unwind(payload)
            }
        }
    }

    /// Whether the body has returned (or panicked).
    pub fn is_done(&self) -> bool {
        self.co.is_none()
    }

    fn finish(&mut self) {
        if let Some(co) = self.co.take() {
            if co.done() {
                co.into_stack().recycle();
            }
        }
    }
}

impl<I: 'static, Y: 'static, R: 'static> Drop for Generator<I, Y, R> {
    fn drop(&mut self) {
        if let Some(mut co) = self.co.take() {
            let depth = DepthGuard::enter();
            let saved = super::overflow::enter_generator(self.guard, self.size);
            co.force_unwind();
            super::overflow::leave_generator(saved);
            drop(depth);
            co.into_stack().recycle();
        }
    }
}

impl<Y: 'static, R: 'static> Iterator for Generator<(), Y, R> {
    type Item = Y;

    /// Resumes with `()`; `None` once the body returned (its return value is dropped).
    fn next(&mut self) -> Option<Y> {
        if self.is_done() {
            return None;
        }
        match self.resume(()) {
            GeneratorState::Yielded(y) => Some(y),
            GeneratorState::Complete(_) => None,
        }
    }
}

struct DepthGuard;

impl DepthGuard {
    fn enter() -> DepthGuard {
        DEPTH.set(DEPTH.get() + 1);
        DepthGuard
    }
}

impl Drop for DepthGuard {
    fn drop(&mut self) {
        DEPTH.set(DEPTH.get() - 1);
    }
}
