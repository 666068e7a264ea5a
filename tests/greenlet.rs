//! Greenlet behaviours, restated from greenlet's own test suite.

mod util;

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use grove::greenlet::{getcurrent, Greenlet, GreenletExit};

#[test]
fn child_and_main_interleave_in_exact_order() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let main = getcurrent::<()>();
    let g = Greenlet::new(move |()| {
        l.borrow_mut().push("child 1");
        main.switch(());
        l.borrow_mut().push("child 2");
        main.switch(());
        l.borrow_mut().push("child 3");
    });
    log.borrow_mut().push("main 1");
    g.switch(());
    log.borrow_mut().push("main 2");
    g.switch(());
    log.borrow_mut().push("main 3");
    g.switch(());
    log.borrow_mut().push("main 4");
    assert_eq!(
        *log.borrow(),
        ["main 1", "child 1", "main 2", "child 2", "main 3", "child 3", "main 4"]
    );
}

#[test]
fn return_value_arrives_at_parents_pending_switch() {
    let g = Greenlet::new(|x: i64| x * 2);
    assert!(!g.is_started());
    assert_eq!(g.switch(21), 42);
    assert!(g.is_dead());
}

#[test]
fn values_travel_both_ways() {
    let main = getcurrent::<String>();
    let g = Greenlet::new(move |first: String| {
        let second = main.switch(format!("{first}!"));
        format!("{second}?")
    });
    assert_eq!(g.switch("a".into()), "a!");
    assert_eq!(g.switch("b".into()), "b?");
}

#[test]
fn switching_to_a_dead_greenlet_goes_to_its_parent() {
    let g = Greenlet::new(|x: i32| x + 1);
    assert_eq!(g.switch(1), 2);
    assert!(g.is_dead());
    // The parent is main: switching to the dead greenlet "returns" to main with the value.
    assert_eq!(g.switch(7), 7);
}

#[test]
fn dead_greenlet_switch_resumes_its_live_parent() {
    let main = getcurrent::<i32>();
    let parent = Greenlet::new(move |x: i32| {
        let y = main.switch(x);
        y * 100
    });
    assert_eq!(parent.switch(1), 1);
    let child = Greenlet::new(|x: i32| x);
    child.set_parent(&parent).unwrap();
    // child finishes at once; its value goes to `parent`, which finishes into main.
    assert_eq!(child.switch(5), 500);
    assert!(child.is_dead() && parent.is_dead());
}

#[test]
fn panic_in_child_surfaces_in_parent() {
    let g = Greenlet::new(|()| panic!("child failed"));
    let err = catch_unwind(AssertUnwindSafe(|| g.switch(()))).unwrap_err();
    assert_eq!(util::panic_text(err.as_ref()), "child failed");
    assert!(g.is_dead());
}

#[test]
fn throw_unwinds_the_target_and_it_is_dead_after() {
    let (dropped, guard) = util::drop_flag();
    let main = getcurrent::<()>();
    let g = Greenlet::new(move |()| {
        let _guard = guard;
        main.switch(());
        unreachable!("the greenlet was thrown out");
    });
    g.switch(());
    assert!(!dropped.get());
    g.throw();
    assert!(dropped.get());
    assert!(g.is_dead());
}

#[test]
fn throw_into_an_unstarted_greenlet_never_runs_it() {
    let ran = Rc::new(RefCell::new(false));
    let r = ran.clone();
    let g = Greenlet::new(move |()| *r.borrow_mut() = true);
    g.throw();
    assert!(g.is_dead());
    assert!(!*ran.borrow());
}

#[test]
fn greenlet_exit_reaches_a_parent_waiting_in_switch() {
    // `other` throws `victim`, whose parent (main) is waiting in a switch: main sees the exit.
    let victim = Greenlet::new(|()| {
        getcurrent::<()>().parent().unwrap().switch(());
    });
    victim.switch(());
    let v = victim.clone();
    let other = Greenlet::new(move |()| v.throw());
    let err = catch_unwind(AssertUnwindSafe(|| other.switch(()))).unwrap_err();
    assert!(err.is::<GreenletExit>());
    assert!(victim.is_dead());
}

#[test]
fn a_parent_cycle_is_refused() {
    let a = Greenlet::new(|()| ());
    let b = Greenlet::new(|()| ());
    b.set_parent(&a).unwrap();
    assert!(a.set_parent(&b).is_err());
    assert!(a.set_parent(&a).is_err());
    assert!(a.parent().is_some());
}

#[test]
fn a_child_finishing_into_an_unstarted_parent_starts_it_with_the_value() {
    let seen = Rc::new(RefCell::new(None));
    let s = seen.clone();
    let parent = Greenlet::new(move |x: i32| {
        *s.borrow_mut() = Some(x);
        x + 1
    });
    let child = Greenlet::new(|x: i32| x * 10);
    child.set_parent(&parent).unwrap();
    // child returns 30 into parent (never started), parent returns 31 into main.
    assert_eq!(child.switch(3), 31);
    assert_eq!(*seen.borrow(), Some(30));
    assert!(!parent.is_started() || parent.is_dead());
}

#[test]
fn dropping_the_last_handle_of_a_suspended_greenlet_unwinds_it() {
    let (dropped, guard) = util::drop_flag();
    let main = getcurrent::<()>();
    let g = Greenlet::new(move |()| {
        let _guard = guard;
        main.switch(());
    });
    g.switch(());
    assert!(!dropped.get());
    drop(g);
    assert!(dropped.get());
}

#[test]
fn greenlets_can_block_in_the_hub_like_tasks() {
    let main = getcurrent::<u32>();
    let g = Greenlet::new(move |x: u32| {
        grove::sleep(std::time::Duration::from_millis(5));
        main.switch(x + 1)
    });
    assert_eq!(g.switch(1), 2);
}

#[test]
fn a_value_of_the_wrong_type_is_a_clear_panic() {
    let typed = Greenlet::new(|_: u8| {
        // Main waits for a u8 in `typed.switch`, but gets a String: a clear panic, not UB.
        getcurrent::<String>()
            .parent()
            .unwrap()
            .switch("oops".to_string());
        0u8
    });
    let err = catch_unwind(AssertUnwindSafe(|| typed.switch(1u8))).unwrap_err();
    assert!(util::panic_text(err.as_ref()).contains("another type"));
}
