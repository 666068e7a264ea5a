//! The seed's monkey-patched download program, in its own shape: `patch_all()`, then plain
//! blocking HTTP GETs (`ureq`, which knows nothing of grove), one `grove::spawn` per URL,
//! `join_all`. Each download parks only its own task, so they all wait at once.
//!
//! Run: `cargo run --release --features monkey --example monkey_download -- http://host/ ...`
//! With no URL it serves /a, /b and /c itself (also plain `std::net`, each answer delayed
//! 300 ms with `std::thread::sleep`) and downloads those: no internet needed.
//! Only `http://` (the example builds ureq without TLS). `RUST_LOG=grove=debug` shows the hub.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

fn download(url: &str) -> Result<usize, ureq::Error> {
    let body = ureq::get(url).call()?.body_mut().read_to_vec()?;
    Ok(body.len())
}

/// A slow little web server: /a, /b and /c, each answered after 300 ms of "thinking".
fn serve(listener: TcpListener) {
    for conn in listener.incoming().flatten() {
        drop(grove::spawn(move || answer(conn)));
    }
}

fn answer(mut conn: TcpStream) -> std::io::Result<()> {
    let mut request = String::new();
    let mut reader = BufReader::new(conn.try_clone()?);
    reader.read_line(&mut request)?;
    while reader.read_line(&mut String::new())? > 2 {} // skip the headers up to the blank line
    let size = match request.split(' ').nth(1) {
        Some("/a") => 1_000,
        Some("/b") => 100_000,
        Some("/c") => 1_000_000,
        _ => return conn.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
    };
    std::thread::sleep(Duration::from_millis(300)); // parks this task only: patched
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n");
    conn.write_all(head.as_bytes())?;
    conn.write_all(&vec![b'x'; size])
}

fn main() -> std::io::Result<()> {
    env_logger::init();
    grove::monkey::patch_all();
    let mut urls: Vec<String> = std::env::args().skip(1).collect();
    if urls.iter().any(|a| a.starts_with('-')) {
        println!("usage: monkey_download [http://URL...]   (no URL: serve and fetch /a, /b, /c)");
        return Ok(());
    }
    let local = urls.is_empty();
    if local {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr: SocketAddr = listener.local_addr()?;
        drop(grove::spawn(move || serve(listener)));
        urls = ["a", "b", "c"].map(|p| format!("http://{addr}/{p}")).into();
    }
    let start = Instant::now();
    let tasks: Vec<_> = urls
        .iter()
        .cloned()
        .map(|url| {
            grove::spawn(move || {
                println!("Starting {url}");
                match download(&url) {
                    Ok(n) => println!("{n} bytes received from {url}"),
                    Err(e) => println!("{url}: {e}"),
                }
            })
        })
        .collect();
    grove::join_all(tasks);
    println!("{} downloads in {:.0?}", urls.len(), start.elapsed());
    if local {
        println!("(one after another they would take at least 900 ms: 3 x 300 ms)");
    }
    Ok(())
}
