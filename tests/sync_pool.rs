//! `Pool` and `Group`.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use grove::sync::{Event, Group, Pool};

#[test]
fn a_full_pool_of_one_refuses_try_spawn() {
    let pool = Pool::new(1);
    let gate = Event::new();
    let g = gate.clone();
    pool.spawn(move || g.wait());
    assert!(pool.is_full());
    assert!(pool.try_spawn(|| ()).is_err());
    gate.set();
    pool.join();
    assert!(pool.try_spawn(|| ()).is_ok());
    pool.join();
}

#[test]
fn spawn_waits_while_size_tasks_run() {
    let pool = Pool::new(2);
    let running = Rc::new(Cell::new(0));
    let peak = Rc::new(Cell::new(0));
    for _ in 0..6 {
        let (running, peak) = (running.clone(), peak.clone());
        pool.spawn(move || {
            running.set(running.get() + 1);
            peak.set(peak.get().max(running.get()));
            grove::sleep(Duration::from_millis(1));
            running.set(running.get() - 1);
        });
    }
    pool.join();
    assert_eq!(peak.get(), 2);
}

#[test]
fn map_returns_results_in_input_order() {
    let pool = Pool::new(3);
    let out = pool.map(
        |i: u64| {
            grove::sleep(Duration::from_millis(10 - i));
            i * 10
        },
        0..10,
    );
    assert_eq!(out, (0..10).map(|i| i * 10).collect::<Vec<_>>());
}

#[test]
fn imap_unordered_yields_every_result() {
    let pool = Pool::new(2);
    let got: Vec<u64> = pool
        .imap_unordered(
            |i: u64| {
                grove::sleep(Duration::from_millis(5 - i));
                i
            },
            0..5,
        )
        .collect();
    assert_eq!(got.len(), 5);
    assert_eq!(got.iter().copied().collect::<BTreeSet<_>>().len(), 5);
    assert!(pool.is_empty());
}

#[test]
fn a_killed_pool_task_frees_its_slot() {
    let pool = Pool::new(1);
    let h = pool.spawn(|| grove::sleep(Duration::from_secs(60)));
    grove::yield_now();
    h.kill();
    assert!(pool.try_spawn(|| ()).is_ok());
    pool.join();
}

#[test]
fn group_joins_and_kills_all_its_tasks() {
    let group = Group::new();
    let finished = Rc::new(Cell::new(0));
    for _ in 0..3 {
        let f = finished.clone();
        group.spawn(move || {
            grove::sleep(Duration::from_millis(1));
            f.set(f.get() + 1);
        });
    }
    group.join();
    assert_eq!(finished.get(), 3);

    let dropped = Rc::new(Cell::new(0));
    let started = Rc::new(Cell::new(0));
    let mut handles = Vec::new();
    for _ in 0..3 {
        let (d, s) = (dropped.clone(), started.clone());
        handles.push(group.spawn(move || {
            let _guard = Counter(d);
            s.set(s.get() + 1);
            grove::sleep(Duration::from_secs(60));
        }));
    }
    grove::yield_now();
    let late = {
        let s = started.clone();
        group.spawn(move || s.set(s.get() + 100))
    };
    group.kill(); // `late` never started: it never runs its body
    assert!(group.is_empty());
    assert_eq!(dropped.get(), 3);
    assert_eq!(started.get(), 3);
    for h in handles {
        assert!(h.join().unwrap_err().is_killed());
    }
    assert!(late.join().unwrap_err().is_killed());
}

struct Counter(Rc<Cell<u32>>);
impl Drop for Counter {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn killing_a_pool_task_before_it_starts_frees_its_slot() {
    let pool = Pool::new(1);
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let h = pool.spawn(move || r.set(true));
    h.kill(); // never started: its closure (holding the slot) is dropped unrun
    assert!(!ran.get());
    assert!(pool.try_spawn(|| ()).is_ok());
    pool.join();
    assert!(pool.is_empty());
}
