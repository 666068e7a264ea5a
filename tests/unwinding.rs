//! Unwinding is sound: a fiber unwinds as itself, an interrupt never becomes a second unwind,
//! and no panic escapes a fiber body. Crash-prone scenarios run in a child process, so a
//! regression shows as a failed assertion on its exit status, not a dead test binary.

mod util;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use grove::greenlet::{getcurrent, switch_to_parent, Greenlet};

/// Sleeps in its `Drop` (a handler that flushes on the way out).
struct SleepsOnDrop(Duration, Rc<Cell<bool>>);

impl Drop for SleepsOnDrop {
    fn drop(&mut self) {
        grove::sleep(self.0);
        self.1.set(true);
    }
}

fn sleeps_on_drop(d: Duration) -> (Rc<Cell<bool>>, SleepsOnDrop) {
    let done = Rc::new(Cell::new(false));
    (done.clone(), SleepsOnDrop(d, done))
}

#[test]
fn a_panic_while_a_greenlet_unwinds_in_a_parked_drop_leaves_the_hub_sound() {
    if util::child_scenario().as_deref() == Some("uaf") {
        // B drops the last handle of a suspended greenlet whose Drop parks 50 ms; meanwhile P
        // panics, main joins P and then sleeps: every fiber pointer stays valid.
        let b = grove::spawn(|| {
            let g = Greenlet::new(|()| {
                let (_, _guard) = sleeps_on_drop(Duration::from_millis(50));
                switch_to_parent(());
            });
            g.switch(());
            drop(g);
        });
        let p = grove::spawn(|| panic!("P panics"));
        assert!(p.join().unwrap_err().is_panic());
        grove::sleep(Duration::from_millis(80));
        b.join().unwrap();
        grove::sleep(Duration::from_millis(1));
        println!("SOUND");
        return;
    }
    let out = util::run_child_ok(
        "a_panic_while_a_greenlet_unwinds_in_a_parked_drop_leaves_the_hub_sound",
        "uaf",
    );
    assert!(out.contains("SOUND"), "{out}");
}

#[test]
fn a_dying_greenlet_sees_itself_as_current_and_may_park() {
    let seen: Rc<RefCell<Vec<String>>> = Rc::default();
    grove::task_local! { static NAME: &'static str = "main's"; }
    let id_inside = Rc::new(Cell::new(String::new()));
    let s = seen.clone();
    let idi = id_inside.clone();
    let g = Greenlet::new(move |()| {
        NAME.with(|l| l.set("greenlet's"));
        idi.set(format!("{:?}", getcurrent::<()>()));
        struct Report(Rc<RefCell<Vec<String>>>);
        impl Drop for Report {
            fn drop(&mut self) {
                let me = format!("{:?}", getcurrent::<()>());
                self.0.borrow_mut().push(me);
                self.0.borrow_mut().push(NAME.with(|l| l.get()).to_string());
                grove::sleep(Duration::from_millis(5));
                self.0.borrow_mut().push("slept".into());
            }
        }
        let _report = Report(s);
        switch_to_parent(());
    });
    g.switch(());
    let label = format!("{g:?}");
    drop(g);
    let seen = seen.borrow();
    assert_eq!(seen.len(), 3, "{seen:?}");
    // Same greenlet id as before, now running (not main).
    let id_part = |s: &str| s.split("state").next().unwrap().to_string();
    assert_eq!(id_part(&seen[0]), id_part(&label));
    assert_eq!(id_part(&seen[0]), id_part(&id_inside.take()));
    assert_eq!(seen[1], "greenlet's");
    assert_eq!(seen[2], "slept");
    assert_eq!(NAME.with(|l| l.get()), "main's");
}

#[test]
fn a_timeout_firing_during_an_unwind_that_parks_does_not_abort() {
    if util::child_scenario().as_deref() == Some("timeout-in-drop") {
        let (flushed, guard) = sleeps_on_drop(Duration::from_millis(50));
        let t = grove::spawn(move || {
            grove::with_timeout(Duration::from_millis(30), move || {
                let _g = guard;
                grove::sleep(Duration::from_secs(10));
            })
        });
        grove::sleep(Duration::from_millis(10));
        let start = Instant::now();
        t.kill(); // unwinds the sleep; the Drop sleeps 50 ms; the timeout fires at 30 ms
        assert!(t.join().unwrap_err().is_killed());
        // The timeout ended the Drop's sleep early instead of starting a second unwind.
        assert!(flushed.get());
        assert!(start.elapsed() < Duration::from_secs(5));
        println!("NO ABORT");
        return;
    }
    let out = util::run_child_ok(
        "a_timeout_firing_during_an_unwind_that_parks_does_not_abort",
        "timeout-in-drop",
    );
    assert!(out.contains("NO ABORT"), "{out}");
}

#[test]
fn a_kill_after_a_panic_whose_drop_parks_does_not_abort() {
    if util::child_scenario().as_deref() == Some("kill-after-panic") {
        let (flushed, guard) = sleeps_on_drop(Duration::from_secs(10));
        let t = grove::spawn(move || {
            let _g = guard;
            panic!("boom");
        });
        grove::sleep(Duration::from_millis(10)); // t panicked and sleeps in its Drop
        let start = Instant::now();
        t.kill();
        let err = t.join().unwrap_err();
        assert_eq!(err.panic_message(), Some("boom"));
        assert!(flushed.get());
        assert!(start.elapsed() < Duration::from_secs(5));
        println!("NO ABORT");
        return;
    }
    let out = util::run_child_ok(
        "a_kill_after_a_panic_whose_drop_parks_does_not_abort",
        "kill-after-panic",
    );
    assert!(out.contains("NO ABORT"), "{out}");
}

#[test]
fn killing_a_task_while_it_drops_a_greenlet_does_not_abort() {
    if util::child_scenario().as_deref() == Some("kill-while-dropping") {
        let (flushed, guard) = sleeps_on_drop(Duration::from_millis(200));
        let t = grove::spawn(move || {
            let g = Greenlet::new(move |()| {
                let _g = guard;
                switch_to_parent(());
            });
            g.switch(());
            drop(g); // the greenlet unwinds as itself and sleeps 200 ms in its Drop
            "dropped"
        });
        grove::sleep(Duration::from_millis(20));
        t.kill();
        assert!(t.join().unwrap_err().is_killed());
        grove::sleep(Duration::from_millis(300));
        assert!(flushed.get());
        println!("NO ABORT");
        return;
    }
    let out = util::run_child_ok(
        "killing_a_task_while_it_drops_a_greenlet_does_not_abort",
        "kill-while-dropping",
    );
    assert!(out.contains("NO ABORT"), "{out}");
}

#[test]
fn a_second_kill_while_a_killed_task_flushes_in_drop_waits_for_the_flush() {
    let (flushed, guard) = sleeps_on_drop(Duration::from_millis(30));
    let t = Rc::new(grove::spawn(move || {
        let _g = guard;
        grove::sleep(Duration::from_secs(10));
    }));
    grove::yield_now();
    let t2 = t.clone();
    let second = grove::spawn(move || {
        grove::sleep(Duration::from_millis(5));
        t2.kill(); // lands while `t` sleeps in its Drop
    });
    t.kill();
    second.join().unwrap();
    assert!(flushed.get());
    let t = Rc::try_unwrap(t).unwrap();
    assert!(t.join().unwrap_err().is_killed());
}

#[test]
fn group_kill_on_handlers_that_flush_in_drop_does_not_abort() {
    if util::child_scenario().as_deref() == Some("group-kill") {
        let group = grove::sync::Group::new();
        let flushed: Vec<_> = (0..5)
            .map(|_| {
                let (flag, guard) = sleeps_on_drop(Duration::from_millis(20));
                group.spawn(move || {
                    let _g = guard;
                    grove::sleep(Duration::from_secs(10));
                });
                flag
            })
            .collect();
        grove::yield_now();
        let g2 = group.clone();
        // A second kill lands while the first one's Drops are sleeping.
        let again = grove::spawn(move || {
            grove::sleep(Duration::from_millis(5));
            g2.kill();
        });
        group.kill();
        again.join().unwrap();
        assert!(flushed.iter().all(|f| f.get()));
        println!("NO ABORT");
        return;
    }
    let out = util::run_child_ok(
        "group_kill_on_handlers_that_flush_in_drop_does_not_abort",
        "group-kill",
    );
    assert!(out.contains("NO ABORT"), "{out}");
}

#[test]
fn a_panic_in_another_task_while_one_is_unwinding_stays_in_that_task() {
    let (flushed, guard) = sleeps_on_drop(Duration::from_millis(20));
    let unwinding = grove::spawn(move || {
        let _g = guard;
        panic!("first");
    });
    grove::yield_now(); // `unwinding` panicked and now sleeps in its Drop
    let other = grove::spawn(|| panic!("second"));
    assert_eq!(other.join().unwrap_err().panic_message(), Some("second"));
    assert_eq!(unwinding.join().unwrap_err().panic_message(), Some("first"));
    assert!(flushed.get());
    // The hub is fine afterwards.
    assert_eq!(grove::spawn(|| 7).join().unwrap(), 7);
}

#[test]
fn a_timeout_reaches_a_dying_greenlet_blocked_in_its_drop() {
    // The greenlet unwinds as itself after its last handle goes; in its Drop it sleeps under
    // a Timeout. The timeout reaches it like any fiber (it is already unwinding, so the sleep
    // returns early instead of a second unwind) and control comes back to the dropper.
    struct SleepsUnderTimeout(Rc<Cell<Option<Duration>>>);
    impl Drop for SleepsUnderTimeout {
        fn drop(&mut self) {
            let start = Instant::now();
            let _t = grove::Timeout::start(Duration::from_millis(5));
            grove::sleep(Duration::from_secs(10));
            self.0.set(Some(start.elapsed()));
        }
    }
    let slept = Rc::new(Cell::new(None));
    let s = slept.clone();
    let g = Greenlet::new(move |()| {
        let _guard = SleepsUnderTimeout(s);
        switch_to_parent(());
    });
    g.switch(());
    drop(g);
    let slept = slept.get().expect("the Drop ran before drop(g) returned");
    assert!(slept >= Duration::from_millis(5), "{slept:?}");
    assert!(slept < Duration::from_secs(5), "{slept:?}");
}

#[test]
fn a_timeout_reaches_main_waiting_in_a_greenlet_switch() {
    // Main switches to a greenlet that parks for good: main waits in the switch (the root's
    // direct-switch path hands over to the trampoline) and its timeout still unwinds it.
    let (dropped, guard) = util::drop_flag();
    let g = Greenlet::new(move |()| {
        let _guard = guard;
        grove::sleep(Duration::from_secs(3600));
    });
    let start = Instant::now();
    let r = grove::with_timeout(Duration::from_millis(10), || g.switch(()));
    assert!(r.is_err());
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(!dropped.get(), "the greenlet still sleeps");
}
