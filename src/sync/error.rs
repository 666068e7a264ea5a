//! The errors of the queues and the channel. Each error that concerns a `put` hands the value
//! back, so nothing is lost when a put fails.

use std::error::Error;
use std::fmt;

/// [`put`](super::Queue::put) failed because the queue or channel is closed; here is the value.
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct PutError<T>(pub T);

/// Why a `try_put` did not happen; the value comes back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TryPutError<T> {
    /// The queue is full (for a [`Channel`](super::Channel): no getter is waiting).
    Full(T),
    /// The queue or channel is closed.
    Closed(T),
}

/// Why a `put_timeout` did not happen; the value comes back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum PutTimeoutError<T> {
    /// The deadline passed first.
    Timeout(T),
    /// The queue or channel is closed.
    Closed(T),
}

/// [`get`](super::Queue::get) failed: the queue or channel is closed and empty.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct GetError;

/// Why a `try_get` returned nothing.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum TryGetError {
    /// Nothing is there right now.
    Empty,
    /// The queue or channel is closed and empty.
    Closed,
}

/// Why a `get_timeout` returned nothing.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum GetTimeoutError {
    /// The deadline passed first.
    Timeout,
    /// The queue or channel is closed and empty.
    Closed,
}

impl<T> PutError<T> {
    /// The value that was not put.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> TryPutError<T> {
    /// The value that was not put.
    pub fn into_inner(self) -> T {
        match self {
            TryPutError::Full(v) | TryPutError::Closed(v) => v,
        }
    }

    /// Whether the queue was full.
    pub fn is_full(&self) -> bool {
        matches!(self, TryPutError::Full(_))
    }

    /// Whether the queue was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, TryPutError::Closed(_))
    }
}

impl<T> PutTimeoutError<T> {
    /// The value that was not put.
    pub fn into_inner(self) -> T {
        match self {
            PutTimeoutError::Timeout(v) | PutTimeoutError::Closed(v) => v,
        }
    }

    /// Whether the deadline passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, PutTimeoutError::Timeout(_))
    }

    /// Whether the queue was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, PutTimeoutError::Closed(_))
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PutError(..)")
    }
}

impl<T> fmt::Debug for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPutError::Full(_) => f.write_str("Full(..)"),
            TryPutError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Debug for PutTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            PutTimeoutError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("put on a closed queue")
    }
}

impl<T> fmt::Display for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPutError::Full(_) => f.write_str("put on a full queue"),
            TryPutError::Closed(_) => f.write_str("put on a closed queue"),
        }
    }
}

impl<T> fmt::Display for PutTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutTimeoutError::Timeout(_) => f.write_str("put timed out"),
            PutTimeoutError::Closed(_) => f.write_str("put on a closed queue"),
        }
    }
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("get on a closed, empty queue")
    }
}

impl fmt::Display for TryGetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryGetError::Empty => f.write_str("the queue is empty"),
            TryGetError::Closed => f.write_str("get on a closed, empty queue"),
        }
    }
}

impl fmt::Display for GetTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetTimeoutError::Timeout => f.write_str("get timed out"),
            GetTimeoutError::Closed => f.write_str("get on a closed, empty queue"),
        }
    }
}

impl<T> Error for PutError<T> {}
impl<T> Error for TryPutError<T> {}
impl<T> Error for PutTimeoutError<T> {}
impl Error for GetError {}
impl Error for TryGetError {}
impl Error for GetTimeoutError {}
