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
    if let Err(e) = serve() {
        println!("error: {e}");
        std::process::exit(1);
    }
}
