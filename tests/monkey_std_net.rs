//! Unmodified `std::net` and `std::thread::sleep` code after `monkey::patch_all()`: a thousand
//! clients and a server share one OS thread, a ticker task never stalls, and the negative
//! controls show the same code running serially (or stalling the ticker) without the patch.

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// The timing tests of this file run one at a time: on a 2-core machine two thousand-client
/// runs side by side measure the CPU's contention, not the hub.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// std's `TcpListener::bind` listens with a backlog of 128; a thousand clients connecting in
/// one burst would overflow it (and wait for SYN retransmits), so the server listens again
/// with room for the burst — as a real server expecting bursts would.
fn bind_for_burst() -> TcpListener {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    // SAFETY: listen on our own listening socket's fd.
    assert_eq!(unsafe { libc::listen(l.as_raw_fd(), 1024) }, 0);
    l
}

/// A std echo server whose accept loop and connections are grove tasks (after patch_all they
/// share the test's thread).
fn echo_server_task() -> SocketAddr {
    let l = bind_for_burst();
    let addr = l.local_addr().unwrap();
    grove::spawn(move || loop {
        let (mut conn, _) = l.accept().unwrap();
        grove::spawn(move || {
            let mut buf = [0u8; 64];
            while let Ok(n @ 1..) = conn.read(&mut buf) {
                conn.write_all(&buf[..n]).unwrap();
            }
        });
    });
    addr
}

/// A plain std client: `rounds` echo round trips of its own number, sleeping `pause` (with
/// `std::thread::sleep`) after each. Returns the numbers it got back.
fn client(addr: SocketAddr, me: u64, rounds: usize, pause: Duration) -> Vec<u64> {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut got = Vec::new();
    for _ in 0..rounds {
        s.write_all(&me.to_le_bytes()).unwrap();
        let mut b = [0u8; 8];
        s.read_exact(&mut b).unwrap();
        got.push(u64::from_le_bytes(b));
        std::thread::sleep(pause);
    }
    got
}

#[test]
fn a_thousand_std_clients_and_a_std_server_share_one_thread() {
    let _serial = one_at_a_time();
    assert!(util::raise_nofile(4096) >= 2500, "needs ~2100 fds");
    grove::monkey::patch_all();
    assert!(grove::monkey::is_patched());
    let addr = echo_server_task();
    let start = Instant::now();
    let clients: Vec<_> = (0..1000u64)
        .map(|i| grove::spawn(move || client(addr, i, 2, Duration::from_millis(200))))
        .collect();
    for (i, c) in clients.into_iter().enumerate() {
        assert_eq!(c.join().unwrap(), vec![i as u64; 2]);
    }
    let took = start.elapsed();
    // Serially: 1000 clients x 2 sleeps x 200 ms = 400 s.
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn a_ticker_never_stalls_while_a_thousand_patched_clients_run() {
    let _serial = one_at_a_time();
    assert!(util::raise_nofile(4096) >= 2500, "needs ~2100 fds");
    grove::monkey::patch_all();
    let addr = echo_server_task();
    // The clients connect first (a burst of 1000 handshakes is plain CPU work, measured by the
    // test above); then they all run their round trips and sleeps while the ticker ticks.
    let go = grove::sync::Event::new();
    let clients: Vec<_> = (0..1000u64)
        .map(|i| {
            let go = go.clone();
            grove::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                go.wait();
                for _ in 0..3 {
                    s.write_all(&i.to_le_bytes()).unwrap();
                    let mut b = [0u8; 8];
                    s.read_exact(&mut b).unwrap();
                    assert_eq!(u64::from_le_bytes(b), i);
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        })
        .collect();
    while go.waiters() < 1000 {
        grove::sleep(Duration::from_millis(5));
    }
    let done = std::rc::Rc::new(std::cell::Cell::new(false));
    let stop = done.clone();
    let ticker = grove::spawn(move || {
        let mut worst = Duration::ZERO;
        let mut last = Instant::now();
        while !stop.get() {
            std::thread::sleep(Duration::from_millis(10)); // patched: parks the ticker only
            worst = worst.max(last.elapsed());
            last = Instant::now();
        }
        worst
    });
    go.set();
    for c in clients {
        c.join().unwrap();
    }
    done.set(true);
    let worst = ticker.join().unwrap();
    // What the ticker waits for is the CPU work of the tasks ahead of it in the run queue (a
    // thousand clients woken in the same round): ~5x more of it in an unoptimised build.
    let bound = Duration::from_millis(if cfg!(debug_assertions) { 150 } else { 50 });
    assert!(worst < bound, "the ticker waited {worst:?} between ticks");
}

/// The negative control's workload: a thread-per-connection std server on OS threads (no hub
/// there: the hooks pass straight through) and `n` grove tasks running std clients.
fn mixed_workload(n: u64) -> Duration {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let mut conn = conn.unwrap();
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    conn.write_all(&buf[..n]).unwrap();
                }
            });
        }
    });
    let start = Instant::now();
    let clients: Vec<_> = (0..n)
        .map(|i| grove::spawn(move || client(addr, i, 2, Duration::from_millis(100))))
        .collect();
    for (i, c) in clients.into_iter().enumerate() {
        assert_eq!(c.join().unwrap(), vec![i as u64; 2]);
    }
    start.elapsed()
}

#[test]
fn without_patch_all_the_same_code_runs_serially() {
    if let Some(s) = util::child_scenario() {
        if s == "patched" {
            grove::monkey::patch_all();
        }
        println!("took-ms {}", mixed_workload(10).as_millis());
        return;
    }
    let took = |scenario| {
        let _serial = one_at_a_time();
        let out = util::run_child_ok("without_patch_all_the_same_code_runs_serially", scenario);
        let ms = out
            .lines()
            .find_map(|l| l.split("took-ms ").nth(1))
            .unwrap_or_else(|| panic!("no timing in {out}"));
        Duration::from_millis(ms.trim().parse().unwrap())
    };
    let serial = took("unpatched");
    let patched = took("patched");
    // 10 clients x 2 sleeps x 100 ms, one after another without the patch.
    assert!(
        serial >= Duration::from_secs(2),
        "unpatched took {serial:?}"
    );
    assert!(patched < Duration::from_secs(1), "patched took {patched:?}");
}

#[test]
fn without_patch_all_a_std_read_stalls_the_ticker() {
    if let Some(s) = util::child_scenario() {
        if s == "patched" {
            grove::monkey::patch_all();
        }
        let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let ticker = grove::spawn(|| {
            let mut worst = Duration::ZERO;
            let mut last = Instant::now();
            for _ in 0..30 {
                grove::sleep(Duration::from_millis(10));
                worst = worst.max(last.elapsed());
                last = Instant::now();
            }
            worst
        });
        let reader = grove::spawn(move || {
            let mut buf = [0u8; 1];
            a.read_exact(&mut buf).unwrap();
            buf[0]
        });
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let mut b = b;
            b.write_all(&[7]).unwrap();
        });
        assert_eq!(reader.join().unwrap(), 7);
        println!("worst-ms {}", ticker.join().unwrap().as_millis());
        return;
    }
    let worst = |scenario| {
        let _serial = one_at_a_time();
        let out = util::run_child_ok("without_patch_all_a_std_read_stalls_the_ticker", scenario);
        let ms = out
            .lines()
            .find_map(|l| l.split("worst-ms ").nth(1))
            .unwrap_or_else(|| panic!("no timing in {out}"));
        Duration::from_millis(ms.trim().parse().unwrap())
    };
    assert!(worst("unpatched") >= Duration::from_millis(250));
    assert!(worst("patched") < Duration::from_millis(100));
}
