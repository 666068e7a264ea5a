//! Switch costs, side by side in one run:
//! - greenlet switch round trip (main -> greenlet -> main) vs corosensei's raw resume + suspend;
//! - `yield_now` among 1000 ready tasks vs tokio current_thread and may with one worker.
//!
//! Run: `cargo bench --bench switch`

use std::time::{Duration, Instant};

use corosensei::Coroutine;
use criterion::{criterion_group, criterion_main, Criterion};
use grove::greenlet::{getcurrent, Greenlet};

const TASKS: u64 = 1000;

fn greenlet_round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("switch_round_trip");
    group.bench_function("grove_greenlet", |b| {
        let main = getcurrent::<()>();
        let g = Greenlet::new(move |()| loop {
            main.switch(());
        });
        b.iter(|| g.switch(()));
    });
    group.bench_function("corosensei_raw", |b| {
        let mut co: Coroutine<(), (), ()> = Coroutine::new(|y, ()| loop {
            y.suspend(());
        });
        b.iter(|| co.resume(()));
    });
    group.finish();
}

/// Runs `TASKS` tasks that each yield `per_task` times; returns the time per yield.
fn grove_yields(iters: u64) -> Duration {
    let per_task = (iters / TASKS).max(1);
    let handles: Vec<_> = (0..TASKS)
        .map(|_| {
            grove::spawn(move || {
                for _ in 0..per_task {
                    grove::yield_now();
                }
            })
        })
        .collect();
    let start = Instant::now();
    grove::join_all(handles);
    scale(start.elapsed(), iters, per_task * TASKS)
}

fn tokio_yields(rt: &tokio::runtime::Runtime, iters: u64) -> Duration {
    let per_task = (iters / TASKS).max(1);
    rt.block_on(async move {
        let handles: Vec<_> = (0..TASKS)
            .map(|_| {
                tokio::spawn(async move {
                    for _ in 0..per_task {
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        let start = Instant::now();
        for h in handles {
            h.await.unwrap();
        }
        scale(start.elapsed(), iters, per_task * TASKS)
    })
}

fn may_yields(iters: u64) -> Duration {
    let per_task = (iters / TASKS).max(1);
    let start = Instant::now();
    let handles: Vec<_> = (0..TASKS)
        .map(|_| {
            may::go!(move || {
                for _ in 0..per_task {
                    may::coroutine::yield_now();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    scale(start.elapsed(), iters, per_task * TASKS)
}

/// Scales a measured time for `done` operations to `iters` operations.
fn scale(elapsed: Duration, iters: u64, done: u64) -> Duration {
    Duration::from_secs_f64(elapsed.as_secs_f64() * iters as f64 / done as f64)
}

fn yield_among_1000(c: &mut Criterion) {
    may::config().set_workers(1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("yield_now_1000_tasks");
    group.bench_function("grove", |b| b.iter_custom(grove_yields));
    group.bench_function("tokio_current_thread", |b| {
        b.iter_custom(|n| tokio_yields(&rt, n))
    });
    group.bench_function("may_1_worker", |b| b.iter_custom(may_yields));
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

criterion_group! { name = benches; config = config(); targets = greenlet_round_trip, yield_among_1000 }
criterion_main!(benches);
