//! grove's pre-fork server: `grove::process::Prefork`, a master that forks N workers, each with
//! its own hub and its own `SO_REUSEPORT` listener, a task per connection.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::servers::{announce, echo};

/// Runs the pre-fork server with `workers` worker processes until the process group is killed.
///
/// The port is announced only once the workers listen: `Prefork` refuses connections until
/// they do, and the client gives a refused connect only a few quick retries.
pub fn run(workers: usize) -> io::Result<()> {
    let server = grove::process::Prefork::bind("127.0.0.1:0")?.workers(workers);
    let addr = server.local_addr();
    // Runs on the master's hub once `serve` parks; forked workers start with a fresh hub and
    // do not run it.
    drop(grove::spawn(move || announce_when_listening(addr, workers)));
    server.serve(|stream: grove::net::TcpStream, _peer| {
        let _ = stream.set_nodelay(true);
        echo(stream)
    })
}

/// Waits until the master has its `workers` children and one of them accepts, gives the others
/// a moment to reach `listen` too, then announces the port (or gives up after 10 s).
fn announce_when_listening(addr: SocketAddr, workers: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    // SAFETY: getpid takes no arguments and cannot fail.
    let group = unsafe { libc::getpid() } as u32;
    while Instant::now() < deadline {
        let forked = crate::group::members(group).len() > workers;
        if forked && grove::net::TcpStream::connect(addr).is_ok() {
            grove::sleep(Duration::from_millis(50));
            announce(addr.port());
            return;
        }
        grove::sleep(Duration::from_millis(2));
    }
    println!("error: the pre-fork workers did not listen within 10 s");
}
