//! `process::Pool`: pre-forked workers, `apply_async` with callbacks, `map`, panics, dead
//! workers. Each scenario runs in a re-executed, single-threaded copy of this binary.

mod util;

use util::isolated;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use grove::process::{JobError, Pool};

fn slow_square(x: u64) -> u64 {
    grove::sleep(Duration::from_millis(200));
    x * x
}

#[test]
fn apply_async_runs_jobs_in_parallel_and_calls_back() {
    isolated("apply_async_runs_jobs_in_parallel_and_calls_back", || {
        let pool = Pool::new(5).unwrap();
        let results = Rc::new(RefCell::new(Vec::new()));
        let start = Instant::now();
        for i in 0..10u64 {
            let results = results.clone();
            pool.apply_async_with_callback(slow_square, i, move |r| results.borrow_mut().push(r));
        }
        pool.close();
        pool.join().unwrap();
        let took = start.elapsed();
        let mut got = results.borrow().clone();
        got.sort();
        assert_eq!(got, (0..10).map(|i| i * i).collect::<Vec<_>>());
        // 10 jobs of 200 ms on 5 workers: two rounds, not ten.
        assert!(took < Duration::from_millis(1500), "took {took:?}");
    });
}

#[test]
fn map_keeps_order_and_workers_are_processes() {
    isolated("map_keeps_order_and_workers_are_processes", || {
        let pool = Pool::new(3).unwrap();
        assert_eq!(pool.processes(), 3);
        let out = pool.map(|x: i32| x - 1, [5, 4, 3, 2, 1]).unwrap();
        assert_eq!(out, [4, 3, 2, 1, 0]);
        let pids = pool.map(|_: ()| std::process::id(), vec![(); 12]).unwrap();
        assert!(pids.iter().all(|p| *p != std::process::id()));
        let mut workers = pool.worker_pids();
        workers.sort();
        assert!(pids.iter().all(|p| workers.binary_search(p).is_ok()));
    });
}

#[test]
fn a_panicking_job_is_reported_and_the_worker_goes_on() {
    isolated("a_panicking_job_is_reported_and_the_worker_goes_on", || {
        let pool = Pool::new(1).unwrap();
        let err = pool
            .apply(|x: u32| -> u32 { panic!("bad input {x}") }, 7)
            .unwrap_err();
        match err {
            JobError::Panicked(msg) => assert!(msg.contains("bad input 7"), "{msg}"),
            other => panic!("unexpected {other:?}"),
        }
        let before = pool.worker_pids();
        assert_eq!(pool.apply(|x: u32| x + 1, 1).unwrap(), 2);
        assert_eq!(pool.worker_pids(), before);
    });
}

#[test]
fn a_worker_that_dies_is_reported_and_replaced() {
    isolated("a_worker_that_dies_is_reported_and_replaced", || {
        let pool = Pool::new(2).unwrap();
        let err = pool
            .apply(|code: i32| -> u32 { std::process::exit(code) }, 3)
            .unwrap_err();
        match err {
            JobError::WorkerDied(Some(s)) => assert_eq!(s.code(), Some(3)),
            other => panic!("unexpected {other:?}"),
        }
        let squares = pool.map(|x: u64| x * x, 0..20).unwrap();
        assert_eq!(squares[19], 361);
        assert_eq!(pool.worker_pids().len(), 2);
        pool.close();
        pool.join().unwrap();
    });
}

#[test]
fn jobs_after_close_fail_and_drop_terminates() {
    isolated("jobs_after_close_fail_and_drop_terminates", || {
        let pool = Pool::new(2).unwrap();
        let stuck = pool.apply_async(slow_square, 3);
        pool.close();
        assert!(matches!(
            pool.apply(|x: u8| x, 1).unwrap_err(),
            JobError::Closed
        ));
        let pids = pool.worker_pids();
        drop(pool);
        // The workers are gone (killed and reaped): signalling them fails.
        for pid in pids {
            // SAFETY: kill with signal 0 only checks that the process exists.
            assert_eq!(unsafe { libc::kill(pid as i32, 0) }, -1);
        }
        assert!(stuck.get().is_err());
    });
}
