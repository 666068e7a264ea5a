//! Reliability soak: an echo `StreamServer` (this process) against 10,000 client connections
//! churned by a child process (open, 10 round trips, close), with peer resets, half-closed
//! clients and slowloris clients the server's idle timeout must drop. Checks: no unexpected
//! error on either side, RSS stable within 5% after warm-up, the fd count back to its baseline.
//!
//! `cargo run --release --example soak` (30 s), `cargo run --release --example soak -- 300`
//! (the full five minutes). Exits non-zero if a check fails. Needs an open-file limit of
//! about 10,100 per process (each side holds up to 10,000 connections).

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use grove::net::{StreamServer, TcpStream};

const CLIENTS: usize = 10_000;
const ROUND_TRIPS: usize = 10;
const IDLE_TIMEOUT: Duration = Duration::from_secs(2);

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with(field));
    line.and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Errors a server handler expects: clients that reset, vanish or went quiet.
fn expected(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        WouldBlock | ConnectionReset | BrokenPipe | UnexpectedEof
    )
}

/// Raises this process's soft open-file limit as far as the hard limit allows (10,000
/// connections need ~10,100 fds in each process; many machines start at a soft 1024).
fn raise_open_file_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the valid `lim`; only the soft limit changes.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max.min(65536);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn main() {
    env_logger::init();
    raise_open_file_limit();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("client") {
        return client(args[2].parse().unwrap(), args[3].parse().unwrap());
    }
    let secs: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(30);
    let errors = Rc::new(Cell::new(0u64));
    let e = errors.clone();
    let server = StreamServer::bind("127.0.0.1:0", move |mut conn: TcpStream, _| {
        let mut buf = [0u8; 64];
        loop {
            let r = conn.read(&mut buf).and_then(|n| {
                conn.write_all(&buf[..n])?;
                Ok(n)
            });
            match r {
                Ok(0) => return,
                Ok(_) => {}
                Err(err) if expected(&err) => return,
                Err(err) => {
                    eprintln!("server: {err}");
                    e.set(e.get() + 1);
                    return;
                }
            }
        }
    })
    .expect("bind")
    .idle_timeout(IDLE_TIMEOUT);
    server.start();
    grove::sleep(Duration::from_millis(50));
    let (fd0, rss0) = (fds(), status_kib("VmRSS:"));
    let addr = server.local_addr().unwrap().to_string();
    let exe = std::env::current_exe().unwrap();
    let child = grove::spawn(move || {
        grove::threadpool::spawn_blocking(move || {
            std::process::Command::new(exe)
                .args(["client", &addr, &secs.to_string()])
                .output()
        })
    });
    let start = Instant::now();
    let mut samples = Vec::new();
    while start.elapsed() < Duration::from_secs(secs) {
        grove::sleep(Duration::from_secs(1));
        let rss = status_kib("VmRSS:");
        samples.push((start.elapsed().as_secs(), rss));
        println!(
            "{:>4} s: {} connections, {} accepted, RSS {:.1} MiB, {} fds",
            start.elapsed().as_secs(),
            server.connections(),
            server.accepted(),
            rss as f64 / 1024.0,
            fds()
        );
    }
    let out = child.join().unwrap().expect("client process");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.connections() > 0 && Instant::now() < deadline {
        grove::sleep(Duration::from_millis(50));
    }
    // Steady state: after warm-up, before the clients wind down. RSS follows the number of
    // open connections from second to second; "stable" means no drift: the median of the last
    // third of the samples within 5% of the median of the first third.
    let warm = (secs / 5).max(5);
    let steady: Vec<u64> = samples
        .iter()
        .filter(|s| s.0 >= warm && s.0 + 2 <= secs)
        .map(|s| s.1)
        .collect();
    let third = (steady.len() / 3).max(1);
    let median = |v: &[u64]| {
        let mut v = v.to_vec();
        v.sort();
        v.get(v.len() / 2).copied().unwrap_or(rss0)
    };
    let (first, last) = (
        median(&steady[..third.min(steady.len())]),
        median(&steady[steady.len().saturating_sub(third)..]),
    );
    let (lo, hi) = (
        *steady.iter().min().unwrap_or(&rss0),
        *steady.iter().max().unwrap_or(&rss0),
    );
    let drift = (last as f64 - first as f64).abs() / first.max(1) as f64 * 100.0;
    let fd1 = fds();
    let client_errors: u64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            l.strip_prefix("client errors: ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(u64::MAX);
    println!(
        "soak {secs} s: {} connections accepted; server errors {}, client errors {client_errors}; \
         RSS after warm-up {:.1}–{:.1} MiB, median {:.1} → {:.1} MiB ({drift:.1}% drift; \
         baseline {:.1} MiB); fds {fd0} before, {fd1} after",
        server.accepted(),
        errors.get(),
        lo as f64 / 1024.0,
        hi as f64 / 1024.0,
        first as f64 / 1024.0,
        last as f64 / 1024.0,
        rss0 as f64 / 1024.0,
    );
    server.stop();
    let ok = errors.get() == 0 && client_errors == 0 && drift <= 5.0 && fd1 == fd0;
    if !ok || !out.status.success() {
        println!("soak FAILED");
        std::process::exit(1);
    }
    println!("soak passed");
}

/// The child: 10,000 client tasks, each churning connections until `secs` have passed.
fn client(addr: String, secs: u64) {
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let end = Instant::now() + Duration::from_secs(secs) - Duration::from_secs(1);
    let stats = Rc::new([const { Cell::new(0u64) }; 5]); // done, resets, half, quiet, errors
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let stats = stats.clone();
            grove::spawn(move || {
                grove::sleep(Duration::from_micros(200 * i as u64)); // ramp up over 2 s
                let mut round = i;
                while Instant::now() < end {
                    round += 1;
                    let kind = round % 20; // 0: reset, 1: half-close, 2: quiet, else normal
                    match session(addr, kind) {
                        Ok(()) => stats[[3, 1, 2].get(kind).copied().unwrap_or(0)].inc(),
                        Err(e) => {
                            if stats[4].get() < 10 {
                                eprintln!("client: {e}");
                            }
                            stats[4].inc();
                        }
                    }
                }
            })
        })
        .collect();
    grove::join_all(tasks);
    println!(
        "client errors: {} (sessions: {} normal, {} reset, {} half-closed, {} quiet)",
        stats[4].get(),
        stats[0].get(),
        stats[3].get(),
        stats[1].get(),
        stats[2].get()
    );
}

trait Inc {
    fn inc(&self);
}

impl Inc for Cell<u64> {
    fn inc(&self) {
        self.set(self.get() + 1);
    }
}

/// One connection: 10 round trips and close; or reset it, half-close it, or go quiet.
fn session(addr: std::net::SocketAddr, kind: usize) -> io::Result<()> {
    let mut c = TcpStream::connect(addr)?;
    let msg = [7u8; 64];
    let mut buf = [0u8; 64];
    let trips = if kind == 2 { 0 } else { ROUND_TRIPS };
    for _ in 0..trips {
        c.write_all(&msg)?;
        c.read_exact(&mut buf)?;
        if buf != msg {
            return Err(io::Error::other("echo mismatch"));
        }
    }
    match kind {
        0 => reset(&c),
        1 => {
            c.shutdown(std::net::Shutdown::Write)?;
            expect_eof(&mut c, Duration::from_secs(5))
        }
        2 => expect_eof(&mut c, IDLE_TIMEOUT * 5),
        _ => Ok(()),
    }
}

/// Waits for the server to close the connection.
fn expect_eof(c: &mut TcpStream, within: Duration) -> io::Result<()> {
    c.set_read_timeout(Some(within))?;
    match c.read(&mut [0u8; 1]) {
        Ok(0) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(()),
        Ok(_) => Err(io::Error::other("data after half-close")),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("server did not close: {e}"),
        )),
    }
}

/// Closes with a reset (linger 0) instead of a FIN, as a crashing peer would.
fn reset(c: &TcpStream) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd and a correctly sized, live `linger` value.
    let r = unsafe {
        libc::setsockopt(
            c.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
