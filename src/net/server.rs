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

/// A [`StreamServer`] on every hub of a [`Runtime`](crate::Runtime), each accepting on its own
/// `SO_REUSEPORT` listener bound to the same address: the kernel spreads incoming connections
/// over the hubs (by a hash of the connection's addresses), and each connection is handled by a
/// task on the hub that accepted it. Nothing crosses hubs on a connection's path.
///
/// The handler is shared by all hubs, so it must be `Send + Sync`; per-hub state goes in a
/// `thread_local!` (each hub is a thread). Dropping the value does not stop the servers:
/// [`stop`](Self::stop) does, and so does the runtime's shutdown (each hub's server stops
/// accepting, and its handlers get the runtime's shutdown timeout to finish).
///
/// ```
/// use std::io::{Read, Write};
/// use grove::net::{RuntimeServer, TcpStream};
///
/// let rt = grove::Runtime::builder().hubs(2).build()?;
/// let server = RuntimeServer::bind(&rt, "127.0.0.1:0", |mut conn: TcpStream, _peer| {
///     let mut buf = [0; 64];
///     while let Ok(n @ 1..) = conn.read(&mut buf) {
///         let _ = conn.write_all(&buf[..n]);
///     }
/// })?;
/// let mut client = std::net::TcpStream::connect(server.local_addr())?;
/// client.write_all(b"ping")?;
/// let mut reply = [0; 4];
/// client.read_exact(&mut reply)?;
/// assert_eq!(&reply, b"ping");
/// server.stop();
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct RuntimeServer {
    shared: std::sync::Arc<RuntimeServerShared>,
}

struct RuntimeServerShared {
    addr: SocketAddr,
    id: u64,
    handle: crate::runtime::Handle,
    /// Connections accepted per hub. Only that hub writes its counter (a load and a store, no
    /// read-modify-write); anyone may read.
    accepted: Vec<PaddedCounter>,
    stopped: std::sync::atomic::AtomicBool,
    options: RuntimeServerBuilder,
}

/// Options for a [`RuntimeServer`], applied to every hub's [`StreamServer`] (see
/// [`RuntimeServer::builder`]).
#[derive(Debug, Clone, Copy)]
pub struct RuntimeServerBuilder {
    max_connections: Option<usize>,
    stop_timeout: Duration,
}

impl RuntimeServerBuilder {
    /// Limits the connections handled at once **per hub** (gevent's `spawn=Pool(n)`; see
    /// [`StreamServer::max_connections`]).
    ///
    /// # Panics
    /// If `n` is 0.
    pub fn max_connections(mut self, n: usize) -> RuntimeServerBuilder {
        assert!(
            n > 0,
            "RuntimeServer::max_connections: the limit must be at least 1"
        );
        self.max_connections = Some(n);
        self
    }

    /// How long [`RuntimeServer::stop`] lets running handlers finish before killing them
    /// (default 1 s; see [`StreamServer::stop_timeout`]). The runtime's shutdown uses its own
    /// timeout instead.
    pub fn stop_timeout(mut self, d: Duration) -> RuntimeServerBuilder {
        self.stop_timeout = d;
        self
    }

    /// Binds and starts the servers: see [`RuntimeServer::bind`].
    ///
    /// # Errors
    /// As [`RuntimeServer::bind`].
    pub fn bind<A, F>(
        self,
        runtime: &crate::Runtime,
        addr: A,
        handler: F,
    ) -> io::Result<RuntimeServer>
    where
        A: std::net::ToSocketAddrs,
        F: Fn(TcpStream, SocketAddr) + Send + Sync + 'static,
    {
        RuntimeServer::start(self, runtime, addr, handler)
    }
}

/// A counter on a cache line of its own, so hubs do not share lines.
#[repr(align(64))]
#[derive(Default)]
struct PaddedCounter(std::sync::atomic::AtomicU64);

thread_local! {
    /// This hub's share of each `RuntimeServer`, by server id.
    static HUB_SERVERS: RefCell<std::collections::HashMap<u64, StreamServer>> =
        RefCell::new(std::collections::HashMap::new());
}

static NEXT_SERVER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl RuntimeServer {
    /// Binds one `SO_REUSEPORT` listener per hub of `runtime` to `addr` (port 0: a free port,
    /// the same for all) and starts a [`StreamServer`] on each hub.
    ///
    /// # Errors
    /// The first error binding a listener or starting a hub's server (for instance
    /// [`SpawnError::ShutDown`](crate::runtime::SpawnError) as an `io::Error` if the runtime is
    /// shutting down); servers already started are stopped.
    pub fn bind<A, F>(runtime: &crate::Runtime, addr: A, handler: F) -> io::Result<RuntimeServer>
    where
        A: std::net::ToSocketAddrs,
        F: Fn(TcpStream, SocketAddr) + Send + Sync + 'static,
    {
        RuntimeServer::builder().bind(runtime, addr, handler)
    }

    /// Options (a per-hub connection limit, the stop timeout), then
    /// [`bind`](RuntimeServerBuilder::bind).
    pub fn builder() -> RuntimeServerBuilder {
        RuntimeServerBuilder {
            max_connections: None,
            stop_timeout: DEFAULT_STOP_TIMEOUT,
        }
    }

    fn start<A, F>(
        options: RuntimeServerBuilder,
        runtime: &crate::Runtime,
        addr: A,
        handler: F,
    ) -> io::Result<RuntimeServer>
    where
        A: std::net::ToSocketAddrs,
        F: Fn(TcpStream, SocketAddr) + Send + Sync + 'static,
    {
        let handle = runtime.handle();
        let asked = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind to"))?;
        let first = crate::hub::sys::socket::reuseport_listener(&asked, super::BACKLOG)?;
        let addr = first.local_addr()?;
        let mut listeners = vec![first];
        for _ in 1..handle.hubs() {
            listeners.push(crate::hub::sys::socket::reuseport_listener(
                &addr,
                super::BACKLOG,
            )?);
        }
        let shared = std::sync::Arc::new(RuntimeServerShared {
            addr,
            id: NEXT_SERVER.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            handle: handle.clone(),
            accepted: (0..handle.hubs())
                .map(|_| PaddedCounter::default())
                .collect(),
            stopped: std::sync::atomic::AtomicBool::new(false),
            options,
        });
        let server = RuntimeServer { shared };
        let handler = std::sync::Arc::new(handler);
        let started: Vec<_> = listeners
            .into_iter()
            .enumerate()
            .map(|(hub, listener)| {
                let (shared, handler) = (server.shared.clone(), handler.clone());
                handle.spawn_on(hub, move || start_on_hub(hub, listener, &shared, handler))
            })
            .collect();
        for s in started {
            let result = s
                .map_err(io::Error::from)
                .and_then(|h| h.join().map_err(|e| io::Error::other(e.to_string()))?);
            if let Err(e) = result {
                server.stop();
                return Err(e);
            }
        }
        Ok(server)
    }

    /// The address every hub listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// Connections accepted so far, per hub (index = hub).
    pub fn accepted_per_hub(&self) -> Vec<u64> {
        let relaxed = std::sync::atomic::Ordering::Relaxed;
        self.shared
            .accepted
            .iter()
            .map(|c| c.0.load(relaxed))
            .collect()
    }

    /// Connections accepted so far, on all hubs.
    pub fn accepted(&self) -> u64 {
        self.accepted_per_hub().iter().sum()
    }

    /// Stops every hub's server at once ([`StreamServer::stop`]: stop accepting, close the
    /// listener, give handlers the stop timeout (1 s unless set), kill the rest) and waits until all are
    /// stopped. Calling it again does nothing. Called from a handler, it does not wait for
    /// that handler's own hub.
    pub fn stop(&self) {
        if self
            .shared
            .stopped
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        let id = self.shared.id;
        let me = crate::current_hub();
        let stops: Vec<_> = (0..self.shared.handle.hubs())
            .filter_map(|hub| {
                let stop = move || stop_on_hub(id);
                match self.shared.handle.spawn_on(hub, stop) {
                    Ok(h) if Some(hub) != me => Some(h),
                    _ => None,
                }
            })
            .collect();
        for s in stops {
            let _ = s.join();
        }
    }
}

/// On hub `hub`: wraps the listener and starts its server; the runtime's shutdown stops it.
fn start_on_hub<F>(
    hub: usize,
    listener: std::net::TcpListener,
    shared: &std::sync::Arc<RuntimeServerShared>,
    handler: std::sync::Arc<F>,
) -> io::Result<()>
where
    F: Fn(TcpStream, SocketAddr) + Send + Sync + 'static,
{
    let listener = TcpListener::from_std(listener)?;
    let counted = shared.clone();
    let mut server = StreamServer::new(listener, move |stream, peer| {
        let relaxed = std::sync::atomic::Ordering::Relaxed;
        let c = &counted.accepted[hub].0;
        c.store(c.load(relaxed) + 1, relaxed);
        handler(stream, peer);
    })
    .stop_timeout(shared.options.stop_timeout);
    if let Some(n) = shared.options.max_connections {
        server = server.max_connections(n);
    }
    server.start();
    let id = shared.id;
    HUB_SERVERS.with(|s| s.borrow_mut().insert(id, server));
    crate::runtime::at_shutdown(Box::new(move |deadline| {
        let server = HUB_SERVERS.with(|s| s.borrow_mut().remove(&id));
        if let Some(server) = server {
            let left = deadline.map_or(Duration::MAX, |d| {
                d.saturating_duration_since(std::time::Instant::now())
            });
            drop(crate::spawn(move || server.stop_timeout(left).stop()));
        }
    }));
    Ok(())
}

/// On a hub: stops its share of server `id`.
fn stop_on_hub(id: u64) {
    let server = HUB_SERVERS.with(|s| s.borrow_mut().remove(&id));
    if let Some(server) = server {
        server.stop();
    }
}

impl fmt::Debug for RuntimeServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeServer")
            .field("addr", &self.shared.addr)
            .field("accepted", &self.accepted_per_hub())
            .finish()
    }
}
