//! `StreamServer`: a handler task per connection, the connection limit, graceful stop, and
//! accept-error backoff when the process runs out of file descriptors.

mod util;

use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use grove::net::{StreamServer, TcpStream};
use grove::sync::{Event, Semaphore};

fn echo(mut conn: TcpStream, _peer: std::net::SocketAddr) {
    let mut buf = [0; 256];
    while let Ok(n @ 1..) = conn.read(&mut buf) {
        if conn.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

fn round_trip(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).unwrap();
    let mut back = vec![0; msg.len()];
    s.read_exact(&mut back).unwrap();
    back
}

#[test]
fn each_connection_gets_a_handler_and_is_closed_when_it_returns() {
    let server = StreamServer::bind("127.0.0.1:0", |mut conn: TcpStream, _| {
        conn.write_all(b"hello and goodbye").unwrap();
    })
    .unwrap();
    server.start();
    for _ in 0..3 {
        let mut c = TcpStream::connect(server.local_addr().unwrap()).unwrap();
        let mut s = String::new();
        c.read_to_string(&mut s).unwrap(); // EOF: the server closed after the handler
        assert_eq!(s, "hello and goodbye");
    }
    assert_eq!(server.accepted(), 3);
    server.stop();
    assert!(server.is_stopped());
}

#[test]
fn no_accept_while_the_connection_limit_is_reached() {
    let started = Semaphore::new(0);
    let release = Event::new();
    let (s2, r2) = (started.clone(), release.clone());
    let server = StreamServer::bind("127.0.0.1:0", move |mut conn: TcpStream, _| {
        s2.release();
        r2.wait();
        conn.write_all(b"done").unwrap();
    })
    .unwrap()
    .max_connections(2);
    server.start();
    let addr = server.local_addr().unwrap();
    let clients: Vec<_> = (0..3)
        .map(|_| {
            grove::spawn(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                let mut s = String::new();
                c.read_to_string(&mut s).unwrap();
                s
            })
        })
        .collect();
    started.acquire();
    started.acquire();
    // Two handlers run; the third client is connected (kernel backlog) but not accepted.
    let third = grove::with_timeout(Duration::from_millis(100), || started.acquire());
    assert!(third.is_err(), "a third handler started past the limit");
    assert_eq!(server.accepted(), 2);
    assert_eq!(server.connections(), 2);
    release.set(); // the two finish; the third is accepted and served
    started.acquire();
    for c in grove::join_all(clients) {
        assert_eq!(c.unwrap(), "done");
    }
    assert_eq!(server.accepted(), 3);
    server.stop();
}

#[test]
fn stop_lets_handlers_finish_then_kills_stragglers_and_closes_the_listener() {
    let finished = Rc::new(Cell::new(0));
    let f2 = finished.clone();
    let server = StreamServer::bind("127.0.0.1:0", move |conn: TcpStream, _| {
        let mut buf = [0; 1];
        let _ = (&conn).read(&mut buf); // waits for the client's byte (or its EOF)
        if buf[0] == b'q' {
            f2.set(f2.get() + 1);
        } else {
            grove::sleep(Duration::from_secs(60)); // a straggler
        }
    })
    .unwrap()
    .stop_timeout(Duration::from_millis(200));
    server.start();
    let addr = server.local_addr().unwrap();
    let mut quick = TcpStream::connect(addr).unwrap();
    let mut slow = TcpStream::connect(addr).unwrap();
    while server.connections() < 2 {
        grove::yield_now();
    }
    slow.write_all(b"s").unwrap();
    let q = grove::spawn(move || {
        grove::sleep(Duration::from_millis(20));
        quick.write_all(b"q").unwrap();
        quick
    });
    let start = Instant::now();
    server.stop();
    let took = start.elapsed();
    assert_eq!(finished.get(), 1, "the quick handler was allowed to finish");
    assert!(
        took >= Duration::from_millis(200),
        "stragglers killed early: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "stop hung: {took:?}");
    assert_eq!(server.connections(), 0);
    let mut buf = [0; 1];
    assert_eq!(
        slow.read(&mut buf).unwrap(),
        0,
        "the killed handler's connection closed"
    );
    q.join().unwrap();
    let err = TcpStream::connect(addr).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn a_handler_may_stop_its_own_server() {
    let server = StreamServer::bind("127.0.0.1:0", |_conn: TcpStream, _| {}).unwrap();
    let handle = server.clone();
    let stopper =
        StreamServer::bind("127.0.0.1:0", move |_conn: TcpStream, _| handle.stop()).unwrap();
    server.start();
    stopper.start();
    let _c = TcpStream::connect(stopper.local_addr().unwrap()).unwrap();
    server.serve_forever(); // returns once the handler stopped it
    assert!(server.is_stopped());
    stopper.stop();
}

#[test]
fn accept_errors_back_off_and_the_server_recovers() {
    if let Some(scenario) = util::child_scenario() {
        assert_eq!(scenario, "emfile");
        emfile_child();
        return;
    }
    let out = util::run_child("accept_errors_back_off_and_the_server_recovers", "emfile");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("recovered"), "{stdout}");
}

/// In a child process: run out of fds, check the acceptor backs off instead of spinning,
/// free the fds, check the waiting client is served.
fn emfile_child() {
    util::capture_logs();
    log::set_max_level(log::LevelFilter::Warn);
    let server = StreamServer::bind("127.0.0.1:0", echo).unwrap();
    server.start();
    let addr = server.local_addr().unwrap();
    let mut warm = TcpStream::connect(addr).unwrap();
    assert_eq!(round_trip(&mut warm, b"warm"), b"warm");
    // Leave room for exactly one more fd: the client below. The server's accept then fails.
    let open_now = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    let cpu_before = util::cpu_time();
    util::set_soft_nofile(open_now + 1);
    let mut hog = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        hog.push(f);
    }
    drop(hog.pop());
    let mut client = TcpStream::connect(addr).unwrap();
    grove::sleep(Duration::from_millis(300)); // the acceptor fails, backs off, retries
    let warnings = util::logged_count("accept failed");
    assert!(
        (1..=12).contains(&warnings),
        "{warnings} accept warnings in 300 ms"
    );
    drop(hog); // no park since the sleep: the server has not run yet
    let cpu = util::cpu_time() - cpu_before;
    assert!(
        cpu < Duration::from_millis(150),
        "spinning: {cpu:?} CPU in 300 ms"
    );
    util::set_soft_nofile(4096);
    let back = grove::with_timeout(Duration::from_secs(5), || round_trip(&mut client, b"again"))
        .expect("the server did not recover");
    assert_eq!(back, b"again");
    println!("recovered after {warnings} backoffs");
    server.stop();
}
