//! `StreamServer`: a listener whose every connection is handled by its own task
//! (gevent's `gevent.server.StreamServer`).

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use super::{TcpListener, TcpStream, ToSocketAddrs};
use crate::hub::timers::deadline_after;
use crate::hub::wait::{WaitQueue, Waited};
use crate::sync::{Event, Group, Semaphore};
use crate::JoinHandle;

/// How long `StreamServer::stop` waits for handlers before killing them, unless changed.
const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(1);

const MIN_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// A TCP server that spawns `handler(stream, peer)` as a task for each accepted connection.
///
/// - **The connection is closed when the handler returns**: it owns the stream, which is
///   dropped with it (unless the handler moves it somewhere else on purpose).
/// - **An optional connection limit** ([`max_connections`](Self::max_connections)): while that
///   many handlers run, the server does not accept; clients wait in the kernel's backlog.
/// - **Accept errors back off**: running out of file descriptors (`EMFILE`) or memory makes
///   the acceptor sleep (5 ms doubling to 1 s) instead of spinning, and it recovers when the
///   resource is back. Per-connection errors (a client resetting before it was accepted) are
///   skipped.
/// - **Graceful stop** ([`stop`](Self::stop)): stop accepting, close the listener, give the
///   running handlers [`stop_timeout`](Self::stop_timeout) to finish, then kill the rest.
///
/// The value is a cheap handle (clones share the server), so a handler may stop its server.
///
/// ```
/// use std::io::{Read, Write};
/// use grove::net::{StreamServer, TcpStream};
///
/// let server = StreamServer::bind("127.0.0.1:0", |mut conn: TcpStream, _peer| {
///     let mut buf = [0; 64];
///     while let Ok(n @ 1..) = conn.read(&mut buf) {
///         let _ = conn.write_all(&buf[..n]);
///     }
/// })?;
/// server.start();
/// let mut client = TcpStream::connect(server.local_addr()?)?;
/// client.write_all(b"ping")?;
/// let mut reply = [0; 4];
/// client.read_exact(&mut reply)?;
/// assert_eq!(&reply, b"ping");
/// server.stop();
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct StreamServer {
    inner: Rc<Inner>,
}

type Handler = dyn Fn(TcpStream, SocketAddr);

struct Inner {
    listener: RefCell<Option<Rc<TcpListener>>>,
    addr: io::Result<SocketAddr>,
    handler: Rc<Handler>,
    max_connections: Cell<Option<usize>>,
    stop_timeout: Cell<Duration>,
    idle_timeout: Cell<Option<Duration>>,
    handlers: Group,
    /// Fibers (by address) running a handler of this server, so `stop` knows if it is one.
    running: RefCell<HashSet<u64>>,
    handler_done: WaitQueue,
    /// Handlers spawned and not yet finished.
    active: Cell<usize>,
    acceptor: RefCell<Option<JoinHandle<()>>>,
    stopped: Event,
    accepted: Cell<u64>,
}

impl StreamServer {
    /// A server for an existing listener.
    pub fn new<F>(listener: TcpListener, handler: F) -> StreamServer
    where
        F: Fn(TcpStream, SocketAddr) + 'static,
    {
        let addr = listener.local_addr();
        StreamServer {
            inner: Rc::new(Inner {
                listener: RefCell::new(Some(Rc::new(listener))),
                addr,
                handler: Rc::new(handler),
                max_connections: Cell::new(None),
                stop_timeout: Cell::new(DEFAULT_STOP_TIMEOUT),
                idle_timeout: Cell::new(None),
                handlers: Group::new(),
                running: RefCell::new(HashSet::new()),
                handler_done: WaitQueue::new(),
                active: Cell::new(0),
                acceptor: RefCell::new(None),
                stopped: Event::new(),
                accepted: Cell::new(0),
            }),
        }
    }

    /// Binds a listener to `addr` and makes a server for it.
    pub fn bind<A, F>(addr: A, handler: F) -> io::Result<StreamServer>
    where
        A: ToSocketAddrs,
        F: Fn(TcpStream, SocketAddr) + 'static,
    {
        Ok(StreamServer::new(TcpListener::bind(addr)?, handler))
    }

    /// Limits how many connections are handled at once (gevent's `spawn=Pool(n)`); the
    /// server stops accepting while the limit is reached.
    ///
    /// # Panics
    /// If `n` is 0, or the server was already started.
    pub fn max_connections(self, n: usize) -> StreamServer {
        assert!(
            n > 0,
            "StreamServer::max_connections: the limit must be at least 1"
        );
        assert!(
            !self.is_started(),
            "StreamServer::max_connections: set the limit before start"
        );
        self.inner.max_connections.set(Some(n));
        self
    }

    /// How long [`stop`](Self::stop) lets running handlers finish before killing them
    /// (default 1 s; `Duration::MAX` waits for them forever).
    pub fn stop_timeout(self, d: Duration) -> StreamServer {
        self.inner.stop_timeout.set(d);
        self
    }

    /// Drops clients that go quiet: every accepted stream gets `d` as its read and write
    /// timeout, so a handler waiting on a client that sends (or takes) nothing for `d` gets a
    /// `WouldBlock` "read timed out" error — and a handler that ends on errors, as the usual
    /// `while let Ok(n @ 1..) = conn.read(..)` loop does, closes the connection. This is how
    /// gevent's pywsgi sheds slowloris clients. A client that trickles a byte more often than
    /// every `d` is not idle; bound whole requests with a [`Timeout`](crate::Timeout) in the
    /// handler for that. Changing it affects connections accepted afterwards.
    ///
    /// # Panics
    /// If `d` is zero.
    pub fn idle_timeout(self, d: Duration) -> StreamServer {
        self.set_idle_timeout(Some(d));
        self
    }

    /// Sets or clears (`None`) the [idle timeout](Self::idle_timeout), also while running.
    ///
    /// # Panics
    /// If the duration is zero.
    pub fn set_idle_timeout(&self, d: Option<Duration>) {
        assert!(
            d != Some(Duration::ZERO),
            "StreamServer::idle_timeout: the timeout must not be zero"
        );
        self.inner.idle_timeout.set(d);
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.inner.addr {
            Ok(a) => Ok(*a),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        }
    }

    /// Starts accepting in a task of its own and returns at once. Calling it again (or after
    /// `stop`) does nothing.
    pub fn start(&self) {
        let Some(listener) = self.inner.listener.borrow().clone() else {
            return;
        };
        if self.is_started() {
            return;
        }
        let inner = self.inner.clone();
        let acceptor = crate::spawn(move || accept_loop(&inner, &listener));
        *self.inner.acceptor.borrow_mut() = Some(acceptor);
    }

    /// Starts (if needed) and parks until [`stop`](Self::stop) is called.
    #[track_caller]
    pub fn serve_forever(&self) {
        self.start();
        self.inner.stopped.wait();
    }

    /// Stops the server: no more accepts, the listener is closed, running handlers get
    /// [`stop_timeout`](Self::stop_timeout) to finish and are then killed. Returns once all
    /// are gone (a handler calling `stop` does not wait for itself).
    pub fn stop(&self) {
        let acceptor = self.inner.acceptor.borrow_mut().take();
        if let Some(a) = acceptor {
            a.kill();
        }
        drop(self.inner.listener.borrow_mut().take());
        let inside = usize::from(self.inner.running.borrow().contains(&current_key()));
        // `None`: a stop timeout too large for the clock (`Duration::MAX`) waits forever.
        let deadline = deadline_after(self.inner.stop_timeout.get());
        while self.connections() > inside {
            let waited = self.inner.handler_done.wait("StreamServer::stop", deadline);
            // Interrupted: this task is being killed while unwinding; stop waiting, as a
            // deadline would.
            if matches!(waited, Waited::TimedOut | Waited::Interrupted) {
                break;
            }
        }
        self.inner.handlers.kill();
        self.inner.stopped.set();
    }

    /// Whether [`start`](Self::start) was called.
    pub fn is_started(&self) -> bool {
        self.inner.acceptor.borrow().is_some() || self.inner.stopped.is_set()
    }

    /// Whether [`stop`](Self::stop) has completed.
    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.is_set()
    }

    /// Number of connections being handled now.
    pub fn connections(&self) -> usize {
        self.inner.active.get()
    }

    /// Number of connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.inner.accepted.get()
    }
}

/// The running task's id (task ids start at 1; 0 is the thread's main code).
fn current_key() -> u64 {
    crate::hub::control::TaskRef::current().id()
}

/// Accepts until killed, spawning a handler task per connection.
fn accept_loop(inner: &Rc<Inner>, listener: &TcpListener) {
    let slots = inner.max_connections.get().map(Semaphore::new);
    let mut backoff = MIN_BACKOFF;
    loop {
        let permit = slots.as_ref().map(Semaphore::permit);
        match listener.accept() {
            Ok((stream, peer)) => {
                backoff = MIN_BACKOFF;
                inner.accepted.set(inner.accepted.get() + 1);
                spawn_handler(inner, stream, peer, permit);
            }
            Err(e) if listener.is_closed() => {
                log::debug!("grove: StreamServer listener closed: {e}");
                return;
            }
            Err(e) if is_per_connection(&e) => log::debug!("grove: accept: {e}"),
            Err(e) => {
                log::warn!("grove: StreamServer accept failed ({e}); retrying in {backoff:?}");
                crate::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Errors that concern one connection that went away, not the listener.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNABORTED | libc::EPROTO | libc::EPERM | libc::ENETDOWN | libc::EHOSTUNREACH)
    )
}

fn spawn_handler(
    inner: &Rc<Inner>,
    stream: TcpStream,
    peer: SocketAddr,
    permit: Option<crate::sync::SemaphorePermit>,
) {
    let active = Active::new(inner.clone());
    if let Some(d) = inner.idle_timeout.get() {
        // Non-zero (checked when set), so these cannot fail.
        let _ = stream.set_read_timeout(Some(d));
        let _ = stream.set_write_timeout(Some(d));
    }
    inner.handlers.spawn(move || {
        let _permit = permit;
        let mut active = active;
        active.key = current_key();
        active.server.running.borrow_mut().insert(active.key);
        (active.server.handler.clone())(stream, peer);
    });
}

/// Counts a handler from its spawn until it ends (returns, panics, is killed, or is dropped
/// unrun), and marks its task as one of the server's while it runs.
struct Active {
    server: Rc<Inner>,
    key: u64,
}

impl Active {
    fn new(server: Rc<Inner>) -> Active {
        server.active.set(server.active.get() + 1);
        Active { server, key: 0 }
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        let s = &self.server;
        s.running.borrow_mut().remove(&self.key);
        s.active.set(s.active.get() - 1);
        s.handler_done.notify_all();
    }
}

impl fmt::Debug for StreamServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamServer")
            .field("addr", &self.inner.addr.as_ref().ok())
            .field("connections", &self.connections())
            .field("accepted", &self.accepted())
            .finish()
    }
}
