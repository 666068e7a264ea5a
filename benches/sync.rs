//! grove::sync side by side with tokio (current_thread, tokio::sync) and may (1 worker):
//! a Queue ping-pong between two tasks, and a Mutex contended by 100 tasks that each hold it
//! across a yield.
//!
//! Run: `cargo bench --bench sync`

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

const TASKS: u64 = 100;

fn ping_pong(c: &mut Criterion) {
    may::config().set_workers(1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("queue_ping_pong");
    group.bench_function("grove", |b| {
        b.iter_custom(|iters| {
            let (ping, pong) = (
                grove::sync::Queue::bounded(1),
                grove::sync::Queue::bounded(1),
            );
            let echo = {
                let (ping, pong) = (ping.clone(), pong.clone());
                grove::spawn(move || {
                    for _ in 0..iters {
                        pong.put(ping.get().unwrap()).unwrap();
                    }
                })
            };
            let start = Instant::now();
            for i in 0..iters {
                ping.put(i).unwrap();
                std::hint::black_box(pong.get().unwrap());
            }
            let took = start.elapsed();
            echo.join().unwrap();
            took
        })
    });
    group.bench_function("tokio_current_thread", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async move {
                let (ping_tx, mut ping_rx) = tokio::sync::mpsc::channel(1);
                let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel(1);
                let echo = tokio::spawn(async move {
                    for _ in 0..iters {
                        let v: u64 = ping_rx.recv().await.unwrap();
                        pong_tx.send(v).await.unwrap();
                    }
                });
                let start = Instant::now();
                for i in 0..iters {
                    ping_tx.send(i).await.unwrap();
                    std::hint::black_box(pong_rx.recv().await.unwrap());
                }
                let took = start.elapsed();
                echo.await.unwrap();
                took
            })
        })
    });
    group.bench_function("may_1_worker", |b| {
        b.iter_custom(|iters| {
            let (ping_tx, ping_rx) = may::sync::mpsc::channel();
            let (pong_tx, pong_rx) = may::sync::mpsc::channel();
            let echo = may::go!(move || {
                for _ in 0..iters {
                    let v: u64 = ping_rx.recv().unwrap();
                    pong_tx.send(v).unwrap();
                }
            });
            let main = may::go!(move || {
                let start = Instant::now();
                for i in 0..iters {
                    ping_tx.send(i).unwrap();
                    std::hint::black_box(pong_rx.recv().unwrap());
                }
                start.elapsed()
            });
            let took = main.join().unwrap();
            echo.join().unwrap();
            took
        })
    });
    group.finish();
}

fn contended_mutex(c: &mut Criterion) {
    may::config().set_workers(1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("mutex_100_tasks");
    group.bench_function("grove", |b| {
        b.iter_custom(|iters| {
            let per_task = iters.div_ceil(TASKS);
            let m = Rc::new(grove::sync::Mutex::new(0u64));
            let start = Instant::now();
            let tasks: Vec<_> = (0..TASKS)
                .map(|_| {
                    let m = m.clone();
                    grove::spawn(move || {
                        for _ in 0..per_task {
                            let mut g = m.lock();
                            grove::yield_now();
                            *g += 1;
                        }
                    })
                })
                .collect();
            grove::join_all(tasks);
            scale(start.elapsed(), iters, per_task * TASKS)
        })
    });
    group.bench_function("tokio_current_thread", |b| {
        b.iter_custom(|iters| {
            let per_task = iters.div_ceil(TASKS);
            rt.block_on(async move {
                let m = Arc::new(tokio::sync::Mutex::new(0u64));
                let start = Instant::now();
                let tasks: Vec<_> = (0..TASKS)
                    .map(|_| {
                        let m = m.clone();
                        tokio::spawn(async move {
                            for _ in 0..per_task {
                                let mut g = m.lock().await;
                                tokio::task::yield_now().await;
                                *g += 1;
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
                scale(start.elapsed(), iters, per_task * TASKS)
            })
        })
    });
    group.bench_function("may_1_worker", |b| {
        b.iter_custom(|iters| {
            let per_task = iters.div_ceil(TASKS);
            let m = Arc::new(may::sync::Mutex::new(0u64));
            let start = Instant::now();
            let tasks: Vec<_> = (0..TASKS)
                .map(|_| {
                    let m = m.clone();
                    may::go!(move || {
                        for _ in 0..per_task {
                            let mut g = m.lock().unwrap();
                            may::coroutine::yield_now();
                            *g += 1;
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.join().unwrap();
            }
            scale(start.elapsed(), iters, per_task * TASKS)
        })
    });
    group.finish();
}

/// The time for `iters` operations, from a run that did `done` of them.
fn scale(took: Duration, iters: u64, done: u64) -> Duration {
    took.mul_f64(iters as f64 / done as f64)
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! { name = benches; config = config(); targets = ping_pong, contended_mutex }
criterion_main!(benches);
