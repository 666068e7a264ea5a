//! Cooperative UDP and Unix-domain sockets.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use grove::net::{UdpSocket, UnixListener, UnixStream};

#[test]
fn udp_round_trips_between_tasks() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let echo = grove::spawn(move || {
        let mut buf = [0; 1500];
        for _ in 0..100 {
            let (n, from) = server.recv_from(&mut buf).unwrap();
            server.send_to(&buf[..n], from).unwrap();
        }
    });
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.connect(addr).unwrap();
    for i in 0..100u32 {
        client.send(&i.to_be_bytes()).unwrap();
        let mut buf = [0; 4];
        assert_eq!(client.recv(&mut buf).unwrap(), 4);
        assert_eq!(u32::from_be_bytes(buf), i);
    }
    echo.join().unwrap();
}

#[test]
fn udp_receive_times_out_and_many_receivers_share_a_socket() {
    let sock = std::rc::Rc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let start = Instant::now();
    let err = sock.recv_from(&mut [0; 8]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    assert!(start.elapsed() >= Duration::from_millis(50));
    sock.set_read_timeout(None).unwrap();
    // Three tasks wait on one socket; three datagrams reach one each.
    let receivers: Vec<_> = (0..3)
        .map(|_| {
            let s = sock.clone();
            grove::spawn(move || {
                let mut buf = [0; 8];
                let (n, _) = s.recv_from(&mut buf).unwrap();
                buf[0..n].to_vec()
            })
        })
        .collect();
    grove::yield_now();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for m in [b"one", b"two", b"six"] {
        sender.send_to(m, sock.local_addr().unwrap()).unwrap();
    }
    let mut got: Vec<Vec<u8>> = grove::join_all(receivers)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    got.sort();
    assert_eq!(got, [b"one".to_vec(), b"six".to_vec(), b"two".to_vec()]);
}

fn temp_path(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("grove-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

#[test]
fn unix_listener_serves_several_clients() {
    let path = temp_path("echo.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let server = grove::spawn(move || {
        let group = grove::sync::Group::new();
        for conn in listener.incoming().take(5) {
            let mut conn = conn.unwrap();
            group.spawn(move || {
                let mut buf = Vec::new();
                conn.read_to_end(&mut buf).unwrap();
                conn.write_all(&buf).unwrap();
            });
        }
        group.join();
    });
    let clients: Vec<_> = (0..5)
        .map(|i| {
            let path = path.clone();
            grove::spawn(move || {
                let mut s = UnixStream::connect(&path).unwrap();
                let msg = format!("hello from {i}");
                s.write_all(msg.as_bytes()).unwrap();
                s.shutdown(std::net::Shutdown::Write).unwrap();
                let mut back = String::new();
                s.read_to_string(&mut back).unwrap();
                assert_eq!(back, msg);
            })
        })
        .collect();
    for c in grove::join_all(clients) {
        c.unwrap();
    }
    server.join().unwrap();
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn unix_pair_timeouts_and_errors() {
    let (mut a, b) = UnixStream::pair().unwrap();
    let writer = grove::spawn(move || {
        let mut b = b;
        grove::sleep(Duration::from_millis(20));
        b.write_all(b"late").unwrap();
    });
    a.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0; 4];
    a.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"late");
    writer.join().unwrap();
    let err = UnixStream::connect(temp_path("nobody-here.sock")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let too_long = "x".repeat(200);
    let err = UnixStream::connect(too_long).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}
