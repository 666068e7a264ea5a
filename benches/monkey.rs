//! What a monkey-patching hook costs when it passes straight through: a cheap call (`read` of
//! zero bytes from a regular file, `fcntl(F_GETFD)`) through the raw syscall wrapper
//! (`libc::syscall`) and through grove's hook — before `patch_all`, after it on a hub's thread
//! (a regular file is left alone), and after it on a thread without a hub.
//!
//! A system call costs ~250 ns on this VM and the spread between runs is larger than the few
//! nanoseconds a hook adds, so each figure is the *minimum* per-call time over many short
//! batches, raw and hooked batches interleaved (the minimum is what the code costs when
//! nothing else interferes).
//!
//! Run: `cargo bench --features monkey --bench monkey` (`MONKEY_BENCH_CONTROL=1` first prints raw
//! against raw: the method's own error, which should be ~0).

use std::hint::black_box;
use std::os::fd::AsRawFd;
use std::time::Instant;

const BATCHES: usize = 1000;
const CALLS: usize = 2000;

/// The minimum per-call nanoseconds of `a` and of `b` over interleaved batches.
fn min_pair(a: impl Fn() -> i64, b: impl Fn() -> i64) -> (f64, f64) {
    let (mut best_a, mut best_b) = (f64::MAX, f64::MAX);
    for _ in 0..BATCHES {
        for (f, best) in [(&a as &dyn Fn() -> i64, &mut best_a), (&b, &mut best_b)] {
            let t = Instant::now();
            for _ in 0..CALLS {
                black_box(f());
            }
            *best = best.min(t.elapsed().as_nanos() as f64 / CALLS as f64);
        }
    }
    (best_a, best_b)
}

fn report(label: &str, fd: i32) {
    let mut buf = [0u8; 1];
    let p = buf.as_mut_ptr() as usize;
    // SAFETY (all four calls): a zero-byte read into a valid buffer, or F_GETFD, on our own fd.
    let (raw, hook) = min_pair(
        || unsafe { libc::syscall(libc::SYS_read, fd, p, 0usize) },
        || unsafe { libc::read(fd, p as *mut _, 0) } as i64,
    );
    println!("{label:<28} read(fd, buf, 0)   raw {raw:7.1} ns   hook {hook:7.1} ns   hook - raw {:+6.1} ns", hook - raw);
    let (raw, hook) = min_pair(
        || unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_GETFD) },
        || unsafe { libc::fcntl(fd, libc::F_GETFD) } as i64,
    );
    println!("{label:<28} fcntl(fd, F_GETFD) raw {raw:7.1} ns   hook {hook:7.1} ns   hook - raw {:+6.1} ns", hook - raw);
}

fn main() {
    if std::env::var("MONKEY_BENCH_CONTROL").is_ok() {
        let file = std::fs::File::open("/proc/self/exe").unwrap();
        let fd = file.as_raw_fd();
        let (a, b) = min_pair(
            || unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_GETFD) },
            || unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_GETFD) },
        );
        println!("control raw vs raw: {a:.1} {b:.1}");
    }
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` and `cargo test --benches`
    }
    let file = std::fs::File::open("/proc/self/exe").unwrap();
    let fd = file.as_raw_fd();
    report("before patch_all", fd);
    grove::monkey::patch_all();
    report("patched, hub thread", fd);
    std::thread::scope(|s| {
        s.spawn(|| report("patched, thread without hub", fd));
    });
}
