//! epoll and eventfd, behind safe wrappers.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::syscall;

/// One readiness event: the token it was registered with and what became ready.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Event {
    /// The token given to [`Poller::add`].
    pub(crate) token: u64,
    /// The fd is readable, at EOF, hung up or in error.
    pub(crate) readable: bool,
    /// The fd is writable, hung up or in error.
    pub(crate) writable: bool,
    /// The peer closed its side (or the fd hung up or failed): reads will not block again.
    pub(crate) read_closed: bool,
}

/// An epoll instance.
pub(crate) struct Poller {
    epfd: OwnedFd,
    buf: Vec<libc::epoll_event>,
}

impl Poller {
    /// Creates an epoll instance (close-on-exec).
    pub(crate) fn new() -> io::Result<Poller> {
        // SAFETY: epoll_create1 takes only flags.
        let fd = syscall!(epoll_create1(libc::EPOLL_CLOEXEC))?;
        Ok(Poller {
            // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
            epfd: unsafe { OwnedFd::from_raw_fd(fd) },
            buf: Vec::with_capacity(1024),
        })
    }

    /// Registers `fd` once, edge-triggered, for reading and writing.
    pub(crate) fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let flags = libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET;
        self.add_flags(fd, token, flags)
    }

    /// Registers `fd` level-triggered for the directions asked.
    fn add_level(&self, fd: RawFd, read: bool, write: bool) -> io::Result<()> {
        let flags =
            (if read { libc::EPOLLIN } else { 0 }) | (if write { libc::EPOLLOUT } else { 0 });
        self.add_flags(fd, fd as u64, flags)
    }

    /// An epoll instance watching `fds` (fd, read, write) level-triggered, as one fd that is
    /// readable while any member is ready: how `select` waits on fds grove does not own.
    pub(crate) fn interest_set(fds: &[(RawFd, bool, bool)]) -> io::Result<OwnedFd> {
        let set = Poller::new()?;
        for &(fd, read, write) in fds {
            set.add_level(fd, read, write)?;
        }
        Ok(set.epfd)
    }

    fn add_flags(&self, fd: RawFd, token: u64, flags: libc::c_int) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: flags as u32,
            u64: token,
        };
        // SAFETY: `ev` is valid for the call; an invalid fd is reported as an error.
        let added = syscall!(epoll_ctl(
            self.epfd.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            fd,
            &mut ev
        ));
        match added {
            // The number was registered before for the same open file, and closed in between
            // while another descriptor kept the file open (dup2 over it): epoll still holds
            // that entry. Re-arm it under the new token (MOD also reports current readiness).
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                // SAFETY: as above.
                syscall!(epoll_ctl(
                    self.epfd.as_raw_fd(),
                    libc::EPOLL_CTL_MOD,
                    fd,
                    &mut ev
                ))
                .map(drop)
            }
            r => r.map(drop),
        }
    }

    /// Removes `fd` from the interest list (errors are ignored: a closed fd is gone already).
    pub(crate) fn delete(&self, fd: RawFd) {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: as in `add`.
        let _ = syscall!(epoll_ctl(
            self.epfd.as_raw_fd(),
            libc::EPOLL_CTL_DEL,
            fd,
            &mut ev
        ));
    }

    /// Waits up to `timeout_ms` (`None`: forever) and appends the events to `out`.
    pub(crate) fn wait(&mut self, timeout_ms: Option<i32>, out: &mut Vec<Event>) -> io::Result<()> {
        let cap = self.buf.capacity() as libc::c_int;
        let timeout = timeout_ms.unwrap_or(-1);
        // SAFETY: the buffer has room for `cap` events; the kernel writes at most that many.
        let n = syscall!(epoll_wait(
            self.epfd.as_raw_fd(),
            self.buf.as_mut_ptr(),
            cap,
            timeout
        ))?;
        // SAFETY: the kernel initialised the first `n` entries.
        unsafe { self.buf.set_len(n as usize) };
        out.extend(self.buf.drain(..).map(|e| {
            let bits = e.events as libc::c_int;
            let hup = bits & (libc::EPOLLHUP | libc::EPOLLERR) != 0;
            Event {
                token: e.u64,
                readable: hup || bits & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLPRI) != 0,
                writable: hup || bits & libc::EPOLLOUT != 0,
                read_closed: hup || bits & libc::EPOLLRDHUP != 0,
            }
        }));
        Ok(())
    }
}

/// An eventfd: the way other threads wake a hub blocked in `epoll_wait`.
pub(crate) struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    /// Creates a non-blocking, close-on-exec eventfd.
    pub(crate) fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd takes only an initial value and flags.
        let fd = syscall!(eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK))?;
        // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(EventFd { fd })
    }

    /// Increments the counter, making the fd readable.
    pub(crate) fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64; EAGAIN (counter saturated) still leaves the
        // fd readable, which is all a notification needs.
        let _ = syscall!(write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8));
    }

    /// Resets the counter.
    pub(crate) fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64; EAGAIN means it was already drained.
        let _ = syscall!(read(self.fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8));
    }

    /// The raw fd, for registering with the poller.
    pub(crate) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
