//! The seed's baozi producer/consumer, with tasks and a bounded `Queue`: the cook is faster
//! than the two eaters, so the counter (size 3) fills up and the cook waits — back-pressure.
//!
//! Run: `cargo run --example pipeline` (add `RUST_LOG=grove=debug` to watch the hub).

use std::time::{Duration, Instant};

use grove::sync::Queue;

/// Makes `n` baozi, one every 5 ms; waits whenever the counter is full.
fn cook(counter: Queue<u32>, n: u32, start: Instant) {
    for baozi in 1..=n {
        grove::sleep(Duration::from_millis(5));
        if counter.is_full() {
            println!(
                "{:>4} ms  [cook] counter full ({} on it), waiting to put baozi {baozi}",
                start.elapsed().as_millis(),
                counter.len()
            );
        }
        counter.put(baozi).unwrap();
        println!(
            "{:>4} ms  [cook] made baozi {baozi}",
            start.elapsed().as_millis()
        );
    }
    counter.close(); // no more baozi: the eaters go home once the counter is empty
}

/// Eats baozi, 20 ms each, until the counter is closed and empty.
fn eater(name: &'static str, counter: Queue<u32>, start: Instant) -> u32 {
    let mut eaten = 0;
    for baozi in counter.iter() {
        println!(
            "{:>4} ms  [{name}] eating baozi {baozi}",
            start.elapsed().as_millis()
        );
        grove::sleep(Duration::from_millis(20));
        eaten += 1;
    }
    eaten
}

fn main() {
    env_logger::init();
    run(10);
}

/// The whole story; returns how many baozi each eater ate.
pub fn run(n: u32) -> Vec<u32> {
    let start = Instant::now();
    let counter = Queue::bounded(3);
    let eaters: Vec<_> = ["c1", "c2"]
        .into_iter()
        .map(|name| {
            let counter = counter.clone();
            grove::spawn(move || eater(name, counter, start))
        })
        .collect();
    cook(counter, n, start);
    let eaten: Vec<u32> = grove::join_all(eaters)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    println!(
        "{:>4} ms  done: c1 ate {}, c2 ate {}",
        start.elapsed().as_millis(),
        eaten[0],
        eaten[1]
    );
    eaten
}
