//! TCP: a listener and a stream with std's API whose blocking calls park the task.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::hub::timers::deadline_after;

use super::evented::Evented;
use super::resolve::{each_addr, ToSocketAddrs};
use crate::hub::reactor::{is_deadline, Interest, Share};
use crate::hub::sys::socket;

/// A TCP listening socket; [`accept`](TcpListener::accept) parks the task until a client
/// connects. Any number of tasks may wait in `accept` on one listener.
pub struct TcpListener {
    inner: Evented<std::net::TcpListener>,
}

/// A TCP connection with std's API; reads and writes park the task instead of the thread.
pub struct TcpStream {
    inner: Evented<std::net::TcpStream>,
}

/// The iterator returned by [`TcpListener::incoming`]: accepts forever.
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

super::socket_common!(TcpListener, std::net::TcpListener);
super::socket_common!(TcpStream, std::net::TcpStream);
super::socket_timeouts!(TcpStream);
super::stream_io!(TcpStream);

impl TcpListener {
    /// Binds to `addr` (trying each resolved address in turn) and listens with a large
    /// backlog (`net.core.somaxconn`).
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        let listener = each_addr(addr, |a| std::net::TcpListener::bind(a))?;
        socket::listen(listener.as_raw_fd(), super::BACKLOG)?;
        TcpListener::from_std(listener)
    }

    /// Accepts a connection, parking until one arrives.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = self
            .inner
            .io(Interest::Read, Share::Shared, |l| l.accept())?;
        Ok((TcpStream::from_std(stream)?, peer))
    }

    /// An endless iterator of accepted connections, as std's.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().local_addr()
    }

    /// A second listener on the same socket (a new fd, registered separately).
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        TcpListener::from_std(self.inner.get_ref().try_clone()?)
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.get_ref().set_ttl(ttl)
    }

    /// `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.get_ref().ttl()
    }
}

impl<'a> Iterator for Incoming<'a> {
    type Item = io::Result<TcpStream>;

    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

impl TcpStream {
    /// Connects to `addr`, trying each resolved address in turn, parking while the handshake
    /// is under way. Fails with the last address's error.
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(addr, |a| TcpStream::connect_until(a, None))
    }

    /// Connects to one address, giving up with `TimedOut` after `timeout`. A zero timeout is an
    /// `InvalidInput` error, as in std; one too large to add to the clock (`Duration::MAX`)
    /// waits as long as the handshake takes.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        TcpStream::connect_until(addr, deadline_after(timeout))
    }

    fn connect_until(addr: &SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
        let fd = socket::nonblocking_socket(socket::domain_of(addr), libc::SOCK_STREAM)?;
        let started = socket::connect_inet(&fd, addr);
        let stream = TcpStream {
            inner: Evented::new(std::net::TcpStream::from(fd))?,
        };
        match started {
            Ok(()) => return Ok(stream),
            Err(e) if socket::connect_in_progress(&e) => {}
            Err(e) => return Err(e),
        }
        // Not writable until the handshake ends; the reactor reports the edge.
        stream.inner.dir(Interest::Write).clear();
        stream
            .inner
            .io_until(Interest::Write, Share::Shared, deadline, |s| {
                if let Some(e) = s.take_error()? {
                    return Err(e);
                }
                match s.peer_addr() {
                    Ok(_) => Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                        Err(io::ErrorKind::WouldBlock.into())
                    }
                    Err(e) => Err(e),
                }
            })
            .map_err(|e| match is_deadline(&e) {
                true => io::Error::new(io::ErrorKind::TimedOut, "connection timed out"),
                false => e,
            })?;
        Ok(stream)
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().local_addr()
    }

    /// Shuts down the read, write or both halves (a task parked reading sees end of file).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.get_ref().shutdown(how)
    }

    /// A second handle to the same connection (a new fd, registered separately), e.g. for a
    /// writer task. Timeouts are copied.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        let clone = TcpStream::from_std(self.inner.get_ref().try_clone()?)?;
        clone.set_read_timeout(self.read_timeout()?)?;
        clone.set_write_timeout(self.write_timeout()?)?;
        Ok(clone)
    }

    /// Reads without consuming, parking until data (or end of file) is there.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner
            .io(Interest::Read, Share::Shared, |s| s.peek(buf))
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.get_ref().set_nodelay(nodelay)
    }

    /// `TCP_NODELAY`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.get_ref().nodelay()
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.get_ref().set_ttl(ttl)
    }

    /// `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.get_ref().ttl()
    }
}
