//! `grove::signal`: tasks wait for signals; subscriptions end cleanly; forked children do not
//! leak signals into the parent. Signals are process-wide, so every scenario runs in a
//! re-executed copy of this binary.

mod util;

use util::isolated;

use std::io::ErrorKind;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use grove::signal::{self, Signals, SIGUSR1, SIGUSR2};

fn raise(sig: i32) {
    // SAFETY: kill takes only integers; this process, a signal someone subscribed to.
    unsafe { libc::kill(libc::getpid(), sig) };
}

#[test]
fn a_task_waits_for_a_signal_while_others_run() {
    isolated("a_task_waits_for_a_signal_while_others_run", || {
        let signals = Signals::new(&[SIGUSR1, SIGUSR2]).unwrap();
        let waiter = grove::spawn(move || (signals.recv().unwrap(), signals.recv().unwrap()));
        let ticker = grove::spawn(|| {
            for _ in 0..3 {
                grove::sleep(Duration::from_millis(5));
            }
            raise(SIGUSR1);
            grove::sleep(Duration::from_millis(5));
            raise(SIGUSR2);
        });
        ticker.join().unwrap();
        assert_eq!(waiter.join().unwrap(), (SIGUSR1, SIGUSR2));
    });
}

#[test]
fn a_signal_taken_by_another_thread_still_reaches_the_task() {
    isolated(
        "a_signal_taken_by_another_thread_still_reaches_the_task",
        || {
            // Threads that started before the subscription and do not block the signal.
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let threads: Vec<_> = (0..3)
                .map(|_| {
                    let rx_done = tx.clone();
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_millis(300));
                        drop(rx_done);
                    })
                })
                .collect();
            drop(tx);
            let signals = Signals::new(&[SIGUSR2]).unwrap();
            for _ in 0..20 {
                raise(SIGUSR2);
                let got = signals.recv_timeout(Duration::from_secs(5)).unwrap();
                assert_eq!(got, SIGUSR2);
            }
            let _ = rx.recv();
            for t in threads {
                t.join().unwrap();
            }
        },
    );
}

#[test]
fn recv_timeout_and_try_recv_do_not_wait_forever() {
    isolated("recv_timeout_and_try_recv_do_not_wait_forever", || {
        let signals = Signals::new(&[SIGUSR1]).unwrap();
        assert_eq!(signals.try_recv().unwrap(), None);
        let err = signals.recv_timeout(Duration::from_millis(20)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        // Thread-directed: the handler has run when `raise` returns.
        // SAFETY: raise takes a signal number this process subscribed to.
        unsafe { libc::raise(SIGUSR1) };
        assert_eq!(signals.try_recv().unwrap(), Some(SIGUSR1));
    });
}

#[test]
fn bad_signals_are_refused() {
    for bad in [
        &[][..],
        &[libc::SIGKILL],
        &[libc::SIGSEGV],
        &[0],
        &[64],
        &[-1],
    ] {
        let err = Signals::new(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
    }
}

#[test]
fn dropping_the_last_subscription_restores_the_default_action() {
    let name = "dropping_the_last_subscription_restores_the_default_action";
    if util::child_scenario().as_deref() == Some(name) {
        let a = Signals::new(&[SIGUSR1]).unwrap();
        let b = Signals::new(&[SIGUSR1]).unwrap();
        drop(a);
        raise(SIGUSR1); // still handled: `b` subscribes
        assert_eq!(b.recv().unwrap(), SIGUSR1);
        drop(b);
        raise(SIGUSR1); // the default action: the process ends here
        std::thread::sleep(Duration::from_secs(5));
        return;
    }
    let out = util::run_child_group_within(name, name, Duration::from_secs(30));
    assert_eq!(out.status.signal(), Some(SIGUSR1), "{out:?}");
}

#[test]
fn a_forked_childs_signals_do_not_reach_the_parent() {
    isolated("a_forked_childs_signals_do_not_reach_the_parent", || {
        let signals = Signals::new(&[SIGUSR1]).unwrap();
        let (parent_end, child_end) = grove::process::pipe().unwrap();
        let child = grove::process::Process::spawn(move || {
            // The parent's subscription is inert here.
            let inherited = Signals::new(&[SIGUSR2]).unwrap();
            drop(inherited);
            child_end.send(&1u8).unwrap();
            grove::sleep(Duration::from_secs(30));
        })
        .unwrap();
        parent_end.recv::<u8>().unwrap();
        child.signal(SIGUSR1).unwrap();
        // Default action in the child: it dies of the signal...
        assert_eq!(child.join().unwrap().signal(), Some(SIGUSR1));
        // ...and the parent heard nothing.
        let err = signals
            .recv_timeout(Duration::from_millis(100))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
    });
}

#[test]
fn a_parents_signals_value_is_inert_in_the_child() {
    isolated("a_parents_signals_value_is_inert_in_the_child", || {
        let signals = Signals::new(&[SIGUSR1]).unwrap();
        let child = grove::process::Process::spawn(move || {
            let err = signals.recv().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Unsupported);
        })
        .unwrap();
        assert!(child.join().unwrap().success());
    });
}

#[test]
fn signal_handler_runs_for_each_delivery() {
    isolated("signal_handler_runs_for_each_delivery", || {
        let count = std::rc::Rc::new(std::cell::Cell::new(0));
        let c = count.clone();
        let handler = signal::signal_handler(SIGUSR2, move || c.set(c.get() + 1)).unwrap();
        for i in 1..=3 {
            raise(SIGUSR2);
            grove::with_timeout(Duration::from_secs(5), || {
                while count.get() < i {
                    grove::sleep(Duration::from_millis(1));
                }
            })
            .unwrap();
        }
        handler.kill();
        assert_eq!(count.get(), 3);
    });
}
