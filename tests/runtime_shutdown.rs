//! `Runtime::shutdown` and drop: running tasks get the timeout to finish, the rest are killed
//! (their `Drop`s run, their join handles say `Killed`), and a hub that has shut down refuses
//! `spawn_on` with an error instead of hanging.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    let waiter = rt
        .spawn_on(0, move || {
            let forever = handle.spawn_on(1, || grove::sleep(Duration::MAX)).unwrap();
            forever.join().map(|_| ())
        })
        .unwrap();
    grove::sleep(Duration::from_millis(20));
    rt.shutdown(Duration::from_millis(20));
    assert!(waiter.join().unwrap_err().is_killed());
}
