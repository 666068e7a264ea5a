//! grove::sync side by side with tokio (current_thread, tokio::sync) and may (1 worker):
//! a Queue ping-pong between two tasks, and a Mutex contended by 100 tasks that each hold it
//! across a yield (criterion); then, as plain timed sections, 100,000 parked waiters drained one
//! item at a time (`wait_queue_drain`: Queue and Channel getters and putters, beside tokio's
//! same-shape figures; may is left out: it does not survive 100,000 parked coroutines here).
//!
//! Run: `cargo bench --bench sync` (`cargo bench --bench sync -- wait_queue_drain` for the
//! drain figures alone).

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};

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

/// Parked waiters per drain run.
const WAITERS: usize = 100_000;

/// Spawns `n` grove tasks running `wait`, lets them all park, then times `feed` once per task,
/// each followed by a yield that lets the woken task finish.
fn grove_drain(n: usize, wait: impl Fn() + Clone + 'static, feed: impl Fn()) -> Duration {
    let tasks: Vec<_> = (0..n).map(|_| grove::spawn(wait.clone())).collect();
    grove::yield_now();
    let start = Instant::now();
    for _ in 0..n {
        feed();
        grove::yield_now();
    }
    let took = start.elapsed();
    assert!(tasks.iter().all(|t| t.is_finished()));
    took
}

fn grove_queue_getters(n: usize) -> Duration {
    let q = grove::sync::Queue::new();
    let qq = q.clone();
    let get = move || {
        std::hint::black_box(qq.get().unwrap());
    };
    grove_drain(n, get, || q.put(1u64).unwrap())
}

fn grove_queue_putters(n: usize) -> Duration {
    let q = grove::sync::Queue::bounded(1);
    q.put(0u64).unwrap();
    let qq = q.clone();
    grove_drain(
        n,
        move || qq.put(1).unwrap(),
        || {
            std::hint::black_box(q.get().unwrap());
        },
    )
}

fn grove_channel_getters(n: usize) -> Duration {
    let ch = grove::sync::Channel::new();
    let c = ch.clone();
    let get = move || {
        std::hint::black_box(c.get().unwrap());
    };
    grove_drain(n, get, || ch.put(1u64).unwrap())
}

fn grove_channel_putters(n: usize) -> Duration {
    let ch = grove::sync::Channel::new();
    let c = ch.clone();
    grove_drain(
        n,
        move || c.put(1u64).unwrap(),
        || {
            std::hint::black_box(ch.get().unwrap());
        },
    )
}

/// tokio's same shape for parked putters: `n` senders parked on a full bounded mpsc channel,
/// drained by the receiver one item at a time.
fn tokio_mpsc_senders(rt: &tokio::runtime::Runtime, n: usize) -> Duration {
    rt.block_on(async move {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        tx.send(0u64).await.unwrap();
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let tx = tx.clone();
                tokio::spawn(async move { tx.send(1).await.unwrap() })
            })
            .collect();
        tokio::task::yield_now().await;
        let start = Instant::now();
        for _ in 0..n {
            std::hint::black_box(rx.recv().await.unwrap());
            tokio::task::yield_now().await;
        }
        let took = start.elapsed();
        for t in tasks {
            t.await.unwrap();
        }
        took
    })
}

/// tokio's nearest shape for parked getters (its mpsc has one receiver): `n` tasks parked in
/// `Semaphore::acquire`, fed one permit at a time.
fn tokio_semaphore_acquirers(rt: &tokio::runtime::Runtime, n: usize) -> Duration {
    rt.block_on(async move {
        let sem = Arc::new(tokio::sync::Semaphore::new(0));
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let sem = sem.clone();
                tokio::spawn(async move { sem.acquire().await.unwrap().forget() })
            })
            .collect();
        tokio::task::yield_now().await;
        let start = Instant::now();
        for _ in 0..n {
            sem.add_permits(1);
            tokio::task::yield_now().await;
        }
        let took = start.elapsed();
        for t in tasks {
            t.await.unwrap();
        }
        took
    })
}

/// The drain figures: best of three runs of `WAITERS` waiters each (one short run under
/// `cargo test --benches`).
fn wait_queue_drain() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let wanted =
        |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let quick = !args.iter().any(|a| a == "--bench");
    let (n, runs) = if quick { (1_000, 1) } else { (WAITERS, 3) };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let cases: [(&str, &dyn Fn() -> Duration); 6] = [
        ("grove_queue_getters", &|| grove_queue_getters(n)),
        ("grove_queue_putters", &|| grove_queue_putters(n)),
        ("grove_channel_getters", &|| grove_channel_getters(n)),
        ("grove_channel_putters", &|| grove_channel_putters(n)),
        ("tokio_semaphore_acquirers", &|| {
            tokio_semaphore_acquirers(&rt, n)
        }),
        ("tokio_mpsc_senders", &|| tokio_mpsc_senders(&rt, n)),
    ];
    for (name, run) in cases {
        let name = format!("wait_queue_drain/{name}");
        if !wanted(&name) {
            continue;
        }
        let best = (0..runs).map(|_| run()).min().unwrap();
        println!(
            "{name:<42} {n} parked waiters drained in {:>8.2} ms ({:.0} ns per waiter)",
            best.as_secs_f64() * 1e3,
            best.as_nanos() as f64 / n as f64
        );
    }
}

fn main() {
    benches();
    wait_queue_drain();
    Criterion::default().configure_from_args().final_summary();
}
