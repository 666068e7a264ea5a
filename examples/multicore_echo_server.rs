//! An echo server on every core: a `grove::Runtime` runs one hub per core, and a
//! `RuntimeServer` gives each hub its own `SO_REUSEPORT` listener on the same port. The kernel
//! spreads the connections; each is handled by a task on the hub that accepted it, written as
//! plain blocking code. A second story rides along: every handler reports to a statistics task
//! on hub 0 over a `grove::sync::mpsc` channel, the one thing that crosses hubs.
//!
//! Run: `cargo run --release --example multicore_echo_server [-- --port 5566 --hubs 4]`,
//! talk to it with `cargo run --release --example echo_client` (or `nc 127.0.0.1 5566`), and
//! stop it by pressing Enter. Add `RUST_LOG=grove=debug` to watch the hubs.

use std::io::{Read, Write};
use std::process::exit;
use std::time::Duration;

use grove::net::{RuntimeServer, TcpStream};
use grove::sync::mpsc;
use grove::Runtime;

const USAGE: &str = "usage: multicore_echo_server [--port N] [--hubs N]";

/// What a handler tells the statistics task when its client leaves.
struct Visit {
    hub: usize,
    bytes: usize,
}

fn main() {
    env_logger::init();
    let (port, hubs) = parse_args().unwrap_or_else(|msg| {
        eprintln!("multicore_echo_server: {msg}\n{USAGE}");
        exit(2)
    });
    let mut builder = Runtime::builder().thread_name("echo-hub");
    if let Some(n) = hubs {
        builder = builder.hubs(n);
    }
    let rt = builder.build().unwrap_or_else(|e| {
        eprintln!("multicore_echo_server: cannot start the hubs: {e}");
        exit(1)
    });

    // The statistics task lives on hub 0; senders are `Send + Clone`, one per handler.
    let (visits, inbox) = mpsc::channel::<Visit>();
    let hub_count = rt.hubs();
    let stats = rt
        .spawn_on(0, move || {
            let mut per_hub = vec![0usize; hub_count];
            for visit in inbox.iter() {
                per_hub[visit.hub] += 1;
                println!(
                    "hub {} echoed {} bytes; clients per hub so far: {per_hub:?}",
                    visit.hub, visit.bytes
                );
            }
        })
        .expect("hub 0 is running");

    let server = RuntimeServer::bind(
        &rt,
        ("127.0.0.1", port),
        move |mut conn: TcpStream, _peer| {
            let mut buf = [0; 4096];
            let mut bytes = 0;
            while let Ok(n @ 1..) = conn.read(&mut buf) {
                if conn.write_all(&buf[..n]).is_err() {
                    break;
                }
                bytes += n;
            }
            let hub = grove::current_hub().expect("handlers run on a hub");
            let _ = visits.send(Visit { hub, bytes });
        },
    )
    .unwrap_or_else(|e| {
        eprintln!("multicore_echo_server: cannot listen on 127.0.0.1:{port}: {e}");
        exit(1)
    });
    println!(
        "echoing on {} with {} hubs (one listener each); press Enter to stop",
        server.local_addr(),
        rt.hubs()
    );

    // Plain `main` waits here; the hubs serve meanwhile.
    wait_for_enter();
    println!("stopping: no new connections; clients get 1 s to finish");
    // Every hub's server stops; the handler, and with it the last `visits` sender, is dropped,
    // so the statistics task's loop ends.
    server.stop();
    let _ = stats.join();
    rt.shutdown(Duration::from_secs(2));
}

/// Parks main until Enter is pressed (or stdin closes): a plain thread blocks reading stdin and
/// tells main over a channel — main's receive parks, and its implicit hub waits meanwhile.
fn wait_for_enter() {
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_line(&mut String::new());
        let _ = tx.send(());
    });
    let _ = rx.recv();
}

fn parse_args() -> Result<(u16, Option<usize>), String> {
    let mut args = std::env::args().skip(1);
    let (mut port, mut hubs) = (5566, None);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let bad = || format!("bad value for {flag}: {value:?}");
        match flag.as_str() {
            "--port" => port = value.parse().map_err(|_| bad())?,
            "--hubs" => hubs = Some(value.parse().ok().filter(|n| *n > 0).ok_or_else(bad)?),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok((port, hubs))
}
