//! The examples, attacked as a hostile client (or a hostile environment) would: `file_transfer`
//! never lets one upload reach another's temporary file, and `select_echo_server` keeps serving
//! when the process runs out of file descriptors. The examples' own code is compiled into this
//! test (`#[path]`), so the test drives exactly what `cargo run --example` runs.

mod util;

#[allow(dead_code)]
#[path = "../examples/file_transfer.rs"]
mod file_transfer;

#[allow(dead_code)]
#[path = "../examples/select_echo_server.rs"]
mod select_echo_server;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use grove::net::{TcpListener, TcpStream};

/// A fresh, empty directory for one test's uploads.
fn upload_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("grove-{test}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        match entry.file_type().unwrap().is_dir() {
            true => out.extend(files_under(&path)),
            false => out.push(path),
        }
    }
    out
}

/// The example's wire header: the name NUL-padded to 36 bytes, then the size (big-endian).
fn header(name: &str, size: u64) -> Vec<u8> {
    let mut h = vec![0; 44];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[36..].copy_from_slice(&size.to_be_bytes());
    h
}

#[test]
fn an_upload_cannot_replace_another_uploads_temporary_file() {
    let dir = upload_dir("ft-victim");
    let server = file_transfer::serve(dir.clone(), 0).unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();

    // The victim sends half its upload and pauses, its temporary file open on the server.
    let mut victim = TcpStream::connect(&addr).unwrap();
    victim.write_all(&header("victim.bin", 1_000_000)).unwrap();
    victim.write_all(&data[..500_000]).unwrap();
    let start = Instant::now();
    while files_under(&dir).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no temporary file"
        );
        grove::yield_now();
    }

    // The attacker names the file the seed's server used for the victim's part.
    let port = victim.local_addr().unwrap().port();
    let sneaky = format!(".victim.bin.{port}.part");
    let answer = file_transfer::upload(&addr, &sneaky, 5, &b"evil!"[..]).unwrap();
    assert!(answer.starts_with("ERR"), "{sneaky:?} accepted: {answer}");

    victim.write_all(&data[500_000..]).unwrap();
    let mut reply = String::new();
    victim.read_to_string(&mut reply).unwrap();
    assert_eq!(reply.trim_end(), "OK 1000000");
    assert!(
        fs::read(dir.join("victim.bin")).unwrap() == data,
        "the victim's file does not hold the victim's bytes"
    );
    assert_eq!(files_under(&dir), [dir.join("victim.bin")], "leftovers");
    server.stop();
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn temporary_files_live_in_a_private_directory_no_name_reaches() {
    let dir = upload_dir("ft-private");
    let server = file_transfer::serve(dir.clone(), 0).unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let staging: Vec<_> = fs::read_dir(&dir).unwrap().flatten().collect();
    assert_eq!(staging.len(), 1, "one staging directory");
    let name = staging[0].file_name().into_string().unwrap();
    assert!(name.starts_with('.'), "{name}");
    let mode = staging[0].metadata().unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "staging directory mode {mode:o}");

    // Names that would reach it, hide a file, or escape the directory are all refused.
    let names = [
        &name[..],
        ".hidden",
        ".",
        "..",
        "../x",
        "a/b",
        "a\\b",
        "x\0y",
        "",
    ];
    for bad in names {
        let answer = file_transfer::upload(&addr, bad, 3, &b"bad"[..]).unwrap();
        assert!(answer.starts_with("ERR"), "{bad:?} accepted: {answer}");
    }
    assert!(files_under(&dir).is_empty(), "{:?}", files_under(&dir));

    // Two uploads at once, each intact; nothing is left behind.
    let (a, b) = (vec![1u8; 300_000], vec![2u8; 200_000]);
    let up = |name: &'static str, bytes: Vec<u8>| {
        let addr = addr.clone();
        grove::spawn(move || file_transfer::upload(&addr, name, bytes.len() as u64, &bytes[..]))
    };
    let (ta, tb) = (up("a.bin", a.clone()), up("b.bin", b.clone()));
    assert_eq!(ta.join().unwrap().unwrap(), "OK 300000");
    assert_eq!(tb.join().unwrap().unwrap(), "OK 200000");
    assert_eq!(fs::read(dir.join("a.bin")).unwrap(), a);
    assert_eq!(fs::read(dir.join("b.bin")).unwrap(), b);
    assert_eq!(files_under(&dir).len(), 2);
    server.stop();
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn select_echo_server_keeps_serving_when_out_of_fds() {
    if let Some(scenario) = util::child_scenario() {
        assert_eq!(scenario, "emfile");
        select_emfile_child();
        return;
    }
    let out = util::run_child_within(
        "select_echo_server_keeps_serving_when_out_of_fds",
        "emfile",
        Duration::from_secs(30),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("recovered"), "{stdout}");
}

fn round_trip(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).unwrap();
    let mut back = vec![0; msg.len()];
    s.read_exact(&mut back).unwrap();
    back
}

/// In a child process: run out of fds while a client waits to be accepted; the server must
/// keep serving its client, back off instead of spinning, and accept once fds are back.
fn select_emfile_child() {
    util::capture_logs();
    log::set_max_level(log::LevelFilter::Warn);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = grove::spawn(move || select_echo_server::serve(listener));
    let mut warm = TcpStream::connect(addr).unwrap();
    assert_eq!(round_trip(&mut warm, b"warm"), b"WARM");
    // A client the kernel has connected (std's blocking connect: the hub does not run, so the
    // server has not accepted it yet) ...
    let mut client = TcpStream::from_std(std::net::TcpStream::connect(addr).unwrap()).unwrap();
    let cpu_before = util::cpu_time();
    // ... and no fd to accept it with: the limit is below the fds already open, so not even
    // the fd `select` frees when it returns can be reused.
    util::set_soft_nofile(3);
    grove::sleep(Duration::from_millis(300)); // the server fails to accept, backs off, retries
    for _ in 0..3 {
        assert_eq!(round_trip(&mut warm, b"still"), b"STILL", "stopped serving");
    }
    assert!(!server.is_finished(), "the server exited");
    util::set_soft_nofile(4096);
    let warnings = util::logged_count("accept failed");
    assert!(
        (1..=12).contains(&warnings),
        "{warnings} accept warnings in 300 ms"
    );
    let cpu = util::cpu_time() - cpu_before;
    assert!(cpu < Duration::from_millis(150), "spinning: {cpu:?} CPU");
    let back = grove::with_timeout(Duration::from_secs(5), || round_trip(&mut client, b"again"))
        .expect("the waiting client was never served");
    assert_eq!(back, b"AGAIN");
    println!("recovered after {warnings} backoffs");
    server.kill();
}
