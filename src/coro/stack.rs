//! Task stacks: carved from large `MAP_NORESERVE` chunks, guard-paged, pooled and reused.
//!
//! A fresh `mmap` costs microseconds; popping a stack off the pool costs nanoseconds. Each stack
//! is `size` bytes whose lowest page is a guard page: `madvise(MADV_GUARD_INSTALL)` where the
//! kernel has it (Linux 6.13+; it does not split the mapping, so a million stacks fit under the
//! default `vm.max_map_count`), `mprotect(PROT_NONE)` otherwise (each guard then costs two
//! mappings). Pages are reserved lazily: a parked task costs only the pages it touched.
//!
//! Every thread keeps its own free list (tasks never leave their thread); when a thread exits its
//! free stacks move to a global list other threads draw from. Chunks are never unmapped.

use std::cell::RefCell;
use std::io;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Mutex;

use corosensei::stack::{Stack, StackPointer};

use crate::hub::sys::syscall;

/// `MADV_GUARD_INSTALL` (Linux 6.13); not yet in every `libc` release.
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Default stack size for tasks and greenlets: 128 KiB of address space (only touched pages
/// cost memory).
pub const DEFAULT_STACK_SIZE: usize = 128 * 1024;

/// Smallest stack grove hands out (one guard page plus 16 KiB).
pub const MIN_STACK_SIZE: usize = 16 * 1024;

/// Chunks reserve at most this much address space at once.
const CHUNK_BYTES: usize = 32 * 1024 * 1024;

/// Upper bound on stacks per chunk.
const CHUNK_STACKS: usize = 256;

static DEFAULT_SIZE: AtomicUsize = AtomicUsize::new(DEFAULT_STACK_SIZE);

/// Which guard mechanism works here: 0 unknown, 1 `MADV_GUARD_INSTALL`, 2 `mprotect`.
static GUARD_KIND: AtomicU8 = AtomicU8::new(0);

/// Stacks freed by threads that have exited, per size.
static ORPHANS: Mutex<Vec<PooledStack>> = Mutex::new(Vec::new());

thread_local! {
    static POOL: RefCell<LocalPool> = const { RefCell::new(LocalPool { free: Vec::new() }) };
}

/// The page size, read once.
pub(crate) fn page_size() -> usize {
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    match PAGE.load(Ordering::Relaxed) {
        0 => {
            // SAFETY: sysconf has no memory-safety preconditions.
            let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            let p = if p > 0 { p as usize } else { 4096 };
            PAGE.store(p, Ordering::Relaxed);
            p
        }
        p => p,
    }
}

/// Rounds a requested stack size up to whole pages, at least [`MIN_STACK_SIZE`].
pub(crate) fn round_size(size: usize) -> usize {
    let page = page_size();
    size.max(MIN_STACK_SIZE).div_ceil(page) * page
}

/// Sets the stack size used by tasks and greenlets that do not ask for one.
pub fn set_default_stack_size(size: usize) {
    DEFAULT_SIZE.store(round_size(size), Ordering::Relaxed);
}

/// The stack size used by tasks and greenlets that do not ask for one.
pub fn default_stack_size() -> usize {
    DEFAULT_SIZE.load(Ordering::Relaxed)
}

/// A stack owned by one coroutine at a time.
///
/// # Invariant
/// `[bottom, bottom + size)` is a readable, writable private mapping owned by this value alone,
/// except its lowest page (the guard), which faults on access.
#[derive(Debug)]
pub(crate) struct PooledStack {
    bottom: usize,
    size: usize,
}

impl PooledStack {
    /// Takes a stack of at least `size` bytes from the pool, mapping a new chunk if needed.
    pub(crate) fn get(size: usize) -> io::Result<PooledStack> {
        let size = round_size(size);
        let local = POOL.with(|p| p.borrow_mut().take(size));
        match local {
            Some(s) => Ok(s),
            None => refill(size),
        }
    }

    /// Returns the stack to this thread's pool for reuse.
    pub(crate) fn recycle(self) {
        let _ = POOL.try_with(|p| p.borrow_mut().free.push(self));
    }

    /// Usable bytes (the guard page excluded).
    pub(crate) fn usable(&self) -> usize {
        self.size - page_size()
    }

    /// The guard page's address range.
    pub(crate) fn guard_range(&self) -> (usize, usize) {
        (self.bottom, self.bottom + page_size())
    }
}

// SAFETY: by the type's invariant the range is mapped, owned by this stack and its lowest page is
// a guard; base and limit are page-aligned and so meet STACK_ALIGNMENT.
unsafe impl Stack for PooledStack {
    fn base(&self) -> StackPointer {
        StackPointer::new(self.bottom + self.size).expect("stack top is not null")
    }

    fn limit(&self) -> StackPointer {
        StackPointer::new(self.bottom).expect("stack bottom is not null")
    }
}

struct LocalPool {
    free: Vec<PooledStack>,
}

impl LocalPool {
    fn take(&mut self, size: usize) -> Option<PooledStack> {
        match self.free.last() {
            Some(s) if s.size == size => self.free.pop(),
            _ => {
                let i = self.free.iter().rposition(|s| s.size == size)?;
                Some(self.free.swap_remove(i))
            }
        }
    }
}

impl Drop for LocalPool {
    fn drop(&mut self) {
        if let Ok(mut orphans) = ORPHANS.lock() {
            orphans.append(&mut self.free);
        }
    }
}

/// Finds stacks of `size` among orphans, or maps a new chunk; keeps one, pools the rest.
fn refill(size: usize) -> io::Result<PooledStack> {
    let mut fresh = adopt_orphans(size);
    if fresh.is_empty() {
        fresh = map_chunk(size)?;
    }
    let first = fresh.pop().expect("a refill yields at least one stack");
    POOL.with(|p| p.borrow_mut().free.append(&mut fresh));
    Ok(first)
}

fn adopt_orphans(size: usize) -> Vec<PooledStack> {
    let Ok(mut orphans) = ORPHANS.lock() else {
        return Vec::new();
    };
    let (mine, rest) = orphans
        .drain(..)
        .partition(|s: &PooledStack| s.size == size);
    *orphans = rest;
    mine
}

/// Maps one chunk of stacks of `size` bytes and installs their guard pages.
fn map_chunk(size: usize) -> io::Result<Vec<PooledStack>> {
    let count = (CHUNK_BYTES / size).clamp(1, CHUNK_STACKS);
    let bytes = count * size;
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    // SAFETY: a fresh anonymous mapping at an address of the kernel's choosing aliases nothing.
    let addr = unsafe { libc::mmap(std::ptr::null_mut(), bytes, prot, flags, -1, 0) };
    if addr == libc::MAP_FAILED {
        return Err(exhausted(
            "mmap of a stack chunk",
            io::Error::last_os_error(),
        ));
    }
    let base = addr as usize;
    let mut stacks = Vec::with_capacity(count);
    for i in 0..count {
        let bottom = base + i * size;
        if let Err(e) = install_guard(bottom) {
            // Stacks already guarded stay usable; the rest of the chunk is released.
            release(bottom, bytes - i * size);
            if stacks.is_empty() {
                return Err(e);
            }
            break;
        }
        stacks.push(PooledStack { bottom, size });
    }
    log::debug!(
        "mapped a chunk of {} stacks of {} bytes",
        stacks.len(),
        size
    );
    Ok(stacks)
}

fn release(addr: usize, len: usize) {
    // SAFETY: the range belongs to a chunk this module mapped and no stack was handed out of it.
    unsafe { libc::munmap(addr as *mut libc::c_void, len) };
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
            Err(e) => return Err(exhausted("madvise(MADV_GUARD_INSTALL)", e)),
        }
    }
    // SAFETY: as above; PROT_NONE only removes access to a page nothing references yet.
    syscall!(mprotect(ptr, page, libc::PROT_NONE))
        .map(drop)
        .map_err(|e| exhausted("mprotect of a guard page", e))
}

/// Wraps an allocation failure in an error that names the limit and how to raise it.
fn exhausted(what: &str, err: io::Error) -> io::Error {
    let maps = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        format!(
            "grove could not allocate a task stack: {what} failed: {err}. \
             The process may have hit vm.max_map_count (now {maps}; raise it with \
             `sysctl vm.max_map_count=N`), RLIMIT_AS, or memory; smaller stacks \
             (Builder::stack_size) or fewer live tasks also help"
        ),
    )
}
