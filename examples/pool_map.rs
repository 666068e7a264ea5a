//! A `Pool` of 10 tasks processes 100 jobs that each sleep 10 ms: about 100 ms in all, where
//! running them one after another takes about 1 s.
//!
//! Run: `cargo run --example pool_map`

use std::time::{Duration, Instant};

use grove::sync::Pool;

/// A job: "fetch" something slow, return a result.
fn job(n: u64) -> u64 {
    grove::sleep(Duration::from_millis(10));
    n * n
}

fn main() {
    env_logger::init();
    run(10, 100);
}

/// Runs `jobs` jobs sequentially, then in a pool of `size`; returns the speed-up.
pub fn run(size: usize, jobs: u64) -> f64 {
    let start = Instant::now();
    let sequential: Vec<u64> = (0..jobs).map(job).collect();
    let seq_time = start.elapsed();
    println!("sequential: {jobs} jobs in {seq_time:?}");

    let pool = Pool::new(size);
    let start = Instant::now();
    let pooled = pool.map(job, 0..jobs);
    let pool_time = start.elapsed();
    println!("pool of {size}: {jobs} jobs in {pool_time:?}");

    assert_eq!(pooled, sequential, "map keeps the input order");
    let speedup = seq_time.as_secs_f64() / pool_time.as_secs_f64();
    println!("speed-up: {speedup:.1}x (results in input order)");
    speedup
}
