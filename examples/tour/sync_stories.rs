//! Stories of grove::sync: a bounded queue between a fast cook and slow eaters, and a pool
//! turning 100 slow jobs into ten rounds.

use std::time::{Duration, Instant};

use grove::sync::{Pool, Queue};

/// Runs the sync stories.
pub fn run() {
    println!("\n-- sync: a bounded Queue gives back-pressure --");
    pipeline();
    println!("\n-- sync: a Pool of 10 runs 100 jobs of 10 ms --");
    pool_map();
}

fn pipeline() {
    let counter = Queue::bounded(2);
    let start = Instant::now();
    let eater = {
        let counter = counter.clone();
        grove::spawn(move || {
            for baozi in counter.iter() {
                println!(
                    "  {:>3} ms eater: eating baozi {baozi}",
                    start.elapsed().as_millis()
                );
                grove::sleep(Duration::from_millis(10));
            }
        })
    };
    for baozi in 1..=5 {
        let waits = counter.is_full();
        counter.put(baozi).unwrap();
        let note = if waits {
            " (after waiting: counter was full)"
        } else {
            ""
        };
        println!(
            "  {:>3} ms cook: put baozi {baozi}{note}",
            start.elapsed().as_millis()
        );
    }
    counter.close();
    eater.join().unwrap();
}

fn pool_map() {
    let job = |n: u64| {
        grove::sleep(Duration::from_millis(10));
        n * 2
    };
    let start = Instant::now();
    let results = Pool::new(10).map(job, 0..100);
    let took = start.elapsed();
    println!(
        "  {} results in input order ({}, {}, ... {}) in {took:?}; one by one: ~1 s",
        results.len(),
        results[0],
        results[1],
        results[99]
    );
}
