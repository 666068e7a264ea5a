//! UDP: std's `UdpSocket` whose receives (and, rarely, sends) park the task.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use super::evented::Evented;
use super::resolve::{each_addr, ToSocketAddrs};
use crate::hub::reactor::{Interest, Share};

/// A UDP socket with std's API. Any number of tasks may wait on one socket: each receive takes
/// one whole datagram.
pub struct UdpSocket {
    inner: Evented<std::net::UdpSocket>,
}

super::socket_common!(UdpSocket, std::net::UdpSocket);
super::socket_timeouts!(UdpSocket);

impl UdpSocket {
    /// Binds to `addr` (trying each resolved address in turn).
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        UdpSocket::from_std(each_addr(addr, |a| std::net::UdpSocket::bind(a))?)
    }

    /// Sets the default peer for [`send`](Self::send) and the only one
    /// [`recv`](Self::recv) accepts from.
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(addr, |a| self.inner.get_ref().connect(a))
    }

    /// Receives one datagram and its sender, parking until one arrives.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.read(|s| s.recv_from(buf))
    }

    /// Like [`recv_from`](Self::recv_from) without removing the datagram.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.read(|s| s.peek_from(buf))
    }

    /// Receives one datagram from the connected peer.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.read(|s| s.recv(buf))
    }

    /// Like [`recv`](Self::recv) without removing the datagram.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.read(|s| s.peek(buf))
    }

    /// Sends one datagram to `addr` (the first address it resolves to).
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let target = addr.to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to")
        })?;
        self.write(|s| s.send_to(buf, target))
    }

    /// Sends one datagram to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.write(|s| s.send(buf))
    }

    fn read<R>(&self, op: impl FnMut(&std::net::UdpSocket) -> io::Result<R>) -> io::Result<R> {
        self.inner.io(Interest::Read, Share::Shared, op)
    }

    fn write<R>(&self, op: impl FnMut(&std::net::UdpSocket) -> io::Result<R>) -> io::Result<R> {
        self.inner.io(Interest::Write, Share::Shared, op)
    }

    /// The connected peer.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().local_addr()
    }

    /// A second handle to the same socket (a new fd, registered separately).
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        let clone = UdpSocket::from_std(self.inner.get_ref().try_clone()?)?;
        clone.set_read_timeout(self.read_timeout()?)?;
        clone.set_write_timeout(self.write_timeout()?)?;
        Ok(clone)
    }

    /// Sets `SO_BROADCAST`.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.inner.get_ref().set_broadcast(on)
    }

    /// `SO_BROADCAST`.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.inner.get_ref().broadcast()
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.get_ref().set_ttl(ttl)
    }

    /// `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.get_ref().ttl()
    }

    /// Sets `IP_MULTICAST_LOOP`.
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.inner.get_ref().set_multicast_loop_v4(on)
    }

    /// Joins an IPv4 multicast group on `interface`.
    pub fn join_multicast_v4(&self, group: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.inner.get_ref().join_multicast_v4(group, interface)
    }

    /// Leaves an IPv4 multicast group.
    pub fn leave_multicast_v4(&self, group: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.inner.get_ref().leave_multicast_v4(group, interface)
    }

    /// Joins an IPv6 multicast group on interface index `interface`.
    pub fn join_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.inner.get_ref().join_multicast_v6(group, interface)
    }

    /// Leaves an IPv6 multicast group.
    pub fn leave_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.inner.get_ref().leave_multicast_v6(group, interface)
    }
}
