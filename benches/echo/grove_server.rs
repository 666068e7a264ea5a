//! The grove echo server: the accept loop runs in plain `main` on the thread's implicit hub,
//! one spawned task per connection, blocking-style std `Read`/`Write` on grove's stream.
//!
//! Written against grove::net's std-shaped API (`TcpListener::bind`, `local_addr`, `accept`,
//! `TcpStream::set_nodelay`, `Read`/`Write`).

use std::io;

use crate::servers::{accept_each, announce, echo};

/// Runs the grove server until the process is killed.
pub fn run() -> io::Result<()> {
    let listener = grove::net::TcpListener::bind("127.0.0.1:0")?;
    announce(listener.local_addr()?.port());
    accept_each(
        || listener.accept().map(|(stream, _)| stream),
        |stream| {
            stream.set_nodelay(true)?;
            // Detached: dropping the handle lets the task run on its own until the peer closes.
            drop(grove::spawn(move || echo(stream)));
            Ok(())
        },
    )
}
