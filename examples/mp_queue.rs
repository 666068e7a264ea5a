//! multiprocessing's `Queue` program: a child process puts a value on a queue the parent made,
//! the parent gets it.
//!
//! ```python
//! def f(q):
//!     q.put([42, None, 'hello'])
//! q = Queue(); p = Process(target=f, args=(q,)); p.start(); print(q.get()); p.join()
//! ```
//!
//! Run: `cargo run --example mp_queue` (prints `(42, None, "hello")`)

use grove::process::{Process, Queue};

type Item = (u32, Option<u32>, String);

fn f(q: Queue<Item>) {
    q.put(&(42, None, "hello".to_string())).expect("put");
}

fn main() -> std::io::Result<()> {
    env_logger::init();
    let q: Queue<Item> = Queue::new()?;
    let child_q = q.clone();
    let p = Process::spawn(move || f(child_q))?;
    println!("{:?}", q.get()?);
    p.join()?;
    Ok(())
}
