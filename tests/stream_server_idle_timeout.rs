//! `StreamServer::idle_timeout` drops clients that go quiet (slowloris) and keeps active ones.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use grove::net::{StreamServer, TcpStream};

fn echo(mut conn: TcpStream, _: std::net::SocketAddr) {
    let mut buf = [0u8; 64];
    while let Ok(n @ 1..) = conn.read(&mut buf) {
        if conn.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}

#[test]
fn a_quiet_client_is_dropped_and_a_busy_one_is_kept() {
    let server = StreamServer::bind("127.0.0.1:0", echo)
        .unwrap()
        .idle_timeout(Duration::from_millis(100));
    server.start();
    let addr = server.local_addr().unwrap();
    let quiet = grove::spawn(move || {
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"x").unwrap();
        let mut b = [0u8; 1];
        c.read_exact(&mut b).unwrap();
        // Now say nothing: the server should hang up.
        let start = Instant::now();
        let n = c.read(&mut b).unwrap_or(0);
        (n, start.elapsed())
    });
    let busy = grove::spawn(move || {
        let mut c = TcpStream::connect(addr).unwrap();
        let mut b = [0u8; 1];
        for _ in 0..15 {
            c.write_all(b"y").unwrap();
            c.read_exact(&mut b).unwrap();
            grove::sleep(Duration::from_millis(30));
        }
        true
    });
    let (n, waited) = quiet.join().unwrap();
    assert_eq!(n, 0, "the server closed the quiet connection");
    assert!(
        waited >= Duration::from_millis(90),
        "not before the timeout: {waited:?}"
    );
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    assert!(
        busy.join().unwrap(),
        "the busy client was served throughout"
    );
    server.stop();
}

#[test]
#[should_panic(expected = "must not be zero")]
fn a_zero_idle_timeout_is_refused() {
    let server = StreamServer::bind("127.0.0.1:0", echo).unwrap();
    server.set_idle_timeout(Some(Duration::ZERO));
}
