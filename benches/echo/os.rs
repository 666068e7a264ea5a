//! Process set-up shared by the echo and models benches: CPU pinning and the open-file limit.

use std::io;

/// Pins the calling thread (and the threads and processes it creates later) to one CPU.
pub fn pin_to_cpu(cpu: usize) {
    // SAFETY: cpu_set_t is plain data, valid all-zero; the pointer passed lives across the call.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        eprintln!("cannot pin to CPU {cpu}: {}", io::Error::last_os_error());
    }
}

/// Raises the soft open-file limit to the hard one (never the hard limit itself).
pub fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit that outlives both calls.
    let rc = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit)
        } else {
            -1
        }
    };
    if rc != 0 {
        eprintln!(
            "cannot raise the open-file limit: {}",
            io::Error::last_os_error()
        );
    }
}
