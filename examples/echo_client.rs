//! A client for `echo_server`: sends each line typed on stdin and prints what comes back.
//!
//! Run the server first, then: `cargo run --release --example echo_client [-- ADDR]`
//! (type lines; Ctrl-D ends). Non-interactively: `echo_client --count 3` sends three numbered
//! lines on its own. Add `RUST_LOG=grove=debug` to watch the hub.

use std::io::{self, Read, Write};
use std::process::exit;

use grove::net::TcpStream;

const USAGE: &str = "\
usage: echo_client [ADDR] [--count N]
  Connects to ADDR (default 127.0.0.1:5566), sends each line of stdin, prints each reply.
  --count N   send N numbered lines instead of reading stdin, then exit";

/// Sends one line and reads the echo: exactly as many bytes as were sent.
fn round_trip(conn: &mut TcpStream, line: &[u8]) -> io::Result<String> {
    conn.write_all(line)?;
    let mut reply = vec![0; line.len()];
    conn.read_exact(&mut reply)?;
    Ok(String::from_utf8_lossy(&reply).trim_end().to_string())
}

/// The next line of stdin (with its '\n'), or `None` at end of input.
///
/// Reading stdin with std blocks the whole OS thread, and with it every task of this hub. This
/// client has a single task, so that would be harmless; but the grove way is to park the task
/// until fd 0 is readable (`wait_readable`), so the hub can run other tasks meanwhile, and
/// only then read, which returns at once with what is there. We read into a 64 KiB chunk,
/// larger than `Stdin`'s own 8 KiB buffer, so that buffer is always emptied: bytes left hidden
/// in it would not make fd 0 readable again, and we would wait for them forever.
fn next_line(pending: &mut Vec<u8>) -> io::Result<Option<Vec<u8>>> {
    let mut chunk = vec![0; 64 * 1024];
    loop {
        if let Some(end) = pending.iter().position(|&b| b == b'\n') {
            return Ok(Some(pending.drain(..=end).collect()));
        }
        grove::io::wait_readable(0, None)?;
        match io::stdin().read(&mut chunk)? {
            0 if pending.is_empty() => return Ok(None),
            0 => return Ok(Some(std::mem::take(pending))), // a last line without '\n'
            n => pending.extend_from_slice(&chunk[..n]),
        }
    }
}

fn main() -> io::Result<()> {
    env_logger::init();
    let (addr, count) = parse_args().unwrap_or_else(|msg| {
        eprintln!("echo_client: {msg}\n{USAGE}");
        exit(2)
    });
    let mut conn = TcpStream::connect(addr.as_str())?;
    println!("connected to {}", conn.peer_addr()?);
    if let Some(n) = count {
        for i in 1..=n {
            let reply = round_trip(&mut conn, format!("hello #{i}\n").as_bytes())?;
            println!("reply: {reply}");
        }
        return Ok(());
    }
    let mut pending = Vec::new();
    while let Some(line) = next_line(&mut pending)? {
        println!("reply: {}", round_trip(&mut conn, &line)?);
    }
    println!("end of input, goodbye");
    Ok(())
}

/// `[ADDR] [--count N]`; `--help` prints the usage and exits.
fn parse_args() -> Result<(String, Option<u64>), String> {
    let (mut addr, mut count) = ("127.0.0.1:5566".to_string(), None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                exit(0)
            }
            "--count" => {
                let n = args.next().ok_or("--count needs a value")?;
                count = Some(n.parse().map_err(|_| format!("not a count: {n}"))?);
            }
            _ if !arg.starts_with('-') => addr = arg,
            _ => return Err(format!("unknown option {arg}")),
        }
    }
    Ok((addr, count))
}
