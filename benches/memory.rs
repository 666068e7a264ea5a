//! Memory, each scenario in a fresh child process:
//!
//! - **parked tasks**: spawns N tasks that all sleep, waits until every one of them is parked,
//!   and reports (RSS after - RSS before) / N, plus page-table memory, which the kernel does not
//!   count in RSS;
//! - **memory given back after a burst**: RSS before a burst, right after it (every task
//!   joined), and after 200 ms with the hub idle, for two bursts: `touch` (10,000 tasks alive at
//!   once, each touching 64 KiB of its stack) and `short` (200,000 tasks spawned, then joined).
//!
//! Run: `cargo bench --bench memory` (everything), `cargo bench --bench memory -- 250000` for
//! other parked counts, `cargo bench --bench memory -- touch short` for the bursts only.

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

/// Writes `kib` KiB of the current stack.
#[inline(never)]
fn touch_stack(kib: usize) {
    let mut buf = [0u8; 1024];
    std::hint::black_box(&mut buf);
    if kib > 1 {
        touch_stack(kib - 1);
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Runs one burst and reports resident memory before, right after, and after an idle pause.
fn burst(kind: &str) {
    grove::spawn(|| ()).join().unwrap();
    let (rss0, pte0) = (status_kib("VmRSS:"), status_kib("VmPTE:"));
    let start = Instant::now();
    let what = match kind {
        "touch" => {
            let handles: Vec<_> = (0..10_000)
                .map(|_| {
                    grove::spawn(|| {
                        touch_stack(64);
                        grove::yield_now();
                    })
                })
                .collect();
            grove::join_all(handles);
            "10,000 tasks touching 64 KiB each"
        }
        "short" => {
            let handles: Vec<_> = (0..200_000u32).map(|i| grove::spawn(move || i)).collect();
            grove::join_all(handles);
            "200,000 short tasks"
        }
        other => panic!("unknown burst {other:?}"),
    };
    let took = start.elapsed();
    let (peak, rss1, pte1) = (
        status_kib("VmHWM:"),
        status_kib("VmRSS:"),
        status_kib("VmPTE:"),
    );
    grove::sleep(Duration::from_millis(200));
    let (rss2, pte2) = (status_kib("VmRSS:"), status_kib("VmPTE:"));
    println!(
        "burst of {what} (took {took:.2?}): RSS before {:.1} MiB, peak {:.1} MiB, right after \
         {:.1} MiB, after 200 ms idle {:.1} MiB (+{:.1} MiB over before); page tables {:.1} → \
         {:.1} → {:.1} MiB",
        mib(rss0),
        mib(peak),
        mib(rss1),
        mib(rss2),
        mib(rss2) - mib(rss0),
        mib(pte0),
        mib(pte1),
        mib(pte2),
    );
    std::process::exit(0);
}

fn main() {
    if let Ok(arg) = std::env::var(CHILD) {
        match arg.parse() {
            Ok(n) => measure(n),
            Err(_) => burst(&arg),
        }
    }
    let max_maps = std::fs::read_to_string("/proc/sys/vm/max_map_count").unwrap_or_default();
    println!("vm.max_map_count = {}", max_maps.trim());
    // Only our own arguments: flags cargo passes (`--bench`) are ignored.
    let mut runs: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a.parse::<usize>().is_ok() || a == "touch" || a == "short")
        .collect();
    if runs.is_empty() {
        runs = ["100000", "1000000", "touch", "short"]
            .map(String::from)
            .to_vec();
    }
    for run in runs {
        let exe = std::env::current_exe().expect("bench binary");
        let status = Command::new(exe).env(CHILD, &run).status().expect("child");
        assert!(status.success(), "the {run} run failed");
    }
}
