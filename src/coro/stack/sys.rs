//! The system calls behind the stack pool: mapping chunks, guard pages, giving pages back, and
//! telling valgrind where the stacks are.
//!
//! Guard pages come from `madvise(MADV_GUARD_INSTALL)` (Linux 6.13+), many at once through
//! `process_madvise` on this process when the kernel accepts it (6.15+ for `PIDFD_SELF`), and
//! from `mprotect(PROT_NONE)` otherwise and always under valgrind, which does not know the
//! advice. Every batch falls back to one `madvise` per range, so each kernel feature is optional.

use std::io;
use std::sync::atomic::{AtomicU8, Ordering};

use super::page_size;
use crate::coro::syscall::syscall;

/// `MADV_GUARD_INSTALL` (Linux 6.13); not yet in every `libc` release.
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// `PIDFD_SELF` (Linux 6.15): "this process" for pidfd-taking calls, without opening a pidfd.
const PIDFD_SELF: libc::c_int = -10000;

/// The most ranges one `process_madvise` call takes (`IOV_MAX`).
const IOV_MAX: usize = 1024;

/// Whether `madvise(MADV_GUARD_INSTALL)` works here: 0 unknown, 1 yes, 2 no (use `mprotect`).
static GUARD_KIND: AtomicU8 = AtomicU8::new(0);

/// Whether `process_madvise(PIDFD_SELF, ..)` works here: 0 unknown, 1 yes, 2 no.
static BATCH: AtomicU8 = AtomicU8::new(0);

/// Maps `bytes` of private, unreserved, readable and writable memory.
pub(super) fn map(bytes: usize) -> io::Result<usize> {
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    // SAFETY: a fresh anonymous mapping at an address of the kernel's choosing aliases nothing.
    let addr = unsafe { libc::mmap(std::ptr::null_mut(), bytes, prot, flags, -1, 0) };
    if addr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(addr as usize)
}

/// Unmaps `[addr, addr + len)`, which no stack handed out lies in.
pub(super) fn unmap(addr: usize, len: usize) {
    // SAFETY: the caller passes a range of a chunk this module mapped that nothing uses.
    unsafe { libc::munmap(addr as *mut libc::c_void, len) };
}

/// Makes the first page of every stack in `[base, base + count * size)` fault on access.
///
/// Returns how many stacks, from `base` up, got their guard: all of them, or on an error the
/// ones before the first failure (the error, if none got one).
pub(super) fn install_guards(base: usize, size: usize, count: usize) -> io::Result<usize> {
    if under_valgrind() {
        GUARD_KIND.store(2, Ordering::Relaxed);
    }
    let mut done = 0;
    if GUARD_KIND.load(Ordering::Relaxed) == 0 {
        // The first guard of the process learns which mechanism works.
        install_guard(base)?;
        done = 1;
    }
    if GUARD_KIND.load(Ordering::Relaxed) == 1 && BATCH.load(Ordering::Relaxed) != 2 {
        let page = page_size();
        let ranges: Vec<(usize, usize)> = (done..count).map(|i| (base + i * size, page)).collect();
        if advise_batch(&ranges, MADV_GUARD_INSTALL).is_ok() {
            return Ok(count);
        }
    }
    for i in done..count {
        if let Err(e) = install_guard(base + i * size) {
            return if i == 0 { Err(e) } else { Ok(i) };
        }
    }
    Ok(count)
}

/// Makes the page at `addr` fault on any access.
fn install_guard(addr: usize) -> io::Result<()> {
    let page = page_size();
    let ptr = addr as *mut libc::c_void;
    if GUARD_KIND.load(Ordering::Relaxed) != 2 {
        // SAFETY: `addr` is the first page of a private anonymous mapping we own and no one uses.
        match syscall!(madvise(ptr, page, MADV_GUARD_INSTALL)) {
            Ok(_) => {
                GUARD_KIND.store(1, Ordering::Relaxed);
                return Ok(());
            }
            Err(e) if GUARD_KIND.load(Ordering::Relaxed) == 0 => {
                log::debug!("MADV_GUARD_INSTALL unavailable ({e}); using mprotect guard pages");
                GUARD_KIND.store(2, Ordering::Relaxed);
            }
            Err(e) => return Err(super::exhausted("madvise(MADV_GUARD_INSTALL)", e)),
        }
    }
    // SAFETY: as above; PROT_NONE only removes access to a page nothing references yet.
    syscall!(mprotect(ptr, page, libc::PROT_NONE))
        .map(drop)
        .map_err(|e| super::exhausted("mprotect of a guard page", e))
}

/// Gives the pages of every `(addr, len)` range back to the kernel (`MADV_DONTNEED`): resident
/// memory drops at once, and the next touch of a page maps a fresh zeroed one. Guards stay.
pub(super) fn release_pages(ranges: &[(usize, usize)]) {
    if !under_valgrind()
        && BATCH.load(Ordering::Relaxed) != 2
        && advise_batch(ranges, libc::MADV_DONTNEED).is_ok()
    {
        return;
    }
    for &(addr, len) in ranges {
        // SAFETY: each range is the usable part of an idle stack the pool owns; no live
        // reference points into it, so dropping its contents is invisible to Rust code.
        if let Err(e) = syscall!(madvise(addr as *mut libc::c_void, len, libc::MADV_DONTNEED)) {
            log::debug!("madvise(MADV_DONTNEED) of an idle stack failed: {e}");
        }
    }
}

/// Applies `advice` to every range with as few `process_madvise` calls as possible. On any
/// failure the caller redoes the ranges one `madvise` at a time (both advices we use are
/// idempotent); if the kernel refuses the call itself, batching is switched off for good.
fn advise_batch(ranges: &[(usize, usize)], advice: libc::c_int) -> io::Result<()> {
    let mut iov: Vec<libc::iovec> = Vec::with_capacity(ranges.len().min(IOV_MAX));
    for batch in ranges.chunks(IOV_MAX) {
        iov.clear();
        iov.extend(batch.iter().map(|&(addr, len)| libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: len,
        }));
        let want: usize = batch.iter().map(|r| r.1).sum();
        match process_madvise(&iov, advice) {
            Ok(done) if done == want => BATCH.store(1, Ordering::Relaxed),
            Ok(done) => return Err(io::Error::other(format!("advised {done} of {want} bytes"))),
            Err(e) => {
                if BATCH.load(Ordering::Relaxed) == 0 {
                    log::debug!("process_madvise unavailable ({e}); one madvise per stack");
                    BATCH.store(2, Ordering::Relaxed);
                }
                return Err(e);
            }
        }
    }
    Ok(())
}

fn process_madvise(iov: &[libc::iovec], advice: libc::c_int) -> io::Result<usize> {
    loop {
        // SAFETY: `iov` points at `iov.len()` (≤ IOV_MAX) valid iovecs describing ranges of
        // chunks the pool owns that no live reference points into; the call only reads them.
        let r = unsafe {
            libc::syscall(
                libc::SYS_process_madvise,
                PIDFD_SELF,
                iov.as_ptr(),
                iov.len(),
                advice,
                0,
            )
        };
        if r >= 0 {
            return Ok(r as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Whether this process runs under valgrind (asked once).
pub(super) fn under_valgrind() -> bool {
    static STATE: AtomicU8 = AtomicU8::new(0);
    match STATE.load(Ordering::Relaxed) {
        0 => {
            let on = valgrind::running_on_valgrind();
            STATE.store(if on { 1 } else { 2 }, Ordering::Relaxed);
            on
        }
        s => s == 1,
    }
}

/// Tells valgrind that `[bottom, top)` is a stack, so switching onto it is not mistaken for a
/// huge stack frame. Stacks are never unmapped once handed to the pool, so they are never
/// deregistered.
pub(super) fn register_stack(bottom: usize, top: usize) {
    if under_valgrind() {
        valgrind::stack_register(bottom, top);
    }
}

/// valgrind's client requests: a magic instruction sequence that does nothing on a real CPU
/// (the result register keeps its default) and that valgrind's JIT recognises and answers.
/// The codes come from `valgrind.h` (`VG_USERREQ__RUNNING_ON_VALGRIND`, `VG_USERREQ__STACK_REGISTER`).
mod valgrind {
    const RUNNING_ON_VALGRIND: usize = 0x1001;
    const STACK_REGISTER: usize = 0x1501;

    pub(super) fn running_on_valgrind() -> bool {
        request(0, [RUNNING_ON_VALGRIND, 0, 0, 0, 0, 0]) != 0
    }

    pub(super) fn stack_register(bottom: usize, top: usize) {
        request(0, [STACK_REGISTER, bottom, top, 0, 0, 0]);
    }

    /// Sends one request; returns valgrind's answer, or `default` on a real CPU.
    #[cfg(target_arch = "x86_64")]
    fn request(default: usize, args: [usize; 6]) -> usize {
        let result;
        // SAFETY: the four rotations of rdi by 3+13+61+51 = 128 bits leave it unchanged and
        // `xchg rbx, rbx` is a no-op, so on a CPU this only moves `default` into the result
        // (and changes flags, which the block does not promise to keep); valgrind reads the
        // six words `rax` points at (alive for the whole block) and writes its answer to rdx.
        unsafe {
            std::arch::asm!(
                "rol rdi, 3",
                "rol rdi, 13",
                "rol rdi, 61",
                "rol rdi, 51",
                "xchg rbx, rbx",
                inout("rdx") default => result,
                in("rax") args.as_ptr(),
                options(nostack, readonly),
            );
        }
        result
    }

    /// Sends one request; returns valgrind's answer, or `default` on a real CPU.
    #[cfg(target_arch = "aarch64")]
    fn request(default: usize, args: [usize; 6]) -> usize {
        let result;
        // SAFETY: the four rotations of x12 by 3+13+61+51 = 128 bits leave it unchanged and
        // `orr x10, x10, x10` is a no-op, so on a CPU this only moves `default` into the
        // result; valgrind reads the six words x4 points at and writes its answer to x3.
        unsafe {
            std::arch::asm!(
                "ror x12, x12, #3",
                "ror x12, x12, #13",
                "ror x12, x12, #61",
                "ror x12, x12, #51",
                "orr x10, x10, x10",
                inout("x3") default => result,
                in("x4") args.as_ptr(),
                options(nostack, readonly, preserves_flags),
            );
        }
        result
    }

    /// No client requests on other architectures: never "under valgrind".
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    fn request(default: usize, _args: [usize; 6]) -> usize {
        default
    }
}
