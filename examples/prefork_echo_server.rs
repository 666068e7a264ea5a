//! A pre-fork echo server, gunicorn-style: a master forks N workers, each with its own hub and
//! its own `SO_REUSEPORT` listener; a worker that dies is restarted; SIGTERM or Ctrl-C stops
//! them all gracefully.
//!
//! Run: `RUST_LOG=grove=debug cargo run --example prefork_echo_server -- 127.0.0.1:7000 4`
//! then `cargo run --example echo_client -- 127.0.0.1:7000`, or `nc 127.0.0.1 7000`; try
//! `kill -9` on a worker (its pid is logged) and watch the master replace it.

use std::io::{Read, Write};
use std::net::SocketAddr;

use grove::net::TcpStream;
use grove::process::Prefork;

fn echo(mut conn: TcpStream, peer: SocketAddr) {
    log::debug!("worker {} serves {peer}", std::process::id());
    let mut buf = [0; 4096];
    while let Ok(n @ 1..) = conn.read(&mut buf) {
        if conn.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

fn main() -> std::io::Result<()> {
    env_logger::init();
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7000".into());
    let workers = args.next().and_then(|n| n.parse().ok()).unwrap_or(2);
    let server = Prefork::bind(addr.as_str())?.workers(workers);
    println!(
        "master {} serving on {} with {workers} workers; Ctrl-C to stop",
        std::process::id(),
        server.local_addr()
    );
    server.serve(echo)?;
    println!("all workers stopped");
    Ok(())
}
