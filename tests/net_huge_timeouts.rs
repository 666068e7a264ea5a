//! A timeout too large to add to the clock (`Duration::MAX`, which std's sockets accept) means
//! "forever" in every I/O API: the call waits until it can complete, and never panics with
//! "overflow when adding duration to instant". Each test parks the call (the deadline is
//! computed only when a call parks) and lets another task complete it.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::time::Duration;

use grove::net::{StreamServer, TcpListener, TcpStream, UdpSocket, UnixStream};

const FOREVER: Option<Duration> = Some(Duration::MAX);

/// Bytes enough to fill a socket's send and receive buffers, so a writer parks.
const BIG: usize = 8 << 20;

#[test]
fn tcp_read_timeout_max_waits_for_the_data() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut client = TcpStream::connect(addr).unwrap();
    let (server, _) = listener.accept().unwrap();
    client.set_read_timeout(FOREVER).unwrap();
    assert_eq!(client.read_timeout().unwrap(), FOREVER);
    let writer = grove::spawn(move || (&server).write_all(b"late").map(|()| server));
    let mut buf = [0; 4];
    client.read_exact(&mut buf).unwrap(); // parks first: the writer runs only then
    assert_eq!(&buf, b"late");
    writer.join().unwrap().unwrap();
}

#[test]
fn tcp_write_timeout_max_waits_for_the_reader() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut client = TcpStream::connect(addr).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    client.set_write_timeout(FOREVER).unwrap();
    assert_eq!(client.write_timeout().unwrap(), FOREVER);
    let reader = grove::spawn(move || {
        let mut got = Vec::new();
        server.read_to_end(&mut got).map(|_| got.len())
    });
    client.write_all(&vec![7; BIG]).unwrap(); // fills the buffers and parks
    drop(client);
    assert_eq!(reader.join().unwrap().unwrap(), BIG);
}

#[test]
fn tcp_connect_timeout_max_connects() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = grove::spawn(move || listener.accept().map(|(_, peer)| peer));
    let stream = TcpStream::connect_timeout(&addr, Duration::MAX).unwrap();
    assert_eq!(
        acceptor.join().unwrap().unwrap(),
        stream.local_addr().unwrap()
    );
}

#[test]
fn udp_read_timeout_max_waits_for_a_datagram() {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    socket.set_read_timeout(FOREVER).unwrap();
    socket.set_write_timeout(FOREVER).unwrap();
    assert_eq!(socket.read_timeout().unwrap(), FOREVER);
    let sender = grove::spawn(move || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.send_to(b"ping", addr).unwrap();
    });
    let mut buf = [0; 16];
    let (n, _) = socket.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping");
    sender.join().unwrap();
}

#[test]
fn unix_read_and_write_timeouts_max_wait() {
    let (mut a, mut b) = UnixStream::pair().unwrap();
    a.set_read_timeout(FOREVER).unwrap();
    a.set_write_timeout(FOREVER).unwrap();
    assert_eq!(a.write_timeout().unwrap(), FOREVER);
    let peer = grove::spawn(move || {
        let mut got = vec![0; BIG];
        b.read_exact(&mut got).unwrap();
        b.write_all(b"done").unwrap();
        b
    });
    a.write_all(&vec![1; BIG]).unwrap(); // parks until the peer reads
    let mut reply = [0; 4];
    a.read_exact(&mut reply).unwrap(); // parks until the peer answers
    assert_eq!(&reply, b"done");
    peer.join().unwrap();
}

#[test]
fn select_with_timeout_max_waits_for_readiness() {
    let (a, b) = UnixStream::pair().unwrap();
    let writer = grove::spawn(move || (&b).write_all(b"x").map(|()| b));
    let (r, w) = grove::select::select(&[a.as_raw_fd()], &[], FOREVER).unwrap();
    assert_eq!(r, [a.as_raw_fd()]);
    assert!(w.is_empty());
    writer.join().unwrap().unwrap();
}

#[test]
fn wait_readable_with_timeout_max_waits() {
    let (a, b) = UnixStream::pair().unwrap();
    let writer = grove::spawn(move || (&b).write_all(b"x").map(|()| b));
    grove::io::wait_readable(a.as_raw_fd(), FOREVER).unwrap();
    writer.join().unwrap().unwrap();
}

#[test]
fn wait_writable_with_timeout_max_waits() {
    let (a, mut b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    // Fill a's send buffer (the peer's receive queue) until it is not writable.
    let chunk = [0u8; 65536];
    let mut sent = 0;
    loop {
        match (&a).write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    let reader = grove::spawn(move || {
        let mut got = vec![0; sent];
        b.read_exact(&mut got).map(|()| b)
    });
    grove::io::wait_writable(a.as_raw_fd(), FOREVER).unwrap();
    reader.join().unwrap().unwrap();
}

#[test]
fn stream_server_stop_timeout_max_waits_for_handlers() {
    let server = StreamServer::bind("127.0.0.1:0", |mut conn: TcpStream, _| {
        let mut buf = [0; 1];
        let _ = conn.read(&mut buf); // until the client sends or hangs up
        let _ = conn.write_all(b"bye");
    })
    .unwrap()
    .stop_timeout(Duration::MAX);
    server.start();
    let mut client = TcpStream::connect(server.local_addr().unwrap()).unwrap();
    while server.connections() < 1 {
        grove::yield_now();
    }
    let c = grove::spawn(move || {
        client.write_all(b"q").unwrap();
        let mut reply = String::new();
        client.read_to_string(&mut reply).map(|_| reply)
    });
    server.stop(); // waits for the handler (however long), never kills it
    assert_eq!(server.connections(), 0);
    assert_eq!(c.join().unwrap().unwrap(), "bye");
}
