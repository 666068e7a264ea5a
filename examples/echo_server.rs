//! gevent's `StreamServer` echo server: every connection gets a task of its own that sends each
//! message straight back, while the other connections carry on — all on one OS thread.
//!
//! Run: `cargo run --release --example echo_server [-- --port 5566 --max-connections 100]`,
//! then talk to it with `cargo run --release --example echo_client` (or `nc 127.0.0.1 5566`).
//! Add `RUST_LOG=grove=debug` to watch the hub.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::exit;

use grove::net::{StreamServer, TcpStream};

const USAGE: &str = "\
usage: echo_server [PORT] [--port N] [--max-connections N]
  Echoes every message back to its sender. Listens on 127.0.0.1:5566 unless told otherwise.
  --max-connections N   handle at most N clients at once (the rest wait in the backlog)";

/// The handler: one task per connection. It looks blocking; each `read` parks only this task.
fn echo(mut conn: TcpStream, peer: SocketAddr) {
    println!("new connection from {peer}");
    let mut buf = [0; 4096];
    let mut echoed = 0;
    let reason = loop {
        match conn.read(&mut buf) {
            Ok(0) => break "closed the connection".to_string(),
            Ok(n) => match conn.write_all(&buf[..n]) {
                Ok(()) => echoed += n,
                Err(e) => break format!("could not be written to ({e})"),
            },
            Err(e) => break format!("could not be read from ({e})"),
        }
    };
    println!("{peer} left: {reason}, {echoed} bytes echoed");
} // `conn` is dropped here: the server closes the connection when the handler returns

fn main() {
    env_logger::init();
    let (port, max_connections) = parse_args().unwrap_or_else(|msg| {
        eprintln!("echo_server: {msg}\n{USAGE}");
        exit(2)
    });
    let mut server = StreamServer::bind(("127.0.0.1", port), echo).unwrap_or_else(|e| {
        eprintln!("echo_server: cannot listen on 127.0.0.1:{port}: {e}");
        exit(1)
    });
    if let Some(n) = max_connections {
        server = server.max_connections(n);
    }
    let limit = max_connections.map_or("no limit".into(), |n| format!("at most {n} at once"));
    println!(
        "echo server on {} ({limit}); Ctrl-C to stop",
        server.local_addr().unwrap()
    );
    server.serve_forever();
}

/// `[PORT] [--port N] [--max-connections N]`; `--help` prints the usage and exits.
fn parse_args() -> Result<(u16, Option<usize>), String> {
    let (mut port, mut max) = (5566, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                exit(0)
            }
            "--port" => port = number(&value("--port")?)?,
            "--max-connections" => match number(&value("--max-connections")?)? {
                0 => return Err("--max-connections must be at least 1".into()),
                n => max = Some(n),
            },
            _ if !arg.starts_with('-') => port = number(&arg)?,
            _ => return Err(format!("unknown option {arg}")),
        }
    }
    Ok((port, max))
}

fn number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("not a valid number: {s}"))
}
