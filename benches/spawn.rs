//! Spawning tasks, side by side: grove vs tokio current_thread vs may with one worker.
//!
//! - `spawn_join`: spawn one trivial task and join it, over and over (criterion);
//! - `bulk`: spawn 200,000 trivial tasks, then join them all; prints the cost per task of the
//!   first burst in a fresh process and the median and best of the next ones, the three
//!   runtimes taking turns.
//!
//! Run: `cargo bench --bench spawn` (both), `cargo bench --bench spawn -- bulk` (bulk only).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};

fn spawn_join(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("spawn_join");
    group.bench_function("grove", |b| {
        b.iter(|| grove::spawn(|| std::hint::black_box(1u64)).join().unwrap())
    });
    group.bench_function("tokio_current_thread", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async move {
                let start = Instant::now();
                for _ in 0..iters {
                    tokio::spawn(async { std::hint::black_box(1u64) })
                        .await
                        .unwrap();
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("may_1_worker", |b| {
        b.iter(|| may::go!(|| std::hint::black_box(1u64)).join().unwrap())
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

criterion_group! { name = benches; config = config(); targets = spawn_join }

/// Tasks per burst in the bulk benchmark.
const BULK: usize = 200_000;

/// Rounds of the bulk benchmark, each runtime once per round.
const ROUNDS: usize = 8;

fn bulk_grove() -> Duration {
    let start = Instant::now();
    let handles: Vec<_> = (0..BULK)
        .map(|i| grove::spawn(move || black_box(i)))
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    start.elapsed()
}

fn bulk_tokio(rt: &tokio::runtime::Runtime) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        let handles: Vec<_> = (0..BULK)
            .map(|i| tokio::spawn(async move { black_box(i) }))
            .collect();
        for h in handles {
            h.await.unwrap();
        }
        start.elapsed()
    })
}

fn bulk_may() -> Duration {
    let start = Instant::now();
    let handles: Vec<_> = (0..BULK).map(|i| may::go!(move || black_box(i))).collect();
    for h in handles {
        h.join().unwrap();
    }
    start.elapsed()
}

/// Per-task cost of the first burst, then median and best of the others, in µs.
fn report(name: &str, runs: &mut [Duration]) {
    let per_task = |d: Duration| d.as_secs_f64() * 1e6 / BULK as f64;
    let first = per_task(runs[0]);
    let rest = &mut runs[1..];
    rest.sort();
    println!(
        "bulk/{name:<22} first burst {first:.3} µs/task; then median {:.3}, best {:.3} µs/task \
         ({} bursts of {BULK})",
        per_task(rest[rest.len() / 2]),
        per_task(rest[0]),
        rest.len()
    );
}

fn bulk() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (mut g, mut t, mut m) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        g.push(bulk_grove());
        t.push(bulk_tokio(&rt));
        m.push(bulk_may());
    }
    println!("spawn {BULK} tasks, then join them all:");
    report("grove", &mut g);
    report("tokio_current_thread", &mut t);
    report("may_1_worker", &mut m);
}

fn main() {
    may::config().set_workers(1);
    // Our own filter: a bare word on the command line selects benchmarks by name.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if filters.is_empty() || filters.iter().any(|f| !"bulk".contains(f.as_str())) {
        benches();
        Criterion::default().configure_from_args().final_summary();
    }
    if filters.is_empty() || filters.iter().any(|f| "bulk".contains(f.as_str())) {
        bulk();
    }
}
