//! The echo servers, one per runtime, all with the same shape: bind 127.0.0.1:0, announce the
//! port on stdout, accept forever, one task (or thread) per connection with TCP_NODELAY set,
//! read into a 1 KiB buffer and write what came back until the peer closes.
//!
//! Each runs in its own process (`echo server KIND`), pinned to CPU 0 before it starts, so
//! every thread a runtime creates inherits the pin.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};

/// Each server reads into a buffer of this size, like the seeds' `recv(1024)`. A buffer larger
/// than a message matters: a read that returns less than the buffer tells a runtime the socket is
/// drained, so it need not try again only to get EAGAIN. A 64-byte buffer for 64-byte messages
/// would hide that and cost every runtime an extra read per round trip.
pub const SERVER_BUF: usize = 1024;

/// The listen backlog asked for (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: libc::c_int = 16384;

/// Runs the server `kind` until the process is killed.
pub fn run(kind: &str) -> io::Result<()> {
    match kind {
        "grove" => crate::grove_server::run(),
        "grove-watchdog" => {
            grove::debug::watchdog(Some(grove::debug::DEFAULT_WATCHDOG_THRESHOLD))?;
            crate::grove_server::run()
        }
        "tokio" => tokio_server(),
        "may" => may_server(),
        "threads" => threads_server(),
        "grove-mt" | "tokio-mt" | "may-mt" => crate::mt_servers::run(kind),
        "std-monkey" => std_monkey_server(),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown server kind {kind:?}"),
        )),
    }
}

/// Tells the parent where to connect: the first line on stdout is `listening PORT`.
pub fn announce(port: u16) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "listening {port}");
    let _ = out.flush();
}

/// Raises the backlog of a listening socket: `listen` on a socket that already listens only
/// changes its backlog (std and may bind with 128, too few for thousands of connects).
pub fn raise_backlog(fd: RawFd) -> io::Result<()> {
    // SAFETY: listen takes no pointers; `fd` is a socket the caller owns.
    if unsafe { libc::listen(fd, BACKLOG) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether an accept error should stop the server (a connection aborted before it was
/// accepted, or an interrupted call, should not).
pub fn accept_error_is_fatal(e: &io::Error) -> bool {
    !matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
    )
}

/// The blocking accept loop of the may, threads and grove servers: accepts forever, skipping
/// errors that concern one connection only, and hands each new stream to `start`.
pub fn accept_each<S>(
    mut accept: impl FnMut() -> io::Result<S>,
    mut start: impl FnMut(S) -> io::Result<()>,
) -> io::Result<()> {
    loop {
        match accept() {
            Ok(stream) => start(stream)?,
            Err(e) if !accept_error_is_fatal(&e) => {}
            Err(e) => return Err(e),
        }
    }
}

/// The blocking-style echo loop shared by the may, threads and grove servers.
pub fn echo<S: Read + Write>(mut stream: S) {
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

/// tokio: a current_thread runtime, one task per connection.
fn tokio_server() -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        raise_backlog(listener.as_raw_fd())?;
        announce(listener.local_addr()?.port());
        loop {
            let mut stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) if !accept_error_is_fatal(&e) => continue,
                Err(e) => return Err(e),
            };
            stream.set_nodelay(true)?;
            tokio::spawn(async move {
                let mut buf = [0u8; SERVER_BUF];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    })
}

/// may: one worker, the accept loop itself a coroutine, one coroutine per connection.
///
/// `may::go!` wraps may's `unsafe` spawn. Its hazard (a coroutine moving between worker threads
/// while it holds thread-local state) cannot arise here: there is a single worker and the
/// coroutines touch no thread-locals of their own. may is only a peer to measure against.
fn may_server() -> io::Result<()> {
    may::config().set_workers(1);
    let acceptor = may::go!(|| -> io::Result<()> {
        let listener = may::net::TcpListener::bind("127.0.0.1:0")?;
        raise_backlog(listener.as_raw_fd())?;
        announce(listener.local_addr()?.port());
        accept_each(
            || listener.accept().map(|(stream, _)| stream),
            |stream| {
                stream.set_nodelay(true)?;
                may::go!(move || echo(stream));
                Ok(())
            },
        )
    });
    acceptor
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the may accept coroutine panicked")))
}

/// The socketserver model: std blocking sockets, one OS thread (64 KiB stack) per connection.
fn threads_server() -> io::Result<()> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    raise_backlog(listener.as_raw_fd())?;
    announce(listener.local_addr()?.port());
    accept_each(
        || listener.accept().map(|(stream, _)| stream),
        |stream| {
            stream.set_nodelay(true)?;
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || echo(stream))?;
            Ok(())
        },
    )
}

/// Plain std blocking sockets made cooperative by `grove::monkey::patch_all()`: the threads
/// server's code with `grove::spawn` in place of `thread::spawn`, one OS thread in all (the
/// accept loop runs in `main` on the implicit hub).
#[cfg(feature = "monkey")]
fn std_monkey_server() -> io::Result<()> {
    grove::monkey::patch_all();
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    raise_backlog(listener.as_raw_fd())?;
    announce(listener.local_addr()?.port());
    accept_each(
        || listener.accept().map(|(stream, _)| stream),
        |stream| {
            stream.set_nodelay(true)?;
            drop(grove::spawn(move || echo(stream)));
            Ok(())
        },
    )
}

#[cfg(not(feature = "monkey"))]
fn std_monkey_server() -> io::Result<()> {
    Err(io::Error::other(
        "not available: build the bench with `--features monkey`",
    ))
}
