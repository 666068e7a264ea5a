//! Killing tasks: they unwind from their park point, or never run at all.

mod util;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

#[test]
fn a_task_killed_before_it_starts_never_runs() {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let (dropped, guard) = util::drop_flag();
    let h = grove::spawn(move || {
        let _g = &guard;
        r.set(true);
    });
    h.kill();
    assert!(h.is_finished());
    assert!(dropped.get(), "the closure (and what it owns) is dropped");
    grove::yield_now();
    assert!(!ran.get());
    assert!(h.join().unwrap_err().is_killed());
}

#[test]
fn killing_a_sleeping_task_runs_its_drop_guards() {
    let (dropped, guard) = util::drop_flag();
    let after = Rc::new(Cell::new(false));
    let a = after.clone();
    let h = grove::spawn(move || {
        let _guard = guard;
        grove::sleep(Duration::from_secs(3600));
        a.set(true);
    });
    grove::yield_now();
    assert!(!dropped.get());
    h.kill();
    assert!(dropped.get());
    assert!(!after.get());
    assert!(h.join().unwrap_err().is_killed());
}

#[test]
fn a_killed_task_can_be_killed_again_and_other_tasks_go_on() {
    let victim = grove::spawn(|| grove::sleep(Duration::from_secs(3600)));
    let bystander = grove::spawn(|| {
        grove::sleep(Duration::from_millis(5));
        "fine"
    });
    grove::yield_now();
    victim.kill();
    victim.kill();
    assert_eq!(bystander.join().unwrap(), "fine");
}

#[test]
fn a_task_can_kill_another_task() {
    let victim = grove::spawn(|| grove::sleep(Duration::from_secs(3600)));
    grove::yield_now();
    let killer = grove::spawn(move || {
        victim.kill();
        victim.join().unwrap_err().is_killed()
    });
    assert!(killer.join().unwrap());
}

#[test]
fn a_task_killed_while_waiting_to_join_leaves_the_joined_task_alone() {
    let slow = grove::spawn(|| {
        grove::sleep(Duration::from_millis(20));
        5
    });
    let joiner = grove::spawn(move || slow.join().unwrap());
    grove::yield_now();
    joiner.kill();
    assert!(joiner.join().unwrap_err().is_killed());
}

#[test]
fn killing_a_task_suspended_in_a_greenlet_switch_unwinds_it() {
    let (dropped, guard) = util::drop_flag();
    let h = grove::spawn(move || {
        let _guard = guard;
        // Switch to a greenlet that parks in the hub and never switches back.
        let g = grove::greenlet::Greenlet::new(|()| grove::sleep(Duration::from_secs(3600)));
        g.switch(());
    });
    grove::yield_now();
    h.kill();
    assert!(dropped.get());
    assert!(h.join().unwrap_err().is_killed());
}
