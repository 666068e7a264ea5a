//! Results are never lost: a completion beats a later timeout, switched values belong to the
//! target, and the greenlet idiom of switching to the parent does not leak the greenlet.

mod util;

use std::io::{Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use grove::greenlet::{current_parent, getcurrent, switch_to_parent, Greenlet};

/// A task that keeps the CPU for `d` without yielding, starting when it first runs.
fn hog(d: Duration) -> grove::JoinHandle<()> {
    grove::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < d {
            std::hint::spin_loop();
        }
    })
}

#[test]
fn a_sleep_that_ended_before_the_deadline_wins_over_the_timeout() {
    let worker = grove::spawn(|| {
        grove::with_timeout(Duration::from_millis(5), || {
            grove::sleep(Duration::from_millis(1));
            "slept"
        })
    });
    grove::yield_now(); // the worker starts its sleep
    let h = hog(Duration::from_millis(10)); // both deadlines pass while it hogs the CPU
    assert_eq!(worker.join().unwrap(), Ok("slept"));
    h.join().unwrap();
}

/// One try of the scenario with a timeout of `d`: `None` if the machine was too slow to write
/// before the deadline (inconclusive), else what the read returned.
fn read_racing_a_timeout(d: Duration) -> Option<Result<std::io::Result<[u8; 4]>, grove::Elapsed>> {
    let (mut a, mut b) = util::tcp_pair();
    let deadline = Instant::now() + d;
    let reader = grove::spawn(move || {
        grove::Timeout::at(deadline).catch(move || {
            let mut buf = [0u8; 4];
            b.read_exact(&mut buf).map(|()| buf)
        })
    });
    grove::yield_now(); // the reader parks
    let writer = grove::spawn(move || {
        if Instant::now() >= deadline {
            return None; // too late to test anything
        }
        a.write_all(b"data").unwrap();
        // Keep the CPU until well after the reader's deadline.
        while Instant::now() < deadline + Duration::from_millis(5) {
            std::hint::spin_loop();
        }
        Some(a)
    });
    let got = reader.join().unwrap();
    writer.join().unwrap().map(|_| got)
}

#[test]
fn a_read_whose_data_arrived_first_wins_over_the_timeout() {
    for d in [5, 50, 500] {
        if let Some(got) = read_racing_a_timeout(Duration::from_millis(d)) {
            assert_eq!(got.expect("no timeout").unwrap(), *b"data");
            return;
        }
    }
    panic!("the machine never wrote within 500 ms");
}

#[test]
fn a_timeout_still_fires_when_nothing_completes() {
    let start = Instant::now();
    let r = grove::with_timeout(Duration::from_millis(5), || {
        grove::sleep(Duration::from_secs(10));
    });
    assert!(r.is_err());
    assert!(start.elapsed() >= Duration::from_millis(5));
}

#[test]
fn a_value_switched_to_a_greenlet_whose_sender_dies_stays_with_the_target() {
    // The sender hands a value over and is killed while suspended; the greenlet still
    // gets the value intact.
    let received = Rc::new(std::cell::RefCell::new(None));
    let r = received.clone();
    let g: Greenlet<String> = Greenlet::new(move |s: String| {
        *r.borrow_mut() = Some(s.clone());
        grove::sleep(Duration::from_millis(5));
        s
    });
    let g2 = g.clone();
    let sender = grove::spawn(move || g2.switch("payload".to_string()));
    grove::sleep(Duration::from_millis(1)); // the greenlet sleeps holding the value
    sender.kill();
    assert_eq!(received.borrow().as_deref(), Some("payload"));
    drop(g);
}

#[test]
fn switching_to_the_parent_without_a_handle_lets_the_greenlet_be_dropped() {
    let (dropped, guard) = util::drop_flag();
    let g = Greenlet::new(move |()| {
        let _guard = guard;
        loop {
            switch_to_parent(());
        }
    });
    g.switch(());
    g.switch(());
    assert!(!dropped.get());
    drop(g); // the last handle: the greenlet unwinds and its stack is freed
    assert!(dropped.get());
}

#[test]
fn current_parent_holds_no_handle_to_the_current_greenlet() {
    let (dropped, guard) = util::drop_flag();
    let g = Greenlet::new(move |()| {
        let _guard = guard;
        current_parent::<()>().unwrap().switch(());
    });
    g.switch(());
    drop(g);
    assert!(dropped.get());
}

#[test]
fn the_getcurrent_idiom_keeps_the_greenlet_alive_as_documented() {
    // `getcurrent().parent().unwrap().switch(v)` holds a handle to the current greenlet
    // across the switch, so dropping the outside handle does not unwind it (documented; use
    // `switch_to_parent`). It still dies when its temporary handle goes away: here, the next
    // switch into it returns and drops the temporary, after which it suspends handle-less.
    let (dropped, guard) = util::drop_flag();
    let g = Greenlet::new(move |()| {
        let _guard = guard;
        getcurrent::<()>().parent().unwrap().switch(());
        grove::sleep(Duration::from_millis(1));
        switch_to_parent(());
    });
    g.switch(());
    let g2 = g.clone();
    drop(g);
    assert!(!dropped.get());
    g2.switch(()); // back in the greenlet: the temporary handle is dropped after the switch
    drop(g2); // now the last handle goes while it is suspended in `switch_to_parent`
    assert!(dropped.get());
}
