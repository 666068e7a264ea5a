//! `process::Prefork`: workers with their own `SO_REUSEPORT` listeners, restarts, graceful
//! stop on SIGTERM. Every scenario runs in a re-executed copy of this binary (it forks).

mod util;

use util::isolated;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use grove::net::TcpStream;
use grove::process::Prefork;

/// Replies with the worker's pid.
fn whoami(mut conn: TcpStream, _: SocketAddr) {
    let _ = conn.write_all(format!("{}\n", std::process::id()).as_bytes());
}

/// Connects and reads the serving worker's pid.
fn ask(addr: SocketAddr) -> std::io::Result<u32> {
    let conn = TcpStream::connect(addr)?;
    let mut line = String::new();
    BufReader::new(conn).read_line(&mut line)?;
    line.trim()
        .parse()
        .map_err(|_| std::io::Error::other(format!("bad reply {line:?}")))
}

/// Waits (bounded) until the server answers.
fn until_up(addr: SocketAddr) -> u32 {
    grove::with_timeout(Duration::from_secs(10), || loop {
        match ask(addr) {
            Ok(pid) => return pid,
            Err(_) => grove::sleep(Duration::from_millis(5)),
        }
    })
    .expect("the server starts")
}

fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as i32, 0) == 0 }
}

#[test]
fn workers_share_the_port_and_stop_on_sigterm() {
    isolated("workers_share_the_port_and_stop_on_sigterm", || {
        let server = Prefork::bind("127.0.0.1:0").unwrap().workers(3);
        let addr = server.local_addr();
        let master = server.spawn(whoami).unwrap();
        until_up(addr);
        let mut pids = std::collections::HashSet::new();
        for _ in 0..200 {
            pids.insert(ask(addr).unwrap());
            if pids.len() == 3 {
                break;
            }
        }
        assert!(pids.len() >= 2, "connections went to {pids:?}");
        assert!(!pids.contains(&master.pid()));
        master.terminate().unwrap();
        let status = master.join_timeout(Duration::from_secs(20)).unwrap();
        assert!(status.expect("the master stops").success());
        for pid in pids {
            assert!(!alive(pid), "worker {pid} outlived its master");
        }
        assert!(TcpStream::connect(addr).is_err());
    });
}

#[test]
fn a_killed_worker_is_replaced_and_the_others_keep_serving() {
    isolated(
        "a_killed_worker_is_replaced_and_the_others_keep_serving",
        || {
            let server = Prefork::bind("127.0.0.1:0").unwrap().workers(2);
            let addr = server.local_addr();
            let master = server.spawn(whoami).unwrap();
            until_up(addr);
            let mut old = std::collections::HashSet::new();
            while old.len() < 2 {
                old.insert(ask(addr).unwrap());
            }
            let victim = *old.iter().next().unwrap();
            let killed_at = Instant::now();
            // SAFETY: kill takes only integers; `victim` is a worker of our master.
            unsafe { libc::kill(victim as i32, libc::SIGKILL) };
            while alive(victim) {
                grove::sleep(Duration::from_millis(1));
                assert!(killed_at.elapsed() < Duration::from_secs(5), "not reaped");
            }
            // Every connection from now on is served (no refusal), and a new worker shows up.
            let mut served = 0;
            let replaced_after = loop {
                let pid = ask(addr).expect("no connection is refused while a worker restarts");
                served += 1;
                assert_ne!(pid, victim);
                if !old.contains(&pid) {
                    break killed_at.elapsed();
                }
                assert!(
                    killed_at.elapsed() < Duration::from_secs(5),
                    "never replaced"
                );
            };
            assert!(
                replaced_after < Duration::from_secs(1),
                "replaced after {replaced_after:?}"
            );
            assert!(served >= 1);
            master.terminate().unwrap();
            assert!(master.join().unwrap().success());
        },
    );
}

/// Acknowledges at once, works for a while, then answers.
fn slow(conn: TcpStream, _: SocketAddr) {
    let mut reader = BufReader::new(&conn);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let _ = (&conn).write_all(b"accepted\n");
    grove::sleep(Duration::from_millis(300));
    let _ = (&conn).write_all(b"done\n");
}

#[test]
fn sigterm_during_a_burst_lets_started_handlers_finish() {
    isolated(
        "sigterm_during_a_burst_lets_started_handlers_finish",
        || {
            let server = Prefork::bind("127.0.0.1:0")
                .unwrap()
                .workers(2)
                .grace(Duration::from_secs(10));
            let addr = server.local_addr();
            let master = server.spawn(slow).unwrap();
            grove::with_timeout(Duration::from_secs(10), || {
                while TcpStream::connect(addr).is_err() {
                    grove::sleep(Duration::from_millis(5));
                }
            })
            .unwrap();
            let started = grove::sync::Semaphore::new(0);
            let clients: Vec<_> = (0..40)
                .map(|_| {
                    let started = started.clone();
                    grove::spawn(move || -> std::io::Result<bool> {
                        let conn = TcpStream::connect(addr)?;
                        (&conn).write_all(b"hi\n")?;
                        let mut reader = BufReader::new(&conn);
                        let mut line = String::new();
                        reader.read_line(&mut line)?;
                        if line != "accepted\n" {
                            return Ok(false);
                        }
                        started.release();
                        line.clear();
                        reader.read_line(&mut line)?;
                        assert_eq!(line, "done\n", "a started handler was cut off");
                        Ok(true)
                    })
                })
                .collect();
            for _ in 0..40 {
                started.acquire();
            }
            master.terminate().unwrap();
            let finished = grove::join_all(clients)
                .into_iter()
                .filter(|r| matches!(r, Ok(Ok(true))))
                .count();
            assert_eq!(finished, 40);
            assert!(master.join().unwrap().success());
        },
    );
}
