//! What each hooked call does after `monkey::patch_all()`, compared with libc: the user's view
//! of O_NONBLOCK, fds from before the patch, the kernel's socket timeouts, close while another
//! task waits, errno on bad input, the poll family, pipes and files, kill and Timeout inside a
//! hooked call, threads without a hub, full writes, dup, signal handlers, generators.

mod util;

use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

use grove::JoinError;

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap()
}

/// The kernel's own file status flags (not the hooked `fcntl`).
fn kernel_flags(fd: RawFd) -> i32 {
    // SAFETY: a raw F_GETFL; no pointers.
    unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_GETFL) as i32 }
}

/// What the user sees through (hooked) `fcntl`.
fn user_flags(fd: RawFd) -> i32 {
    // SAFETY: F_GETFL takes no pointer.
    unsafe { libc::fcntl(fd, libc::F_GETFL) }
}

/// Counts ticks of a task sleeping 5 ms at a time until told to stop: proof that the hub kept
/// running while another task waited in a hooked call.
fn ticker() -> (Rc<Cell<bool>>, grove::JoinHandle<u32>) {
    let stop = Rc::new(Cell::new(false));
    let s = stop.clone();
    let h = grove::spawn(move || {
        let mut n = 0;
        while !s.get() {
            grove::sleep(Duration::from_millis(5));
            n += 1;
        }
        n
    });
    (stop, h)
}

#[test]
fn the_users_nonblocking_view_is_kept_while_the_kernel_fd_is_nonblocking() {
    grove::monkey::patch_all();
    let (mut a, mut b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    assert_ne!(
        kernel_flags(fd) & libc::O_NONBLOCK,
        0,
        "the kernel fd is non-blocking"
    );
    assert_eq!(
        user_flags(fd) & libc::O_NONBLOCK,
        0,
        "the user asked for blocking"
    );

    a.set_nonblocking(true).unwrap(); // ioctl(FIONBIO)
    assert_ne!(user_flags(fd) & libc::O_NONBLOCK, 0);
    let mut buf = [0u8; 4];
    assert_eq!(a.read(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);

    a.set_nonblocking(false).unwrap();
    assert_eq!(user_flags(fd) & libc::O_NONBLOCK, 0);
    assert_ne!(kernel_flags(fd) & libc::O_NONBLOCK, 0);
    // SAFETY: F_SETFL with an int argument.
    assert_eq!(
        unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) },
        0
    );
    assert_ne!(user_flags(fd) & libc::O_NONBLOCK, 0);
    assert_eq!(a.read(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    // SAFETY: as above.
    assert_eq!(unsafe { libc::fcntl(fd, libc::F_SETFL, 0) }, 0);
    assert_ne!(kernel_flags(fd) & libc::O_NONBLOCK, 0);

    // Blocking again: the read parks the task while another one writes.
    let writer = grove::spawn(move || {
        grove::sleep(Duration::from_millis(30));
        b.write_all(b"ping").unwrap();
        b
    });
    a.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    drop(writer.join().unwrap());
}

#[test]
fn fds_from_before_patch_all_become_cooperative() {
    if util::child_scenario().is_some() {
        let (mut a, b) = UnixStream::pair().unwrap(); // before the patch: plain blocking
        assert_eq!(kernel_flags(a.as_raw_fd()) & libc::O_NONBLOCK, 0);
        grove::monkey::patch_all();
        let (stop, ticks) = ticker();
        let writer = grove::spawn(move || {
            grove::sleep(Duration::from_millis(100));
            (&b).write_all(b"late").unwrap();
            b
        });
        let mut buf = [0u8; 4];
        a.read_exact(&mut buf).unwrap();
        stop.set(true);
        assert_eq!(&buf, b"late");
        assert_ne!(kernel_flags(a.as_raw_fd()) & libc::O_NONBLOCK, 0);
        assert_eq!(user_flags(a.as_raw_fd()) & libc::O_NONBLOCK, 0);
        assert!(ticks.join().unwrap() >= 5, "the hub ran while main waited");
        drop(writer.join().unwrap());
        return;
    }
    util::run_child_ok("fds_from_before_patch_all_become_cooperative", "child");
}

#[test]
fn socket_timeouts_are_the_kernels() {
    grove::monkey::patch_all();
    let (mut a, _b) = UnixStream::pair().unwrap();
    a.set_read_timeout(Some(Duration::from_millis(150)))
        .unwrap();
    // The kernel keeps it (rounded to its clock tick).
    let kept = a.read_timeout().unwrap().unwrap();
    assert!(kept >= Duration::from_millis(150) && kept < Duration::from_millis(170));
    let (stop, ticks) = ticker();
    let start = Instant::now();
    let err = a.read(&mut [0u8; 8]).unwrap_err();
    let took = start.elapsed();
    stop.set(true);
    assert_eq!(
        err.kind(),
        ErrorKind::WouldBlock,
        "EAGAIN, as the kernel reports it"
    );
    assert!(
        took >= Duration::from_millis(150),
        "timed out early: {took:?}"
    );
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(ticks.join().unwrap() >= 10);

    // SO_SNDTIMEO: a write into a full buffer nobody drains.
    a.set_write_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let big = vec![0u8; 8 << 20];
    let start = Instant::now();
    let r = a.write_all(&big);
    assert_eq!(r.unwrap_err().kind(), ErrorKind::WouldBlock);
    assert!(start.elapsed() >= Duration::from_millis(100));
}

#[test]
fn closing_an_fd_wakes_its_waiter_with_ebadf() {
    grove::monkey::patch_all();
    let (a, b) = UnixStream::pair().unwrap();
    let fd = a.into_raw_fd();
    let waiter = grove::spawn(move || {
        let mut buf = [0u8; 4];
        // SAFETY: reading into a valid buffer.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), 4) };
        (n, errno())
    });
    grove::sleep(Duration::from_millis(20)); // the waiter is parked in read()
                                             // SAFETY: closing the fd this test owns.
    assert_eq!(unsafe { libc::close(fd) }, 0);
    // A new socket takes the number: its data must not reach the old waiter.
    let (c, mut d) = UnixStream::pair().unwrap();
    d.write_all(b"new!").unwrap();
    assert_eq!(waiter.join().unwrap(), (-1, libc::EBADF));
    let mut buf = [0u8; 4];
    (&c).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"new!", "the new socket's data is intact");
    drop(b);
}

#[test]
fn bad_input_fails_exactly_as_the_raw_syscall_does() {
    grove::monkey::patch_all();
    let h = grove::spawn(|| {
        let (a, _b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        let mut cases: Vec<(&str, i64, i32, i64, i32)> = Vec::new();
        macro_rules! case {
            ($name:expr, $hook:expr, $raw:expr) => {{
                // SAFETY: each call passes the kernel bad input on purpose; none of it is
                // dereferenced in user space.
                let h = unsafe { $hook } as i64;
                let he = if h < 0 { errno() } else { 0 };
                // SAFETY: as above.
                let r = unsafe { $raw } as i64;
                let re = if r < 0 { errno() } else { 0 };
                cases.push(($name, h, he, r, re));
            }};
        }
        let null = std::ptr::null_mut::<libc::c_void>();
        case!(
            "read -1",
            libc::read(-1, null, 1),
            libc::syscall(libc::SYS_read, -1, null, 1)
        );
        case!(
            "read closed",
            libc::read(9999, null, 1),
            libc::syscall(libc::SYS_read, 9999, null, 1)
        );
        case!(
            "write null buf",
            libc::write(fd, null, 8),
            libc::syscall(libc::SYS_write, fd, null, 8)
        );
        case!(
            "recv bad",
            libc::recv(-5, null, 1, 0),
            libc::syscall(libc::SYS_recvfrom, -5, null, 1, 0, 0, 0)
        );
        case!(
            "connect bad",
            libc::connect(-1, std::ptr::null(), 0),
            libc::syscall(libc::SYS_connect, -1, 0, 0)
        );
        case!(
            "accept unlistened",
            libc::accept(fd, std::ptr::null_mut(), std::ptr::null_mut()),
            libc::syscall(libc::SYS_accept4, fd, 0, 0, 0)
        );
        let many = 1usize << 30;
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        case!(
            "poll nfds too big",
            libc::poll(std::ptr::null_mut(), many as libc::nfds_t, 10),
            libc::syscall(libc::SYS_ppoll, 0, many, &zero, 0, 8)
        );
        case!(
            "poll null fds",
            libc::poll(std::ptr::null_mut(), 1, 10),
            libc::syscall(libc::SYS_ppoll, 0, 1, &zero, 0, 8)
        );
        let neg = libc::timespec {
            tv_sec: -1,
            tv_nsec: 0,
        };
        let big_ns = libc::timespec {
            tv_sec: 0,
            tv_nsec: 1_000_000_000,
        };
        case!(
            "nanosleep negative",
            libc::nanosleep(&neg, std::ptr::null_mut()),
            libc::syscall(libc::SYS_nanosleep, &neg, 0)
        );
        case!(
            "nanosleep nsec too big",
            libc::nanosleep(&big_ns, std::ptr::null_mut()),
            libc::syscall(libc::SYS_nanosleep, &big_ns, 0)
        );
        case!(
            "nanosleep null",
            libc::nanosleep(std::ptr::null(), std::ptr::null_mut()),
            libc::syscall(libc::SYS_nanosleep, 0, 0)
        );
        case!(
            "ppoll negative",
            libc::ppoll(std::ptr::null_mut(), 0, &neg, std::ptr::null()),
            libc::syscall(libc::SYS_ppoll, 0, 0, &neg, 0, 8)
        );
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        case!(
            "epoll_wait on a socket",
            libc::epoll_wait(fd, &mut ev, 1, 10),
            libc::syscall(libc::SYS_epoll_pwait, fd, &mut ev, 1, 0, 0, 8)
        );
        case!(
            "setsockopt bad fd",
            libc::setsockopt(-1, libc::SOL_SOCKET, libc::SO_RCVTIMEO, std::ptr::null(), 0),
            libc::syscall(
                libc::SYS_setsockopt,
                -1,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                0,
                0
            )
        );
        case!(
            "dup2 bad",
            libc::dup2(-1, 50),
            libc::syscall(libc::SYS_dup3, -1, 50, 0)
        );
        case!(
            "fcntl bad",
            libc::fcntl(-1, libc::F_GETFL),
            libc::syscall(libc::SYS_fcntl, -1, libc::F_GETFL)
        );
        let mut tv = libc::timeval {
            tv_sec: -1,
            tv_usec: 0,
        };
        // SAFETY: select with no sets and a negative timeout.
        let s = unsafe {
            libc::select(
                0,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut tv,
            )
        };
        cases.push((
            "select negative",
            s as i64,
            if s < 0 { errno() } else { 0 },
            -1,
            libc::EINVAL,
        ));
        // clock_nanosleep returns the error number itself.
        // SAFETY: an invalid clock id.
        let c = unsafe { libc::clock_nanosleep(12345, 0, &zero, std::ptr::null_mut()) };
        cases.push((
            "clock_nanosleep bad clock",
            c as i64,
            0,
            libc::EINVAL as i64,
            0,
        ));
        cases
    });
    for (name, h, he, r, re) in h.join().unwrap() {
        assert_eq!((h, he), (r, re), "{name}: hook vs raw syscall");
    }
}

#[test]
fn zero_timeouts_never_park_and_timeouts_park_until_ready() {
    grove::monkey::patch_all();
    let (a, b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let before = grove::debug::metrics().switches;
    // SAFETY: one valid pollfd.
    assert_eq!(unsafe { libc::poll(&mut p, 1, 0) }, 0);
    assert_eq!(
        grove::debug::metrics().switches,
        before,
        "a zero timeout never parks"
    );

    // A timeout that passes.
    let start = Instant::now();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::poll(&mut p, 1, 60) }, 0);
    assert!(start.elapsed() >= Duration::from_millis(60));

    // Readiness before the timeout, while another task runs.
    let writer = grove::spawn(move || {
        grove::sleep(Duration::from_millis(20));
        (&b).write_all(b"x").unwrap();
        b
    });
    let start = Instant::now();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::poll(&mut p, 1, 5000) }, 1);
    assert_ne!(p.revents & libc::POLLIN, 0);
    assert!(start.elapsed() < Duration::from_secs(2));
    let b = writer.join().unwrap();

    // select sees the same byte.
    // SAFETY: fd_set is plain data; FD_SET on an fd below FD_SETSIZE.
    let mut set: libc::fd_set = unsafe { std::mem::zeroed() };
    unsafe { libc::FD_SET(fd, &mut set) };
    let mut tv = libc::timeval {
        tv_sec: 1,
        tv_usec: 0,
    };
    // SAFETY: valid set and timeout.
    assert_eq!(
        unsafe {
            libc::select(
                fd + 1,
                &mut set,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut tv,
            )
        },
        1
    );
    (&a).read_exact(&mut [0u8; 1]).unwrap();

    // select with a timeout parks until a writer comes.
    let writer = grove::spawn(move || {
        grove::sleep(Duration::from_millis(20));
        (&b).write_all(b"y").unwrap();
        b
    });
    // SAFETY: as above.
    let mut set: libc::fd_set = unsafe { std::mem::zeroed() };
    unsafe { libc::FD_SET(fd, &mut set) };
    let mut tv = libc::timeval {
        tv_sec: 5,
        tv_usec: 0,
    };
    // SAFETY: valid set and timeout.
    assert_eq!(
        unsafe {
            libc::select(
                fd + 1,
                &mut set,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut tv,
            )
        },
        1
    );
    assert!(tv.tv_sec < 5, "select leaves the time not slept");
    (&a).read_exact(&mut [0u8; 1]).unwrap();

    let b = writer.join().unwrap();

    // epoll_wait on the program's own epoll fd.
    // SAFETY: plain epoll calls on our own fds.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: 7,
    };
    assert_eq!(
        unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) },
        0
    );
    let mut out = [libc::epoll_event { events: 0, u64: 0 }; 4];
    // SAFETY: valid event buffer.
    assert_eq!(unsafe { libc::epoll_wait(ep, out.as_mut_ptr(), 4, 0) }, 0);
    let writer = grove::spawn(move || {
        grove::sleep(Duration::from_millis(20));
        (&b).write_all(b"z").unwrap();
        b
    });
    let (stop, ticks) = ticker();
    // SAFETY: as above.
    assert_eq!(
        unsafe { libc::epoll_wait(ep, out.as_mut_ptr(), 4, 5000) },
        1
    );
    stop.set(true);
    assert_eq!({ out[0].u64 }, 7);
    assert!(ticks.join().unwrap() >= 1, "the hub ran during epoll_wait");
    drop(writer.join().unwrap());
    // SAFETY: closing our epoll fd.
    unsafe { libc::close(ep) };
}

#[test]
fn pipes_are_cooperative_and_files_pass_through() {
    grove::monkey::patch_all();
    let mut fds = [0; 2];
    // SAFETY: pipe writes two fds.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let [r, w] = fds;
    let (stop, ticks) = ticker();
    let writer = grove::spawn(move || {
        grove::sleep(Duration::from_millis(40));
        // SAFETY: writing 3 bytes from a valid buffer to our pipe.
        unsafe { libc::write(w, b"abc".as_ptr().cast(), 3) }
    });
    let mut buf = [0u8; 3];
    // SAFETY: reading into a valid buffer.
    assert_eq!(unsafe { libc::read(r, buf.as_mut_ptr().cast(), 3) }, 3);
    stop.set(true);
    assert_eq!(&buf, b"abc");
    assert_eq!(writer.join().unwrap(), 3);
    assert!(
        ticks.join().unwrap() >= 3,
        "the hub ran while the pipe was empty"
    );
    assert_ne!(kernel_flags(r) & libc::O_NONBLOCK, 0);
    // SAFETY: closing our pipe.
    unsafe { libc::close(r) };
    unsafe { libc::close(w) };

    let path = std::env::temp_dir().join(format!("grove-monkey-{}", std::process::id()));
    std::fs::write(&path, b"file contents").unwrap();
    let f = std::fs::File::open(&path).unwrap();
    let mut s = String::new();
    (&f).read_to_string(&mut s).unwrap();
    assert_eq!(s, "file contents");
    assert_eq!(
        kernel_flags(f.as_raw_fd()) & libc::O_NONBLOCK,
        0,
        "files are left alone"
    );
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_kill_ends_a_hooked_call_and_the_task_unwinds_at_its_next_grove_call() {
    grove::monkey::patch_all();
    let (a, b) = UnixStream::pair().unwrap();
    let seen = Rc::new(Cell::new(0));
    let s = seen.clone();
    let task = grove::spawn(move || {
        let err = (&a).read(&mut [0u8; 4]).unwrap_err();
        s.set(err.raw_os_error().unwrap_or(-1));
        grove::sleep(Duration::from_secs(30)); // the held-back kill lands here
        unreachable!("killed");
    });
    grove::sleep(Duration::from_millis(20));
    task.kill();
    assert!(matches!(task.join(), Err(JoinError::Killed)));
    assert_eq!(seen.get(), libc::ECANCELED);

    // A killed task sleeping in std::thread::sleep stops sleeping.
    let sleeper = grove::spawn(|| std::thread::sleep(Duration::from_secs(30)));
    grove::sleep(Duration::from_millis(20));
    let start = Instant::now();
    sleeper.kill();
    let _ = sleeper.join();
    assert!(start.elapsed() < Duration::from_secs(5));
    drop(b);
}

#[test]
fn a_timeout_around_std_code_reports_elapsed() {
    grove::monkey::patch_all();
    let (a, _b) = UnixStream::pair().unwrap();
    let start = Instant::now();
    let r = grove::with_timeout(Duration::from_millis(50), || (&a).read(&mut [0u8; 4]));
    assert!(r.is_err(), "Elapsed, not {r:?}");
    assert!(start.elapsed() >= Duration::from_millis(50));
    // The task is usable afterwards: nothing is left pending.
    grove::sleep(Duration::from_millis(1));
    let r = grove::with_timeout(Duration::from_millis(30), || {
        std::thread::sleep(Duration::from_secs(10));
    });
    assert!(r.is_err());
}

#[test]
fn a_kill_during_a_drop_that_sleeps_in_std_code() {
    grove::monkey::patch_all();
    struct SlowDrop(Rc<Cell<bool>>);
    impl Drop for SlowDrop {
        fn drop(&mut self) {
            std::thread::sleep(Duration::from_millis(50)); // parks (patched) while unwinding
            self.0.set(true);
        }
    }
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    let task = grove::spawn(move || {
        let _guard = SlowDrop(d);
        grove::sleep(Duration::from_secs(30));
    });
    grove::sleep(Duration::from_millis(10));
    task.kill();
    grove::sleep(Duration::from_millis(10));
    task.kill(); // lands inside the Drop's hooked sleep
    assert!(matches!(task.join(), Err(JoinError::Killed)));
    assert!(dropped.get(), "the Drop ran to its end");
}

#[test]
fn threads_without_a_hub_pass_through() {
    grove::monkey::patch_all();
    // An fd the hub made non-blocking in the kernel, used from a plain thread: still blocks.
    let (a, b) = UnixStream::pair().unwrap();
    assert_ne!(kernel_flags(a.as_raw_fd()) & libc::O_NONBLOCK, 0);
    let t = std::thread::spawn(move || {
        let start = Instant::now();
        let mut buf = [0u8; 5];
        (&a).read_exact(&mut buf).unwrap();
        std::thread::sleep(Duration::from_millis(10));
        (buf, start.elapsed())
    });
    grove::sleep(Duration::from_millis(50));
    (&b).write_all(b"hello").unwrap();
    let (buf, waited) = t.join().unwrap();
    assert_eq!(&buf, b"hello");
    assert!(waited >= Duration::from_millis(50));

    // A socket made on a plain thread stays a plain blocking socket.
    let t = std::thread::spawn(|| {
        let (c, _d) = UnixStream::pair().unwrap();
        kernel_flags(c.as_raw_fd()) & libc::O_NONBLOCK
    });
    assert_eq!(t.join().unwrap(), 0);
}

#[test]
fn a_blocking_write_writes_everything_and_waitall_waits() {
    grove::monkey::patch_all();
    let (a, b) = UnixStream::pair().unwrap();
    let reader = grove::spawn(move || {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        while let Ok(n @ 1..) = (&b).read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        got.len()
    });
    let big: Vec<u8> = (0..(4 << 20)).map(|i| i as u8).collect();
    // One write call: a blocking socket writes it all.
    assert_eq!((&a).write(&big).unwrap(), big.len());
    drop(a);
    assert_eq!(reader.join().unwrap(), big.len());

    let (c, d) = UnixStream::pair().unwrap();
    let writer = grove::spawn(move || {
        for chunk in [b"ab", b"cd", b"ef"] {
            (&d).write_all(chunk).unwrap();
            grove::sleep(Duration::from_millis(10));
        }
        d
    });
    let mut buf = [0u8; 6];
    // SAFETY: recv into a valid buffer.
    let n = unsafe { libc::recv(c.as_raw_fd(), buf.as_mut_ptr().cast(), 6, libc::MSG_WAITALL) };
    assert_eq!(n, 6);
    assert_eq!(&buf, b"abcdef");
    drop(writer.join().unwrap());
}

#[test]
fn dup_and_dup2_keep_the_fd_cooperative() {
    grove::monkey::patch_all();
    let (a, b) = UnixStream::pair().unwrap();
    // SAFETY: dup of our fd.
    let copy = unsafe { libc::dup(a.as_raw_fd()) };
    assert!(copy >= 0);
    assert_eq!(user_flags(copy) & libc::O_NONBLOCK, 0);
    let writer = grove::spawn(move || {
        grove::sleep(Duration::from_millis(20));
        (&b).write_all(b"dup!").unwrap();
        b
    });
    let (stop, ticks) = ticker();
    let mut buf = [0u8; 4];
    // SAFETY: reading into a valid buffer.
    assert_eq!(unsafe { libc::read(copy, buf.as_mut_ptr().cast(), 4) }, 4);
    stop.set(true);
    assert!(ticks.join().unwrap() >= 1);
    assert_eq!(&buf, b"dup!");
    // dup2 over the copy: the number now refers to `b`'s peer again, still cooperative.
    let b = writer.join().unwrap();
    // SAFETY: dup2 between our fds.
    assert_eq!(unsafe { libc::dup2(a.as_raw_fd(), copy) }, copy);
    let w = grove::spawn(move || {
        grove::sleep(Duration::from_millis(20));
        (&b).write_all(b"two").unwrap();
        b
    });
    let mut buf = [0u8; 3];
    // SAFETY: as above.
    assert_eq!(unsafe { libc::read(copy, buf.as_mut_ptr().cast(), 3) }, 3);
    assert_eq!(&buf, b"two");
    drop(w.join().unwrap());
    // SAFETY: closing our copy.
    unsafe { libc::close(copy) };
}

static SIGNALS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static SELF_PIPE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn on_alarm(_: libc::c_int) {
    let fd = SELF_PIPE.load(std::sync::atomic::Ordering::Relaxed);
    // SAFETY: write(2) of one byte from a static buffer: async-signal-safe.
    unsafe { libc::write(fd, b"!".as_ptr().cast(), 1) };
    SIGNALS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

#[test]
fn a_signal_handler_writing_a_self_pipe_while_the_hub_works() {
    if util::child_scenario().is_none() {
        util::run_child_ok(
            "a_signal_handler_writing_a_self_pipe_while_the_hub_works",
            "child",
        );
        return;
    }
    grove::monkey::patch_all();
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds.
    assert_eq!(
        unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK) },
        0
    );
    SELF_PIPE.store(fds[1], std::sync::atomic::Ordering::Relaxed);
    // SAFETY: installing a handler that only calls async-signal-safe functions, then a 1 ms
    // interval timer.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_alarm as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigaction(libc::SIGALRM, &sa, std::ptr::null_mut());
        let t = libc::itimerval {
            it_interval: libc::timeval {
                tv_sec: 0,
                tv_usec: 1000,
            },
            it_value: libc::timeval {
                tv_sec: 0,
                tv_usec: 1000,
            },
        };
        libc::setitimer(libc::ITIMER_REAL, &t, std::ptr::null_mut());
    }
    // Busy hooked I/O on the hub while the signals arrive.
    let start = Instant::now();
    let (a, b) = UnixStream::pair().unwrap();
    let echo = grove::spawn(move || {
        let mut buf = [0u8; 64];
        while let Ok(n @ 1..) = (&b).read(&mut buf) {
            (&b).write_all(&buf[..n]).unwrap();
        }
    });
    let mut rounds = 0;
    while start.elapsed() < Duration::from_millis(300) {
        (&a).write_all(b"ping").unwrap();
        (&a).read_exact(&mut [0u8; 4]).unwrap();
        std::thread::sleep(Duration::from_micros(200));
        rounds += 1;
    }
    // SAFETY: stop the timer.
    unsafe {
        let t: libc::itimerval = std::mem::zeroed();
        libc::setitimer(libc::ITIMER_REAL, &t, std::ptr::null_mut());
    }
    drop(a);
    echo.join().unwrap();
    let mut drained = 0;
    let mut buf = [0u8; 256];
    loop {
        // SAFETY: reading our non-blocking pipe into a valid buffer.
        let n = unsafe { libc::read(fds[0], buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        drained += n as usize;
    }
    assert!(rounds > 10);
    assert!(SIGNALS.load(std::sync::atomic::Ordering::Relaxed) > 10);
    assert!(drained > 10, "the handler's writes arrived");
}

#[test]
fn hooked_calls_in_a_generator_body_behave_like_libc() {
    grove::monkey::patch_all();
    let mut g = grove::generator::Generator::<(), u32, ()>::new(|y, ()| {
        std::thread::sleep(Duration::from_millis(5)); // no parking here: plain nanosleep
        y.suspend(1);
    });
    assert!(matches!(
        g.resume(()),
        grove::generator::GeneratorState::Yielded(1)
    ));
}

#[test]
fn many_tasks_resolve_names_at_once() {
    grove::monkey::patch_all();
    use std::net::ToSocketAddrs;
    let tasks: Vec<_> = (0..20)
        .map(|_| grove::spawn(|| ("localhost", 80).to_socket_addrs().unwrap().count()))
        .collect();
    for t in tasks {
        assert!(t.join().unwrap() >= 1);
    }
}

#[test]
fn fork_gives_the_child_a_fresh_hub() {
    if util::child_scenario().is_none() {
        let out = util::run_child_ok("fork_gives_the_child_a_fresh_hub", "child");
        assert!(out.contains("child ok"), "{out}");
        assert!(!out.contains("parent task ran"), "{out}");
        return;
    }
    grove::monkey::patch_all();
    struct Loud(u32);
    impl Drop for Loud {
        fn drop(&mut self) {
            if std::process::id() != self.0 {
                println!("parent task ran its Drop in the child");
            }
        }
    }
    let me = std::process::id();
    let parked = grove::spawn(move || {
        let _loud = Loud(me);
        grove::sleep(Duration::from_secs(30));
    });
    grove::sleep(Duration::from_millis(5)); // `parked` is parked now
                                            // SAFETY: fork through the hook; the child only runs grove code and exits with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // The child: a fresh hub; hooked std I/O and sleeps still park only their task.
        let (a, b) = UnixStream::pair().unwrap();
        let w = grove::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            (&b).write_all(b"kid").unwrap();
        });
        let mut buf = [0u8; 3];
        (&a).read_exact(&mut buf).unwrap();
        w.join().unwrap();
        assert_eq!(&buf, b"kid");
        println!("child ok");
        let _ = std::io::stdout().flush();
        // SAFETY: leave the child without running the parent's destructors.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: waiting for our child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status}"
    );
    parked.kill();
    let _ = parked.join();
}
