//! Stacks: configurable size, reuse, and a stack overflow that is reported, not silent.

mod util;

use std::hint::black_box;

/// Recurses with a 1 KiB frame until `depth` reaches zero; returns a value that depends on
/// every frame so the recursion is not optimised away.
fn recurse(depth: u32) -> u64 {
    let buf = black_box([depth as u8; 1024]);
    if depth == 0 {
        return buf[0] as u64;
    }
    recurse(depth - 1) + buf[1023] as u64
}

#[test]
fn a_bigger_stack_allows_deeper_recursion() {
    let h = grove::Builder::new()
        .stack_size(32 * 1024 * 1024)
        .spawn(|| recurse(2000))
        .unwrap();
    assert!(h.join().unwrap() > 0);
}

#[test]
fn default_stack_size_can_be_changed() {
    let before = grove::default_stack_size();
    assert!(before >= 64 * 1024);
    grove::set_default_stack_size(256 * 1024);
    assert_eq!(grove::default_stack_size(), 256 * 1024);
    let h = grove::spawn(|| recurse(40));
    assert!(h.join().unwrap() > 0);
    grove::set_default_stack_size(before);
}

#[test]
fn stacks_are_reused_across_many_short_tasks() {
    // Far more tasks than any chunk holds, run one after another: they must reuse stacks.
    for i in 0..20_000u32 {
        let h = grove::spawn(move || i);
        assert_eq!(h.join().unwrap(), i);
    }
}

#[test]
fn stack_overflow_is_reported_with_the_task_name_and_size() {
    if util::child_scenario().as_deref() == Some("overflow") {
        let h = grove::Builder::new()
            .name("deep-recursion")
            .stack_size(64 * 1024)
            .spawn(|| recurse(1_000_000))
            .unwrap();
        let _ = h.join();
        unreachable!("the overflow aborts the process");
    }
    let out = util::run_child(
        "stack_overflow_is_reported_with_the_task_name_and_size",
        "overflow",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("task 'deep-recursion' has overflowed its stack (stack size 61440 bytes)"),
        "stderr: {stderr}"
    );
}

#[test]
fn running_out_of_address_space_is_an_error_not_a_panic() {
    if util::child_scenario().as_deref() == Some("no-memory") {
        // Cap the address space so stack chunks cannot be mapped, then ask for a big stack.
        let limit = libc::rlimit {
            rlim_cur: 1 << 30,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: setrlimit with a valid struct only changes this child process's limit.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0);
        let err = grove::Builder::new()
            .stack_size(4 << 30)
            .spawn(|| ())
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::OutOfMemory);
        println!("ERROR: {err}");
        return;
    }
    let out = util::run_child(
        "running_out_of_address_space_is_an_error_not_a_panic",
        "no-memory",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("vm.max_map_count"), "{stdout}");
}
