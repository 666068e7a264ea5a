//! Stories of grove::net: an echo server with a thousand clients on one thread, `select` over
//! socket pairs, name resolution on the thread pool, and a read timeout that parks one task only.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use grove::net::{StreamServer, TcpStream, UnixStream};

/// Runs the net stories.
pub fn run() {
    chapter("an echo server and 1000 client tasks, all on one thread");
    echo_load(1000, 50);
    chapter("select over three socket pairs");
    select_pairs();
    chapter("lookup_host resolves on the thread pool; the hub keeps running");
    resolve_beside_ticker();
    chapter("a read timeout fires while another task works");
    read_timeout();
}

fn chapter(title: &str) {
    println!("\n-- net: {title} --");
}

fn echo_load(clients: usize, trips: usize) {
    let server = StreamServer::bind("127.0.0.1:0", |mut conn: TcpStream, _peer| {
        let mut buf = [0; 64];
        while let Ok(n @ 1..) = conn.read(&mut buf) {
            if conn.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    })
    .expect("bind the echo server");
    server.start();
    let addr = server.local_addr().unwrap();
    let client = move || -> io::Result<usize> {
        let mut conn = TcpStream::connect(addr)?;
        conn.set_nodelay(true)?;
        let (msg, mut reply) = ([42; 64], [0; 64]);
        for _ in 0..trips {
            conn.write_all(&msg)?;
            conn.read_exact(&mut reply)?;
        }
        Ok(trips)
    };
    let start = Instant::now();
    let results = grove::join_all(
        (0..clients)
            .map(|_| grove::spawn(client))
            .collect::<Vec<_>>(),
    );
    let took = start.elapsed();
    let done: usize = results.iter().flatten().flatten().sum();
    let errors = results.iter().filter(|r| !matches!(r, Ok(Ok(_)))).count();
    let rate = done as f64 / took.as_secs_f64();
    let ms = took.as_millis();
    println!("  {clients} clients x {trips} round trips of 64 B: {done} round trips in {ms} ms");
    println!("  = {rate:.0} round trips/s on one OS thread, {errors} errors");
    server.stop();
}

fn select_pairs() {
    let start = Instant::now();
    let mut readers = Vec::new();
    for i in 0..3u64 {
        let (reader, mut writer) = UnixStream::pair().expect("a socket pair");
        readers.push(reader);
        grove::spawn_later(Duration::from_millis(60 - 20 * i), move || {
            let _ = writer.write_all(format!("hello through pair {i}").as_bytes());
        });
    }
    let mut fds: Vec<_> = readers.iter().map(AsRawFd::as_raw_fd).collect();
    let (ready, _) = grove::select::select(&fds, &[], Some(Duration::from_millis(5))).unwrap();
    println!("  select(3 fds, timeout 5 ms) -> {ready:?}: nothing sent yet");
    while !fds.is_empty() {
        let (ready, _) = grove::select::select(&fds, &[], None).unwrap();
        for fd in ready {
            let i = readers.iter().position(|r| r.as_raw_fd() == fd).unwrap();
            let mut buf = [0; 64];
            let n = readers[i].read(&mut buf).unwrap();
            let msg = String::from_utf8_lossy(&buf[..n]);
            let ms = start.elapsed().as_millis();
            println!("  {ms:>3} ms select -> pair {i} readable: {msg:?}");
            fds.retain(|&f| f != fd);
        }
    }
}

fn resolve_beside_ticker() {
    let ticks = Rc::new(Cell::new(0u32));
    let counter = ticks.clone();
    let ticker = grove::spawn(move || loop {
        counter.set(counter.get() + 1);
        grove::yield_now();
    });
    let start = Instant::now();
    let addrs: Vec<_> = grove::net::lookup_host("localhost:80").unwrap().collect();
    let (took, n) = (start.elapsed(), ticks.get());
    println!("  lookup_host(\"localhost:80\") -> {addrs:?} in {took:.0?}");
    println!("  meanwhile the ticker task ran {n} times: getaddrinfo ran on a pool thread");
    ticker.kill();
    let ticker = grove::spawn(|| {
        for tick in 1.. {
            grove::sleep(Duration::from_millis(10));
            println!("    tick {tick}");
        }
    });
    println!("  a slow resolver (50 ms, simulated with thread::sleep on the pool):");
    let addrs = grove::threadpool::spawn_blocking(|| {
        std::thread::sleep(Duration::from_millis(50));
        std::net::ToSocketAddrs::to_socket_addrs("localhost:80").map(Vec::from_iter)
    });
    println!("  -> {:?}, and the ticker never stopped", addrs.unwrap());
    ticker.kill();
}

fn read_timeout() {
    let (mut quiet, _peer) = UnixStream::pair().expect("a socket pair");
    quiet
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let steps = Rc::new(Cell::new(0));
    let worker = {
        let steps = steps.clone();
        grove::spawn(move || loop {
            grove::sleep(Duration::from_millis(10));
            steps.set(steps.get() + 1);
        })
    };
    let start = Instant::now();
    let result = match quiet.read(&mut [0; 16]) {
        Ok(n) => format!("Ok({n})"),
        Err(e) => format!("Err({:?}: {e})", e.kind()),
    };
    let ms = start.elapsed().as_millis();
    println!("  read with a 100 ms timeout, nothing sent -> {result} after {ms} ms");
    println!(
        "  meanwhile another task did {} steps of 10 ms",
        steps.get()
    );
    worker.kill();
}
