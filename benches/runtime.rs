//! Cross-hub messaging: latency with both hubs busy, and batched throughput — grove's
//! `sync::mpsc` between two hubs of a `Runtime`, next to tokio's mpsc between the workers of a
//! multi-thread runtime and std's mpsc between two threads, in the same run.
//!
//! Run: `cargo bench --bench runtime [-- --msgs 10000000 --pings 200000]`
//!
//! - **latency**: a ping task on hub 0 sends `Instant::now()` to a pong task on hub 1, which
//!   records how long the message took and answers; the next ping goes when the answer is
//!   back. Both hubs also run a busy task that yields in a loop, so neither hub ever sleeps in
//!   `epoll_wait`: a message is found between two batches of the busy hub. p50 / p99 / p99.9
//!   of the one-way delay.
//! - **throughput**: hub 0 sends `--msgs` integers as fast as it can on an unbounded channel;
//!   hub 1 receives them all. Messages per second, end to end.

use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let msgs = flag("--msgs", 10_000_000);
    let pings = flag("--pings", 200_000);
    println!("cross-hub latency, both hubs busy ({pings} pings, one-way delay):");
    report_latency("grove mpsc, 2 hubs", grove_latency(pings, true));
    let (tokio, same) = tokio_latency(pings);
    report_latency("tokio mpsc, 2 workers", tokio);
    println!(
        "    (tokio ran ping and pong on the same worker in {:.0}% of the rounds: it moves a \
         woken task to the waker's worker, so most of its rounds never cross threads)",
        100.0 * same
    );
    println!("cross-hub latency, both hubs idle (the receiver sleeps in epoll_wait):");
    report_latency("grove mpsc, 2 hubs", grove_latency(pings / 4, false));
    report_latency("std mpsc, 2 threads", std_latency(pings / 4));
    println!("\ncross-hub throughput, unbounded channel ({msgs} messages):");
    report_rate("grove mpsc, 2 hubs", msgs, grove_throughput(msgs));
    report_rate("tokio mpsc, 2 workers", msgs, tokio_throughput(msgs));
    report_rate("std mpsc, 2 threads", msgs, std_throughput(msgs));
}

fn report_latency(name: &str, mut samples: Vec<Duration>) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "  {name:<28} p50 {:>9.2?}  p99 {:>9.2?}  p99.9 {:>9.2?}",
        at(0.50),
        at(0.99),
        at(0.999)
    );
}

fn report_rate(name: &str, msgs: usize, took: Duration) {
    let rate = msgs as f64 / took.as_secs_f64();
    println!("  {name:<28} {:>7.2} M msgs/s ({took:.2?})", rate / 1e6);
}

fn grove_latency(pings: usize, busy: bool) -> Vec<Duration> {
    use grove::sync::mpsc;
    let rt = grove::Runtime::builder().hubs(2).build().unwrap();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for hub in (0..2).filter(|_| busy) {
        let stop = stop.clone();
        drop(rt.spawn_on(hub, move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                grove::yield_now();
            }
        }));
    }
    drop(stop_tx);
    let (to_pong, from_ping) = mpsc::channel::<Instant>();
    let (to_ping, from_pong) = mpsc::channel::<Duration>();
    let pong = rt
        .spawn_on(1, move || {
            for sent in from_ping.iter() {
                let _ = to_ping.send(sent.elapsed());
            }
        })
        .unwrap();
    let ping = rt
        .spawn_on(0, move || {
            let mut samples = Vec::with_capacity(pings);
            for _ in 0..pings {
                to_pong.send(Instant::now()).unwrap();
                samples.push(from_pong.recv().unwrap());
            }
            samples
        })
        .unwrap();
    let samples = ping.join().unwrap();
    pong.join().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(stop_rx);
    rt.shutdown(Duration::from_secs(1));
    samples
}

fn tokio_latency(pings: usize) -> (Vec<Duration>, f64) {
    use tokio::sync::mpsc;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    rt.block_on(async {
        for _ in 0..2 {
            let stop = stop.clone();
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    tokio::task::yield_now().await;
                }
            });
        }
        let (to_pong, mut from_ping) =
            mpsc::unbounded_channel::<(Instant, std::thread::ThreadId)>();
        let (to_ping, mut from_pong) = mpsc::unbounded_channel::<(Duration, bool)>();
        let pong = tokio::spawn(async move {
            while let Some((sent, from)) = from_ping.recv().await {
                let same = from == std::thread::current().id();
                let _ = to_ping.send((sent.elapsed(), same));
            }
        });
        let ping = tokio::spawn(async move {
            let mut samples = Vec::with_capacity(pings);
            let mut same = 0usize;
            for _ in 0..pings {
                to_pong
                    .send((Instant::now(), std::thread::current().id()))
                    .unwrap();
                let (d, s) = from_pong.recv().await.unwrap();
                samples.push(d);
                same += usize::from(s);
            }
            (samples, same as f64 / pings as f64)
        });
        let out = ping.await.unwrap();
        pong.await.unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        out
    })
}

fn std_latency(pings: usize) -> Vec<Duration> {
    use std::sync::mpsc;
    let (to_pong, from_ping) = mpsc::channel::<Instant>();
    let (to_ping, from_pong) = mpsc::channel::<Duration>();
    let pong = std::thread::spawn(move || {
        for sent in from_ping.iter() {
            let _ = to_ping.send(sent.elapsed());
        }
    });
    let mut samples = Vec::with_capacity(pings);
    for _ in 0..pings {
        to_pong.send(Instant::now()).unwrap();
        samples.push(from_pong.recv().unwrap());
    }
    drop(to_pong);
    pong.join().unwrap();
    samples
}

fn grove_throughput(msgs: usize) -> Duration {
    let rt = grove::Runtime::builder().hubs(2).build().unwrap();
    let (tx, rx) = grove::sync::mpsc::channel::<u64>();
    let receiver = rt
        .spawn_on(1, move || {
            let mut sum = 0u64;
            for v in rx.iter() {
                sum = sum.wrapping_add(v);
            }
            sum
        })
        .unwrap();
    let t0 = Instant::now();
    let sender = rt
        .spawn_on(0, move || {
            for i in 0..msgs as u64 {
                tx.send(i).unwrap();
            }
        })
        .unwrap();
    sender.join().unwrap();
    let sum = receiver.join().unwrap();
    let took = t0.elapsed();
    assert_eq!(sum, (0..msgs as u64).fold(0u64, u64::wrapping_add));
    rt.shutdown(Duration::from_secs(1));
    took
}

fn tokio_throughput(msgs: usize) -> Duration {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let receiver = tokio::spawn(async move {
            let mut sum = 0u64;
            while let Some(v) = rx.recv().await {
                sum = sum.wrapping_add(v);
            }
            sum
        });
        let t0 = Instant::now();
        let sender = tokio::spawn(async move {
            for i in 0..msgs as u64 {
                tx.send(i).unwrap();
            }
        });
        sender.await.unwrap();
        receiver.await.unwrap();
        t0.elapsed()
    })
}

fn std_throughput(msgs: usize) -> Duration {
    let (tx, rx) = std::sync::mpsc::channel::<u64>();
    let receiver = std::thread::spawn(move || rx.iter().fold(0u64, u64::wrapping_add));
    let t0 = Instant::now();
    for i in 0..msgs as u64 {
        tx.send(i).unwrap();
    }
    drop(tx);
    receiver.join().unwrap();
    t0.elapsed()
}
