//! Cooperative TCP: many connections on one thread, closing under a parked task, resets,
//! half-close, timeouts, refused connections, full duplex, and the one-reader rule.

mod util;

use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::rc::Rc;
use std::time::{Duration, Instant};

use grove::net::{TcpListener, TcpStream};

#[test]
fn thousand_connections_are_served_concurrently_by_one_thread() {
    const CONNS: usize = 1000;
    util::raise_nofile(3 * CONNS as u64 + 200);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let live = Rc::new(Cell::new(0usize));
    let peak = Rc::new(Cell::new(0usize));
    let (l2, p2) = (live.clone(), peak.clone());
    let server = grove::spawn(move || {
        let group = grove::sync::Group::new();
        for _ in 0..CONNS {
            let (mut conn, _) = listener.accept().unwrap();
            let (live, peak) = (l2.clone(), p2.clone());
            group.spawn(move || {
                live.set(live.get() + 1);
                peak.set(peak.get().max(live.get()));
                let mut buf = [0u8; 64];
                loop {
                    match conn.read(&mut buf).unwrap() {
                        0 => break,
                        n => conn.write_all(&buf[..n]).unwrap(),
                    }
                }
                live.set(live.get() - 1);
            });
        }
        group.join();
    });
    // Every client connects first, then all exchange messages: the server holds all at once.
    let connected = grove::sync::Semaphore::new(0);
    let go = grove::sync::Event::new();
    let clients: Vec<_> = (0..CONNS)
        .map(|i| {
            let (connected, go) = (connected.clone(), go.clone());
            grove::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                connected.release();
                go.wait();
                for round in 0..3 {
                    let msg = format!("client {i} round {round}");
                    s.write_all(msg.as_bytes()).unwrap();
                    let mut back = vec![0; msg.len()];
                    s.read_exact(&mut back).unwrap();
                    assert_eq!(back, msg.as_bytes());
                }
            })
        })
        .collect();
    for _ in 0..CONNS {
        connected.acquire();
    }
    go.set();
    for r in grove::join_all(clients) {
        r.unwrap();
    }
    server.join().unwrap();
    assert_eq!(peak.get(), CONNS, "all connections were open at once");
}

#[test]
fn task_parked_on_a_socket_closed_by_another_task_gets_an_error() {
    let (client, _server) = util::tcp_pair();
    let client = Rc::new(client);
    let c2 = client.clone();
    let reader = grove::spawn(move || (&*c2).read(&mut [0; 16]));
    grove::yield_now(); // the reader parks: nothing was sent
    client.close();
    let err = reader.join().unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected);
    assert!(err.to_string().contains("closed by another task"), "{err}");
    // Later calls fail the same way.
    assert_eq!(
        (&*client).write(b"x").unwrap_err().kind(),
        ErrorKind::NotConnected
    );
}

#[test]
fn accept_parked_on_a_closed_listener_gets_an_error() {
    let listener = Rc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    let l2 = listener.clone();
    let acceptor = grove::spawn(move || l2.accept().map(|_| ()));
    grove::yield_now();
    listener.close();
    let err = acceptor.join().unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected);
}

#[test]
fn peer_reset_is_an_error_for_the_parked_reader() {
    let (client, server) = util::tcp_pair();
    let reader = grove::spawn(move || {
        let mut server = server;
        server.write_all(b"unread data").unwrap();
        server.read(&mut [0; 16])
    });
    // Wait until the data is here, then close without reading it: the kernel sends RST.
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(client.peek(&mut [0; 1]).unwrap() > 0);
    drop(client);
    let err = reader.join().unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
}

#[test]
fn half_close_gives_eof_and_the_other_direction_keeps_working() {
    let (mut client, mut server) = util::tcp_pair();
    let server = grove::spawn(move || {
        let mut got = Vec::new();
        server.read_to_end(&mut got).unwrap(); // ends at the client's shutdown(Write)
        server.write_all(&got.to_ascii_uppercase()).unwrap();
    });
    client.write_all(b"half closed").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let mut reply = String::new();
    client.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "HALF CLOSED");
    server.join().unwrap();
}

#[test]
fn data_and_fin_arriving_together_are_both_seen() {
    // The short read that takes the data must not make grove wait for an edge that the FIN
    // already delivered.
    for _ in 0..20 {
        let (mut client, server) = util::tcp_pair();
        let writer = grove::spawn(move || {
            let mut server = server;
            server.write_all(b"bye").unwrap();
        });
        writer.join().unwrap(); // server side written and closed before the client reads
        let mut buf = [0; 64];
        assert_eq!(client.read(&mut buf).unwrap(), 3);
        let eof = grove::with_timeout(Duration::from_secs(5), || client.read(&mut buf));
        assert_eq!(eof.expect("EOF must not hang").unwrap(), 0);
    }
    // Same, with the reader already parked when data and FIN arrive (one epoll edge for both).
    for _ in 0..20 {
        let (mut client, mut server) = util::tcp_pair();
        let reader = grove::spawn(move || {
            let mut buf = [0; 64];
            let n = client.read(&mut buf).unwrap();
            let eof = grove::with_timeout(Duration::from_secs(5), || client.read(&mut buf));
            (n, eof.expect("EOF must not hang").unwrap())
        });
        grove::yield_now(); // the reader parks
        server.write_all(b"bye").unwrap();
        drop(server);
        assert_eq!(reader.join().unwrap(), (3, 0));
    }
}

#[test]
fn read_timeout_fires_while_other_tasks_make_progress() {
    let (mut client, _server) = util::tcp_pair();
    let ticks = Rc::new(Cell::new(0u32));
    let t2 = ticks.clone();
    let ticker = grove::spawn(move || loop {
        grove::sleep(Duration::from_millis(5));
        t2.set(t2.get() + 1);
    });
    client
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let start = Instant::now();
    let err = client.read(&mut [0; 8]).unwrap_err();
    let waited = start.elapsed();
    // std's blocking sockets report a read timeout as WouldBlock on Linux; grove does too.
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    assert!(
        waited >= Duration::from_millis(100),
        "fired early: {waited:?}"
    );
    assert!(waited < Duration::from_secs(2), "fired late: {waited:?}");
    assert!(ticks.get() >= 5, "the ticker ran {} times", ticks.get());
    ticker.kill();
    assert_eq!(
        client
            .set_read_timeout(Some(Duration::ZERO))
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn grove_timeout_unwinds_a_parked_read() {
    let (mut client, _server) = util::tcp_pair();
    let start = Instant::now();
    let r = grove::with_timeout(Duration::from_millis(30), || client.read(&mut [0; 8]));
    assert!(r.is_err());
    assert!(start.elapsed() >= Duration::from_millis(30));
    // The socket is still usable afterwards.
    client.set_nonblocking(true).unwrap();
    assert_eq!(
        client.read(&mut [0; 8]).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
}

#[test]
fn connection_refused() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let err = TcpStream::connect(addr).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    let err = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn connect_timeout_gives_up_when_nobody_answers() {
    // A std listener (backlog 128) that never accepts: once its queue is full, the kernel drops
    // further SYNs and a connect cannot complete.
    let full = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = full.local_addr().unwrap();
    let timeout = Duration::from_millis(100);
    let mut held = Vec::new();
    let mut timed_out = None;
    for _ in 0..400 {
        let start = Instant::now();
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => held.push(s),
            Err(e) => {
                timed_out = Some((e, start.elapsed()));
                break;
            }
        }
    }
    let (err, waited) = timed_out.expect("the accept queue never filled");
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(waited >= timeout, "gave up early: {waited:?}");
    assert!(waited < Duration::from_secs(3), "gave up late: {waited:?}");
    assert_eq!(
        TcpStream::connect_timeout(&addr, Duration::ZERO)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn one_mib_write_all_with_a_concurrent_reader_on_the_same_socket() {
    const LEN: usize = 1 << 20;
    let pattern = |i: usize| (i % 251) as u8;
    let (a, b) = util::tcp_pair();
    let a = Rc::new(a);
    // Both ends send 1 MiB before reading anything they did not need to: without full duplex
    // on `a` (one task writing while another reads) this would deadlock.
    let peer = grove::spawn(move || {
        let b = Rc::new(b);
        let b2 = b.clone();
        let w = grove::spawn(move || {
            let data: Vec<u8> = (0..LEN).map(pattern).collect();
            (&*b2).write_all(&data).unwrap();
        });
        let mut got = vec![0; LEN];
        (&*b).read_exact(&mut got).unwrap();
        w.join().unwrap();
        got
    });
    let a2 = a.clone();
    let writer = grove::spawn(move || {
        let data: Vec<u8> = (0..LEN).map(|i| pattern(i + 7)).collect();
        (&*a2).write_all(&data).unwrap();
    });
    let a3 = a.clone();
    let reader = grove::spawn(move || {
        let mut got = vec![0; LEN];
        (&*a3).read_exact(&mut got).unwrap();
        got
    });
    let from_b = reader.join().unwrap();
    writer.join().unwrap();
    let at_b = peer.join().unwrap();
    assert!(from_b.iter().enumerate().all(|(i, &x)| x == pattern(i)));
    assert!(at_b.iter().enumerate().all(|(i, &x)| x == pattern(i + 7)));
}

#[test]
fn a_second_concurrent_reader_gets_resource_busy_and_no_data_is_lost() {
    let (client, mut server) = util::tcp_pair();
    let client = Rc::new(client);
    let c2 = client.clone();
    let first = grove::spawn(move || {
        let mut buf = [0; 16];
        let n = (&*c2).read(&mut buf).unwrap();
        buf[..n].to_vec()
    });
    grove::yield_now(); // the first reader is parked now
    let err = (&*client).read(&mut [0; 16]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ResourceBusy);
    assert!(err.to_string().contains("already reading"), "{err}");
    server.write_all(b"for the first").unwrap();
    assert_eq!(first.join().unwrap(), b"for the first");
    // Once the first reader is done, another may read.
    server.write_all(b"next").unwrap();
    let mut buf = [0; 4];
    (&*client).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"next");
}

#[test]
fn sockets_work_from_plain_main_and_convert_to_and_from_std() {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listener = TcpListener::from_std(std_listener).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = grove::spawn(move || {
        let (conn, peer) = listener.accept().unwrap();
        assert_eq!(conn.peer_addr().unwrap(), peer);
        let mut std_conn = conn.into_std().unwrap(); // blocking again
        std_conn.write_all(b"from std").unwrap();
    });
    let mut client = TcpStream::connect(("127.0.0.1", addr.port())).unwrap();
    client.set_nodelay(true).unwrap();
    assert!(client.nodelay().unwrap());
    let mut s = String::new();
    client.read_to_string(&mut s).unwrap();
    assert_eq!(s, "from std");
    server.join().unwrap();
}

#[test]
fn try_clone_gives_an_independent_handle() {
    let (client, mut server) = util::tcp_pair();
    let mut clone = client.try_clone().unwrap();
    drop(client); // the connection stays open through the clone
    clone.write_all(b"still here").unwrap();
    let mut buf = [0; 10];
    server.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"still here");
}

#[test]
fn names_resolve_without_blocking_the_hub() {
    let ticks = Rc::new(Cell::new(0u32));
    let t2 = ticks.clone();
    let ticker = grove::spawn(move || loop {
        t2.set(t2.get() + 1);
        grove::yield_now();
    });
    for _ in 0..10 {
        let addrs: Vec<_> = grove::net::lookup_host("localhost").unwrap().collect();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }
    let addrs: Vec<_> = grove::net::lookup_host("localhost:8080").unwrap().collect();
    assert!(addrs.iter().all(|a| a.port() == 8080));
    // Each lookup parked main while a worker thread resolved, so the ticker ran meanwhile.
    assert!(ticks.get() >= 10, "ticker ran {} times", ticks.get());
    ticker.kill();
    let err = grove::net::lookup_host("no-such-host.invalid:80").unwrap_err();
    assert_ne!(err.kind(), ErrorKind::WouldBlock);
    // connect resolves names the same way.
    let listener = TcpListener::bind("localhost:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = grove::spawn(move || listener.accept().map(|_| ()));
    TcpStream::connect(("localhost", port)).unwrap();
    acceptor.join().unwrap().unwrap();
}
