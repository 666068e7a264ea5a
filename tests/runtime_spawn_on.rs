//! `Runtime::spawn_on`: tasks start on the hub asked for and stay there; their `Send` join
//! handles can be joined from a plain thread or from a task on another hub; panics stay in
//! their task; kills cross hubs.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use grove::runtime::SpawnError;
use grove::{current_hub, Runtime};

fn runtime(hubs: usize) -> Runtime {
    Runtime::builder().hubs(hubs).build().expect("runtime")
}

#[test]
fn tasks_run_on_the_hub_asked_for_and_never_move() {
    let rt = runtime(3);
    assert_eq!(rt.hubs(), 3);
    assert_eq!(current_hub(), None, "main is not a runtime hub");
    let handles: Vec<_> = (0..3)
        .map(|hub| {
            rt.spawn_on(hub, move || {
                let before = (current_hub(), std::thread::current().id());
                grove::sleep(Duration::from_millis(5));
                grove::yield_now();
                let after = (current_hub(), std::thread::current().id());
                assert_eq!(before, after, "a task moved");
                before.0
            })
            .unwrap()
        })
        .collect();
    for (hub, h) in handles.into_iter().enumerate() {
        assert_eq!(h.hub(), hub);
        assert_eq!(h.join().unwrap(), Some(hub));
    }
}

#[test]
fn a_spawn_on_task_may_use_rc_and_spawn_local_tasks() {
    let rt = runtime(2);
    let h = rt
        .spawn_on(1, || {
            let shared = Rc::new(RefCell::new(Vec::new()));
            let local: Vec<_> = (0..10)
                .map(|i| {
                    let shared = shared.clone();
                    grove::spawn(move || shared.borrow_mut().push(i))
                })
                .collect();
            grove::join_all(local);
            let v = shared.borrow().clone();
            v.len()
        })
        .unwrap();
    assert_eq!(h.join().unwrap(), 10);
}

#[test]
fn a_task_on_one_hub_joins_a_task_on_another_by_parking() {
    let rt = runtime(2);
    let handle = rt.handle();
    let outer = rt
        .spawn_on(0, move || {
            let inner = handle
                .spawn_on(1, || {
                    grove::sleep(Duration::from_millis(20));
                    current_hub()
                })
                .unwrap();
            // While this task parks in join, another task of hub 0 keeps running.
            let ticks = Rc::new(RefCell::new(0));
            let t = ticks.clone();
            let ticker = grove::spawn(move || {
                for _ in 0..5 {
                    *t.borrow_mut() += 1;
                    grove::sleep(Duration::from_millis(1));
                }
            });
            let got = inner.join().unwrap();
            ticker.join().unwrap();
            let n = *ticks.borrow();
            (got, n)
        })
        .unwrap();
    let (got, ticks) = outer.join().unwrap();
    assert_eq!(got, Some(1));
    assert_eq!(ticks, 5);
}

#[test]
fn spawn_on_from_inside_a_hub_and_its_errors() {
    let rt = runtime(2);
    let h = rt
        .spawn_on(0, || {
            let other = grove::spawn_on(1, current_hub).unwrap();
            let missing = grove::spawn_on(7, || ()).unwrap_err();
            (other.join().unwrap(), missing)
        })
        .unwrap();
    let (other, missing) = h.join().unwrap();
    assert_eq!(other, Some(1));
    assert_eq!(missing, SpawnError::NoSuchHub { hub: 7, hubs: 2 });
    assert_eq!(
        grove::spawn_on(0, || ()).unwrap_err(),
        SpawnError::NoRuntime
    );
}

#[test]
fn a_panic_stays_in_its_task_and_every_hub_keeps_serving() {
    let rt = runtime(2);
    let bad = rt
        .spawn_on(0, || -> u32 { panic!("boom on hub 0") })
        .unwrap();
    let err = bad.join().unwrap_err();
    assert_eq!(err.panic_message(), Some("boom on hub 0"));
    for hub in 0..2 {
        assert_eq!(
            rt.spawn_on(hub, move || hub * 10).unwrap().join().unwrap(),
            hub * 10
        );
    }
}

#[test]
fn kill_across_hubs_unwinds_the_task_and_join_reports_it() {
    let rt = runtime(2);
    let dropped = Arc::new(AtomicBool::new(false));
    let d = dropped.clone();
    let (started_tx, started_rx) = grove::sync::mpsc::channel();
    let h = rt
        .spawn_on(1, move || {
            struct Flag(Arc<AtomicBool>);
            impl Drop for Flag {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::SeqCst);
                }
            }
            let _flag = Flag(d);
            started_tx.send(()).unwrap();
            grove::sleep(Duration::MAX);
        })
        .unwrap();
    started_rx.recv().unwrap();
    h.kill();
    assert!(h.is_finished());
    assert!(dropped.load(Ordering::SeqCst), "the killed task's Drop ran");
    assert!(h.join().unwrap_err().is_killed());
}

#[test]
fn join_handles_are_joined_from_plain_threads() {
    let rt = runtime(2);
    let handles: Vec<_> = (0..8)
        .map(|i| rt.spawn_on(i % 2, move || i * i).unwrap())
        .collect();
    let joiner = std::thread::spawn(move || {
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum::<usize>()
    });
    assert_eq!(joiner.join().unwrap(), (0..8).map(|i| i * i).sum::<usize>());
}

#[test]
fn zero_hubs_is_an_error() {
    let err = Runtime::builder().hubs(0).build().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn pinned_hubs_with_names_and_stack_size() {
    let rt = Runtime::builder()
        .hubs(2)
        .pin_cores(true)
        .thread_name("pinned")
        .stack_size(2 * 1024 * 1024)
        .build()
        .unwrap();
    let name = rt
        .spawn_on(1, || std::thread::current().name().map(String::from))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(name.as_deref(), Some("pinned-1"));
    // A deep-ish recursion that needs more than the default 128 KiB (in debug builds too).
    fn depth(n: u32) -> u32 {
        let pad = [n as u8; 1024];
        if n == 0 {
            u32::from(std::hint::black_box(pad)[0])
        } else {
            depth(n - 1) + u32::from(std::hint::black_box(pad)[1] > 0)
        }
    }
    let d = rt.spawn_on(0, || depth(150)).unwrap().join().unwrap();
    assert_eq!(d, 150);
}
