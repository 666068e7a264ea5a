//! The servers the seed's models are measured against, other than echo's grove (one hub):
//! runtimes that use several threads (`workers` of them, all on the server's one CPU), and
//! gevent's StreamServer (Python).

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use crate::servers::SERVER_BUF;
use crate::servers::{accept_each, accept_error_is_fatal, announce, echo, raise_backlog};

/// tokio's multi-thread runtime with `workers` worker threads; the accept loop runs in
/// `block_on`, one spawned task per connection.
pub fn tokio_mt_server(workers: usize) -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
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

/// may with `workers` worker threads (work-stealing): the accept loop is a coroutine, one
/// coroutine per connection.
///
/// `may::go!` wraps may's `unsafe` spawn: a coroutine may move between workers, which is
/// unsound if it holds thread-local state across a switch. The echo loop holds none.
pub fn may_mt_server(workers: usize) -> io::Result<()> {
    may::config().set_workers(workers);
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

/// gevent's StreamServer: replaces this (already pinned) process with Python running
/// `gevent_echo.py`, which announces its port itself. Returns only if the exec failed.
pub fn gevent_server() -> io::Result<()> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/models/gevent_echo.py");
    let python = gevent_python();
    let e = std::process::Command::new(&python).arg(script).exec();
    Err(io::Error::new(
        e.kind(),
        format!("not available: cannot run {}: {e}", python.display()),
    ))
}

/// The Python that runs the gevent server: `$GEVENT_PYTHON`, else the venv the docs set up
/// (`target/gevent-venv`), else `python3` from `PATH`.
fn gevent_python() -> PathBuf {
    if let Some(python) = std::env::var_os("GEVENT_PYTHON") {
        return python.into();
    }
    let venv = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/gevent-venv/bin/python"
    ));
    if venv.exists() {
        venv
    } else {
        "python3".into()
    }
}
