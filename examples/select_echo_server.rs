//! The seeds' `select`-based server: ONE task watches the listener and every client with
//! `grove::select::select`, accepts when the listener is readable, and answers a readable
//! client with its message UPPER-CASED. A heartbeat task ticks beside it every second: `select`
//! parks only its task, never the thread.
//!
//! Run: `cargo run --release --example select_echo_server -- --demo` (server and 3 clients in
//! one process), or without `--demo` and talk to it with `echo_client 127.0.0.1:5567`.
//! Add `RUST_LOG=grove=debug` to watch the hub.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::process::exit;
use std::time::{Duration, Instant};

use grove::net::{TcpListener, TcpStream};

const USAGE: &str = "\
usage: select_echo_server [PORT] [--port N] [--demo]
  One task serves every client through select(), replying in upper case (port 5567 default).
  --demo   serve on a free port, run 3 clients in this process, print their replies, exit";

/// The select loop, as in the seeds. The sockets are plain grove sockets: `select` has just
/// said they are ready, so `accept` and `read` return at once (at worst parking for an
/// instant while the hub catches up). A client that never reads its replies would stall
/// `write_all`, and with it this whole loop: that is the price of serving in one task.
///
/// When `accept` fails for want of a resource (`EMFILE`: out of file descriptors), the loop
/// stops watching the listener for a while (5 ms, doubling up to 1 s) and keeps serving the
/// clients it has; the waiting client is accepted once an fd is free again.
pub fn serve(listener: TcpListener) -> io::Result<()> {
    let mut clients: HashMap<RawFd, (TcpStream, SocketAddr)> = HashMap::new();
    let mut buf = [0; 4096];
    let mut pause = Pause::default();
    loop {
        let mut readers: Vec<RawFd> = clients.keys().copied().collect();
        if pause.over() {
            readers.push(listener.as_raw_fd());
        }
        let (readable, _) = grove::select::select(&readers, &[], pause.left())?;
        for fd in readable {
            if fd == listener.as_raw_fd() {
                match listener.accept() {
                    Ok((conn, peer)) => {
                        pause = Pause::default();
                        println!("[server] {peer} connected (clients: {})", clients.len() + 1);
                        clients.insert(conn.as_raw_fd(), (conn, peer));
                    }
                    Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
                    Err(e) => pause.start(e),
                }
                continue;
            }
            let (conn, peer) = clients.get_mut(&fd).expect("select returned a known fd");
            let done = match conn.read(&mut buf) {
                Ok(0) => Some("left".to_string()),
                Ok(n) => conn
                    .write_all(&buf[..n].to_ascii_uppercase())
                    .err()
                    .map(|e| e.to_string()),
                Err(e) => Some(e.to_string()),
            };
            if let Some(why) = done {
                let peer = *peer;
                clients.remove(&fd); // dropping the stream closes it
                println!("[server] {peer}: {why} (clients: {})", clients.len());
            }
        }
    }
}

/// Accepting paused after an error: until when, and for how long next time.
#[derive(Default)]
struct Pause {
    until: Option<Instant>,
    next: Option<Duration>,
}

impl Pause {
    fn start(&mut self, e: io::Error) {
        let d = self.next.unwrap_or(Duration::from_millis(5));
        log::warn!("accept failed ({e}); not accepting for {d:?}, still serving clients");
        self.until = Some(Instant::now() + d);
        self.next = Some((d * 2).min(Duration::from_secs(1)));
    }

    /// Whether accepting may resume (the pause, if any, has ended).
    fn over(&mut self) -> bool {
        if self.until.is_some_and(|t| Instant::now() >= t) {
            self.until = None;
        }
        self.until.is_none()
    }

    /// How long `select` may wait: until the pause ends (forever when not paused).
    fn left(&self) -> Option<Duration> {
        let t = self.until?;
        Some(
            t.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
        )
    }
}

/// A demo client: three messages, half a second apart, each answered in upper case.
fn client(id: u32, addr: SocketAddr) -> io::Result<()> {
    let mut conn = TcpStream::connect(addr)?;
    for i in 1..=3 {
        let msg = format!("hello from client {id}, message {i}");
        conn.write_all(msg.as_bytes())?;
        let mut reply = vec![0; msg.len()];
        conn.read_exact(&mut reply)?;
        println!(
            "[client {id}] sent {msg:?}, got {:?}",
            String::from_utf8_lossy(&reply)
        );
        if i < 3 {
            grove::sleep(Duration::from_millis(500));
        }
    }
    Ok(()) // the connection closes here; the server sees end of file
}

fn main() -> io::Result<()> {
    env_logger::init();
    let (port, demo) = parse_args().unwrap_or_else(|msg| {
        eprintln!("select_echo_server: {msg}\n{USAGE}");
        exit(2)
    });
    let listener = TcpListener::bind(("127.0.0.1", if demo { 0 } else { port }))?;
    let addr = listener.local_addr()?;
    println!("select server on {addr}");
    let start = Instant::now();
    grove::spawn(move || loop {
        grove::sleep(Duration::from_secs(1));
        println!("[heartbeat] {:.1?}: the thread is free", start.elapsed());
    });
    let server = grove::spawn(move || serve(listener));
    if !demo {
        return server.join().expect("the server task panicked");
    }
    let clients: Vec<_> = (1..=3)
        .map(|id| grove::spawn(move || client(id, addr)))
        .collect();
    for result in grove::join_all(clients) {
        result.expect("a client panicked")?;
    }
    grove::sleep(Duration::from_millis(50)); // let the server see them leave
    println!("demo done in {:.1?}", start.elapsed());
    Ok(())
}

/// `[PORT] [--port N] [--demo]`; `--help` prints the usage and exits.
fn parse_args() -> Result<(u16, bool), String> {
    let (mut port, mut demo) = ("5567".to_string(), false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                exit(0)
            }
            "--demo" => demo = true,
            "--port" => port = args.next().ok_or("--port needs a value")?,
            _ if !arg.starts_with('-') => port = arg,
            _ => return Err(format!("unknown option {arg}")),
        }
    }
    let port = port.parse().map_err(|_| format!("not a port: {port}"))?;
    Ok((port, demo))
}
