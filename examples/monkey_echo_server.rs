//! The seed's gevent echo server, written as plain blocking `std::net` code. One call to
//! `grove::monkey::patch_all()` makes it serve thousands of clients at once on one OS thread:
//! every `accept`, `read` and `write` parks only the task that made it.
//!
//! Run: `cargo run --release --features monkey --example monkey_echo_server [-- PORT]`, then
//! `nc 127.0.0.1 6000` (type lines; `quit` ends the session), or load it with
//! `cargo run --release --example echo_client -- --port 6000 --clients 2000`.
//! Add `RUST_LOG=grove=debug` to watch the hub.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::exit;

/// gevent's `handle(socket, address)`: greet, then echo line by line until `quit` or EOF.
fn handle(mut socket: TcpStream, address: SocketAddr) -> std::io::Result<()> {
    socket.write_all(b"Welcome to the echo server! Type quit to exit.\r\n")?;
    let mut lines = BufReader::new(socket.try_clone()?);
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 || line.trim().eq_ignore_ascii_case("quit") {
            break;
        }
        socket.write_all(line.as_bytes())?;
        log::info!("echoed {line:?} to {address}");
    }
    Ok(())
}

fn main() {
    env_logger::init();
    let port: u16 = match std::env::args().nth(1).as_deref() {
        None => 6000,
        Some("-h" | "--help") => {
            println!("usage: monkey_echo_server [PORT]   (default 6000)");
            exit(0)
        }
        Some(p) => p.parse().unwrap_or_else(|_| {
            eprintln!("monkey_echo_server: bad port {p:?}");
            exit(2)
        }),
    };
    grove::monkey::patch_all(); // from here on, std's blocking calls park only their task
    raise_open_file_limit();
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap_or_else(|e| {
        eprintln!("monkey_echo_server: cannot listen on 127.0.0.1:{port}: {e}");
        exit(1)
    });
    println!(
        "echo server on {}; Ctrl-C to stop",
        listener.local_addr().unwrap()
    );
    let mut clients = 0u64;
    loop {
        match listener.accept() {
            Ok((socket, address)) => {
                clients += 1;
                log::debug!("client {clients} from {address}");
                // Detached, like gevent's StreamServer: the task ends when its client leaves.
                drop(grove::spawn(move || {
                    if let Err(e) = handle(socket, address) {
                        log::info!("{address}: {e}");
                    }
                }));
            }
            Err(e) => eprintln!("accept: {e}"), // e.g. out of file descriptors; keep serving
        }
    }
}

/// Thousands of clients need thousands of descriptors: raise the soft limit to the hard one.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit that outlives both calls.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
