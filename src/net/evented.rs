//! The shared core of every cooperative socket: a non-blocking std socket registered with the
//! hub's reactor, and the loop that tries a syscall and parks on `EAGAIN`.

use std::cell::Cell;
use std::io;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::hub::reactor::{closed_error, Interest, Source};

/// Whether several tasks may wait in one direction at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Share {
    /// One task at a time (stream reads and writes): a second one gets `ResourceBusy`.
    Exclusive,
    /// Any number (accept, datagrams): each call is atomic, so waiters simply take turns.
    Shared,
}

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
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
    nonblocking: Cell<bool>,
    reading: Cell<bool>,
    writing: Cell<bool>,
}

impl<T: AsRawFd> Evented<T> {
    /// Registers `io`, which must already be in non-blocking mode.
    pub(crate) fn new(io: T) -> io::Result<Evented<T>> {
        let source = crate::hub::with(|hub| hub.reactor.register(io.as_raw_fd()))?;
        Ok(Evented {
            reg: Registration(source),
            io,
            read_timeout: Cell::new(None),
            write_timeout: Cell::new(None),
            nonblocking: Cell::new(false),
            reading: Cell::new(false),
            writing: Cell::new(false),
        })
    }

    /// The std socket inside.
    pub(crate) fn get_ref(&self) -> &T {
        &self.io
    }

    /// Unregisters and hands back the std socket (still non-blocking).
    pub(crate) fn into_inner(self) -> T {
        let Evented { reg, io, .. } = self;
        drop(reg);
        io
    }

    /// Closes the socket for every task: waiters wake with a `NotConnected` error, later calls
    /// fail the same way. The fd itself is released when the value is dropped.
    pub(crate) fn close(&self) {
        if !self.reg.0.is_closed() {
            crate::hub::with(|hub| hub.reactor.deregister(&self.reg.0));
        }
    }

    /// Whether [`Evented::close`] was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.reg.0.is_closed()
    }

    /// The timeout for one direction (`None`: wait forever).
    pub(crate) fn timeout(&self, dir: Interest) -> Option<Duration> {
        self.timeout_cell(dir).get()
    }

    /// Sets the timeout for one direction; zero is refused, as std does.
    pub(crate) fn set_timeout(&self, dir: Interest, t: Option<Duration>) -> io::Result<()> {
        if t == Some(Duration::ZERO) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        self.timeout_cell(dir).set(t);
        Ok(())
    }

    /// In non-blocking mode calls return `WouldBlock` instead of parking.
    pub(crate) fn set_nonblocking(&self, on: bool) {
        self.nonblocking.set(on);
    }

    /// Forgets read readiness (after a short read drained the socket's receive queue).
    pub(crate) fn drained(&self) {
        self.reg.0.drained();
    }

    /// Forgets write readiness (after a short write filled the socket's send buffer).
    pub(crate) fn filled(&self) {
        self.reg.0.clear(Interest::Write);
    }

    /// Runs `op` until it does not report `WouldBlock`, parking between tries until the socket
    /// is ready in `dir`, within the direction's timeout (`WouldBlock` "timed out" after it,
    /// as std's blocking sockets report on Linux).
    pub(crate) fn io<R>(
        &self,
        dir: Interest,
        share: Share,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        let timeout = self.timeout(dir);
        self.io_until(dir, share, || timeout.map(|t| Instant::now() + t), &mut op)
            .map_err(|e| match e.kind() {
                io::ErrorKind::TimedOut => io::Error::new(
                    io::ErrorKind::WouldBlock,
                    match dir {
                        Interest::Read => "read timed out",
                        Interest::Write => "write timed out",
                    },
                ),
                _ => e,
            })
    }

    /// Like [`Evented::io`] with an explicit deadline (computed on the first park); an expired
    /// deadline is a `TimedOut` error.
    pub(crate) fn io_until<R>(
        &self,
        dir: Interest,
        share: Share,
        deadline: impl FnOnce() -> Option<Instant>,
        op: &mut dyn FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        let source = &self.reg.0;
        let mut deadline = Some(deadline);
        let mut at = None;
        let mut turn = None;
        // In non-blocking mode the caller asks the kernel, not the hub: the readiness flag only
        // saves syscalls before a park, and a caller that polls (after `select`, say) must see
        // data that arrived since the flag was cleared.
        let nonblocking = self.nonblocking.get();
        loop {
            if source.is_closed() {
                return Err(closed_error());
            }
            if nonblocking || source.is_ready(dir) {
                match op(&self.io) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => source.clear(dir),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    r => return r,
                }
            }
            if nonblocking {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            if share == Share::Exclusive && turn.is_none() {
                turn = Some(Turn::take(self.busy_cell(dir), dir)?);
            }
            if let Some(first_park) = deadline.take() {
                at = first_park();
            }
            source.wait(dir, at)?;
        }
    }

    fn timeout_cell(&self, dir: Interest) -> &Cell<Option<Duration>> {
        match dir {
            Interest::Read => &self.read_timeout,
            Interest::Write => &self.write_timeout,
        }
    }

    fn busy_cell(&self, dir: Interest) -> &Cell<bool> {
        match dir {
            Interest::Read => &self.reading,
            Interest::Write => &self.writing,
        }
    }
}

/// A task's exclusive turn to wait in one direction of a stream.
struct Turn<'a>(&'a Cell<bool>);

impl<'a> Turn<'a> {
    fn take(busy: &'a Cell<bool>, dir: Interest) -> io::Result<Turn<'a>> {
        if busy.replace(true) {
            let what = match dir {
                Interest::Read => "reading from",
                Interest::Write => "writing to",
            };
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!(
                    "another task is already {what} this socket; grove allows one reader and \
                     one writer per socket at a time (use a Queue to share it)"
                ),
            ));
        }
        Ok(Turn(busy))
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.set(false);
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
            self.drained();
        }
        Ok(n)
    }

    pub(crate) fn read_vectored(&self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        let want: usize = bufs.iter().map(|b| b.len()).sum();
        let n = self.io(Interest::Read, Share::Exclusive, |mut s| {
            io::Read::read_vectored(&mut s, bufs)
        })?;
        if n > 0 && n < want {
            self.drained();
        }
        Ok(n)
    }

    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let n = self.io(Interest::Write, Share::Exclusive, |mut s| {
            io::Write::write(&mut s, buf)
        })?;
        if n < buf.len() {
            self.filled();
        }
        Ok(n)
    }

    pub(crate) fn write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let offered: usize = bufs.iter().map(|b| b.len()).sum();
        let n = self.io(Interest::Write, Share::Exclusive, |mut s| {
            io::Write::write_vectored(&mut s, bufs)
        })?;
        if n < offered {
            self.filled();
        }
        Ok(n)
    }
}
