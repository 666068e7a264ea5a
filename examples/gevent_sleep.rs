//! The seed's gevent program: `foo` sleeps a second, `bar` sleeps 0 (it just yields), both joined
//! with `join_all`. Output, in gevent's order (bar's zero sleep comes back long before foo's):
//!
//! ```text
//! Running in foo
//! Explicit context to bar
//! Implicit context switch back to bar
//! Explicit context switch to foo again
//! ```
//!
//! Run with `RUST_LOG=grove=debug` to see the hub at work.

use std::time::Duration;

fn foo() {
    println!("Running in foo");
    grove::sleep(Duration::from_secs(1));
    println!("Explicit context switch to foo again");
}

fn bar() {
    println!("Explicit context to bar");
    grove::sleep(Duration::ZERO);
    println!("Implicit context switch back to bar");
}

fn main() {
    env_logger::init();
    let tasks = [grove::spawn(foo), grove::spawn(bar)];
    for result in grove::join_all(tasks) {
        result.expect("task failed");
    }
}
