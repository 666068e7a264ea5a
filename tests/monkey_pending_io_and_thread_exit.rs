//! A task parked in a hooked call counts as pending I/O (its `join` waits instead of reporting
//! "would block forever"), and a thread exits cleanly with tasks parked in hooked calls — also
//! inside tokio's `block_on`, as the sync `postgres` crate does. (Found while proving the hooks
//! with real programs.)

use std::io::Write;
use std::os::fd::AsRawFd;
use std::time::Duration;

mod util;

/// A task waits in `epoll_wait` (timeout -1) on its own epoll fd watching a socket; the only
/// thing that can wake it is data that a plain OS thread (no hub) sends 50 ms later. The hook
/// parks the task until the epoll fd is readable, so `join` must wait for that I/O instead of
/// reporting "would block forever". (The sync `postgres` crate blocks exactly like this: its
/// private tokio runtime's `block_on` waits in `epoll_wait`.)
///
/// (`monkey::poll::wait_any` holds the reactor's `IoWaiter` count across its park.)
/// A listener whose one connection gets a byte from a plain OS thread (no hub) 50 ms after it
/// is accepted: the only thing that can wake a task waiting on it.
fn peer_writing_later() -> (
    std::net::SocketAddr,
    std::thread::JoinHandle<std::net::TcpStream>,
) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        conn.write_all(b"x").unwrap();
        conn
    });
    (addr, peer)
}

#[test]
fn epoll_wait_on_own_epoll_fd_counts_as_pending_io() {
    grove::monkey::patch_all();
    let (addr, peer) = peer_writing_later();
    let waiter = grove::spawn(move || {
        let conn = std::net::TcpStream::connect(addr).unwrap();
        conn.set_nonblocking(true).unwrap();
        // SAFETY: plain epoll calls on fds this task owns; `event` outlives the calls.
        unsafe {
            let ep = libc::epoll_create1(libc::EPOLL_CLOEXEC);
            assert!(ep >= 0);
            let mut event = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: 7,
            };
            assert_eq!(
                libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, conn.as_raw_fd(), &mut event),
                0
            );
            let n = libc::epoll_wait(ep, &mut event, 1, -1);
            libc::close(ep);
            (n, { event.u64 })
        }
    });
    assert_eq!(waiter.join().unwrap(), (1, 7));
    drop(peer.join().unwrap());
}

/// The same with a plain blocking `read` on a std socket: the task parks in the `read` hook and
/// only a plain OS thread's write 50 ms later can wake it.
#[test]
fn read_hook_counts_as_pending_io() {
    grove::monkey::patch_all();
    let (addr, peer) = peer_writing_later();
    let waiter = grove::spawn(move || {
        use std::io::Read;
        let mut conn = std::net::TcpStream::connect(addr).unwrap();
        let mut buf = [0; 1];
        conn.read_exact(&mut buf).unwrap();
        buf
    });
    assert_eq!(&waiter.join().unwrap(), b"x");
    drop(peer.join().unwrap());
}

/// The same with `poll` (timeout -1) on one socket.
#[test]
fn poll_hook_counts_as_pending_io() {
    grove::monkey::patch_all();
    let (addr, peer) = peer_writing_later();
    let waiter = grove::spawn(move || {
        let conn = std::net::TcpStream::connect(addr).unwrap();
        let mut fds = [libc::pollfd {
            fd: conn.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: `fds` is a valid array of one pollfd that outlives the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, -1) };
        (n, fds[0].revents & libc::POLLIN)
    });
    assert_eq!(waiter.join().unwrap(), (1, libc::POLLIN));
    drop(peer.join().unwrap());
}

/// A thread returns while one of its tasks is parked inside a hooked `read` (its peer never
/// writes). The hub's teardown at thread exit must end that task (the hook fails, the task
/// returns) and the thread must exit cleanly: not abort with "cannot access a Thread Local
/// Storage value during or after destruction" / "panic in a destructor during cleanup".
#[test]
fn thread_exit_with_a_task_parked_in_a_hook() {
    if util::child_scenario().is_some() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let thread = std::thread::spawn(move || {
            grove::monkey::patch_all();
            let reader = grove::spawn(move || {
                use std::io::Read;
                let mut conn = std::net::TcpStream::connect(addr).unwrap();
                let mut buf = [0; 1];
                let _ = conn.read(&mut buf);
            });
            grove::sleep(Duration::from_millis(20)); // the reader parks in `read`
            drop(reader); // detached; the thread now exits with it parked
        });
        let (_peer, _) = listener.accept().unwrap();
        thread.join().unwrap();
        println!("thread exited");
        return;
    }
    let out = util::run_child_within(
        "thread_exit_with_a_task_parked_in_a_hook",
        "exit",
        Duration::from_secs(10),
    );
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("thread exited"),
        "{:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The same with the task parked in `epoll_wait` inside a tokio `block_on` (as the sync
/// `postgres` crate does), when the thread exits. If the hook returned to tokio during the hub's
/// teardown, tokio (mio) would retry, and the retry would pass straight through to a real
/// `epoll_wait(-1)`: the thread would never exit. The interrupted task stays parked instead
/// (`hub::foreign`), and the teardown leaves it.
#[test]
fn thread_exit_with_a_task_parked_in_tokio_block_on() {
    if util::child_scenario().is_some() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let thread = std::thread::spawn(move || {
            grove::monkey::patch_all();
            let reader = grove::spawn(move || {
                use tokio::io::AsyncReadExt;
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
                    let mut buf = [0; 1];
                    let _ = conn.read(&mut buf).await;
                });
            });
            grove::sleep(Duration::from_millis(50)); // the reader parks in `epoll_wait`
            drop(reader);
        });
        let (_peer, _) = listener.accept().unwrap();
        thread.join().unwrap();
        println!("thread exited");
        return;
    }
    let out = util::run_child_within(
        "thread_exit_with_a_task_parked_in_tokio_block_on",
        "exit",
        Duration::from_secs(10),
    );
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("thread exited"),
        "{:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
