//! The seed's server models (seeds 002 and 004), written the seed's way in plain std and libc:
//!
//! - `fork`: socketserver's `ForkingMixIn`: the parent accepts and forks one process per
//!   connection; the child echoes until the peer closes, then `_exit`s; the parent reaps
//!   finished children after each accept (`collect_children`). Unlike Python's default
//!   (`max_children = 40`, after which the parent waits for a child to exit) there is no cap,
//!   so the cost of a process per connection is what is measured, not a stall.
//! - `threads`: `ThreadingMixIn`, one OS thread per connection: echo's `threads` server.
//! - `poll`: the `select` loop: one thread, non-blocking sockets, one `poll(2)` over the
//!   listener and every connection per turn. (`select(2)` itself stops at descriptor 1024,
//!   `FD_SETSIZE`, which 5000 connections pass; Python's `select.select` raises `ValueError`
//!   there. `poll` has the same cost per turn, a scan of every descriptor, without the limit.)
//! - `busy`: seed 004's non-blocking busy loop: one thread, no readiness API at all; it tries
//!   `accept` and then `recv` on every connection, forever, skipping `EWOULDBLOCK`.
//!
//! Each binds 127.0.0.1:0, raises its backlog, announces its port like every echo server,
//! sets `TCP_NODELAY` on each connection and echoes through a 1 KiB buffer.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};

use crate::servers::SERVER_BUF;
use crate::servers::{accept_each, accept_error_is_fatal, announce, echo, raise_backlog};

/// Binds the listener every seed model uses and announces its port.
fn listen() -> io::Result<TcpListener> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    raise_backlog(listener.as_raw_fd())?;
    announce(listener.local_addr()?.port());
    Ok(listener)
}

/// `ForkingMixIn`: a process per connection.
pub fn fork_server() -> io::Result<()> {
    let listener = listen()?;
    // SAFETY: getpid takes no arguments and cannot fail.
    let parent = unsafe { libc::getpid() };
    accept_each(
        || listener.accept().map(|(stream, _)| stream),
        |stream| {
            stream.set_nodelay(true)?;
            reap_children();
            // SAFETY: this process has one thread (the bench's server mode starts none), so
            // the child is a complete copy; it only echoes on its socket and `_exit`s.
            match unsafe { libc::fork() } {
                -1 => {
                    // Like socketserver's handle_error: this connection is dropped, the
                    // server goes on.
                    eprintln!("fork server: fork: {}", io::Error::last_os_error());
                    Ok(())
                }
                0 => serve_child(parent, &listener, stream),
                _ => Ok(()), // the parent's copy of the stream closes here
            }
        },
    )
}

/// The forked child: echo on `stream`, then leave without running the parent's exit code.
fn serve_child(parent: libc::pid_t, listener: &TcpListener, stream: TcpStream) -> ! {
    // SAFETY: prctl(PR_SET_PDEATHSIG) and getppid take no pointers. The first makes the kernel
    // kill this child when the server dies; the check covers a parent that died before it.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        if libc::getppid() != parent {
            libc::_exit(1);
        }
    }
    // SAFETY: the child never uses the listener; closing its copy of the descriptor leaves
    // the parent's open. `listener` is not used after this (the child `_exit`s below).
    unsafe { libc::close(listener.as_raw_fd()) };
    echo(stream);
    // SAFETY: _exit ends the process at once, as os._exit does in ForkingMixIn's child.
    unsafe { libc::_exit(0) }
}

/// Reaps every child that has finished, without waiting for the others.
fn reap_children() {
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid int for waitpid to write.
        if unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } <= 0 {
            return;
        }
    }
}

/// The `select` loop, with `poll(2)`.
pub fn poll_server() -> io::Result<()> {
    let listener = listen()?;
    listener.set_nonblocking(true)?;
    let mut conns: Vec<TcpStream> = Vec::new();
    // fds[0] is the listener; fds[i + 1] belongs to conns[i].
    let mut fds = vec![pollfd(listener.as_raw_fd())];
    let mut buf = [0u8; SERVER_BUF];
    loop {
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd entries for the whole call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        // Serve the connections first (walking backwards so that closing one, a swap_remove,
        // never moves an unvisited entry), then accept.
        for i in (0..conns.len()).rev() {
            if fds[i + 1].revents != 0 && !serve_ready(&mut conns[i], &mut buf) {
                conns.swap_remove(i);
                fds.swap_remove(i + 1);
            }
        }
        if fds[0].revents != 0 {
            accept_ready(&listener, &mut conns, &mut fds)?;
        }
    }
}

fn pollfd(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// Accepts every pending connection of a non-blocking listener.
fn accept_ready(
    listener: &TcpListener,
    conns: &mut Vec<TcpStream>,
    fds: &mut Vec<libc::pollfd>,
) -> io::Result<()> {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nodelay(true)?;
                stream.set_nonblocking(true)?;
                fds.push(pollfd(stream.as_raw_fd()));
                conns.push(stream);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if !accept_error_is_fatal(&e) => {}
            Err(e) => return Err(e),
        }
    }
}

/// One non-blocking read and its echo; false once the connection is finished (closed by the
/// peer or failed).
fn serve_ready(stream: &mut TcpStream, buf: &mut [u8]) -> bool {
    match stream.read(buf) {
        Ok(0) => false,
        Ok(n) => write_all(stream, &buf[..n]).is_ok(),
        Err(e) => matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
        ),
    }
}

/// Writes all of `data` to a non-blocking socket. A 64-byte echo never meets a full send
/// buffer in practice; should it, the socket turns blocking for the rest, like the seeds'
/// `sendall`, which stalls the loop but loses nothing.
fn write_all(stream: &mut TcpStream, data: &[u8]) -> io::Result<()> {
    match stream.write(data) {
        Ok(n) if n == data.len() => Ok(()),
        Ok(n) => finish_blocking(stream, &data[n..]),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => finish_blocking(stream, data),
        Err(e) => Err(e),
    }
}

fn finish_blocking(stream: &mut TcpStream, rest: &[u8]) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.write_all(rest)?;
    stream.set_nonblocking(true)
}

/// Seed 004's busy loop: try everything, forever.
pub fn busy_server() -> io::Result<()> {
    let listener = listen()?;
    listener.set_nonblocking(true)?;
    let mut conns: Vec<TcpStream> = Vec::new();
    let mut buf = [0u8; SERVER_BUF];
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nodelay(true)?;
                stream.set_nonblocking(true)?;
                conns.push(stream);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if !accept_error_is_fatal(&e) => {}
            Err(e) => return Err(e),
        }
        conns.retain_mut(|stream| serve_ready(stream, &mut buf));
    }
}
