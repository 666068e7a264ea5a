//! Server CPU per echo round trip: one hub (a `StreamServer` in one child process) against
//! `Prefork` with N workers, same handler, same client (C connections of 64-byte round trips
//! from one hub in this process). Server CPU is read from `/proc/PID/stat` of every server
//! process (the prefork master and its workers).
//!
//! Run: `cargo run --release --example prefork_cpu -- [workers=1,2,4] [conns=100] [secs=3]`

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use grove::net::{StreamServer, TcpListener, TcpStream};
use grove::process::{Prefork, Process};

fn echo(mut conn: TcpStream, _: SocketAddr) {
    let _ = conn.set_nodelay(true);
    let mut buf = [0; 1024];
    while let Ok(n @ 1..) = conn.read(&mut buf) {
        if conn.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

/// `pid` and its children.
fn family(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().into_string().unwrap_or_default();
        let stat = std::fs::read_to_string(format!("/proc/{name}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|t| t.1.split_whitespace().nth(1));
        if ppid == Some(&pid.to_string()) {
            pids.extend(name.parse::<u32>().ok());
        }
    }
    pids
}

/// With `PERF=1`: counts the server's syscalls and context switches for `secs` with `perf`.
fn perf(pid: u32, secs: u64) -> Option<grove::process::Child> {
    std::env::var_os("PERF")?;
    let pids: Vec<String> = family(pid).iter().map(u32::to_string).collect();
    let events = "raw_syscalls:sys_enter,context-switches";
    let args = [
        "stat",
        "-x,",
        "-e",
        events,
        "-p",
        &pids.join(","),
        "--",
        "sleep",
    ];
    let mut cmd = grove::process::Command::new("perf");
    cmd.args(args).arg(secs.to_string());
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    cmd.spawn().ok()
}

/// utime + stime of `pid` and of each process whose parent is `pid`, in clock ticks.
fn ticks(pid: u32) -> u64 {
    let stat = |p: &str| std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
    let fields = |s: &str| -> Vec<String> {
        let tail = s.rsplit_once(')').map_or("", |t| t.1);
        tail.split_whitespace().map(str::to_owned).collect()
    };
    let cpu = |f: &[String]| {
        f.get(11).zip(f.get(12)).map_or(0, |(u, s)| {
            u.parse::<u64>().unwrap_or(0) + s.parse::<u64>().unwrap_or(0)
        })
    };
    let mut total = cpu(&fields(&stat(&pid.to_string())));
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().into_string().unwrap_or_default();
        let f = fields(&stat(&name));
        if name.parse::<u32>().is_ok() && f.get(1).map(String::as_str) == Some(&pid.to_string()) {
            total += cpu(&f);
        }
    }
    total
}

/// Runs `conns` clients for `secs`; returns (round trips, server CPU µs per round trip).
fn load(server: &Process, addr: SocketAddr, conns: usize, secs: u64) -> (u64, f64) {
    while TcpStream::connect(addr).is_err() {
        grove::sleep(Duration::from_millis(10));
    }
    grove::sleep(Duration::from_millis(200));
    let counter = perf(server.pid(), secs);
    let (t0, start) = (ticks(server.pid()), Instant::now());
    let end = start + Duration::from_secs(secs);
    let clients: Vec<_> = (0..conns)
        .map(|_| {
            grove::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_nodelay(true).unwrap();
                let (msg, mut back, mut n) = ([7u8; 64], [0u8; 64], 0u64);
                while Instant::now() < end {
                    s.write_all(&msg).unwrap();
                    s.read_exact(&mut back).unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let rts: u64 = grove::join_all(clients)
        .into_iter()
        .map(Result::unwrap)
        .sum();
    if let Some(out) = counter.and_then(|c| c.wait_with_output().ok()) {
        for line in String::from_utf8_lossy(&out.stderr).lines() {
            let f: Vec<&str> = line.split(',').collect();
            if let (Some(n), Some(name)) = (f.first().and_then(|n| n.parse::<f64>().ok()), f.get(2))
            {
                println!("    {name}: {:.2} per rt", n / rts as f64);
            }
        }
    }
    let hz = 100.0; // USER_HZ on Linux
    let cpu_us = (ticks(server.pid()) - t0) as f64 / hz * 1e6;
    (rts, cpu_us / rts as f64)
}

fn main() -> std::io::Result<()> {
    env_logger::init();
    let mut args = std::env::args().skip(1);
    let workers: Vec<usize> = args
        .next()
        .unwrap_or("1,2,4".into())
        .split(',')
        .filter_map(|w| w.parse().ok())
        .collect();
    let conns = args.next().and_then(|c| c.parse().ok()).unwrap_or(100);
    let secs = args.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let one = Process::spawn(move || StreamServer::new(listener, echo).serve_forever())?;
    let (rts, us) = load(&one, addr, conns, secs);
    println!(
        "one hub           : {:>8.0} rt/s, server CPU {us:.2} µs/rt",
        rts as f64 / secs as f64
    );
    one.kill()?;
    one.join()?;
    for n in workers {
        let server = Prefork::bind("127.0.0.1:0")?.workers(n);
        let addr = server.local_addr();
        let master = server.spawn(echo)?;
        let (rts, us) = load(&master, addr, conns, secs);
        println!(
            "prefork {n} workers : {:>8.0} rt/s, server CPU {us:.2} µs/rt",
            rts as f64 / secs as f64
        );
        master.terminate()?;
        master.join()?;
    }
    Ok(())
}
