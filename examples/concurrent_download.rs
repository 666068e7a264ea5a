//! The seed's monkey-patched `urllib` program: download several URLs at once, one task per URL.
//! Each task runs a tiny HTTP/1.0 client written as plain blocking code — resolve, connect,
//! send, read to the end — and every wait parks only that task.
//!
//! Run: `cargo run --release --example concurrent_download -- http://example.com/ ...`
//! With no URL it starts a small local HTTP server and downloads from it (no internet needed).
//! Only `http://`: grove has no TLS. Add `RUST_LOG=grove=debug` to watch the hub.

use std::io::{self, Read, Write};
use std::process::exit;
use std::time::{Duration, Instant};

use grove::net::{StreamServer, TcpStream};

const USAGE: &str = "\
usage: concurrent_download [URL...]
  Downloads each http:// URL in its own task and prints how many body bytes came back.
  Without URLs: serves /a, /b and /c locally (each answer delayed 300 ms) and fetches those.";

/// Fetches `url` with HTTP/1.0 and returns the number of body bytes.
fn download(url: &str) -> io::Result<usize> {
    let (authority, host, port, path) = parse_url(url)?;
    // The host name is resolved on grove's thread pool: DNS does not stall the other tasks.
    let mut conn = TcpStream::connect((host, port))?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\nUser-Agent: grove\r\n\r\n");
    conn.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    conn.read_to_end(&mut response)?; // HTTP/1.0: the server closes when it is done
    let head_end = find(&response, b"\r\n\r\n").ok_or(bad("no end of header"))?;
    let status = String::from_utf8_lossy(&response[..head_end]);
    log::info!("{url}: {}", status.lines().next().unwrap_or(""));
    Ok(response.len() - head_end - 4)
}

/// `http://host[:port][/path]` → ("host[:port]", host, port, path).
fn parse_url(url: &str) -> io::Result<(&str, &str, u16, &str)> {
    if url.starts_with("https://") {
        return Err(bad(
            "https:// is not supported: this example speaks plain HTTP only",
        ));
    }
    let rest = url
        .strip_prefix("http://")
        .ok_or(bad("only http:// URLs"))?;
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, p.parse().map_err(|_| bad("bad port"))?),
        _ => (authority, 80),
    };
    Ok((authority, host.trim_matches(['[', ']']), port, path))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

/// A slow little web server: /a, /b and /c, each answered after 300 ms.
fn serve_locally() -> io::Result<StreamServer> {
    let server = StreamServer::bind("127.0.0.1:0", |mut conn: TcpStream, _peer| {
        let mut head = Vec::new();
        let mut buf = [0; 1024];
        while find(&head, b"\r\n\r\n").is_none() && head.len() < 8192 {
            match conn.read(&mut buf) {
                Ok(n @ 1..) => head.extend_from_slice(&buf[..n]),
                _ => return,
            }
        }
        let path = head.split(|&b| b == b' ').nth(1).unwrap_or_default();
        let (status, size) = match path {
            b"/a" => ("200 OK", 1_000),
            b"/b" => ("200 OK", 100_000),
            b"/c" => ("200 OK", 1_000_000),
            _ => ("404 Not Found", 0),
        };
        grove::sleep(Duration::from_millis(300)); // "thinking": parks this handler only
        let head = format!("HTTP/1.0 {status}\r\nContent-Length: {size}\r\n\r\n");
        let _ = conn.write_all(head.as_bytes());
        let _ = conn.write_all(&vec![b'x'; size]);
    })?;
    server.start();
    Ok(server)
}

fn main() -> io::Result<()> {
    env_logger::init();
    let mut urls: Vec<String> = std::env::args().skip(1).collect();
    if urls.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        exit(0)
    }
    let local = if urls.is_empty() {
        Some(serve_locally()?)
    } else {
        None
    };
    if let Some(server) = &local {
        let addr = server.local_addr()?;
        urls = ["a", "b", "c"].map(|p| format!("http://{addr}/{p}")).into();
    }
    let start = Instant::now();
    let tasks = urls.iter().cloned().map(|url| {
        grove::spawn(move || {
            println!("Starting {url}");
            match download(&url) {
                Ok(n) => println!("{n} bytes received from {url}"),
                Err(e) => println!("{url}: {e}"),
            }
        })
    });
    grove::join_all(tasks.collect::<Vec<_>>());
    println!("{} downloads in {:.0?}", urls.len(), start.elapsed());
    if let Some(server) = local {
        println!("(one after another they would take at least 900 ms: 3 x 300 ms)");
        server.stop();
    }
    Ok(())
}
