//! `grove::sync::mpsc`: std's channel shapes across hubs and plain threads. Receives park the
//! task (or run the plain thread's hub); disconnection works both ways; errors hand values back.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use grove::sync::mpsc::{self, RecvError, RecvTimeoutError, SendError, TryRecvError, TrySendError};
use grove::Runtime;

#[test]
fn values_from_another_thread_arrive_in_order() {
    let (tx, rx) = mpsc::channel();
    let producer = std::thread::spawn(move || {
        for i in 0..10_000u32 {
            tx.send(i).unwrap();
        }
    });
    let got: Vec<u32> = rx.iter().collect();
    producer.join().unwrap();
    assert_eq!(got, (0..10_000).collect::<Vec<_>>());
}

#[test]
fn a_parked_receive_lets_the_other_tasks_of_its_hub_run() {
    let (tx, rx) = mpsc::channel::<u32>();
    let ran = Rc::new(Cell::new(0));
    let r = ran.clone();
    let receiver = grove::spawn(move || rx.recv());
    let ticker = grove::spawn(move || {
        for _ in 0..3 {
            r.set(r.get() + 1);
            grove::sleep(Duration::from_millis(2));
        }
    });
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        tx.send(5).unwrap();
    });
    ticker.join().unwrap();
    assert_eq!(
        ran.get(),
        3,
        "the hub ran other tasks while the receiver waited"
    );
    assert_eq!(receiver.join().unwrap(), Ok(5));
    sender.join().unwrap();
}

#[test]
fn senders_gone_means_recv_drains_then_fails() {
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    tx.send(1).unwrap();
    tx2.send(2).unwrap();
    drop(tx);
    drop(tx2);
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    assert_eq!(rx.recv(), Err(RecvError));
}

#[test]
fn a_parked_receiver_wakes_when_the_last_sender_goes() {
    let (tx, rx) = mpsc::channel::<u32>();
    let dropper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        drop(tx);
    });
    assert_eq!(rx.recv(), Err(RecvError));
    dropper.join().unwrap();
}

#[test]
fn receiver_gone_hands_the_value_back() {
    let (tx, rx) = mpsc::channel();
    drop(rx);
    assert_eq!(
        tx.send(String::from("back")),
        Err(SendError(String::from("back")))
    );
    let (stx, srx) = mpsc::sync_channel(1);
    drop(srx);
    assert_eq!(stx.try_send(3), Err(TrySendError::Disconnected(3)));
    assert_eq!(stx.send(4), Err(SendError(4)));
}

#[test]
fn a_bounded_channel_parks_the_sender_while_full() {
    let (tx, rx) = mpsc::sync_channel(2);
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
    let sent_all = Rc::new(Cell::new(false));
    let s = sent_all.clone();
    let sender = grove::spawn(move || {
        for i in 3..=6 {
            tx.send(i).unwrap();
        }
        s.set(true);
    });
    grove::yield_now();
    assert!(!sent_all.get(), "the sender parked on the full channel");
    let got: Vec<i32> = rx.iter().take(6).collect();
    assert_eq!(got, [1, 2, 3, 4, 5, 6]);
    sender.join().unwrap();
    assert!(sent_all.get());
}

#[test]
fn a_rendezvous_send_returns_only_once_the_value_is_taken() {
    let (tx, rx) = mpsc::sync_channel::<u32>(0);
    assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)), "nobody waits");
    let taken_at = std::sync::Arc::new(std::sync::Mutex::new(None));
    let t = taken_at.clone();
    let receiver = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        let v = rx.recv().unwrap();
        *t.lock().unwrap() = Some(Instant::now());
        v
    });
    tx.send(9).unwrap();
    let returned = Instant::now();
    assert_eq!(receiver.join().unwrap(), 9);
    let taken = taken_at.lock().unwrap().unwrap();
    // The send returned after the receiver took the value (the receiver stamps just after).
    assert!(returned + Duration::from_millis(20) >= taken);
    // A rendezvous whose receiver goes away hands the value back.
    let (tx, rx) = mpsc::sync_channel::<u32>(0);
    let dropper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        drop(rx);
    });
    assert_eq!(tx.send(3), Err(SendError(3)));
    dropper.join().unwrap();
}

#[test]
fn recv_timeout_gives_up_never_early_and_huge_timeouts_work() {
    let (tx, rx) = mpsc::channel::<u32>();
    let t0 = Instant::now();
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(20)),
        Err(RecvTimeoutError::Timeout)
    );
    assert!(t0.elapsed() >= Duration::from_millis(20));
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        tx.send(1).unwrap();
    });
    assert_eq!(rx.recv_timeout(Duration::MAX), Ok(1));
    sender.join().unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::MAX),
        Err(RecvTimeoutError::Disconnected)
    );
}

#[test]
fn a_receiver_killed_while_parked_disconnects_and_leaves_no_waiter() {
    let (tx, rx) = mpsc::channel::<u32>();
    let h = grove::spawn(move || rx.recv());
    grove::yield_now();
    h.kill();
    assert!(h.join().unwrap_err().is_killed());
    assert_eq!(tx.send(1), Err(SendError(1)));
}

#[test]
fn a_receive_under_a_grove_timeout_unwinds_and_the_channel_still_works() {
    let (tx, rx) = mpsc::channel::<u32>();
    let r = grove::with_timeout(Duration::from_millis(10), || rx.recv());
    assert!(r.is_err(), "the timeout fired");
    tx.send(2).unwrap();
    assert_eq!(rx.recv(), Ok(2));
}

#[test]
fn many_senders_on_many_hubs_deliver_every_value_once() {
    let rt = Runtime::builder().hubs(4).build().unwrap();
    let (tx, rx) = mpsc::channel::<(usize, u32)>();
    const EACH: u32 = 20_000;
    let senders: Vec<_> = (0..4)
        .map(|hub| {
            let tx = tx.clone();
            rt.spawn_on(hub, move || {
                for i in 0..EACH {
                    tx.send((hub, i)).unwrap();
                    if i % 1000 == 0 {
                        grove::yield_now();
                    }
                }
            })
            .unwrap()
        })
        .collect();
    drop(tx);
    // The receiver is a task on hub 0 as well as... here, main's implicit hub.
    let mut next = [0u32; 4];
    for (hub, i) in rx.iter() {
        assert_eq!(i, next[hub], "values of one sender arrive in order");
        next[hub] += 1;
    }
    assert_eq!(next, [EACH; 4]);
    for s in senders {
        s.join().unwrap();
    }
}

#[test]
fn ping_pong_between_two_hubs() {
    let rt = Runtime::builder().hubs(2).build().unwrap();
    let (to_b, from_a) = mpsc::channel::<u32>();
    let (to_a, from_b) = mpsc::sync_channel::<u32>(1);
    let b = rt
        .spawn_on(1, move || {
            for v in from_a.iter() {
                to_a.send(v + 1).unwrap();
            }
        })
        .unwrap();
    let a = rt
        .spawn_on(0, move || {
            let mut v = 0;
            for _ in 0..2_000 {
                to_b.send(v).unwrap();
                v = from_b.recv().unwrap();
            }
            v
        })
        .unwrap();
    assert_eq!(a.join().unwrap(), 2_000);
    b.join().unwrap();
}

#[test]
fn a_receiver_parked_on_a_thread_that_exits_disconnects_its_senders() {
    let (tx, rx) = mpsc::channel::<u32>();
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        // A task parks in recv; the thread's main code returns; thread exit kills the task.
        drop(grove::spawn(move || rx.recv()));
        grove::yield_now();
        ready_tx.send(()).unwrap();
    })
    .join()
    .unwrap();
    ready_rx.recv().unwrap();
    assert_eq!(tx.send(1), Err(SendError(1)));
}
