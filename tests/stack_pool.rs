//! The stack pool gives memory back after a burst and keeps working while a thread exits.

mod util;

use std::hint::black_box;

/// This process's resident memory in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// Writes `kib` KiB of this task's stack.
#[inline(never)]
fn touch_stack(kib: usize) {
    let mut buf = [0u8; 1024];
    black_box(&mut buf);
    if kib > 1 {
        touch_stack(kib - 1);
    }
}

/// Runs `scenario` of `test` in a child process (RSS is per process) and checks it passed.
#[track_caller]
fn in_child(test: &str, scenario: &str) {
    let out = util::run_child(test, scenario);
    assert!(
        out.status.success(),
        "child failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    assert!(stdout.contains("scenario done"));
}

#[test]
fn memory_touched_by_a_burst_of_tasks_is_given_back() {
    const TEST: &str = "memory_touched_by_a_burst_of_tasks_is_given_back";
    if util::child_scenario().as_deref() != Some("touch") {
        return in_child(TEST, "touch");
    }
    grove::spawn(|| ()).join().unwrap();
    let before = rss_kib();
    // Every task touches 64 KiB of its stack and yields, so all of them hold their stack at once.
    let mut handles: Vec<_> = (0..2000)
        .map(|_| {
            grove::spawn(|| {
                touch_stack(64);
                grove::yield_now();
            })
        })
        .collect();
    let peak = grove::spawn(rss_kib);
    handles.push(grove::spawn(|| ()));
    let peak = peak.join().unwrap();
    for h in handles {
        h.join().unwrap();
    }
    // A short idle period: the hub gives idle stacks back before it blocks.
    grove::sleep(std::time::Duration::from_millis(5));
    let after = rss_kib();
    println!("RSS before {before} KiB, peak {peak} KiB, after {after} KiB");
    assert!(peak > before + 100 * 1024, "the burst did not touch memory");
    assert!(
        after < before + 48 * 1024,
        "the pool kept the burst's memory"
    );
    println!("scenario done");
}

#[test]
fn a_burst_of_short_tasks_gives_its_memory_back() {
    const TEST: &str = "a_burst_of_short_tasks_gives_its_memory_back";
    if util::child_scenario().as_deref() != Some("short") {
        return in_child(TEST, "short");
    }
    grove::spawn(|| ()).join().unwrap();
    let before = rss_kib();
    let handles: Vec<_> = (0..20_000u32).map(|i| grove::spawn(move || i)).collect();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.join().unwrap(), i as u32);
    }
    grove::sleep(std::time::Duration::from_millis(5));
    let after = rss_kib();
    println!("RSS before {before} KiB, after {after} KiB");
    assert!(
        after < before + 48 * 1024,
        "the pool kept the burst's memory"
    );
    println!("scenario done");
}

type Gen = grove::generator::Generator<(), u32, ()>;

/// Runs a generator to completion when dropped, and drops the unfinished one it holds.
struct RunsAGeneratorOnDrop(std::cell::RefCell<Option<Gen>>);

impl Drop for RunsAGeneratorOnDrop {
    fn drop(&mut self) {
        drop(self.0.borrow_mut().take());
        let mut g = grove::generator::Generator::new(|y, ()| {
            y.suspend(1);
            2
        });
        assert_eq!(g.resume(()), grove::generator::GeneratorState::Yielded(1));
        assert_eq!(g.resume(()), grove::generator::GeneratorState::Complete(2));
    }
}

thread_local! {
    static LATE: RunsAGeneratorOnDrop =
        const { RunsAGeneratorOnDrop(std::cell::RefCell::new(None)) };
}

#[test]
fn stacks_work_in_thread_local_destructors_after_the_pool_is_gone() {
    const TEST: &str = "stacks_work_in_thread_local_destructors_after_the_pool_is_gone";
    if util::child_scenario().as_deref() != Some("late") {
        return in_child(TEST, "late");
    }
    std::thread::spawn(|| {
        // LATE's destructor is registered before the pool's (first use), so it runs after it:
        // it drops an unfinished generator and runs a new one with no pool left.
        LATE.with(|_| ());
        let mut g = grove::generator::Generator::new(|y, ()| {
            y.suspend(7);
        });
        assert_eq!(g.next(), Some(7));
        LATE.with(|l| *l.0.borrow_mut() = Some(g));
    })
    .join()
    .unwrap();
    println!("scenario done");
}
