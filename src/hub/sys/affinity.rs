//! Pinning the calling thread to one CPU (`Runtime::builder().pin_cores(true)`).

use std::io;

use super::syscall;

/// Restricts the calling thread to CPU `cpu`.
pub(crate) fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    // SAFETY: an all-zero cpu_set_t is a valid, empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if cpu >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cpu {cpu} is beyond what a cpu_set_t holds"),
        ));
    }
    // SAFETY: `cpu` is within the set's bounds (checked above).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: `set` is a valid cpu_set_t of `size` bytes; pid 0 is the calling thread.
    syscall!(sched_setaffinity(0, size, &set)).map(drop)
}

/// The CPUs the calling thread may run on, in order.
pub(crate) fn allowed_cpus() -> Vec<usize> {
    // SAFETY: as above.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: `set` is a writable cpu_set_t of `size` bytes.
    if syscall!(sched_getaffinity(0, size, &mut set)).is_err() {
        return Vec::new();
    }
    (0..8 * size)
        // SAFETY: `i` is within the set's bounds.
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .collect()
}
