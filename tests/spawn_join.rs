//! Spawning, joining and naming tasks.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

#[test]
fn join_returns_the_tasks_value() {
    let h = grove::spawn(|| 6 * 7);
    assert!(!h.is_finished());
    assert_eq!(h.join().unwrap(), 42);
}

#[test]
fn tasks_share_rc_state_without_send() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let handles: Vec<_> = (0..5)
        .map(|i| {
            let log = log.clone();
            grove::spawn(move || log.borrow_mut().push(i))
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(*log.borrow(), [0, 1, 2, 3, 4]);
}

#[test]
fn tasks_start_only_when_the_spawner_blocks() {
    let ran = Rc::new(RefCell::new(false));
    let r = ran.clone();
    let h = grove::spawn(move || *r.borrow_mut() = true);
    assert!(!*ran.borrow());
    grove::yield_now();
    assert!(*ran.borrow());
    assert!(h.is_finished());
}

#[test]
fn join_all_keeps_input_order() {
    let handles: Vec<_> = (0..10u64)
        .map(|i| {
            grove::spawn(move || {
                grove::sleep(Duration::from_millis(10 - i));
                i
            })
        })
        .collect();
    let values: Vec<u64> = grove::join_all(handles)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(values, (0..10).collect::<Vec<_>>());
}

#[test]
fn builder_names_the_task() {
    let h = grove::Builder::new().name("worker-1").spawn(|| ()).unwrap();
    assert_eq!(h.name(), Some("worker-1"));
    assert_eq!(grove::spawn(|| ()).name(), None);
}

#[test]
fn tasks_join_other_tasks() {
    let outer = grove::spawn(|| {
        let inner = grove::spawn(|| {
            grove::sleep(Duration::from_millis(2));
            "inner"
        });
        format!("outer+{}", inner.join().unwrap())
    });
    assert_eq!(outer.join().unwrap(), "outer+inner");
}

#[test]
fn dropping_a_handle_detaches_the_task() {
    let done = Rc::new(RefCell::new(false));
    let d = done.clone();
    drop(grove::spawn(move || {
        grove::sleep(Duration::from_millis(5));
        *d.borrow_mut() = true;
    }));
    grove::sleep(Duration::from_millis(50));
    assert!(*done.borrow());
}

#[test]
fn a_task_joining_itself_panics() {
    let slot: Rc<RefCell<Option<grove::JoinHandle<()>>>> = Rc::default();
    let outcome: Rc<RefCell<Option<String>>> = Rc::default();
    let (s, o) = (slot.clone(), outcome.clone());
    let h = grove::spawn(move || {
        let me = s.borrow_mut().take().unwrap();
        let err = catch_unwind(AssertUnwindSafe(|| me.join())).unwrap_err();
        *o.borrow_mut() = err.downcast_ref::<String>().cloned();
    });
    *slot.borrow_mut() = Some(h);
    grove::yield_now(); // the task runs to completion without parking
    let text = outcome.borrow().clone().expect("the task ran");
    assert!(text.contains("tried to join itself"), "{text}");
}

#[test]
fn spawn_later_starts_after_the_delay() {
    let start = std::time::Instant::now();
    let h = grove::spawn_later(Duration::from_millis(30), std::time::Instant::now);
    let started = h.join().unwrap();
    assert!(started.duration_since(start) >= Duration::from_millis(30));
}

#[test]
fn tasks_can_run_on_other_threads_with_their_own_hub() {
    let t = std::thread::spawn(|| {
        let h = grove::spawn(|| {
            grove::sleep(Duration::from_millis(5));
            7
        });
        h.join().unwrap()
    });
    let here = grove::spawn(|| 3);
    assert_eq!(t.join().unwrap() + here.join().unwrap(), 10);
}

#[test]
fn a_thread_may_exit_with_tasks_still_parked() {
    let t = std::thread::spawn(|| {
        let forever = grove::spawn(|| grove::sleep(Duration::from_secs(3600)));
        let quick = grove::spawn(|| 1);
        let v = quick.join().unwrap();
        drop(forever);
        v
    });
    assert_eq!(t.join().unwrap(), 1);
}
