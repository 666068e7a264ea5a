//! Scale: 100,000 tasks spawned and joined; 100,000 tasks parked at once, at the machine's
//! default vm.max_map_count (65530) — possible because guard pages do not split mappings.

use std::time::{Duration, Instant};

#[test]
fn hundred_thousand_tasks_spawned_and_joined() {
    let handles: Vec<_> = (0..100_000u64)
        .map(|i| grove::spawn(move || i * 2))
        .collect();
    let sum: u64 = grove::join_all(handles)
        .into_iter()
        .map(Result::unwrap)
        .sum();
    assert_eq!(sum, 99_999 * 100_000);
}

#[test]
fn hundred_thousand_tasks_sleeping_at_once() {
    let deadline = Instant::now() + Duration::from_millis(300);
    let handles: Vec<_> = (0..100_000u32)
        .map(|i| {
            grove::Builder::new()
                .spawn(move || {
                    grove::sleep_until(deadline);
                    i
                })
                .expect("a stack for every task")
        })
        .collect();
    let results = grove::join_all(handles);
    assert_eq!(results.len(), 100_000);
    assert!(results
        .into_iter()
        .enumerate()
        .all(|(i, r)| r.unwrap() == i as u32));
    assert!(Instant::now() >= deadline);
}
