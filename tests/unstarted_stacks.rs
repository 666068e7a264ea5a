//! Fibers that never run give their stacks back: dropping 20,000 never-started greenlets (or
//! killing never-started tasks) leaves the address space where it was.

/// VmSize is per process: the tests of this file take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn vm_size_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmSize:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn dropping_never_started_greenlets_returns_their_stacks() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Warm the pool up with one round, then measure a second, identical round.
    let round = || {
        for _ in 0..20_000 {
            drop(grove::greenlet::Greenlet::new(|()| ()));
        }
    };
    round();
    let before = vm_size_kib();
    round();
    round();
    let grown = vm_size_kib().saturating_sub(before);
    // Without recycling, each round reserves 20,000 × 128 KiB = 2.5 GiB more.
    assert!(grown < 256 * 1024, "VmSize grew by {grown} KiB");
}

#[test]
fn killing_never_started_tasks_keeps_no_stack() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = vm_size_kib();
    for _ in 0..3 {
        let handles: Vec<_> = (0..20_000)
            .map(|_| grove::Builder::new().spawn(|| ()).unwrap())
            .collect();
        for h in &handles {
            h.kill();
        }
        for h in handles {
            assert!(h.join().unwrap_err().is_killed());
        }
    }
    let grown = vm_size_kib().saturating_sub(before);
    assert!(grown < 3 * 1024 * 1024, "VmSize grew by {grown} KiB");
}
