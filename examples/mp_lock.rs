//! multiprocessing's `Lock` program: ten processes take turns printing, one at a time.
//!
//! ```python
//! def f(l, i):
//!     l.acquire()
//!     try: print('hello world', i)
//!     finally: l.release()
//! lock = Lock()
//! for num in range(10): Process(target=f, args=(lock, num)).start()
//! ```
//!
//! Each child holds the lock while it prints two lines with a pause between them: the pairs
//! never interleave.
//!
//! Run: `cargo run --example mp_lock`

use std::io::Write;
use std::time::Duration;

use grove::process::{Lock, Process};

fn f(l: &Lock, i: u32) {
    let _held = l.acquire().expect("acquire");
    let mut out = std::io::stdout();
    let _ = writeln!(out, "hello world {i}");
    grove::sleep(Duration::from_millis(10));
    let _ = writeln!(out, "goodbye world {i}");
    let _ = out.flush();
}

fn main() -> std::io::Result<()> {
    env_logger::init();
    let lock = Lock::new()?;
    let children: Vec<Process> = (0..10)
        .map(|num| {
            let lock = lock.clone();
            Process::spawn(move || f(&lock, num))
        })
        .collect::<Result<_, _>>()?;
    for c in children {
        c.join()?;
    }
    Ok(())
}
