//! Address resolution that never stalls the hub: literal addresses are parsed in place, host
//! names are resolved by `getaddrinfo` on the thread pool.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::vec;

/// Something that names one or more socket addresses, like [`std::net::ToSocketAddrs`], but
/// resolved cooperatively: a host name is looked up on the thread pool while only the calling
/// task waits. Implemented for the same types as std's trait.
pub trait ToSocketAddrs: sealed::Sealed {
    /// Resolves to a list of addresses (parking the task for a host-name lookup).
    fn to_socket_addrs(&self) -> io::Result<vec::IntoIter<SocketAddr>>;

    /// What [`lookup_host`] resolves: like `to_socket_addrs`, but a bare host name or IP
    /// (no port) is accepted, with port 0.
    #[doc(hidden)]
    fn lookup(&self) -> io::Result<vec::IntoIter<SocketAddr>> {
        self.to_socket_addrs()
    }
}

mod sealed {
    /// Only grove implements [`super::ToSocketAddrs`].
    pub trait Sealed {}
}

/// Resolves `host` ("name:port", a bare "name" (port 0), `(name, port)`, or a literal
/// address) to socket addresses without blocking the hub: names go to `getaddrinfo` on the
/// thread pool while only the calling task waits.
///
/// ```
/// let addrs: Vec<_> = grove::net::lookup_host("localhost:80")?.collect();
/// assert!(addrs.iter().all(|a| a.port() == 80 && a.ip().is_loopback()));
/// assert!(grove::net::lookup_host("localhost")?.all(|a| a.port() == 0));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn lookup_host<A: ToSocketAddrs>(host: A) -> io::Result<vec::IntoIter<SocketAddr>> {
    host.lookup()
}

/// Resolves an owned "host:port" or `(host, port)` on a worker thread.
fn resolve_blocking<Q>(query: Q) -> io::Result<vec::IntoIter<SocketAddr>>
where
    Q: std::net::ToSocketAddrs + Send + 'static,
{
    crate::threadpool::spawn_blocking(move || {
        std::net::ToSocketAddrs::to_socket_addrs(&query).map(|it| it.collect::<Vec<_>>())
    })
    .map(Vec::into_iter)
}

fn one(addr: SocketAddr) -> io::Result<vec::IntoIter<SocketAddr>> {
    Ok(vec![addr].into_iter())
}

macro_rules! literal {
    ($($ty:ty),*) => {$(
        impl sealed::Sealed for $ty {}
        impl ToSocketAddrs for $ty {
            fn to_socket_addrs(&self) -> io::Result<vec::IntoIter<SocketAddr>> {
                one(SocketAddr::from(*self))
            }
        }
    )*};
}

literal!(
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16)
);

impl sealed::Sealed for str {}
impl ToSocketAddrs for str {
    fn to_socket_addrs(&self) -> io::Result<vec::IntoIter<SocketAddr>> {
        match self.parse::<SocketAddr>() {
            Ok(addr) => one(addr),
            Err(_) => resolve_blocking(self.to_owned()),
        }
    }

    fn lookup(&self) -> io::Result<vec::IntoIter<SocketAddr>> {
        if let Ok(ip) = self.parse::<IpAddr>() {
            return one(SocketAddr::new(ip, 0));
        }
        match self.contains(':') {
            true => self.to_socket_addrs(),
            false => (self, 0).to_socket_addrs(),
        }
    }
}

impl sealed::Sealed for String {}
impl ToSocketAddrs for String {
    fn to_socket_addrs(&self) -> io::Result<vec::IntoIter<SocketAddr>> {
        self.as_str().to_socket_addrs()
    }

    fn lookup(&self) -> io::Result<vec::IntoIter<SocketAddr>> {
        self.as_str().lookup()
    }
}

impl sealed::Sealed for (&str, u16) {}
impl ToSocketAddrs for (&str, u16) {
    fn to_socket_addrs(&self) -> io::Result<vec::IntoIter<SocketAddr>> {
        let (host, port) = *self;
        match host.parse::<IpAddr>() {
            Ok(ip) => one(SocketAddr::new(ip, port)),
            Err(_) => resolve_blocking((host.to_owned(), port)),
        }
    }
}

impl sealed::Sealed for (String, u16) {}
impl ToSocketAddrs for (String, u16) {
    fn to_socket_addrs(&self) -> io::Result<vec::IntoIter<SocketAddr>> {
        (self.0.as_str(), self.1).to_socket_addrs()
    }
}

impl sealed::Sealed for [SocketAddr] {}
impl ToSocketAddrs for [SocketAddr] {
    fn to_socket_addrs(&self) -> io::Result<vec::IntoIter<SocketAddr>> {
        Ok(Vec::from(self).into_iter())
    }
}

impl<T: ToSocketAddrs + ?Sized> sealed::Sealed for &T {}
impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {
    fn to_socket_addrs(&self) -> io::Result<vec::IntoIter<SocketAddr>> {
        (**self).to_socket_addrs()
    }

    fn lookup(&self) -> io::Result<vec::IntoIter<SocketAddr>> {
        (**self).lookup()
    }
}

/// Runs `f` on each resolved address in turn until one succeeds; otherwise returns the last
/// error (or `InvalidInput` if the name resolved to nothing), as std's constructors do.
pub(crate) fn each_addr<A, T>(
    addr: A,
    mut f: impl FnMut(&SocketAddr) -> io::Result<T>,
) -> io::Result<T>
where
    A: ToSocketAddrs,
{
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        match f(&a) {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}
