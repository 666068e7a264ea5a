//! The monkey-patching story: one program — plain std code that knows nothing of grove —
//! run first as it is, then after `grove::monkey::patch_all()`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Runs the monkey-patching story.
pub fn run() {
    println!("\n-- monkey: the same std code, without and with patch_all() --");
    let before = unmodified_program();
    println!("without patch_all: {before:>4} ms  (each std::thread::sleep blocked the thread)");
    #[cfg(feature = "monkey")]
    {
        grove::monkey::patch_all();
        let after = unmodified_program();
        println!("with patch_all:    {after:>4} ms  (each one parked only its task)");
    }
    #[cfg(not(feature = "monkey"))]
    println!(
        "with patch_all: run `cargo run --release --features monkey --example tour` to see \
         this half (the hooks are behind the `monkey` feature)"
    );
}

/// Three tasks, each a plain std client that sleeps 200 ms and then does one echo round trip
/// against a plain std server thread. Returns how long all three took, in milliseconds.
fn unmodified_program() -> u128 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(3) {
            let mut conn = conn.unwrap();
            let mut buf = [0u8; 5];
            conn.read_exact(&mut buf).unwrap();
            conn.write_all(&buf).unwrap();
        }
    });
    let start = Instant::now();
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            grove::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                let mut s = TcpStream::connect(addr).unwrap();
                s.write_all(b"hello").unwrap();
                let mut buf = [0u8; 5];
                s.read_exact(&mut buf).unwrap();
            })
        })
        .collect();
    grove::join_all(tasks);
    start.elapsed().as_millis()
}
