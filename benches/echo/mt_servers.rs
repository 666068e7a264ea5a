//! The echo servers with several hubs / workers: `grove-mt` (a `grove::Runtime` with a
//! `RuntimeServer`: one SO_REUSEPORT listener per hub), `tokio-mt` (the multi-thread runtime,
//! one accept loop) and `may-mt` (may with N workers). N comes from `ECHO_HUBS` (default 2).
//! Like every server here, the process is pinned to the server CPU before it starts, so the
//! N threads share that CPU: the figures compare the CPU each model spends per round trip.

use std::io;
use std::os::fd::AsRawFd;

use crate::servers::{
    accept_each, accept_error_is_fatal, announce, echo, raise_backlog, SERVER_BUF,
};

/// Whether `kind` runs unpinned, spread over the CPUs (`ECHO_MT_SPREAD=1`).
pub fn spread(kind: &str) -> bool {
    kind.ends_with("-mt") && std::env::var("ECHO_MT_SPREAD").is_ok_and(|v| v == "1")
}

fn hubs() -> usize {
    std::env::var("ECHO_HUBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(2)
}

/// Runs the server `kind` until the process is killed.
pub fn run(kind: &str) -> io::Result<()> {
    match kind {
        "grove-mt" => grove_mt(),
        "tokio-mt" => tokio_mt(),
        _ => may_mt(),
    }
}

/// grove: N hubs, each accepting on its own SO_REUSEPORT listener; a task per connection on
/// the hub that accepted it.
fn grove_mt() -> io::Result<()> {
    let rt = grove::Runtime::builder()
        .hubs(hubs())
        .pin_cores(std::env::var("ECHO_PIN_HUBS").is_ok_and(|v| v == "1"))
        .build()?;
    let server = grove::net::RuntimeServer::bind(&rt, "127.0.0.1:0", |stream, _peer| {
        let _ = stream.set_nodelay(true);
        echo(stream)
    })?;
    announce(server.local_addr().port());
    loop {
        std::thread::park();
    }
}

/// tokio: the multi-thread runtime with N workers, one accept loop, a task per connection.
fn tokio_mt() -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(hubs())
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

/// may: N workers (work-stealing), the accept loop a coroutine, one coroutine per connection.
/// (may's `go!` is `unsafe` because coroutines may move between workers; these touch no
/// thread-locals of their own.)
fn may_mt() -> io::Result<()> {
    may::config().set_workers(hubs());
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
