//! The coroutine core: pooled guard-paged stacks, fibers (the unit every switch moves between),
//! generators and greenlets. All of grove's stack-switching `unsafe` lives here.

pub(crate) mod fiber;
pub mod generator;
pub mod greenlet;
pub(crate) mod overflow;
pub(crate) mod stack;
