//! The seed's file upload: a server saving uploads into a directory, several at once (one task
//! per connection, `StreamServer`), and a client sending one file.
//!
//! The wire format. The seed packed its header with Python's `struct.pack('128sl', ...)`; we
//! use a fixed, portable one: the file name as UTF-8, padded with NUL bytes to exactly 36 bytes;
//! then the file size as an 8-byte big-endian `u64`; then the bytes of the file. The server
//! reads exactly that many bytes and answers `OK <bytes>\n` or `ERR <reason>\n`. It refuses
//! (with a logged error) a name that is empty, starts with '.', or contains '/', '\\', '..' or
//! NUL.
//!
//! An upload is written to a temporary file and renamed into place only when complete. No
//! client can name, predict or reach another's temporary file: they live in a private
//! directory (mode 0700, a random name starting with '.', which no upload may use), each
//! created with `create_new` (never opening an existing file) under a random name.
//!
//! Run: `cargo run --release --example file_transfer -- --demo` (server and three concurrent
//! uploads in one process), or `file_transfer server DIR` and `file_transfer client FILE`.
//! Add `RUST_LOG=grove=debug` to watch the hub.

use std::collections::hash_map::RandomState;
use std::fs::{self, File};
use std::hash::BuildHasher;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::exit;
use std::time::{Duration, Instant};

use grove::net::{StreamServer, TcpStream};

const USAGE: &str = "\
usage: file_transfer server DIR [--port N]   save uploads into DIR (port 5568 default)
       file_transfer client FILE [ADDR]      upload FILE to ADDR (127.0.0.1:5568 default)
       file_transfer --demo                  a server and three concurrent uploads, verified";

const NAME_LEN: usize = 36;

/// Uploads `data` (`size` bytes) under `name`; returns the server's answer.
pub fn upload(addr: &str, name: &str, size: u64, mut data: impl Read) -> io::Result<String> {
    if name.len() > NAME_LEN {
        return Err(invalid(format!(
            "name longer than {NAME_LEN} bytes: {name}"
        )));
    }
    let mut header = [0; NAME_LEN + 8];
    header[..name.len()].copy_from_slice(name.as_bytes());
    header[NAME_LEN..].copy_from_slice(&size.to_be_bytes());
    let mut conn = TcpStream::connect(addr)?;
    conn.write_all(&header)?;
    io::copy(&mut data, &mut conn)?;
    let mut answer = String::new();
    conn.read_to_string(&mut answer)?;
    Ok(answer.trim_end().to_string())
}

/// The server's handler: receive one upload, answer, close.
fn receive(mut conn: TcpStream, peer: SocketAddr, dir: &Path, staging: &Staging) {
    let answer = match save(&mut conn, peer, dir, staging) {
        Ok((name, n)) => {
            println!("[server] saved {name:?}: {n} bytes from {peer}");
            format!("OK {n}\n")
        }
        Err(e) => {
            log::error!("upload from {peer} refused or failed: {e}");
            format!("ERR {e}\n")
        }
    };
    let _ = conn.write_all(answer.as_bytes()); // the client may be gone; nothing to do then
}

fn save(
    conn: &mut TcpStream,
    peer: SocketAddr,
    dir: &Path,
    staging: &Staging,
) -> io::Result<(String, u64)> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?; // a stalled client gives up its task
    let mut header = [0; NAME_LEN + 8];
    conn.read_exact(&mut header)
        .map_err(|e| invalid(format!("incomplete header ({e})")))?;
    let size = u64::from_be_bytes(header[NAME_LEN..].try_into().unwrap());
    let mut body = conn.take(size);
    let name = match file_name(&header[..NAME_LEN]) {
        Ok(name) => name,
        Err(why) => {
            // Read the body anyway: closing with unread data resets the connection, and the
            // reset could destroy our answer before the client reads it.
            io::copy(&mut body, &mut io::sink())?;
            return Err(invalid(why));
        }
    };
    println!("[server] receiving {name:?} ({size} bytes) from {peer}");
    // Write a private temporary file and rename it when complete: a half upload never shows.
    // (Writes to a local file land in the page cache and return quickly; for a slow disk,
    // use `grove::threadpool::spawn_blocking`, which parks only this task.)
    let (part, file) = staging.create()?;
    let saved = io::copy(&mut body, &mut &file);
    match saved {
        Ok(n) if n == size => fs::rename(&part, dir.join(&name)).map(|()| (name, n)),
        Ok(n) => Err(invalid(format!(
            "connection closed after {n} of {size} bytes"
        ))),
        Err(e) => Err(e),
    }
    .inspect_err(|_| drop(fs::remove_file(&part)))
}

/// A private directory for uploads in progress, inside the upload directory (so a rename
/// into place never crosses file systems). Its name starts with '.', so no upload can name
/// it or anything in it.
pub struct Staging {
    dir: PathBuf,
    random: RandomState,
}

impl Staging {
    /// Creates `.incoming-<random>` in `dir`, readable only by this user.
    pub fn new(dir: &Path) -> io::Result<Staging> {
        let random = RandomState::new();
        loop {
            let path = dir.join(format!(
                ".incoming-{:016x}",
                random.hash_one(Instant::now())
            ));
            match fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(Staging { dir: path, random }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// A new, empty temporary file with an unpredictable name that did not exist before.
    fn create(&self) -> io::Result<(PathBuf, File)> {
        loop {
            let name = format!("{:016x}", self.random.hash_one(Instant::now()));
            let path = self.dir.join(name);
            let mut options = fs::OpenOptions::new();
            match options.write(true).create_new(true).mode(0o600).open(&path) {
                Ok(file) => return Ok((path, file)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The name from the NUL-padded header field, or why it is refused.
fn file_name(field: &[u8]) -> Result<String, String> {
    let end = field.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let name = std::str::from_utf8(&field[..end]).map_err(|_| "file name is not UTF-8")?;
    match name {
        "" => Err("empty file name".into()),
        _ if name.contains('\0') => Err("file name contains NUL".into()),
        _ if name.contains("..") => Err(format!("file name contains '..': {name:?}")),
        _ if name.contains(['/', '\\']) => {
            Err(format!("file name contains a path separator: {name:?}"))
        }
        _ if name.starts_with('.') => Err(format!("file name starts with '.': {name:?}")),
        _ => Ok(name.to_string()),
    }
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Starts a server saving uploads into `dir` (its private staging directory is removed when
/// the server and all its handlers are gone).
pub fn serve(dir: PathBuf, port: u16) -> io::Result<StreamServer> {
    let staging = Staging::new(&dir)?;
    let server = StreamServer::bind(("127.0.0.1", port), move |conn, peer| {
        receive(conn, peer, &dir, &staging)
    })?;
    server.start();
    Ok(server)
}

/// The client: upload one file under its own name.
fn send_file(path: &Path, addr: &str) -> io::Result<String> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or(invalid("no file name"))?;
    let file = File::open(path)?;
    upload(addr, name, file.metadata()?.len(), file)
}

fn demo() -> io::Result<()> {
    let root = std::env::temp_dir().join(format!("grove-file-transfer-{}", std::process::id()));
    let (outbox, inbox) = (root.join("outbox"), root.join("inbox"));
    fs::create_dir_all(&outbox)?;
    fs::create_dir_all(&inbox)?;
    let result = run_demo(&outbox, &inbox);
    fs::remove_dir_all(&root)?;
    println!("cleaned up {}", root.display());
    result
}

fn run_demo(outbox: &Path, inbox: &Path) -> io::Result<()> {
    let files = [
        ("small.bin", 10_000),
        ("medium.bin", 1_000_000),
        ("large.bin", 5_000_000),
    ];
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for (name, size) in files {
        let bytes = (0..size).map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        });
        fs::write(outbox.join(name), bytes.collect::<Vec<u8>>())?;
    }
    let server = serve(inbox.to_path_buf(), 0)?;
    let addr = server.local_addr()?.to_string();
    let start = Instant::now();
    let upload_task = |path: PathBuf| {
        let addr = addr.clone();
        grove::spawn(move || send_file(&path, &addr))
    };
    let uploads: Vec<_> = files
        .iter()
        .map(|(name, _)| upload_task(outbox.join(name)))
        .collect();
    let sneaky = {
        let addr = addr.clone(); // a hand-made header: the server must not write outside DIR
        grove::spawn(move || upload(&addr, "../escape.txt", 5, &b"boo!\n"[..]))
    };
    let results = grove::join_all(uploads);
    let took = start.elapsed();
    for (result, (name, size)) in results.into_iter().zip(files) {
        let answer = result.expect("an upload task panicked")?;
        let same = fs::read(outbox.join(name))? == fs::read(inbox.join(name))?;
        let verdict = if same { "identical" } else { "DIFFERENT" };
        println!("[client] {name} ({size} bytes): server said {answer:?}; copy {verdict}");
        if !same {
            return Err(invalid(format!("{name}: the saved copy differs")));
        }
    }
    let total: u64 = files.iter().map(|f| f.1).sum();
    let mb_s = total as f64 / took.as_secs_f64() / 1e6;
    println!("3 uploads at once: {total} bytes in {took:.1?} ({mb_s:.0} MB/s), all verified");
    let answer = sneaky.join().expect("the upload task panicked")?;
    let escaped = inbox.join("../escape.txt").exists();
    println!("[client] \"../escape.txt\": server said {answer:?}; escaped the inbox: {escaped}");
    server.stop();
    Ok(())
}

fn main() {
    env_logger::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    if args.iter().any(|a| ["-h", "--help"].contains(a)) {
        println!("{USAGE}");
        return;
    }
    let result = match args.as_slice() {
        ["--demo"] => demo(),
        ["server", dir] => serve_forever(dir, "5568"),
        ["server", dir, "--port", port] => serve_forever(dir, port),
        ["client", file] => send_file(Path::new(file), "127.0.0.1:5568").map(|a| println!("{a}")),
        ["client", file, addr] => send_file(Path::new(file), addr).map(|a| println!("{a}")),
        _ => {
            eprintln!("{USAGE}");
            exit(2)
        }
    };
    if let Err(e) = result {
        eprintln!("file_transfer: {e}");
        exit(1)
    }
}

fn serve_forever(dir: &str, port: &str) -> io::Result<()> {
    let port = port
        .parse()
        .map_err(|_| invalid(format!("not a port: {port}")))?;
    let server = serve(PathBuf::from(dir), port)?;
    println!(
        "saving uploads into {dir}, listening on {}",
        server.local_addr()?
    );
    server.serve_forever();
    Ok(())
}
