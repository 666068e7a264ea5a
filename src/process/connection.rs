//! [`Connection`] and [`pipe`]: a cooperative duplex channel between two processes
//! (multiprocessing's `Pipe()`), framed messages over a Unix socket pair.

#![deny(unsafe_code)]

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
pub struct Connection {
    stream: UnixStream,
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
        Ok(Connection {
            stream: UnixStream::from_std(stream)?,
        })
    }

    /// Wraps a cooperative Unix stream.
    pub fn from_stream(stream: UnixStream) -> Connection {
        Connection { stream }
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
    /// As [`send`](Self::send); `InvalidInput` for a message of 4 GiB or more.
    pub fn send_bytes(&self, bytes: &[u8]) -> io::Result<()> {
        let len = u32::try_from(bytes.len()).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "a message of 4 GiB or more")
        })?;
        let mut s = &self.stream;
        if bytes.len() <= 4096 {
            let mut frame = Vec::with_capacity(4 + bytes.len());
            frame.extend_from_slice(&len.to_le_bytes());
            frame.extend_from_slice(bytes);
            return s.write_all(&frame);
        }
        s.write_all(&len.to_le_bytes())?;
        s.write_all(bytes)
    }

    /// Receives one message of raw bytes.
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub fn recv_bytes(&self) -> io::Result<Vec<u8>> {
        let mut s = &self.stream;
        let mut len = [0u8; 4];
        s.read_exact(&mut len).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the other end of the connection was closed",
            ),
            _ => e,
        })?;
        let mut buf = vec![0; u32::from_le_bytes(len) as usize];
        s.read_exact(&mut buf)?;
        Ok(buf)
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
