//! [`Connection`] and [`pipe`]: a cooperative duplex channel between two processes
//! (multiprocessing's `Pipe()`), framed messages over a Unix socket pair.

#![deny(unsafe_code)]

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use super::message::{from_bytes, to_bytes, Message};
use crate::net::UnixStream;

/// One end of a duplex pipe between processes (multiprocessing's `Connection`). Whatever one
/// end sends, the other end receives, whole and in order. Sends and receives park only the
/// calling task.
///
/// Make the pair *before* forking ([`pipe`]): each process then keeps one end and drops the
/// other (a [`Process`](super::Process) closure that takes an end by `move` does exactly that:
/// the parent drops the closure, the child runs it). When every copy of one end is closed —
/// including by the death of the process holding it — the other end's `recv` fails with
/// `UnexpectedEof` and its `send` with `BrokenPipe`; neither ever hangs.
///
/// Each message is a `u32` little-endian length and then the bytes: up to 4 GiB.
///
/// A `recv` or `send` cut short by a timeout or a kill leaves the stream framed: the bytes of
/// a message received so far are kept for the next `recv`, and the unsent rest of a message
/// goes out before the next `send`'s. One task at a time may receive, and one may send (a
/// second gets `ResourceBusy`).
pub struct Connection {
    stream: UnixStream,
    /// Received bytes not yet returned (a partial message, or the start of the next ones).
    rbuf: RefCell<Vec<u8>>,
    /// Framed bytes not yet written (the rest of a send that was cut short).
    wbuf: RefCell<Vec<u8>>,
}

/// Cuts a buffer back to `len` when dropped: the bytes a read did not fill (or all of them, if
/// the read unwound) are not kept.
struct Truncate<'a> {
    buf: &'a mut Vec<u8>,
    len: usize,
}

impl Drop for Truncate<'_> {
    fn drop(&mut self) {
        self.buf.truncate(self.len);
    }
}

fn busy(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::ResourceBusy,
        format!("another task is already {what} this connection"),
    )
}

/// A connected pair of [`Connection`]s (multiprocessing's `Pipe(duplex=True)`).
///
/// # Errors
/// If the socket pair cannot be made (`EMFILE`).
pub fn pipe() -> io::Result<(Connection, Connection)> {
    let (a, b) = std::os::unix::net::UnixStream::pair()?;
    Ok((Connection::from_std(a)?, Connection::from_std(b)?))
}

impl Connection {
    /// Wraps a connected std Unix stream (for a connection made some other way, e.g. accepted
    /// by a manager server).
    ///
    /// # Errors
    /// If it cannot be registered with the hub's reactor.
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<Connection> {
        Ok(Connection::from_stream(UnixStream::from_std(stream)?))
    }

    /// Wraps a cooperative Unix stream.
    pub fn from_stream(stream: UnixStream) -> Connection {
        Connection {
            stream,
            rbuf: RefCell::new(Vec::new()),
            wbuf: RefCell::new(Vec::new()),
        }
    }

    /// Sends one value (multiprocessing's `send`).
    ///
    /// # Errors
    /// `BrokenPipe` once the other end is closed; other I/O errors.
    pub fn send<T: Message>(&self, value: &T) -> io::Result<()> {
        self.send_bytes(&to_bytes(value))
    }

    /// Receives one value, parking until it arrives (multiprocessing's `recv`).
    ///
    /// # Errors
    /// `UnexpectedEof` once the other end is closed and everything sent was received;
    /// `InvalidData` if the bytes are not a `T`.
    pub fn recv<T: Message>(&self) -> io::Result<T> {
        from_bytes(&self.recv_bytes()?)
    }

    /// Sends one message of raw bytes.
    ///
    /// # Errors
    /// As [`send`](Self::send); `InvalidInput` for a message of 4 GiB or more;
    /// `ResourceBusy` if another task is sending on this connection.
    pub fn send_bytes(&self, bytes: &[u8]) -> io::Result<()> {
        let len = u32::try_from(bytes.len()).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "a message of 4 GiB or more")
        })?;
        let mut out = self.wbuf.try_borrow_mut().map_err(|_| busy("sending on"))?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(bytes);
        while !out.is_empty() {
            match (&self.stream).write(&out) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => drop(out.drain(..n)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Receives one message of raw bytes.
    ///
    /// # Errors
    /// As [`recv`](Self::recv); `ResourceBusy` if another task is receiving on this
    /// connection.
    pub fn recv_bytes(&self) -> io::Result<Vec<u8>> {
        let mut buf = self
            .rbuf
            .try_borrow_mut()
            .map_err(|_| busy("receiving on"))?;
        loop {
            let need = match buf.get(..4) {
                Some(head) => 4 + u32::from_le_bytes(head.try_into().expect("4 bytes")) as usize,
                None => 4,
            };
            if buf.len() >= 4 && buf.len() >= need {
                let msg = buf[4..need].to_vec();
                buf.drain(..need);
                return Ok(msg);
            }
            let old = buf.len();
            buf.resize(old + (need - old).max(4096), 0);
            let mut fill = Truncate {
                buf: &mut buf,
                len: old,
            };
            let n = (&self.stream).read(&mut fill.buf[old..])?;
            fill.len = old + n;
            drop(fill);
            if n == 0 {
                let what = match old {
                    0 => "the other end of the connection was closed",
                    _ => "the other end of the connection was closed in the middle of a message",
                };
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, what));
            }
        }
    }

    /// Whether a message (or the end of the stream) can be received, waiting up to `timeout`
    /// (`None`: forever; zero: just look) — multiprocessing's `poll`.
    ///
    /// # Errors
    /// If waiting fails.
    pub fn poll(&self, timeout: Option<Duration>) -> io::Result<bool> {
        let fd = self.stream.as_raw_fd();
        match crate::io::wait_readable(fd, timeout) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sets how long `recv` may wait (`None`: forever); past it, `recv` fails with
    /// `WouldBlock`, as std's sockets do.
    ///
    /// # Errors
    /// `InvalidInput` for a zero duration.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(timeout)
    }

    /// The Unix stream inside.
    pub fn get_ref(&self) -> &UnixStream {
        &self.stream
    }
}

impl AsRawFd for Connection {
    fn as_raw_fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }
}

impl AsFd for Connection {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("fd", &self.stream.as_raw_fd())
            .finish()
    }
}
