//! Spawn + join of a trivial task, side by side: grove vs tokio current_thread vs may with one
//! worker.
//!
//! Run: `cargo bench --bench spawn`

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

fn spawn_join(c: &mut Criterion) {
    may::config().set_workers(1);
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
criterion_main!(benches);
