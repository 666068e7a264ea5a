//! `Runtime::shutdown` and drop: running tasks get the timeout to finish, the rest are killed
//! (their `Drop`s run, their join handles say `Killed`), and a hub that has shut down refuses
//! `spawn_on` with an error instead of hanging.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod util;

use grove::runtime::SpawnError;
use grove::sync::mpsc;
use grove::Runtime;

struct Flag(Arc<AtomicBool>);

impl Drop for Flag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn tasks_finish_within_the_timeout_and_the_rest_are_killed() {
    let rt = Runtime::builder().hubs(2).build().unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let s = started_tx.clone();
    let quick = rt
        .spawn_on(0, move || {
            s.send(()).unwrap();
            grove::sleep(Duration::from_millis(30));
            "finished"
        })
        .unwrap();
    let dropped = Arc::new(AtomicBool::new(false));
    let d = dropped.clone();
    let stuck = rt
        .spawn_on(1, move || {
            let _flag = Flag(d);
            started_tx.send(()).unwrap();
            grove::sleep(Duration::MAX);
        })
        .unwrap();
    started_rx.recv().unwrap();
    started_rx.recv().unwrap();
    let t0 = Instant::now();
    rt.shutdown(Duration::from_millis(300));
    let took = t0.elapsed();
    assert_eq!(quick.join().unwrap(), "finished");
    assert!(stuck.join().unwrap_err().is_killed());
    assert!(dropped.load(Ordering::SeqCst), "the killed task's Drop ran");
    assert!(took >= Duration::from_millis(250), "killed early: {took:?}");
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
}

#[test]
fn spawn_on_a_hub_that_shut_down_is_an_error_not_a_hang() {
    let rt = Runtime::builder().hubs(2).build().unwrap();
    let handle = rt.handle();
    rt.shutdown(Duration::ZERO);
    for hub in 0..2 {
        assert_eq!(
            handle.spawn_on(hub, || ()).unwrap_err(),
            SpawnError::ShutDown { hub }
        );
    }
    let io: std::io::Error = SpawnError::ShutDown { hub: 0 }.into();
    assert_eq!(io.kind(), std::io::ErrorKind::BrokenPipe);
}

#[test]
fn an_idle_runtime_shuts_down_at_once_and_drop_shuts_down_too() {
    let t0 = Instant::now();
    let rt = Runtime::builder().hubs(3).build().unwrap();
    rt.shutdown(Duration::from_secs(10));
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "idle shutdown waited"
    );
    let dropped = Arc::new(AtomicBool::new(false));
    {
        let rt = Runtime::builder()
            .hubs(1)
            .shutdown_timeout(Duration::from_millis(10))
            .build()
            .unwrap();
        let d = dropped.clone();
        let (tx, rx) = mpsc::channel();
        drop(rt.spawn_on(0, move || {
            let _flag = Flag(d);
            tx.send(()).unwrap();
            grove::sleep(Duration::MAX);
        }));
        rx.recv().unwrap();
    }
    assert!(
        dropped.load(Ordering::SeqCst),
        "drop killed the parked task"
    );
}

#[test]
fn a_receiver_whose_hub_shut_down_disconnects_its_senders() {
    let rt = Runtime::builder().hubs(1).build().unwrap();
    let (tx, rx) = mpsc::channel::<u32>();
    let (ready_tx, ready_rx) = mpsc::channel();
    drop(rt.spawn_on(0, move || {
        ready_tx.send(()).unwrap();
        // Parks forever: nobody sends.
        let _ = rx.recv();
    }));
    ready_rx.recv().unwrap();
    tx.send(1).ok();
    rt.shutdown(Duration::ZERO);
    assert_eq!(tx.send(7), Err(mpsc::SendError(7)));
}

#[test]
fn a_task_blocked_on_a_remote_join_is_released_by_shutdown() {
    // Hub 0 waits for a task of hub 1 that never ends; shutting down kills both.
    let rt = Runtime::builder().hubs(2).build().unwrap();
    let handle = rt.handle();
    let (ready_tx, ready_rx) = mpsc::channel();
    let waiter = rt
        .spawn_on(0, move || {
            let forever = handle.spawn_on(1, || grove::sleep(Duration::MAX)).unwrap();
            ready_tx.send(()).unwrap();
            forever.join().map(|_| ())
        })
        .unwrap();
    ready_rx.recv().unwrap();
    rt.shutdown(Duration::from_millis(20));
    // Either hub 0's deadline killed the waiter, or hub 1 killed `forever` first and the
    // waiter saw that: never a hang.
    match waiter.join() {
        Err(e) => assert!(e.is_killed(), "{e}"),
        Ok(inner) => assert!(inner.unwrap_err().is_killed()),
    }
}

#[test]
fn tasks_queued_when_shutdown_starts_are_started_or_reported_killed_never_lost() {
    let rt = Runtime::builder().hubs(2).build().unwrap();
    let handles: Vec<_> = (0..200)
        .map(|i| {
            rt.spawn_on(i % 2, move || {
                grove::sleep(Duration::from_millis(1));
                i
            })
            .unwrap()
        })
        .collect();
    rt.shutdown(Duration::ZERO);
    for (i, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(v) => assert_eq!(v, i),
            Err(e) => assert!(e.is_killed(), "{e}"),
        }
    }
}

#[test]
fn a_runtime_without_file_descriptors_is_an_error_not_a_panic() {
    if util::child_scenario().as_deref() == Some("emfile") {
        // Use up the descriptors, then ask for hubs (each needs an epoll fd and an eventfd).
        util::set_soft_nofile(32);
        let mut hold = Vec::new();
        while let Ok(f) = std::fs::File::open("/dev/null") {
            hold.push(f);
        }
        let err = Runtime::builder().hubs(2).build().unwrap_err();
        println!("error: {err}");
        return;
    }
    let out = util::run_child_ok(
        "a_runtime_without_file_descriptors_is_an_error_not_a_panic",
        "emfile",
    );
    assert!(out.contains("error:"), "{out}");
}

#[test]
fn a_panicking_task_on_a_busy_hub_leaves_the_other_hub_serving() {
    let rt = Runtime::builder().hubs(2).build().unwrap();
    let (tx, rx) = mpsc::channel::<u32>();
    let echo = rt.spawn_on(1, move || rx.iter().sum::<u32>()).unwrap();
    let panics: Vec<_> = (0..20)
        .map(|i| {
            rt.spawn_on(0, move || -> u32 { panic!("task {i} fails") })
                .unwrap()
        })
        .collect();
    for p in panics {
        assert!(p.join().unwrap_err().is_panic());
    }
    for i in 1..=10 {
        tx.send(i).unwrap();
    }
    drop(tx);
    assert_eq!(echo.join().unwrap(), 55);
    assert_eq!(rt.spawn_on(0, || 1).unwrap().join().unwrap(), 1);
}

#[test]
fn a_runtime_dropped_on_one_of_its_own_hubs_shuts_down_without_deadlock() {
    let rt = Runtime::builder()
        .hubs(2)
        .shutdown_timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let handle = rt.handle();
    let h = handle
        .spawn_on(0, move || {
            // A hub cannot wait for itself: this starts the shutdown and returns.
            drop(rt);
            "dropped"
        })
        .unwrap();
    assert_eq!(h.join().unwrap(), "dropped");
    // The hubs wind down on their own; soon every spawn_on is refused.
    let t0 = Instant::now();
    while handle.spawn_on(1, || ()).is_ok() {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "hub 1 never shut down"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn shutdown_does_not_hang_on_a_killed_task_whose_drop_joins_another_hub() {
    struct JoinOnDrop(Option<grove::RemoteJoinHandle<()>>);
    impl Drop for JoinOnDrop {
        fn drop(&mut self) {
            if let Some(h) = self.0.take() {
                let _ = h.join(); // parks while the task unwinds
            }
        }
    }
    let rt = Runtime::builder().hubs(2).build().unwrap();
    let handle = rt.handle();
    let (ready_tx, ready_rx) = mpsc::channel();
    drop(rt.spawn_on(0, move || {
        let other = handle
            .spawn_on(1, || grove::sleep(Duration::from_millis(50)))
            .unwrap();
        let _guard = JoinOnDrop(Some(other));
        ready_tx.send(()).unwrap();
        grove::sleep(Duration::MAX);
    }));
    ready_rx.recv().unwrap();
    let t0 = Instant::now();
    rt.shutdown(Duration::ZERO);
    assert!(t0.elapsed() < Duration::from_secs(5), "shutdown hung");
}
