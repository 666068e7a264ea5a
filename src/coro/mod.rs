//! The coroutine core: pooled guard-paged stacks, fibers (the unit every switch moves between),
//! generators, and the unwind payloads (kill, timeout, greenlet exit). All of grove's stack-switching `unsafe` lives here.

pub(crate) mod fiber;
pub mod generator;
pub(crate) mod overflow;
pub(crate) mod stack;
pub(crate) mod syscall;
pub(crate) mod unwind;
