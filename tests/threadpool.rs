//! The thread pool never deadlocks on nested blocking work, and a pool that cannot make
//! progress is reported. Each scenario changes the process-wide pool limit, so it runs in a
//! child process, killed (and the test failed) if it hangs.

mod util;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use grove::threadpool::{set_max_threads, spawn_blocking};

/// Hangs without the fix; bounded here so CI fails instead of hanging.
const LIMIT: Duration = Duration::from_secs(20);

#[track_caller]
fn in_child(test: &str, scenario: &str, run: fn()) {
    if let Some(s) = util::child_scenario() {
        assert_eq!(s, scenario);
        run();
        println!("scenario {scenario} done");
        return;
    }
    let out = util::run_child_within(test, scenario, LIMIT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("scenario {scenario} done")),
        "{stdout}"
    );
}

#[test]
fn nested_spawn_blocking_with_one_thread_completes() {
    in_child(
        "nested_spawn_blocking_with_one_thread_completes",
        "nested",
        || {
            set_max_threads(1);
            let v = spawn_blocking(|| spawn_blocking(|| 42) + 1);
            assert_eq!(v, 43);
            // Three levels, and a panic from the innermost reaches the outermost caller.
            assert_eq!(
                spawn_blocking(|| spawn_blocking(|| spawn_blocking(|| 7))),
                7
            );
            let panicked = grove::spawn(|| spawn_blocking(|| spawn_blocking(|| panic!("deep"))));
            let err = panicked.join().unwrap_err();
            assert_eq!(err.panic_message(), Some("deep"));
        },
    );
}

#[test]
fn lookup_host_inside_a_pool_job_completes() {
    in_child("lookup_host_inside_a_pool_job_completes", "lookup", || {
        set_max_threads(1);
        let addrs = spawn_blocking(|| {
            grove::net::lookup_host("localhost:80").map(|a| a.collect::<Vec<_>>())
        })
        .unwrap();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
    });
}

#[test]
fn many_concurrent_nested_calls_at_the_default_size_complete() {
    in_child(
        "many_concurrent_nested_calls_at_the_default_size_complete",
        "concurrent",
        || {
            let n = grove::threadpool::max_threads();
            // Each round fills every worker with an outer job whose inner call must not queue
            // behind the outer ones; the barrier makes all outer jobs hold a worker at once.
            for round in 0..20 {
                let barrier = std::sync::Arc::new(std::sync::Barrier::new(n));
                let tasks: Vec<_> = (0..n)
                    .map(|i| {
                        let b = barrier.clone();
                        grove::spawn(move || {
                            spawn_blocking(move || {
                                b.wait();
                                spawn_blocking(move || i * round)
                            })
                        })
                    })
                    .collect();
                let got: Vec<usize> = grove::join_all(tasks)
                    .into_iter()
                    .map(Result::unwrap)
                    .collect();
                assert_eq!(got, (0..n).map(|i| i * round).collect::<Vec<_>>());
            }
        },
    );
}

#[test]
fn a_stalled_pool_is_reported_and_raising_the_limit_unblocks_it() {
    in_child(
        "a_stalled_pool_is_reported_and_raising_the_limit_unblocks_it",
        "stall",
        stall_child,
    );
}

/// Job A waits for a value job B sends; with one worker B can never start while A holds it.
fn stall_child() {
    util::capture_logs();
    log::set_max_level(log::LevelFilter::Warn);
    set_max_threads(1);
    let (tx, rx) = mpsc::channel::<u32>();
    let a = grove::spawn(move || spawn_blocking(move || rx.recv().unwrap()));
    grove::yield_now(); // A is submitted first and takes the only worker
    let b = grove::spawn(move || spawn_blocking(move || tx.send(5).unwrap()));
    let start = Instant::now();
    let report = loop {
        let found = util::logged()
            .into_iter()
            .find(|l| l.contains("thread pool is stalled"));
        if let Some(line) = found {
            break line;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no stall report");
        grove::sleep(Duration::from_millis(20));
    };
    assert!(report.starts_with("WARN"), "{report}");
    assert!(report.contains("1 worker thread(s) busy"), "{report}");
    assert!(report.contains("max_threads 1"), "{report}");
    assert!(report.contains("1 job(s) queued"), "{report}");
    assert!(report.contains("set_max_threads"), "{report}");
    set_max_threads(2); // starts a worker for B, which unblocks A
    b.join().unwrap();
    assert_eq!(a.join().unwrap(), 5);
}

#[test]
fn a_busy_pool_is_not_reported_while_jobs_start_promptly() {
    util::capture_logs();
    log::set_max_level(log::LevelFilter::Warn);
    let tasks: Vec<_> = (0..50)
        .map(|i| grove::spawn(move || spawn_blocking(move || i * 2)))
        .collect();
    for (i, r) in grove::join_all(tasks).into_iter().enumerate() {
        assert_eq!(r.unwrap(), i * 2);
    }
    assert!(
        !util::logged().iter().any(|l| l.contains("stalled")),
        "{:?}",
        util::logged()
    );
}
