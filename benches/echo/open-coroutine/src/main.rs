//! The `std-oc` echo server: plain `std::net` code (the `std-monkey` server's shape), one
//! open-coroutine task per connection, open-coroutine's hooks making the blocking calls
//! cooperative. One event loop (`Config::single()`); the accept loop runs in `main`, as
//! open-coroutine's own socket example does.
//!
//! Protocol of the echo bench: pin to CPU 0 (argument 1) before the runtime starts, print
//! `listening PORT` (or `error: ...`) as the first line, serve until killed.

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::os::fd::AsRawFd;

const SERVER_BUF: usize = 1024;

fn echo(mut stream: std::net::TcpStream) {
    let mut buf = [0u8; SERVER_BUF];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

fn serve() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    // SAFETY: listen takes no pointers; the fd is the listener's.
    if unsafe { libc::listen(listener.as_raw_fd(), 16384) } < 0 {
        return Err(io::Error::last_os_error());
    }
    println!("listening {}", listener.local_addr()?.port());
    io::stdout().flush()?;
    silence_stdout()?;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nodelay(true)?;
                drop(open_coroutine::task!(echo, stream));
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// open-coroutine 0.7 builds its hook library with its default features, which include `log`:
/// it logs every hooked call at INFO to stdout, and nothing turns that off at run time. The
/// bench reads only the `listening` line, so the rest goes to /dev/null (each line is still a
/// `write` the server makes).
fn silence_stdout() -> io::Result<()> {
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    // SAFETY: dup2 takes two open fds and no pointers.
    if unsafe { libc::dup2(null.as_raw_fd(), 1) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `echo-open-coroutine CPU clients ADDR N`: N open-coroutine tasks, each a plain std::net
/// client doing 10 verified 64-byte round trips against the echo server at ADDR; reports what
/// happened within 20 s (the "100 std::net clients" experiment).
fn clients() {
    let addr: std::net::SocketAddr = std::env::args().nth(3).unwrap().parse().unwrap();
    let n: usize = std::env::args().nth(4).map_or(100, |n| n.parse().unwrap());
    let start = std::time::Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|i| {
            open_coroutine::task!(
                move |()| -> io::Result<()> {
                    let mut conn = std::net::TcpStream::connect(addr)?;
                    let msg = [i as u8; 64];
                    let mut back = [0u8; 64];
                    for _ in 0..10 {
                        conn.write_all(&msg)?;
                        conn.read_exact(&mut back)?;
                        assert_eq!(back, msg);
                    }
                    Ok(())
                },
                ()
            )
        })
        .collect();
    let (mut ok, mut failed) = (0, 0);
    for h in handles {
        let left = std::time::Duration::from_secs(20).saturating_sub(start.elapsed());
        match h.timeout_join(left) {
            Ok(Some(Ok(()))) => ok += 1,
            Ok(other) => {
                failed += 1;
                eprintln!("client failed: {other:?}");
            }
            Err(e) => {
                failed += 1;
                eprintln!("client join: {e}");
            }
        }
    }
    eprintln!("{ok} ok, {failed} failed in {:?}", start.elapsed());
}

fn main() {
    let cpu: usize = std::env::args()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    // SAFETY: cpu_set_t is plain data, valid all-zero; the pointers outlive the calls.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
    open_coroutine::init(open_coroutine::Config::single());
    if std::env::args().nth(2).as_deref() == Some("clients") {
        return clients();
    }
    if let Err(e) = serve() {
        println!("error: {e}");
        std::process::exit(1);
    }
}
