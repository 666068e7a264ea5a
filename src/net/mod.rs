//! Cooperative sockets: std's networking types, but a call that would block parks the task.
//!
//! [`TcpListener`], [`TcpStream`], [`UdpSocket`], [`UnixListener`] and [`UnixStream`] have
//! std's method names and semantics (`std::io::Read`/`Write`, also on `&TcpStream` so one task
//! reads while another writes; read/write timeouts with std's error kinds; `shutdown`,
//! `try_clone`, ...). Underneath, each socket is non-blocking and registered once with the
//! thread's epoll reactor: a call tries the syscall, and only when the kernel says `EAGAIN` does
//! the task park until epoll reports the socket ready. Outside any task (plain `main`) the same
//! calls drive the hub while they wait, so other tasks keep running.
//!
//! ```
//! use std::io::{Read, Write};
//! use grove::net::{TcpListener, TcpStream};
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let addr = listener.local_addr()?;
//! let server = grove::spawn(move || -> std::io::Result<()> {
//!     let (mut conn, _) = listener.accept()?;
//!     let mut buf = [0; 5];
//!     conn.read_exact(&mut buf)?;
//!     conn.write_all(&buf.to_ascii_uppercase())
//! });
//! let mut client = TcpStream::connect(addr)?;
//! client.write_all(b"hello")?;
//! let mut reply = String::new();
//! client.read_to_string(&mut reply)?;
//! assert_eq!(reply, "HELLO");
//! server.join().unwrap()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ## Sharing a socket between tasks
//! One task may read while another writes (full duplex): `Read` and `Write` are implemented for
//! `&TcpStream`, so both can hold a shared reference (e.g. through an `Rc`). A *second* task
//! that tries to read (or write) while another is already parked reading (or writing) the same
//! socket gets an `io::ErrorKind::ResourceBusy` error naming the conflict, as gevent raises
//! one: interleaving two readers would hand each an unpredictable part of the stream. Accepting
//! and datagram sockets allow any number of waiting tasks, since each call is atomic.
//!
//! [`TcpStream::close`] (and the other types' `close`) closes a socket for every task at once:
//! a task parked on it wakes with a `NotConnected` error instead of hanging.
//!
//! ## Names
//! Addresses are resolved with grove's [`ToSocketAddrs`]: literal addresses directly, host
//! names on the thread pool ([`lookup_host`]), so DNS never stalls the hub.

#![deny(unsafe_code)]

pub(crate) mod evented;
mod resolve;
mod server;
mod tcp;
mod udp;
mod unix;

pub use resolve::{lookup_host, ToSocketAddrs};
pub use server::{RuntimeServer, RuntimeServerBuilder, StreamServer};
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixIncoming, UnixListener, UnixStream};

/// The listen backlog grove asks for (Linux caps it at `net.core.somaxconn`).
const BACKLOG: i32 = 4096;

/// Methods every cooperative socket shares: timeouts, non-blocking mode, close, fd access.
macro_rules! socket_common {
    ($ty:ident, $std:ty) => {
        impl $ty {
            /// Wraps a std socket: switches it to non-blocking mode and registers it with this
            /// thread's reactor.
            pub fn from_std(socket: $std) -> std::io::Result<$ty> {
                socket.set_nonblocking(true)?;
                Ok($ty {
                    inner: crate::net::evented::Evented::new(socket)?,
                })
            }

            /// Unregisters the socket and returns the std type, back in blocking mode.
            pub fn into_std(self) -> std::io::Result<$std> {
                let socket = self.inner.into_inner();
                socket.set_nonblocking(false)?;
                Ok(socket)
            }

            /// In non-blocking mode, calls that would park return `WouldBlock` instead
            /// (the fd itself always stays non-blocking underneath).
            pub fn set_nonblocking(&self, nonblocking: bool) -> std::io::Result<()> {
                self.inner.source().set_nonblocking(nonblocking);
                Ok(())
            }

            /// Closes the socket for every task at once: tasks parked on it wake with a
            /// `NotConnected` error, and later calls fail the same way. The fd is released
            /// when the value is dropped.
            pub fn close(&self) {
                self.inner.close();
            }

            /// Whether [`close`](Self::close) was called.
            pub fn is_closed(&self) -> bool {
                self.inner.source().is_closed()
            }

            /// Takes the pending `SO_ERROR`.
            pub fn take_error(&self) -> std::io::Result<Option<std::io::Error>> {
                self.inner.get_ref().take_error()
            }
        }

        impl TryFrom<$std> for $ty {
            type Error = std::io::Error;

            fn try_from(socket: $std) -> std::io::Result<$ty> {
                $ty::from_std(socket)
            }
        }

        impl std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.inner.get_ref().as_raw_fd()
            }
        }

        impl std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                self.inner.get_ref().as_fd()
            }
        }

        impl std::os::fd::IntoRawFd for $ty {
            /// Unregisters the socket and gives up its fd (left in non-blocking mode).
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                self.inner.into_inner().into_raw_fd()
            }
        }

        impl From<$ty> for std::os::fd::OwnedFd {
            fn from(socket: $ty) -> std::os::fd::OwnedFd {
                socket.inner.into_inner().into()
            }
        }

        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(self.inner.get_ref(), f)
            }
        }
    };
}

/// Read/write timeouts, shared by stream and datagram sockets.
macro_rules! socket_timeouts {
    ($ty:ident) => {
        impl $ty {
            /// Sets how long a read may park; `None` waits forever. When it expires the read
            /// fails with `WouldBlock` ("read timed out"), the kind std's blocking sockets
            /// report on Linux. A zero duration is an `InvalidInput` error, as in std; a duration
            /// too large to add to the clock (`Duration::MAX`) waits forever.
            pub fn set_read_timeout(
                &self,
                dur: Option<std::time::Duration>,
            ) -> std::io::Result<()> {
                self.inner
                    .dir(crate::hub::reactor::Interest::Read)
                    .set_timeout(dur)
            }

            /// Sets how long a write may park; see [`set_read_timeout`](Self::set_read_timeout).
            pub fn set_write_timeout(
                &self,
                dur: Option<std::time::Duration>,
            ) -> std::io::Result<()> {
                self.inner
                    .dir(crate::hub::reactor::Interest::Write)
                    .set_timeout(dur)
            }

            /// The read timeout.
            pub fn read_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                Ok(self
                    .inner
                    .dir(crate::hub::reactor::Interest::Read)
                    .timeout())
            }

            /// The write timeout.
            pub fn write_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                Ok(self
                    .inner
                    .dir(crate::hub::reactor::Interest::Write)
                    .timeout())
            }
        }
    };
}

/// `Read` and `Write` for a stream type and for a shared reference to it.
macro_rules! stream_io {
    ($ty:ident) => {
        $crate::net::stream_io!(@impl $ty);
        $crate::net::stream_io!(@impl &$ty);
    };
    (@impl $t:ty) => {
        impl std::io::Read for $t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.inner.read(buf)
            }

            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                self.inner.read_vectored(bufs)
            }
        }

        impl std::io::Write for $t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.inner.write(buf)
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                self.inner.write_vectored(bufs)
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
    };
}

pub(crate) use {socket_common, socket_timeouts, stream_io};
