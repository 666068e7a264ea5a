//! `select`, `io::wait_readable` / `wait_writable` on fds, and the thread pool.

use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use grove::net::UnixStream;

mod util;

#[test]
fn select_reports_exactly_the_ready_fds() {
    let pairs: Vec<_> = (0..4).map(|_| UnixStream::pair().unwrap()).collect();
    let readers: Vec<_> = pairs.iter().map(|(a, _)| a.as_raw_fd()).collect();
    (&pairs[1].1).write_all(b"x").unwrap();
    (&pairs[3].1).write_all(b"y").unwrap();
    let (r, w) = grove::select::select(&readers, &[], Some(Duration::from_secs(1))).unwrap();
    assert_eq!(r, [readers[1], readers[3]]);
    assert!(w.is_empty());
    // Writers: a fresh socket is writable at once.
    let (r, w) = grove::select::select(&[], &[pairs[0].1.as_raw_fd()], None).unwrap();
    assert!(r.is_empty());
    assert_eq!(w, [pairs[0].1.as_raw_fd()]);
}

#[test]
fn select_parks_until_a_task_makes_an_fd_ready() {
    let (a, b) = UnixStream::pair().unwrap();
    let (c, _d) = UnixStream::pair().unwrap();
    let writer = grove::spawn(move || {
        grove::sleep(Duration::from_millis(30));
        (&b).write_all(b"now").unwrap();
        b
    });
    let start = Instant::now();
    let (r, _) = grove::select::select(&[c.as_raw_fd(), a.as_raw_fd()], &[], None).unwrap();
    assert_eq!(r, [a.as_raw_fd()]);
    assert!(start.elapsed() >= Duration::from_millis(30));
    writer.join().unwrap();
}

#[test]
fn select_times_out_with_empty_lists_and_never_early() {
    let (a, _b) = UnixStream::pair().unwrap();
    let ticks = Rc::new(Cell::new(0));
    let t2 = ticks.clone();
    let ticker = grove::spawn(move || loop {
        grove::sleep(Duration::from_millis(5));
        t2.set(t2.get() + 1);
    });
    let start = Instant::now();
    let (r, w) =
        grove::select::select(&[a.as_raw_fd()], &[], Some(Duration::from_millis(60))).unwrap();
    assert!(r.is_empty() && w.is_empty());
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(60), "early: {waited:?}");
    assert!(ticks.get() >= 3, "other tasks ran meanwhile");
    ticker.kill();
}

#[test]
fn select_rejects_bad_input() {
    let err = grove::select::select(&[987_654], &[], Some(Duration::ZERO)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = grove::select::select(&[], &[], None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn wait_readable_and_writable_on_a_pipe() {
    let (reader, mut writer) = std::io::pipe().unwrap();
    let fd = reader.as_raw_fd();
    let err = grove::io::wait_readable(fd, Some(Duration::from_millis(20))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    grove::io::wait_writable(writer.as_raw_fd(), Some(Duration::from_secs(1))).unwrap();
    let w = grove::spawn(move || {
        grove::sleep(Duration::from_millis(10));
        writer.write_all(b"!").unwrap();
    });
    grove::io::wait_readable(fd, None).unwrap();
    w.join().unwrap();
}

#[test]
fn spawn_blocking_runs_off_the_hub_and_propagates_panics() {
    let ticks = Rc::new(Cell::new(0));
    let t2 = ticks.clone();
    let ticker = grove::spawn(move || loop {
        grove::sleep(Duration::from_millis(5));
        t2.set(t2.get() + 1);
    });
    // Three calls that each block their thread 100 ms, from three tasks: they overlap on the
    // pool, and the hub keeps running the ticker.
    let start = Instant::now();
    let calls: Vec<_> = (0..3u64)
        .map(|i| {
            grove::spawn(move || {
                grove::threadpool::spawn_blocking(move || {
                    std::thread::sleep(Duration::from_millis(100));
                    i * 10
                })
            })
        })
        .collect();
    let results: Vec<u64> = grove::join_all(calls)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(results, [0, 10, 20]);
    assert!(
        start.elapsed() < Duration::from_millis(280),
        "calls did not overlap"
    );
    assert!(ticks.get() >= 5, "the hub was stalled");
    ticker.kill();
    let panicked = grove::spawn(|| grove::threadpool::spawn_blocking(|| panic!("on a worker")));
    let err = panicked.join().unwrap_err();
    assert_eq!(err.panic_message(), Some("on a worker"));
}

#[test]
fn killing_a_task_waiting_on_the_pool_does_not_wait_for_the_worker() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let task = grove::spawn(move || {
        grove::threadpool::spawn_blocking(move || {
            let _ = rx.recv_timeout(Duration::from_secs(5));
        })
    });
    grove::yield_now();
    let start = Instant::now();
    task.kill();
    assert!(task.join().unwrap_err().is_killed());
    assert!(start.elapsed() < Duration::from_secs(1));
    drop(tx); // lets the worker finish
}

#[test]
fn a_nonblocking_read_after_select_sees_data_that_came_after_a_short_read() {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 16];
    (&b).write_all(b"one").unwrap();
    // A short read: grove marks the socket drained...
    assert_eq!((&a).read(&mut buf).unwrap(), 3);
    // ...but more arrives without the hub polling in between. Non-blocking calls ask the
    // kernel, so select's answer and the read agree.
    (&b).write_all(b"two").unwrap();
    let (r, _) =
        grove::select::select(&[a.as_raw_fd()], &[], Some(Duration::from_secs(5))).unwrap();
    assert_eq!(r, [a.as_raw_fd()]);
    assert_eq!((&a).read(&mut buf).unwrap(), 3);
    assert_eq!(&buf[..3], b"two");
    assert_eq!(
        (&a).read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
}

#[test]
fn a_nonblocking_accept_sees_a_connection_that_came_after_would_block() {
    let listener = grove::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    assert_eq!(listener.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
    // A std (non-grove) connect: nothing runs the hub between the two accepts.
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let fd = listener.as_raw_fd();
    let (r, _) = grove::select::select(&[fd], &[], Some(Duration::from_secs(5))).unwrap();
    assert_eq!(r, [fd]);
    let (stream, _) = listener.accept().unwrap();
    assert_eq!(stream.peer_addr().unwrap(), client.local_addr().unwrap());
}

#[test]
fn select_works_when_the_process_is_out_of_fds() {
    if util::child_scenario().is_some() {
        let (a, b) = UnixStream::pair().unwrap();
        let (c, _d) = UnixStream::pair().unwrap();
        let writer = grove::spawn(move || (&b).write_all(b"x").map(|()| b));
        // No new fd can be opened now: not the one `select` would wait on.
        util::set_soft_nofile(3);
        let ready = grove::select::select(&[a.as_raw_fd()], &[], Some(Duration::from_secs(5)));
        let start = Instant::now();
        let timed_out =
            grove::select::select(&[c.as_raw_fd()], &[], Some(Duration::from_millis(30)));
        let waited = start.elapsed();
        util::set_soft_nofile(4096);
        assert_eq!(ready.unwrap().0, [a.as_raw_fd()]);
        assert_eq!(timed_out.unwrap(), (vec![], vec![]));
        assert!(waited >= Duration::from_millis(30), "early: {waited:?}");
        writer.join().unwrap().unwrap();
        println!("selected without an fd");
        return;
    }
    let out = util::run_child("select_works_when_the_process_is_out_of_fds", "emfile");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("selected without an fd"), "{stdout}");
}
