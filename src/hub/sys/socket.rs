//! The few socket calls std does not offer in non-blocking form, behind safe wrappers:
//! creating a non-blocking socket, starting a non-blocking `connect`, raising a listener's
//! backlog, and `poll(2)` with a zero timeout (for `select` and `wait_readable` on foreign fds).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::syscall;

/// Creates a non-blocking, close-on-exec socket of `domain` (`AF_INET`, `AF_INET6`, `AF_UNIX`)
/// and `ty` (`SOCK_STREAM`, `SOCK_DGRAM`).
pub(crate) fn nonblocking_socket(domain: libc::c_int, ty: libc::c_int) -> io::Result<OwnedFd> {
    let flags = ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: socket takes only integers.
    let fd = syscall!(socket(domain, flags, 0))?;
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The address family for `addr`.
pub(crate) fn domain_of(addr: &SocketAddr) -> libc::c_int {
    match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    }
}

/// Starts connecting `fd` to `addr`. A non-blocking socket usually answers
/// `EINPROGRESS` (as an `io::Error` with raw os error `EINPROGRESS`).
pub(crate) fn connect_inet(fd: &OwnedFd, addr: &SocketAddr) -> io::Result<()> {
    with_sockaddr(addr, |ptr, len| {
        // SAFETY: `ptr` points to a fully initialised sockaddr of `len` bytes, valid for the
        // call.
        match syscall!(connect(fd.as_raw_fd(), ptr, len)) {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EISCONN) => Ok(()),
            Err(e) => Err(e),
        }
    })
}

/// A non-blocking TCP socket bound to `addr` with `SO_REUSEADDR` and `SO_REUSEPORT`, listening
/// if `listen` (one listener per pre-fork worker; the kernel spreads connections among them).
/// Bound but not listening, it only reserves the port: it takes no connections.
pub(crate) fn bind_reuseport(addr: &SocketAddr, listen: bool) -> io::Result<OwnedFd> {
    let fd = nonblocking_socket(domain_of(addr), libc::SOCK_STREAM)?;
    let one: libc::c_int = 1;
    for opt in [libc::SO_REUSEADDR, libc::SO_REUSEPORT] {
        let (val, len) = (
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        // SAFETY: `val` points to a c_int of `len` bytes, valid for the call.
        syscall!(setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, opt, val, len))?;
    }
    // SAFETY: `ptr` points to a fully initialised sockaddr of `len` bytes, valid for the call.
    with_sockaddr(addr, |ptr, len| syscall!(bind(fd.as_raw_fd(), ptr, len)))?;
    if listen {
        self::listen(fd.as_raw_fd(), 4096)?;
    }
    Ok(fd)
}

/// Calls `f` with `addr` as a C sockaddr and its length.
fn with_sockaddr<R>(
    addr: &SocketAddr,
    f: impl FnOnce(*const libc::sockaddr, libc::socklen_t) -> R,
) -> R {
    fn call<A, R>(a: &A, f: impl FnOnce(*const libc::sockaddr, libc::socklen_t) -> R) -> R {
        f(
            (a as *const A).cast(),
            std::mem::size_of::<A>() as libc::socklen_t,
        )
    }
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            call(&sin, f)
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            call(&sin6, f)
        }
    }
}

/// Starts connecting a Unix stream socket to the filesystem path `path`.
pub(crate) fn connect_unix(fd: &OwnedFd, path: &Path) -> io::Result<()> {
    let bytes = path.as_os_str().as_bytes();
    let mut sun = libc::sockaddr_un {
        sun_family: libc::AF_UNIX as libc::sa_family_t,
        sun_path: [0; 108],
    };
    if bytes.is_empty() || bytes.len() >= sun.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a Unix socket path must be 1 to 107 bytes long with no NUL byte",
        ));
    }
    for (dst, src) in sun.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    connect_raw(fd.as_raw_fd(), &sun)
}

fn connect_raw<A>(fd: RawFd, addr: &A) -> io::Result<()> {
    let len = std::mem::size_of::<A>() as libc::socklen_t;
    let ptr = (addr as *const A).cast::<libc::sockaddr>();
    // SAFETY: `ptr` points to a fully initialised sockaddr of `len` bytes, valid for the call.
    match syscall!(connect(fd, ptr, len)) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EISCONN) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether `err` says a non-blocking connect is under way.
pub(crate) fn connect_in_progress(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EINPROGRESS) | Some(libc::EALREADY)
    )
}

/// A listening TCP socket bound to `addr` with `SO_REUSEADDR` and `SO_REUSEPORT` set, so that
/// several listeners (one per hub) share the port and the kernel spreads connections over them.
pub(crate) fn reuseport_listener(
    addr: &SocketAddr,
    backlog: i32,
) -> io::Result<std::net::TcpListener> {
    let fd = nonblocking_socket(domain_of(addr), libc::SOCK_STREAM)?;
    let one: libc::c_int = 1;
    for opt in [libc::SO_REUSEADDR, libc::SO_REUSEPORT] {
        // SAFETY: `one` is a valid c_int for the call, and its size is passed.
        syscall!(setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            opt,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t
        ))?;
    }
    match addr {
        SocketAddr::V4(a) => bind_raw(fd.as_raw_fd(), &sockaddr_v4(a))?,
        SocketAddr::V6(a) => bind_raw(fd.as_raw_fd(), &sockaddr_v6(a))?,
    }
    listen(fd.as_raw_fd(), backlog)?;
    Ok(std::net::TcpListener::from(fd))
}

fn sockaddr_v4(a: &std::net::SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(a.ip().octets()),
        },
        sin_zero: [0; 8],
    }
}

fn sockaddr_v6(a: &std::net::SocketAddrV6) -> libc::sockaddr_in6 {
    libc::sockaddr_in6 {
        sin6_family: libc::AF_INET6 as libc::sa_family_t,
        sin6_port: a.port().to_be(),
        sin6_flowinfo: a.flowinfo(),
        sin6_addr: libc::in6_addr {
            s6_addr: a.ip().octets(),
        },
        sin6_scope_id: a.scope_id(),
    }
}

fn bind_raw<A>(fd: RawFd, addr: &A) -> io::Result<()> {
    let len = std::mem::size_of::<A>() as libc::socklen_t;
    let ptr = (addr as *const A).cast::<libc::sockaddr>();
    // SAFETY: `ptr` points to a fully initialised sockaddr of `len` bytes, valid for the call.
    syscall!(bind(fd, ptr, len)).map(drop)
}

/// Sets a listening socket's accept backlog (Linux caps it at `net.core.somaxconn`).
pub(crate) fn listen(fd: RawFd, backlog: i32) -> io::Result<()> {
    // SAFETY: listen takes only integers; a bad fd is reported as an error.
    syscall!(listen(fd, backlog)).map(drop)
}

/// Readiness of one fd as `poll(2)` reports it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Readiness {
    /// Readable, at EOF, hung up or in error.
    pub(crate) readable: bool,
    /// Writable, hung up or in error.
    pub(crate) writable: bool,
}

/// Asks the kernel, without waiting, whether each of `fds` (fd, want read, want write) is ready.
/// An fd that is not open is an `InvalidInput` error naming it.
pub(crate) fn poll_now(fds: &[(RawFd, bool, bool)]) -> io::Result<Vec<Readiness>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&(fd, r, w)| libc::pollfd {
            fd,
            events: (if r { libc::POLLIN } else { 0 }) | (if w { libc::POLLOUT } else { 0 }),
            revents: 0,
        })
        .collect();
    // SAFETY: `pfds` holds `len` initialised pollfd entries, valid and writable for the call.
    syscall!(poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 0))?;
    pfds.iter()
        .map(|p| {
            if p.revents & libc::POLLNVAL != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("fd {} is not an open file descriptor", p.fd),
                ));
            }
            let bad = p.revents & (libc::POLLERR | libc::POLLHUP) != 0;
            Ok(Readiness {
                readable: p.events & libc::POLLIN != 0 && (bad || p.revents & libc::POLLIN != 0),
                writable: p.events & libc::POLLOUT != 0 && (bad || p.revents & libc::POLLOUT != 0),
            })
        })
        .collect()
}
