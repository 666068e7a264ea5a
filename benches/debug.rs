//! What `grove::debug` costs: a task dump of many parked tasks, streamed with `dump_to` (total
//! time, and how long the hub is paused per chunk of 1000 tasks, which is the time between two
//! chunk writes), and `dump()` in one go.
//!
//! Run: `cargo bench --bench debug` (1,000,000 tasks), `cargo bench --bench debug -- 100000`.

use std::io::{self, Write};
use std::time::{Duration, Instant};

/// A sink that records when each chunk arrives.
struct Timed {
    last: Instant,
    gaps: Vec<Duration>,
    bytes: usize,
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let now = Instant::now();
        self.gaps.push(now - self.last);
        self.bytes += buf.len();
        // The time to hand the chunk on is not the hub's pause: start the next gap after it.
        self.last = Instant::now();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let wake_at = Instant::now() + Duration::from_secs(3600);
    let parked = std::rc::Rc::new(std::cell::Cell::new(0usize));
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let parked = parked.clone();
        let b = if i % 10 == 0 {
            grove::Builder::new().name(format!("worker-{i}"))
        } else {
            grove::Builder::new()
        };
        handles.push(
            b.spawn(move || {
                parked.set(parked.get() + 1);
                grove::sleep_until(wake_at);
            })
            .expect("spawn"),
        );
    }
    while parked.get() < n {
        grove::yield_now();
    }
    println!("{n} parked tasks (every tenth named)");
    for round in 0..3 {
        let mut sink = Timed {
            last: Instant::now(),
            gaps: Vec::new(),
            bytes: 0,
        };
        let start = Instant::now();
        let tasks = grove::debug::dump_to(&mut sink).expect("dump");
        let took = start.elapsed();
        let mut gaps = sink.gaps.clone();
        gaps.sort();
        let median = gaps[gaps.len() / 2];
        let p99 = gaps[gaps.len() * 99 / 100];
        let max = *gaps.last().expect("chunks");
        println!(
            "dump_to, round {round}: {tasks} tasks, {:.1} MB in {took:.2?}; hub paused per chunk \
             of 500 tasks: median {median:.1?}, p99 {p99:.1?}, max {max:.1?}",
            sink.bytes as f64 / 1e6
        );
    }
    let start = Instant::now();
    let d = grove::debug::dump();
    println!(
        "dump() in one go: {} tasks, {:.1} MB in {:.2?}",
        d.tasks(),
        d.as_str().len() as f64 / 1e6,
        start.elapsed()
    );
    // Exit without unwinding a million tasks.
    std::process::exit(0);
}
