//! The shared core of every cooperative socket: a non-blocking std socket registered with the
//! hub's reactor. The state of each direction and the loop that tries a syscall and parks on
//! `EAGAIN` live in the reactor ([`Direction`]); this type owns the fd and adds the I/O
//! methods that call it.

use std::io;
use std::os::fd::AsRawFd;
use std::rc::Rc;

use crate::hub::reactor::{Deadline, Direction, Interest, Share, Source};

/// A registration that unregisters (waking waiters with an error) when dropped.
struct Registration(Rc<Source>);

impl Drop for Registration {
    fn drop(&mut self) {
        if crate::hub::alive() {
            crate::hub::with(|hub| hub.reactor.deregister(&self.0));
        }
    }
}

/// A non-blocking socket known to this thread's reactor.
pub(crate) struct Evented<T: AsRawFd> {
    // Declared before `io`: it is dropped (unregistered) before the fd closes.
    reg: Registration,
    io: T,
}

impl<T: AsRawFd> Evented<T> {
    /// Registers `io`, which must already be in non-blocking mode.
    pub(crate) fn new(io: T) -> io::Result<Evented<T>> {
        let source = crate::hub::with(|hub| hub.reactor.register(io.as_raw_fd()))?;
        Ok(Evented {
            reg: Registration(source),
            io,
        })
    }

    /// The std socket inside.
    pub(crate) fn get_ref(&self) -> &T {
        &self.io
    }

    /// The reactor's record of this socket (both directions, non-blocking mode).
    #[inline]
    pub(crate) fn source(&self) -> &Source {
        &self.reg.0
    }

    /// One direction's state (timeout, readiness).
    pub(crate) fn dir(&self, interest: Interest) -> &Direction {
        self.source().dir(interest)
    }

    /// Unregisters and hands back the std socket (still non-blocking).
    pub(crate) fn into_inner(self) -> T {
        let Evented { reg, io } = self;
        drop(reg);
        io
    }

    /// Closes the socket for every task: waiters wake with a `NotConnected` error, later calls
    /// fail the same way. The fd itself is released when the value is dropped.
    pub(crate) fn close(&self) {
        if !self.source().is_closed() {
            crate::hub::with(|hub| hub.reactor.deregister(self.source()));
        }
    }

    /// Runs `op` on the socket until it does not report `WouldBlock`, parking between tries
    /// until the socket is ready in `dir`, within the direction's own timeout (`WouldBlock`
    /// "read timed out" after it, as std's blocking sockets report on Linux).
    #[inline]
    pub(crate) fn io<R>(
        &self,
        dir: Interest,
        share: Share,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        let io = &self.io;
        self.source().io(dir, share, Deadline::Own, &mut || op(io))
    }

    /// Like [`Evented::io`] with an explicit deadline (`None`: never); an expired deadline is a
    /// `TimedOut` error.
    pub(crate) fn io_until<R>(
        &self,
        dir: Interest,
        share: Share,
        deadline: Option<std::time::Instant>,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        let io = &self.io;
        self.source()
            .io(dir, share, Deadline::At(deadline), || op(io))
    }
}

/// Stream reads and writes, with the syscall-saving rules: a read that returns less than the
/// buffer drained the receive queue and a write that took less than offered filled the send
/// buffer, so the next call parks for the epoll edge instead of trying a syscall that would
/// only say `EAGAIN`.
impl<T: AsRawFd> Evented<T>
where
    for<'a> &'a T: io::Read + io::Write,
{
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.io(Interest::Read, Share::Exclusive, |mut s| {
            io::Read::read(&mut s, buf)
        })?;
        if n > 0 && n < buf.len() {
            self.dir(Interest::Read).drained();
        }
        Ok(n)
    }

    pub(crate) fn read_vectored(&self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        let want: usize = bufs.iter().map(|b| b.len()).sum();
        let n = self.io(Interest::Read, Share::Exclusive, |mut s| {
            io::Read::read_vectored(&mut s, bufs)
        })?;
        if n > 0 && n < want {
            self.dir(Interest::Read).drained();
        }
        Ok(n)
    }

    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let n = self.io(Interest::Write, Share::Exclusive, |mut s| {
            io::Write::write(&mut s, buf)
        })?;
        if n < buf.len() {
            self.dir(Interest::Write).clear();
        }
        Ok(n)
    }

    pub(crate) fn write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let offered: usize = bufs.iter().map(|b| b.len()).sum();
        let n = self.io(Interest::Write, Share::Exclusive, |mut s| {
            io::Write::write_vectored(&mut s, bufs)
        })?;
        if n < offered {
            self.dir(Interest::Write).clear();
        }
        Ok(n)
    }
}
