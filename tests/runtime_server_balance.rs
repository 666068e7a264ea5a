//! `RuntimeServer`: one `SO_REUSEPORT` listener per hub. 10,000 short-lived connections over 8
//! hubs (more hubs than cores) spread so that the busiest hub gets at most 1.10x the mean; the
//! server stops cleanly and with the runtime.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use grove::net::{RuntimeServer, TcpStream};
use grove::Runtime;

fn one_byte_echo(mut conn: TcpStream, _peer: SocketAddr) {
    let mut b = [0u8; 1];
    if conn.read_exact(&mut b).is_ok() {
        let _ = conn.write_all(&b);
    }
}

#[test]
fn ten_thousand_short_connections_spread_evenly_over_eight_hubs() {
    const HUBS: usize = 8;
    const CONNS: usize = 10_000;
    const CLIENTS: usize = 4;
    let rt = Runtime::builder().hubs(HUBS).build().unwrap();
    let server = RuntimeServer::bind(&rt, "127.0.0.1:0", one_byte_echo).unwrap();
    let addr = server.local_addr();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            std::thread::spawn(move || {
                for i in 0..CONNS / CLIENTS {
                    let mut s = std::net::TcpStream::connect(addr).expect("connect");
                    let byte = (c * 31 + i) as u8;
                    s.write_all(&[byte]).unwrap();
                    let mut back = [0u8; 1];
                    s.read_exact(&mut back).unwrap();
                    assert_eq!(back[0], byte);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let per_hub = server.accepted_per_hub();
    assert_eq!(per_hub.iter().sum::<u64>(), CONNS as u64, "{per_hub:?}");
    let mean = CONNS as f64 / HUBS as f64;
    let max = *per_hub.iter().max().unwrap() as f64;
    eprintln!(
        "accepted per hub: {per_hub:?}, busiest {:.3}x the mean",
        max / mean
    );
    assert!(
        max <= 1.10 * mean,
        "busiest hub {max} > 1.10 x mean {mean}: {per_hub:?}"
    );
    server.stop();
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "stopped: nothing listens"
    );
    rt.shutdown(Duration::from_secs(1));
}

#[test]
fn runtime_shutdown_stops_accepting_and_lets_a_running_handler_finish() {
    let rt = Runtime::builder().hubs(2).build().unwrap();
    let server = RuntimeServer::bind(&rt, "127.0.0.1:0", |mut conn: TcpStream, _| {
        let mut b = [0u8; 1];
        if conn.read_exact(&mut b).is_ok() {
            // A handler that is mid-request when shutdown starts finishes it.
            grove::sleep(Duration::from_millis(50));
            let _ = conn.write_all(&b);
        }
    })
    .unwrap();
    let addr = server.local_addr();
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.write_all(b"x").unwrap();
    // Wait until a hub accepted it.
    while server.accepted() == 0 {
        std::thread::yield_now();
    }
    let closer = std::thread::spawn(move || rt.shutdown(Duration::from_secs(2)));
    let mut b = [0u8; 1];
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"x");
    closer.join().unwrap();
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "nothing listens after shutdown"
    );
}

#[test]
fn a_per_hub_connection_limit_holds_the_next_client_in_the_backlog() {
    let rt = Runtime::builder().hubs(1).build().unwrap();
    let (started_tx, started_rx) = grove::sync::mpsc::channel::<()>();
    let server = RuntimeServer::builder()
        .max_connections(1)
        .stop_timeout(Duration::from_millis(100))
        .bind(&rt, "127.0.0.1:0", move |mut conn: TcpStream, _| {
            started_tx.send(()).unwrap();
            let mut b = [0u8; 1];
            let _ = conn.read_exact(&mut b);
            let _ = conn.write_all(&b);
        })
        .unwrap();
    let addr = server.local_addr();
    let mut first = std::net::TcpStream::connect(addr).unwrap();
    started_rx.recv().unwrap();
    let mut second = std::net::TcpStream::connect(addr).unwrap(); // waits in the backlog
    second.write_all(b"2").unwrap();
    assert_eq!(
        started_rx.recv_timeout(Duration::from_millis(100)),
        Err(grove::sync::mpsc::RecvTimeoutError::Timeout),
        "a second handler started past the limit"
    );
    assert_eq!(server.accepted(), 1);
    first.write_all(b"1").unwrap();
    let mut b = [0u8; 1];
    first.read_exact(&mut b).unwrap();
    started_rx.recv().unwrap(); // the first finished: the second is accepted
    second.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"2");
    server.stop();
}
