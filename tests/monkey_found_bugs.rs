//! Minimal failing cases found while proving the hooks with real programs (see the report).
//! Each names the hook behaviour it expects.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::time::Duration;

/// A task waits in `epoll_wait` (timeout -1) on its own epoll fd watching a socket; the only
/// thing that can wake it is data that a plain OS thread (no hub) sends 50 ms later. The hook
/// parks the task until the epoll fd is readable, so `join` must wait for that I/O instead of
/// reporting "would block forever". (The sync `postgres` crate blocks exactly like this: its
/// private tokio runtime's `block_on` waits in `epoll_wait`.)
#[test]
fn epoll_wait_on_own_epoll_fd_counts_as_pending_io() {
    grove::monkey::patch_all();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        conn.write_all(b"x").unwrap();
        conn
    });
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
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        conn.write_all(b"x").unwrap();
        conn
    });
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
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        conn.write_all(b"x").unwrap();
        conn
    });
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
