//! The load generator: N connections, each a closed loop of 64-byte echoes (write a message,
//! read it back, check it, write the next), all driven by one level-triggered epoll loop on the
//! calling thread. It shares no code with any server, so every server meets the same client.
//!
//! Per round trip the client makes one `write` and one `read` plus its share of `epoll_wait`,
//! and it does almost nothing in user space, so one core of it can keep one core of server busy.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// Bytes per message.
pub const MSG: usize = 64;

/// Connections opened before their first echoes are awaited. It stays below std's listen
/// backlog (128) so that no connect waits out a dropped SYN, whatever backlog a server uses.
const BATCH: usize = 128;

/// How long one batch of first echoes may take before its stragglers count as errors.
const BATCH_TIMEOUT: Duration = Duration::from_secs(20);

/// Refused connects are retried this many times (a few ms apart) before they count as errors.
const CONNECT_TRIES: u32 = 5;

/// The event buffer size of one `epoll_wait`.
const MAX_EVENTS: usize = 1024;

/// One client connection and its closed loop.
struct Conn {
    /// `None` once the connection failed and was closed.
    stream: Option<TcpStream>,
    /// The message in flight (or last sent).
    out: [u8; MSG],
    /// What came back so far.
    back: [u8; MSG],
    /// Bytes of `back` filled.
    got: usize,
    /// Messages sent on this connection; part of the message content.
    seq: u32,
    /// Round trips still to run before the connection goes idle.
    remaining: u64,
}

/// N connections to one echo server and the loop that drives them.
pub struct Client {
    epoll: Epoll,
    conns: Vec<Conn>,
    round_trips: u64,
    errors: u64,
    /// Connections with a message in flight.
    in_flight: usize,
    /// Connections still open.
    open: usize,
    first_error: Option<String>,
}

impl Client {
    /// Opens `n` connections to `addr`, in batches, each checked by one echo before the next
    /// batch connects. Connections that cannot be opened or do not echo count as errors.
    pub fn connect(addr: SocketAddr, n: usize) -> io::Result<Client> {
        Client::connect_within(addr, n, Duration::MAX)
    }

    /// [`Client::connect`], but opening connections stops after about `limit` (a batch waits
    /// for its echoes at most until then): a server that accepts slower than that gets the rest
    /// counted as errors instead of holding the run for minutes.
    pub fn connect_within(addr: SocketAddr, n: usize, limit: Duration) -> io::Result<Client> {
        let deadline = Instant::now().checked_add(limit);
        let mut client = Client {
            epoll: Epoll::new()?,
            conns: Vec::with_capacity(n),
            round_trips: 0,
            errors: 0,
            in_flight: 0,
            open: 0,
            first_error: None,
        };
        while client.conns.len() < n {
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                client.give_up_connecting(n, limit);
                break;
            }
            let first = client.conns.len();
            let end = n.min(first + BATCH);
            for _ in first..end {
                client.add(addr);
            }
            client.start(first..end, 1);
            let batch_deadline =
                deadline.map_or(now + BATCH_TIMEOUT, |d| d.min(now + BATCH_TIMEOUT));
            if !client.run_until(batch_deadline) {
                client.fail_in_flight("no echo within the connect timeout");
            }
        }
        Ok(client)
    }

    /// Counts every connection not yet attempted as an error (never opened).
    fn give_up_connecting(&mut self, n: usize, limit: Duration) {
        let missing = n - self.conns.len();
        self.note_error(format!(
            "{missing} connections not attempted: connecting took over {:.0} s",
            limit.as_secs_f64()
        ));
        self.errors += missing as u64 - 1;
        while self.conns.len() < n {
            self.conns.push(Conn {
                stream: None,
                out: [0; MSG],
                back: [0; MSG],
                got: 0,
                seq: 0,
                remaining: 0,
            });
        }
    }

    /// Gives every open connection `rounds` round trips to run and sends its first message.
    pub fn start_all(&mut self, rounds: u64) {
        self.start_first(self.conns.len(), rounds);
    }

    /// [`Client::start_all`] for the first `n` connections only; the others stay silent.
    pub fn start_first(&mut self, n: usize, rounds: u64) {
        self.start(0..n.min(self.conns.len()), rounds);
    }

    /// Drives the connections until `deadline`, or until none has a message in flight.
    /// Returns whether all went idle.
    pub fn run_until(&mut self, deadline: Instant) -> bool {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; MAX_EVENTS];
        while self.in_flight > 0 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let ms = (deadline - now).as_millis().clamp(1, 100) as i32;
            let ready = match self.epoll.wait(&mut events, ms) {
                Ok(ready) => ready,
                Err(e) => {
                    self.note_error(format!("epoll_wait: {e}"));
                    return false;
                }
            };
            for event in &events[..ready] {
                let token = event.u64;
                self.on_readable(token as usize);
            }
        }
        true
    }

    /// Round trips completed so far.
    pub fn round_trips(&self) -> u64 {
        self.round_trips
    }

    /// Connections that failed (could not connect, closed, reset, wrong echo, timed out).
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// Connections still open.
    pub fn open(&self) -> usize {
        self.open
    }

    /// What went wrong first, if anything did.
    pub fn first_error(&self) -> Option<&str> {
        self.first_error.as_deref()
    }

    fn add(&mut self, addr: SocketAddr) {
        let id = self.conns.len();
        let stream = match connect(addr).and_then(|s| self.register(s, id)) {
            Ok(stream) => {
                self.open += 1;
                Some(stream)
            }
            Err(e) => {
                self.note_error(format!("connect: {e}"));
                None
            }
        };
        self.conns.push(Conn {
            stream,
            out: [0; MSG],
            back: [0; MSG],
            got: 0,
            seq: 0,
            remaining: 0,
        });
    }

    fn register(&self, stream: TcpStream, id: usize) -> io::Result<TcpStream> {
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        self.epoll.add(stream.as_raw_fd(), id as u64)?;
        Ok(stream)
    }

    fn start(&mut self, ids: std::ops::Range<usize>, rounds: u64) {
        for id in ids {
            let conn = &mut self.conns[id];
            if conn.stream.is_none() || rounds == 0 {
                continue;
            }
            if conn.remaining == 0 {
                self.in_flight += 1;
                conn.remaining = rounds;
                self.send(id);
            } else {
                conn.remaining = rounds;
            }
        }
    }

    fn on_readable(&mut self, id: usize) {
        let conn = &mut self.conns[id];
        let Some(stream) = &conn.stream else { return };
        if conn.remaining == 0 {
            // Idle: nothing may arrive; a readable socket here means EOF, an error or junk.
            let mut probe = [0u8; 1];
            match (&*stream).read(&mut probe) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Ok(0) => self.fail(id, "closed by the server while idle".into()),
                Ok(_) => self.fail(id, "data arrived on an idle connection".into()),
                Err(e) => self.fail(id, format!("read: {e}")),
            }
            return;
        }
        match (&*stream).read(&mut conn.back[conn.got..]) {
            Ok(0) => self.fail(id, "closed by the server".into()),
            Ok(n) => {
                conn.got += n;
                if conn.got == MSG {
                    self.on_echo(id);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => self.fail(id, format!("read: {e}")),
        }
    }

    fn on_echo(&mut self, id: usize) {
        let conn = &mut self.conns[id];
        conn.got = 0;
        if conn.back != conn.out {
            self.fail(id, "the echo differs from the message sent".into());
            return;
        }
        self.round_trips += 1;
        conn.remaining -= 1;
        if conn.remaining == 0 {
            self.in_flight -= 1;
        } else {
            self.send(id);
        }
    }

    fn send(&mut self, id: usize) {
        let conn = &mut self.conns[id];
        conn.seq = conn.seq.wrapping_add(1);
        fill(&mut conn.out, id as u32, conn.seq);
        let Some(stream) = &conn.stream else { return };
        if let Err(e) = write_all_nonblocking(stream, &conn.out) {
            self.fail(id, format!("write: {e}"));
        }
    }

    /// Closes connection `id` and counts it as an error.
    fn fail(&mut self, id: usize, why: String) {
        let conn = &mut self.conns[id];
        let Some(stream) = conn.stream.take() else {
            return;
        };
        if conn.remaining > 0 {
            conn.remaining = 0;
            self.in_flight -= 1;
        }
        let _ = self.epoll.delete(stream.as_raw_fd());
        self.open -= 1;
        self.note_error(format!("connection {id}: {why}"));
    }

    fn fail_in_flight(&mut self, why: &str) {
        for id in 0..self.conns.len() {
            if self.conns[id].remaining > 0 {
                self.fail(id, why.into());
            }
        }
    }

    fn note_error(&mut self, what: String) {
        self.errors += 1;
        self.first_error.get_or_insert(what);
    }
}

/// Writes the whole message. A 64-byte write into a loopback socket whose peer echoes each
/// message before the next is sent never meets a full send buffer in practice; should it, the
/// rest is retried after a yield rather than parked, to keep the loop simple.
fn write_all_nonblocking(stream: &TcpStream, mut msg: &[u8]) -> io::Result<()> {
    while !msg.is_empty() {
        match (&*stream).write(msg) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => msg = &msg[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A blocking connect, retried a few times if refused.
fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let mut tries = 0;
    loop {
        match TcpStream::connect(addr) {
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused && tries < CONNECT_TRIES => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            result => return result,
        }
    }
}

/// Message `seq` of connection `id`: both numbers, then bytes derived from them, so that an
/// echo from the wrong connection or of a stale message is caught.
fn fill(out: &mut [u8; MSG], id: u32, seq: u32) {
    out[..4].copy_from_slice(&id.to_le_bytes());
    out[4..8].copy_from_slice(&seq.to_le_bytes());
    let base = id.wrapping_mul(31) ^ seq;
    for (i, byte) in out[8..].iter_mut().enumerate() {
        *byte = base.wrapping_add(i as u32) as u8;
    }
}

/// A level-triggered epoll instance watching for readability.
struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes no pointers; a negative result is handled below.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        Ok(Epoll {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: `event` is a valid epoll_event that lives across the call.
        let rc =
            unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) };
        check(rc)
    }

    fn delete(&self, fd: RawFd) -> io::Result<()> {
        // SAFETY: EPOLL_CTL_DEL ignores the event pointer, so null is allowed.
        let rc = unsafe {
            libc::epoll_ctl(
                self.fd.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            )
        };
        check(rc)
    }

    /// Waits up to `timeout_ms` and returns how many entries of `events` were filled
    /// (0 if interrupted).
    fn wait(&self, events: &mut [libc::epoll_event], timeout_ms: i32) -> io::Result<usize> {
        // SAFETY: the kernel writes at most `events.len()` entries into `events`.
        let n = unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as i32,
                timeout_ms,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            Ok(0)
        } else {
            Err(e)
        }
    }
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
