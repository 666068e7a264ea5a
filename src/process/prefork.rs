//! [`Prefork`]: a TCP server that forks N workers, each with its own hub and its own
//! `SO_REUSEPORT` listener (gunicorn's pre-fork model, with the listener-per-worker fix
//! gunicorn merged in 2024 against its thundering-herd imbalance).

#![deny(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::fork::fork_then;
use super::forked::Process;
use crate::hub::sys::socket::bind_reuseport;
use crate::net::{StreamServer, TcpListener, TcpStream, ToSocketAddrs};
use crate::signal::{Signals, SIGINT, SIGTERM};

/// How long a stopping worker lets its running handlers finish, unless changed.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// A worker that dies sooner than this after its start is restarted after a pause (doubling up
/// to [`MAX_RESTART_PAUSE`]), so a worker that cannot start does not spin the master.
const QUICK_DEATH: Duration = Duration::from_secs(1);
const MAX_RESTART_PAUSE: Duration = Duration::from_secs(5);

/// A pre-fork TCP server: a master process that forks `workers` children, each running a
/// [`StreamServer`] on its own `SO_REUSEPORT` listener with a fresh hub. The kernel spreads
/// incoming connections over the listeners.
///
/// - **A worker that dies is restarted** at once (after a pause if it keeps dying within a
///   second of its start). Connections the dead worker had accepted die with it, and so do those
///   waiting in its listener's backlog; the other workers' connections are not touched, and new
///   connections go to the remaining listeners while the replacement starts.
/// - **SIGTERM or SIGINT stops everything gracefully**: the master forwards SIGTERM to the
///   workers; each stops accepting, closes its listener, lets the handlers it started finish
///   within [`grace`](Self::grace) (then kills them), and exits. [`serve`](Self::serve) returns
///   once every worker is gone.
/// - The port is reserved by the master with a bound socket that does not listen, so an
///   address with port 0 gets a port ([`local_addr`](Self::local_addr)) that every worker,
///   including replacements, binds again.
///
/// ```no_run
/// use std::io::{Read, Write};
/// use grove::process::Prefork;
///
/// let server = Prefork::bind("127.0.0.1:7000")?.workers(4);
/// println!("serving on {}", server.local_addr());
/// server.serve(|mut conn: grove::net::TcpStream, _peer| {
///     let mut buf = [0; 1024];
///     while let Ok(n @ 1..) = conn.read(&mut buf) {
///         if conn.write_all(&buf[..n]).is_err() {
///             break;
///         }
///     }
/// })?; // returns after SIGTERM / SIGINT
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// To run the whole server beside other work (a benchmark, a test), put the master in a
/// child process of its own with [`spawn`](Self::spawn) and stop it with
/// [`Process::terminate`].
pub struct Prefork {
    addr: SocketAddr,
    _reserved: OwnedFd,
    workers: usize,
    grace: Duration,
    max_connections: Option<usize>,
}

impl Prefork {
    /// Reserves `addr` (the first address it resolves to) for the workers' listeners. Nothing
    /// listens yet: connections are refused until [`serve`](Self::serve) starts the workers.
    ///
    /// # Errors
    /// If the address does not resolve or cannot be bound (`AddrInUse` if a socket without
    /// `SO_REUSEPORT` holds it).
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<Prefork> {
        let mut last = None;
        for a in addr.to_socket_addrs()? {
            match bind_reuseport(&a, false) {
                Ok(fd) => {
                    let std = std::net::TcpListener::from(fd);
                    let addr = std.local_addr()?;
                    return Ok(Prefork {
                        addr,
                        _reserved: std.into(),
                        workers: default_workers(),
                        grace: DEFAULT_GRACE,
                        max_connections: None,
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no address to bind to")
        }))
    }

    /// How many worker processes to run (at least 1; default: the available cores).
    pub fn workers(mut self, n: usize) -> Prefork {
        self.workers = n.max(1);
        self
    }

    /// How long a stopping worker lets running handlers finish before killing them (default
    /// [`DEFAULT_GRACE`]).
    pub fn grace(mut self, d: Duration) -> Prefork {
        self.grace = d;
        self
    }

    /// Limits the connections each worker handles at once (see
    /// [`StreamServer::max_connections`]).
    ///
    /// # Panics
    /// If `n` is 0.
    pub fn max_connections(mut self, n: usize) -> Prefork {
        assert!(
            n > 0,
            "Prefork::max_connections: the limit must be at least 1"
        );
        self.max_connections = Some(n);
        self
    }

    /// The address the workers listen on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Runs the master here: forks the workers, restarts those that die, and returns after
    /// SIGTERM or SIGINT once every worker has stopped. `handler(stream, peer)` runs in a task
    /// of its own for each connection, in a worker.
    ///
    /// # Errors
    /// If the master cannot subscribe to signals. (Failing forks are logged and retried.)
    pub fn serve<F>(self, handler: F) -> io::Result<()>
    where
        F: Fn(TcpStream, SocketAddr) + Clone + 'static,
    {
        let signals = Signals::new(&[SIGTERM, SIGINT])?;
        let master = Rc::new(Master {
            config: self,
            stopping: Cell::new(false),
            live: RefCell::new(Vec::new()),
        });
        let n = master.config.workers;
        master.live.borrow_mut().resize(n, None);
        let supervisors: Vec<_> = (0..n)
            .map(|slot| {
                let (m, h) = (master.clone(), handler.clone());
                crate::spawn(move || m.supervise(slot, &h))
            })
            .collect();
        let sig = signals.recv()?;
        log::info!("grove: prefork master got signal {sig}; stopping the workers");
        master.stopping.set(true);
        for pid in master.live.borrow().iter().flatten() {
            let _ = crate::hub::sys::process::kill(*pid, SIGTERM);
        }
        let limit = master.config.grace + Duration::from_secs(5);
        if crate::with_timeout(limit, || crate::join_all(supervisors)).is_err() {
            log::warn!("grove: prefork workers still running after {limit:?}; killing them");
            for pid in master.live.borrow().iter().flatten() {
                let _ = crate::hub::sys::process::kill(*pid, libc::SIGKILL);
            }
        }
        Ok(())
    }

    /// Forks a child process that runs [`serve`](Self::serve) (the master), and returns it:
    /// [`Process::terminate`] stops the whole server gracefully.
    ///
    /// # Errors
    /// If the fork fails.
    pub fn spawn<F>(self, handler: F) -> io::Result<Process>
    where
        F: Fn(TcpStream, SocketAddr) + Clone + 'static,
    {
        Process::spawn(move || {
            if let Err(e) = self.serve(handler) {
                log::error!("grove: prefork master failed: {e}");
                std::process::exit(1);
            }
        })
    }
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

struct Master {
    config: Prefork,
    stopping: Cell<bool>,
    /// The pid of each slot's running worker.
    live: RefCell<Vec<Option<libc::pid_t>>>,
}

impl Master {
    /// Keeps a worker running in `slot` until the master stops.
    fn supervise<F>(&self, slot: usize, handler: &F)
    where
        F: Fn(TcpStream, SocketAddr) + Clone + 'static,
    {
        let mut pause = Duration::from_millis(100);
        while !self.stopping.get() {
            let started = Instant::now();
            let worker = match self.fork_worker(handler.clone()) {
                Ok(p) => p,
                Err(e) => {
                    log::error!("grove: cannot fork prefork worker {slot}: {e}");
                    crate::sleep(pause);
                    pause = (pause * 2).min(MAX_RESTART_PAUSE);
                    continue;
                }
            };
            self.live.borrow_mut()[slot] = Some(worker.pid() as libc::pid_t);
            if self.stopping.get() {
                let _ = worker.terminate();
            }
            log::debug!("grove: prefork worker {slot} is process {}", worker.pid());
            let status = worker.join();
            self.live.borrow_mut()[slot] = None;
            if self.stopping.get() {
                break;
            }
            log::warn!(
                "grove: prefork worker {slot} (process {}) exited ({status:?}); restarting it",
                worker.pid()
            );
            if started.elapsed() < QUICK_DEATH {
                crate::sleep(pause);
                pause = (pause * 2).min(MAX_RESTART_PAUSE);
            } else {
                pause = Duration::from_millis(100);
            }
        }
    }

    fn fork_worker<F>(&self, handler: F) -> io::Result<Process>
    where
        F: Fn(TcpStream, SocketAddr) + 'static,
    {
        let (addr, grace, limit) = (
            self.config.addr,
            self.config.grace,
            self.config.max_connections,
        );
        let pid = fork_then(move |unmask| {
            // Subscribe before unblocking: a SIGTERM sent right after the fork is handled.
            let signals = Signals::new(&[SIGTERM, SIGINT]);
            drop(unmask);
            match signals.and_then(|s| worker(addr, grace, limit, handler, &s)) {
                Ok(()) => 0,
                Err(e) => {
                    log::error!("grove: prefork worker {}: {e}", std::process::id());
                    1
                }
            }
        })?;
        Ok(Process::adopt(pid))
    }
}

/// A worker's life: listen, serve until SIGTERM/SIGINT, stop gracefully.
fn worker<F>(
    addr: SocketAddr,
    grace: Duration,
    limit: Option<usize>,
    handler: F,
    signals: &Signals,
) -> io::Result<()>
where
    F: Fn(TcpStream, SocketAddr) + 'static,
{
    let listener = TcpListener::from_std(bind_reuseport(&addr, true)?.into())?;
    let mut server = StreamServer::new(listener, handler).stop_timeout(grace);
    if let Some(n) = limit {
        server = server.max_connections(n);
    }
    server.start();
    let sig = signals.recv()?;
    let busy = server.connections();
    log::debug!(
        "grove: prefork worker {} got signal {sig}; finishing {busy} connection(s)",
        std::process::id()
    );
    let started = Instant::now();
    server.stop();
    if server.connections() > 0 || started.elapsed() >= grace {
        log::warn!(
            "grove: prefork worker {}: handlers still running after the {grace:?} grace were \
             killed",
            std::process::id()
        );
    }
    Ok(())
}

impl fmt::Debug for Prefork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prefork")
            .field("addr", &self.addr)
            .field("workers", &self.workers)
            .field("grace", &self.grace)
            .finish()
    }
}
