//! `Process`: a closure in a forked child with a fresh hub; `pipe`, `Queue`, `Lock` across
//! processes. Every scenario runs in a re-executed, single-threaded copy of this binary, so a
//! fork never copies another test's thread.

mod util;

use util::isolated;

use std::io::ErrorKind;
use std::time::Duration;

use grove::process::{pipe, Lock, Process, Queue};

#[test]
fn pipe_carries_values_both_ways() {
    isolated("pipe_carries_values_both_ways", || {
        let (parent, child_end) = pipe().unwrap();
        let p = Process::spawn(move || {
            child_end
                .send(&(42u32, None::<u8>, String::from("hello")))
                .unwrap();
            let n: u64 = child_end.recv().unwrap();
            child_end.send(&(n * 2)).unwrap();
        })
        .unwrap();
        let got: (u32, Option<u8>, String) = parent.recv().unwrap();
        assert_eq!(got, (42, None, "hello".into()));
        parent.send(&21u64).unwrap();
        assert_eq!(parent.recv::<u64>().unwrap(), 42);
        assert!(p.join().unwrap().success());
        // The child is gone and its end with it: EOF, not a hang.
        assert_eq!(
            parent.recv::<u64>().unwrap_err().kind(),
            ErrorKind::UnexpectedEof
        );
    });
}

#[test]
fn queue_is_shared_by_many_children() {
    isolated("queue_is_shared_by_many_children", || {
        let q: Queue<(u32, String)> = Queue::new().unwrap();
        let kids: Vec<Process> = (0..8)
            .map(|i| {
                let q = q.clone();
                Process::spawn(move || {
                    for j in 0..50 {
                        q.put(&(i * 100 + j, format!("from {i}"))).unwrap();
                    }
                })
                .unwrap()
            })
            .collect();
        let mut seen: Vec<u32> = (0..400).map(|_| q.get().unwrap().0).collect();
        for k in &kids {
            assert!(k.join().unwrap().success());
        }
        seen.sort();
        let want: Vec<u32> = (0..8)
            .flat_map(|i| (0..50).map(move |j| i * 100 + j))
            .collect();
        assert_eq!(seen, want);
        assert_eq!(
            q.get_timeout(Duration::from_millis(20)).unwrap_err().kind(),
            ErrorKind::TimedOut
        );
    });
}

#[test]
fn lock_serialises_processes() {
    isolated("lock_serialises_processes", || {
        let lock = Lock::new().unwrap();
        let log: Queue<(u32, bool)> = Queue::new().unwrap();
        let kids: Vec<Process> = (0..6)
            .map(|i| {
                let (lock, log) = (lock.clone(), log.clone());
                Process::spawn(move || {
                    for _ in 0..5 {
                        let _held = lock.acquire().unwrap();
                        log.put(&(i, true)).unwrap();
                        grove::sleep(Duration::from_millis(1));
                        log.put(&(i, false)).unwrap();
                    }
                })
                .unwrap()
            })
            .collect();
        let events: Vec<(u32, bool)> = (0..60).map(|_| log.get().unwrap()).collect();
        for pair in events.chunks(2) {
            assert_eq!(pair[0].0, pair[1].0, "two holders at once: {events:?}");
            assert!(pair[0].1 && !pair[1].1);
        }
        for k in kids {
            assert!(k.join().unwrap().success());
        }
    });
}

#[test]
fn the_child_never_runs_the_parents_tasks_or_their_drops() {
    isolated(
        "the_child_never_runs_the_parents_tasks_or_their_drops",
        || {
            let q: Queue<String> = Queue::new().unwrap();
            struct Bye(Queue<String>);
            impl Drop for Bye {
                fn drop(&mut self) {
                    let _ = self.0.put(&format!("drop in {}", std::process::id()));
                }
            }
            let (q1, q2) = (q.clone(), q.clone());
            let parked = grove::spawn(move || {
                let _bye = Bye(q1.clone());
                grove::sleep(Duration::from_millis(100));
                q1.put(&format!("task in {}", std::process::id())).unwrap();
            });
            grove::yield_now(); // the task is parked in its sleep when we fork
            let child = Process::spawn(move || {
                // The child's own hub runs for longer than the parent's task sleeps.
                grove::sleep(Duration::from_millis(300));
                q2.put(&format!("child {}", std::process::id())).unwrap();
            })
            .unwrap();
            let cpid = child.pid();
            parked.join().unwrap();
            assert!(child.join().unwrap().success());
            let me = std::process::id();
            let mut got: Vec<String> = (0..3).map(|_| q.get().unwrap()).collect();
            got.sort();
            let mut want = vec![
                format!("child {cpid}"),
                format!("drop in {me}"),
                format!("task in {me}"),
            ];
            want.sort();
            assert_eq!(got, want);
            assert!(q.get_timeout(Duration::from_millis(50)).is_err());
        },
    );
}

#[test]
fn a_panicking_child_exits_101_and_its_pipe_ends() {
    isolated("a_panicking_child_exits_101_and_its_pipe_ends", || {
        let (parent, child_end) = pipe().unwrap();
        let p = Process::spawn(move || {
            let _keep = child_end;
            panic!("child fails on purpose");
        })
        .unwrap();
        assert_eq!(p.join().unwrap().code(), Some(101));
        assert_eq!(p.exit_code(), Some(101));
        assert_eq!(
            parent.recv::<u8>().unwrap_err().kind(),
            ErrorKind::UnexpectedEof
        );
    });
}

#[test]
fn the_thread_pool_works_in_the_child() {
    isolated("the_thread_pool_works_in_the_child", || {
        assert_eq!(grove::threadpool::spawn_blocking(|| 1 + 1), 2);
        let (parent, child_end) = pipe().unwrap();
        let p = Process::spawn(move || {
            let v = grove::threadpool::spawn_blocking(|| 40 + 2);
            child_end.send(&(v as u32)).unwrap();
        })
        .unwrap();
        let got = grove::with_timeout(Duration::from_secs(10), || parent.recv::<u32>())
            .expect("the child's pool job finishes");
        assert_eq!(got.unwrap(), 42);
        assert!(p.join().unwrap().success());
        assert_eq!(grove::threadpool::spawn_blocking(|| 3), 3);
    });
}

#[test]
fn forking_inside_a_task_runs_the_child_as_that_task() {
    isolated("forking_inside_a_task_runs_the_child_as_that_task", || {
        let q: Queue<u32> = Queue::new().unwrap();
        let q2 = q.clone();
        let t = grove::spawn(move || {
            let q3 = q2.clone();
            let p = Process::spawn(move || {
                grove::sleep(Duration::from_millis(10));
                let helper = grove::spawn(|| 7u32);
                q3.put(&helper.join().unwrap()).unwrap();
            })
            .unwrap();
            p.join().unwrap()
        });
        assert!(t.join().unwrap().success());
        assert_eq!(q.get().unwrap(), 7);
        assert!(q.get_timeout(Duration::from_millis(50)).is_err());
    });
}

#[test]
fn terminate_and_kill_end_a_child() {
    isolated("terminate_and_kill_end_a_child", || {
        let p = Process::spawn(|| grove::sleep(Duration::from_secs(30))).unwrap();
        assert!(p.is_alive());
        assert!(p.join_timeout(Duration::from_millis(20)).unwrap().is_none());
        p.terminate().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(p.join().unwrap().signal(), Some(libc::SIGTERM));
        assert!(!p.is_alive());
        p.kill().unwrap(); // reaped: nothing to signal, no error
    });
}

#[test]
fn forking_while_a_pool_job_runs_leaves_the_child_a_working_pool() {
    isolated(
        "forking_while_a_pool_job_runs_leaves_the_child_a_working_pool",
        || {
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let busy = grove::spawn(move || {
                grove::threadpool::spawn_blocking(move || {
                    let _ = rx.recv_timeout(Duration::from_secs(10));
                    "released"
                })
            });
            grove::yield_now(); // the job is on a worker, blocked
            let (parent, child_end) = pipe().unwrap();
            let p = Process::spawn(move || {
                let v = grove::threadpool::spawn_blocking(|| 5u32);
                child_end.send(&v).unwrap();
            })
            .unwrap();
            let got = grove::with_timeout(Duration::from_secs(10), || parent.recv::<u32>())
                .expect("the child's pool does not wait for the parent's busy worker");
            assert_eq!(got.unwrap(), 5);
            assert!(p.join().unwrap().success());
            tx.send(()).unwrap();
            assert_eq!(busy.join().unwrap(), "released");
        },
    );
}

#[test]
fn huge_timeouts_mean_forever_and_zero_means_now() {
    isolated("huge_timeouts_mean_forever_and_zero_means_now", || {
        let p = Process::spawn(|| grove::sleep(Duration::from_millis(30))).unwrap();
        assert!(p.join_timeout(Duration::ZERO).unwrap().is_none());
        let status = p.join_timeout(Duration::MAX).unwrap();
        assert!(status.expect("MAX waits until the exit").success());
        let q: Queue<u8> = Queue::new().unwrap();
        assert_eq!(
            q.get_timeout(Duration::ZERO).unwrap_err().kind(),
            ErrorKind::TimedOut
        );
        q.put(&9).unwrap();
        assert_eq!(q.get_timeout(Duration::MAX).unwrap(), 9);
    });
}

#[test]
fn running_out_of_fds_is_an_error_not_a_panic() {
    isolated("running_out_of_fds_is_an_error_not_a_panic", || {
        let keep: Vec<_> = (0..8).map(|_| pipe().unwrap()).collect();
        util::set_soft_nofile(20);
        let mut made = Vec::new();
        let err = loop {
            match Queue::<u8>::new() {
                Ok(q) => made.push(q),
                Err(e) => break e,
            }
            assert!(made.len() < 100, "the fd limit was not reached");
        };
        assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");
        assert!(pipe().is_err());
        let err = grove::process::Command::new("true").output().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");
        drop((made, keep));
        util::set_soft_nofile(1024);
        assert!(grove::process::Command::new("true")
            .status()
            .unwrap()
            .success());
    });
}

#[test]
fn a_queue_message_too_large_is_refused() {
    let q: Queue<Vec<u8>> = Queue::new().unwrap();
    let err = q
        .put(&vec![0; grove::process::MAX_QUEUE_MESSAGE])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let fits = vec![1u8; grove::process::MAX_QUEUE_MESSAGE - 4];
    q.put(&fits).unwrap();
    assert_eq!(q.get().unwrap(), fits);
}

#[test]
fn a_recv_cut_short_by_a_timeout_keeps_the_stream_framed() {
    use std::io::Write;
    let (raw, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let conn = grove::process::Connection::from_std(theirs).unwrap();
    let mut raw = raw;
    // The header and half of a 10-byte message arrive; the rest comes later.
    raw.write_all(&10u32.to_le_bytes()).unwrap();
    raw.write_all(b"01234").unwrap();
    let cut = grove::with_timeout(Duration::from_millis(20), || conn.recv_bytes());
    assert!(cut.is_err(), "the first recv must time out mid-message");
    raw.write_all(b"56789").unwrap();
    raw.write_all(&2u32.to_le_bytes()).unwrap();
    raw.write_all(b"ok").unwrap();
    assert_eq!(conn.recv_bytes().unwrap(), b"0123456789");
    assert_eq!(conn.recv_bytes().unwrap(), b"ok");
    drop(raw);
    assert_eq!(
        conn.recv_bytes().unwrap_err().kind(),
        ErrorKind::UnexpectedEof
    );
}

#[test]
fn a_second_receiver_is_busy_not_a_panic() {
    let (a, b) = pipe().unwrap();
    let b = std::rc::Rc::new(b);
    let b2 = b.clone();
    let first = grove::spawn(move || b2.recv::<u8>().unwrap());
    grove::yield_now();
    assert_eq!(b.recv::<u8>().unwrap_err().kind(), ErrorKind::ResourceBusy);
    a.send(&3u8).unwrap();
    assert_eq!(first.join().unwrap(), 3);
}

#[test]
fn the_closure_may_borrow_what_the_parent_has() {
    isolated("the_closure_may_borrow_what_the_parent_has", || {
        let words = ["borrowed".to_string(), "not moved".to_string()];
        let (parent, child_end) = pipe().unwrap();
        let p = Process::spawn(|| child_end.send(&words.join(" ")).unwrap()).unwrap();
        assert_eq!(parent.recv::<String>().unwrap(), "borrowed not moved");
        assert!(p.join().unwrap().success());
        assert_eq!(words.len(), 2);
    });
}

#[test]
fn a_child_forked_in_a_task_that_blocks_forever_never_unwinds_the_parents_main() {
    let name = "a_child_forked_in_a_task_that_blocks_forever_never_unwinds_the_parents_main";
    isolated(name, || {
        let q: Queue<String> = Queue::new().unwrap();
        struct Bye(Queue<String>);
        impl Drop for Bye {
            fn drop(&mut self) {
                let _ = self
                    .0
                    .put(&format!("main's drop in {}", std::process::id()));
            }
        }
        let _bye = Bye(q.clone());
        let t = grove::spawn(|| {
            let p = Process::spawn(|| grove::sync::Event::new().wait()).unwrap();
            p.join().unwrap()
        });
        let status = t.join().unwrap();
        assert_eq!(
            status.code(),
            Some(101),
            "the child reports the deadlock and exits"
        );
        assert!(
            q.get_timeout(Duration::from_millis(100)).is_err(),
            "the parent's main was unwound in the child"
        );
    });
}
