//! A thread (or the process) may exit with tasks that never ran or are still parked, owning
//! grove objects: the hub is torn down in order, never touching a destroyed thread-local.

mod util;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use grove::sync::Semaphore;

/// Leaves a waiter parked on a semaphore whose permit belongs to a task that never runs.
fn park_a_waiter_behind_an_unstarted_permit_owner() {
    let sem = Semaphore::new(1);
    let permit = sem.permit();
    let s = sem.clone();
    grove::spawn(move || s.acquire());
    grove::yield_now(); // the waiter parks
    grove::spawn(move || drop(permit)); // owns the permit, never runs
}

#[test]
fn main_returning_with_an_unstarted_task_owning_a_permit_exits_cleanly() {
    if util::child_scenario().as_deref() == Some("permit") {
        park_a_waiter_behind_an_unstarted_permit_owner();
        println!("RETURNING");
        return; // the process exits with both tasks alive
    }
    let out = util::run_child_ok(
        "main_returning_with_an_unstarted_task_owning_a_permit_exits_cleanly",
        "permit",
    );
    assert!(out.contains("RETURNING"), "{out}");
}

#[test]
fn a_thread_exiting_with_unstarted_and_parked_tasks_runs_their_drops() {
    struct SetOnDrop(Arc<AtomicBool>, bool);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            if self.1 {
                // A Drop that blocks during thread exit returns at once instead of parking.
                grove::sleep(Duration::from_secs(10));
            }
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let unstarted = Arc::new(AtomicBool::new(false));
    let parked = Arc::new(AtomicBool::new(false));
    let (u, p) = (unstarted.clone(), parked.clone());
    std::thread::spawn(move || {
        park_a_waiter_behind_an_unstarted_permit_owner();
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        grove::spawn(move || {
            let _g = SetOnDrop(p, true);
            r.set(true);
            grove::sleep(Duration::from_secs(3600));
        });
        grove::yield_now();
        assert!(ran.get());
        let never = SetOnDrop(u, false);
        grove::spawn(move || drop(never));
    })
    .join()
    .expect("the thread exits without panicking or aborting");
    assert!(
        unstarted.load(Ordering::SeqCst),
        "unstarted task's closure dropped"
    );
    assert!(parked.load(Ordering::SeqCst), "parked task unwound");
}

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[test]
fn main_returning_with_a_stream_server_at_its_connection_limit_exits_cleanly() {
    if util::child_scenario().as_deref() == Some("server") {
        let server = grove::net::StreamServer::bind("127.0.0.1:0", |_conn, _peer| {
            grove::sleep(Duration::from_secs(3600));
        })
        .unwrap()
        .max_connections(1);
        let addr = server.local_addr().unwrap();
        server.start();
        let _client = std::net::TcpStream::connect(addr).unwrap();
        // One round: the accept loop accepts, spawns the handler (which owns the only slot and
        // has not run yet) and parks for the next slot; then main returns.
        grove::yield_now();
        println!("RETURNING after {} accept(s)", server.accepted());
        return;
    }
    let out = util::run_child_ok(
        "main_returning_with_a_stream_server_at_its_connection_limit_exits_cleanly",
        "server",
    );
    assert!(out.contains("RETURNING after 1 accept(s)"), "{out}");
}

#[test]
fn a_thread_exits_even_when_a_drop_waits_for_a_lock_nobody_releases() {
    struct LocksOnDrop(Rc<grove::sync::Mutex<()>>, Arc<AtomicBool>);
    impl Drop for LocksOnDrop {
        fn drop(&mut self) {
            self.1.store(true, Ordering::SeqCst);
            let _g = self.0.lock(); // never granted: the thread leaves this task blocked
        }
    }
    let entered = Arc::new(AtomicBool::new(false));
    let e = entered.clone();
    let worker = std::thread::spawn(move || {
        let m = Rc::new(grove::sync::Mutex::new(()));
        std::mem::forget(m.lock());
        let guard = LocksOnDrop(m, e);
        grove::spawn(move || {
            let _g = guard;
            grove::sleep(Duration::from_secs(3600));
        });
        grove::yield_now();
    });
    // Join on a watchdog thread, so a hang fails the test instead of the suite.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(worker.join().is_ok());
    });
    let joined = done_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the thread exits instead of hanging");
    assert!(joined, "the thread exits without panicking");
    assert!(
        entered.load(Ordering::SeqCst),
        "the task was killed and its Drop ran"
    );
}
