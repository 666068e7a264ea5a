//! Resident memory per parked task: spawns N tasks that all sleep, waits until every one of
//! them is parked, and reports (RSS after - RSS before) / N, plus page-table memory, which the
//! kernel does not count in RSS. Each N runs in a fresh child process.
//!
//! Run: `cargo bench --bench memory` (N = 100,000 and 1,000,000), or
//! `cargo bench --bench memory -- 250000` for other counts.

use std::process::Command;
use std::time::{Duration, Instant};

const CHILD: &str = "GROVE_MEMORY_CHILD";

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps").map_or(0, |m| m.lines().count())
}

fn measure(n: usize) {
    let (rss0, pte0) = (status_kib("VmRSS:"), status_kib("VmPTE:"));
    let start = Instant::now();
    let parked = std::rc::Rc::new(std::cell::Cell::new(0usize));
    let wake_at = Instant::now() + Duration::from_secs(3600);
    let mut handles = Vec::with_capacity(n);
    for _ in 0..n {
        let parked = parked.clone();
        let h = grove::Builder::new().spawn(move || {
            parked.set(parked.get() + 1);
            grove::sleep_until(wake_at);
        });
        match h {
            Ok(h) => handles.push(h),
            Err(e) => {
                println!("spawn failed after {} tasks: {e}", handles.len());
                std::process::exit(1);
            }
        }
    }
    while parked.get() < n {
        grove::yield_now();
    }
    let took = start.elapsed();
    let (rss, pte) = (status_kib("VmRSS:"), status_kib("VmPTE:"));
    let per_task = (rss - rss0) as f64 * 1024.0 / n as f64;
    let pte_per_task = (pte - pte0) as f64 * 1024.0 / n as f64;
    println!(
        "{n:>9} parked tasks: RSS +{:.2} GiB = {per_task:.0} B/task; page tables +{:.2} GiB = \
         {pte_per_task:.0} B/task; total {:.2} GiB; {} mappings; spawned and parked in {took:.2?}",
        (rss - rss0) as f64 / 1048576.0,
        (pte - pte0) as f64 / 1048576.0,
        (rss + pte - rss0 - pte0) as f64 / 1048576.0,
        map_count(),
    );
    // Exit without unwinding a million tasks.
    std::process::exit(0);
}

fn main() {
    if let Ok(n) = std::env::var(CHILD) {
        measure(n.parse().expect("task count"));
    }
    let max_maps = std::fs::read_to_string("/proc/sys/vm/max_map_count").unwrap_or_default();
    println!("vm.max_map_count = {}", max_maps.trim());
    let counts: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let counts = if counts.is_empty() {
        vec![100_000, 1_000_000]
    } else {
        counts
    };
    for n in counts {
        let exe = std::env::current_exe().expect("bench binary");
        let status = Command::new(exe)
            .env(CHILD, n.to_string())
            .status()
            .expect("child");
        assert!(status.success(), "the {n}-task run failed");
    }
}
