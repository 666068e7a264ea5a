//! multiprocessing's `Pool(processes=5)` program: ten slow jobs submitted with `apply_async`,
//! results gathered by a callback, then `close` and `join`.
//!
//! ```python
//! def worker(x): time.sleep(1); return x * x
//! results = []
//! pool = Pool(processes=5)
//! for i in range(10): pool.apply_async(worker, args=(i,), callback=results.append)
//! pool.close(); pool.join(); print(results)
//! ```
//!
//! Five worker processes run the ten 1-second jobs in about 2 seconds. The callback runs in
//! the parent, as in Python.
//!
//! Run: `cargo run --example mp_pool`

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use grove::process::Pool;

fn worker(x: u64) -> (u64, u32) {
    grove::sleep(Duration::from_secs(1));
    (x * x, std::process::id())
}

fn main() -> std::io::Result<()> {
    env_logger::init();
    let start = Instant::now();
    let results = Rc::new(RefCell::new(Vec::new()));
    let pool = Pool::new(5)?;
    println!("workers: {:?}", pool.worker_pids());
    for i in 0..10 {
        let results = results.clone();
        pool.apply_async_with_callback(worker, i, move |r| results.borrow_mut().push(r));
    }
    pool.close();
    pool.join()?;
    let results = results.borrow();
    println!(
        "squares: {:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    println!(
        "computed by: {:?}",
        results.iter().map(|r| r.1).collect::<Vec<_>>()
    );
    println!(
        "10 one-second jobs on 5 processes took {:.1?}",
        start.elapsed()
    );
    Ok(())
}
