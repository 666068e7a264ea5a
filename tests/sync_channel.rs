//! `Channel`: rendezvous semantics, exact event order, close and dying waiters.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use grove::sync::{Channel, PutTimeoutError, TryPutError};

#[test]
fn put_returns_only_once_a_getter_has_the_item_in_exact_order() {
    let ch = Channel::new();
    let events = Rc::new(RefCell::new(Vec::<String>::new()));
    let getter = {
        let (ch, events) = (ch.clone(), events.clone());
        grove::spawn(move || {
            for _ in 0..2 {
                let v: &str = ch.get().unwrap();
                events.borrow_mut().push(v.to_string());
            }
        })
    };
    events.borrow_mut().push("sending".into());
    ch.put("hello").unwrap();
    events.borrow_mut().push("sent hello".into());
    ch.put("world").unwrap();
    events.borrow_mut().push("sent world".into());
    getter.join().unwrap();
    assert_eq!(
        *events.borrow(),
        ["sending", "hello", "sent hello", "world", "sent world"]
    );
}

#[test]
fn try_put_needs_a_waiting_getter() {
    let ch = Channel::new();
    assert_eq!(ch.try_put(1), Err(TryPutError::Full(1)));
    let getter = {
        let ch = ch.clone();
        grove::spawn(move || ch.get().unwrap())
    };
    grove::yield_now();
    ch.try_put(2).unwrap();
    assert_eq!(getter.join().unwrap(), 2);
}

#[test]
fn a_timed_out_put_gets_its_value_back_and_leaves_no_offer() {
    let ch = Channel::new();
    let r = ch.put_timeout(5, Duration::from_millis(5));
    assert_eq!(r, Err(PutTimeoutError::Timeout(5)));
    assert_eq!(ch.putters(), 0);
    assert!(ch.try_get().is_err());
}

#[test]
fn a_killed_putter_withdraws_its_offer() {
    let ch = Channel::new();
    let putter = {
        let ch = ch.clone();
        grove::spawn(move || ch.put(1).unwrap())
    };
    grove::yield_now();
    assert_eq!(ch.putters(), 1);
    putter.kill();
    assert_eq!(ch.putters(), 0);
    assert!(ch.try_get().is_err());
}

#[test]
fn a_kill_after_the_offer_does_not_steal_it() {
    let ch = Channel::new();
    let spawn_getter = || {
        let ch = ch.clone();
        grove::spawn(move || ch.get().unwrap())
    };
    let first = spawn_getter();
    let second = spawn_getter();
    grove::yield_now();
    let putter = {
        let ch = ch.clone();
        grove::spawn(move || ch.put("x").unwrap())
    };
    grove::yield_now(); // the putter offers and wakes `first`
    first.kill(); // the offer came first: `first` takes it
    assert_eq!(first.join().unwrap(), "x");
    putter.join().unwrap();
    ch.put("y").unwrap();
    assert_eq!(second.join().unwrap(), "y");
}

#[test]
fn close_fails_pending_puts_with_their_value() {
    let ch: Channel<i32> = Channel::new();
    let putter = {
        let ch = ch.clone();
        grove::spawn(move || ch.put(9))
    };
    grove::yield_now();
    ch.close();
    assert_eq!(putter.join().unwrap().unwrap_err().into_inner(), 9);
    assert!(ch.get().is_err());
}
