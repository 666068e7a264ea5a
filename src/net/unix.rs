//! Unix-domain stream sockets with std's API whose blocking calls park the task.

use std::io;
use std::net::Shutdown;
use std::os::unix::net::{self as std_unix, SocketAddr};
use std::path::Path;
use std::time::Duration;

use super::evented::Evented;
use crate::hub::reactor::{Interest, Share};
use crate::hub::sys::socket;

/// A Unix-domain listening socket; [`accept`](UnixListener::accept) parks the task.
pub struct UnixListener {
    inner: Evented<std_unix::UnixListener>,
}

/// A Unix-domain stream with std's API; reads and writes park the task.
pub struct UnixStream {
    inner: Evented<std_unix::UnixStream>,
}

/// The iterator returned by [`UnixListener::incoming`]: accepts forever.
#[derive(Debug)]
pub struct UnixIncoming<'a> {
    listener: &'a UnixListener,
}

super::socket_common!(UnixListener, std_unix::UnixListener);
super::socket_common!(UnixStream, std_unix::UnixStream);
super::socket_timeouts!(UnixStream);
super::stream_io!(UnixStream);

impl UnixListener {
    /// Binds to the filesystem path `path` (which must not exist yet).
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        let listener = std_unix::UnixListener::bind(path)?;
        socket::listen(std::os::fd::AsRawFd::as_raw_fd(&listener), super::BACKLOG)?;
        UnixListener::from_std(listener)
    }

    /// Accepts a connection, parking until one arrives.
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (stream, peer) = self
            .inner
            .io(Interest::Read, Share::Shared, |l| l.accept())?;
        Ok((UnixStream::from_std(stream)?, peer))
    }

    /// An endless iterator of accepted connections.
    pub fn incoming(&self) -> UnixIncoming<'_> {
        UnixIncoming { listener: self }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().local_addr()
    }

    /// A second listener on the same socket (a new fd, registered separately).
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        UnixListener::from_std(self.inner.get_ref().try_clone()?)
    }
}

impl<'a> Iterator for UnixIncoming<'a> {
    type Item = io::Result<UnixStream>;

    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

impl UnixStream {
    /// Connects to the socket at `path`. While the listener's backlog is full the task
    /// retries with a short backoff (it parks; the thread does not block).
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let fd = socket::nonblocking_socket(libc::AF_UNIX, libc::SOCK_STREAM)?;
        let mut backoff = Duration::from_micros(500);
        loop {
            match socket::connect_unix(&fd, path.as_ref()) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    crate::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_millis(50));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(UnixStream {
            inner: Evented::new(std_unix::UnixStream::from(fd))?,
        })
    }

    /// A connected pair of streams (both registered with this thread's reactor).
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std_unix::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().local_addr()
    }

    /// Shuts down the read, write or both halves.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.get_ref().shutdown(how)
    }

    /// A second handle to the same stream (a new fd, registered separately).
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        let clone = UnixStream::from_std(self.inner.get_ref().try_clone()?)?;
        clone.set_read_timeout(self.read_timeout()?)?;
        clone.set_write_timeout(self.write_timeout()?)?;
        Ok(clone)
    }
}
