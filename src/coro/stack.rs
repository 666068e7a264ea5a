//! Task stacks: carved from large `MAP_NORESERVE` chunks, guard-paged, pooled, reused, and given
//! back to the kernel when too many sit idle.
//!
//! A fresh `mmap` costs microseconds; popping a stack off the pool costs nanoseconds. Each stack
//! is `size` bytes whose lowest page is a guard page: `madvise(MADV_GUARD_INSTALL)` where the
//! kernel has it (Linux 6.13+; it does not split the mapping, so a million stacks fit under the
//! default `vm.max_map_count`), installed for a whole chunk with a few `process_madvise` calls
//! where the kernel allows it (6.15+), and `mprotect(PROT_NONE)` otherwise or under valgrind
//! (each guard then costs two mappings). Pages are reserved lazily: a parked task costs only the
//! pages it touched.
//!
//! Every thread keeps its own free lists, one per stack size (tasks never leave their thread).
//! A stack that comes back is *warm*: its touched pages stay resident, and the next `get` of its
//! size takes the warmest one (last in, first out), so a task that ends without parking hands
//! the next task the same stack, pages and cache lines. When the hub is about to block (idle,
//! [`trim_idle`]) a size class keeps [`LOW_WATER_BYTES`] of warm stacks; while the thread is
//! busy it may hold up to [`BURST_FACTOR`] × [`HIGH_WATER_BYTES`] before it trims down to
//! [`HIGH_WATER_BYTES`]. A trim is one batch: `madvise(MADV_DONTNEED)` on their usable pages (resident
//! memory drops at once; `MADV_FREE` would leave it counted until the kernel needs the memory),
//! and they move to the *clean* list, which costs address space and page tables but no RSS.
//! Past [`CLEAN_KEEP_CHUNKS`] chunks' worth of clean stacks, chunks whose stacks are all clean
//! are unmapped, which gives the page tables back too.
//!
//! When a thread exits, its stacks are trimmed and move to a global list other threads draw
//! from; a stack returned after its thread's pool is gone (a thread-local destructor dropping a
//! generator, say) goes there too. Every thread-local access here is `try_with`, so none of
//! this can panic during thread exit.

mod sys;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use corosensei::stack::{Stack, StackPointer};

/// Default stack size for tasks and greenlets: 128 KiB of address space (only touched pages
/// cost memory).
pub const DEFAULT_STACK_SIZE: usize = 128 * 1024;

/// Smallest stack grove hands out: 16 KiB of address space, its guard page included, so 12 KiB
/// usable with 4 KiB pages. Sizes are rounded up to whole pages and to at least this.
pub const MIN_STACK_SIZE: usize = 16 * 1024;

/// Chunks reserve at most this much address space at once.
const CHUNK_BYTES: usize = 32 * 1024 * 1024;

/// Upper bound on stacks per chunk.
const CHUNK_STACKS: usize = 256;

/// A size class keeps at most this many bytes (of address space) of warm idle stacks.
const HIGH_WATER_BYTES: usize = 16 * 1024 * 1024;

/// While the thread is busy, a size class may hold this many times [`HIGH_WATER_BYTES`] of warm
/// stacks before it trims; [`trim_idle`] brings it down to [`LOW_WATER_BYTES`].
const BURST_FACTOR: usize = 1024;

/// Trimming stops once this many bytes of warm idle stacks remain.
const LOW_WATER_BYTES: usize = 8 * 1024 * 1024;

/// A size class keeps this many chunks' worth of clean stacks mapped; whole chunks beyond that
/// are unmapped once the clean list reaches twice as many, which also frees their page tables.
const CLEAN_KEEP_CHUNKS: usize = 4;

/// Once this many bytes of stacks were trimmed since the heap was last trimmed, [`trim_idle`]
/// asks the allocator to give its free pages back too: a burst that big also freed many task
/// objects, which glibc otherwise keeps resident.
const HEAP_TRIM_AFTER: usize = 32 * 1024 * 1024;

static DEFAULT_SIZE: AtomicUsize = AtomicUsize::new(DEFAULT_STACK_SIZE);

/// Stacks of threads that have exited (and stacks returned after their thread's pool was
/// destroyed), all trimmed.
static ORPHANS: Mutex<Vec<Slot>> = Mutex::new(Vec::new());

thread_local! {
    static POOL: RefCell<LocalPool> = const {
        RefCell::new(LocalPool { classes: Vec::new(), trimmed: 0 })
    };
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

/// Rounds a requested stack size up to whole pages, at least [`MIN_STACK_SIZE`] (saturating:
/// an absurd size then fails to map instead of overflowing).
pub(crate) fn round_size(size: usize) -> usize {
    let page = page_size();
    let size = size.max(MIN_STACK_SIZE);
    size.checked_next_multiple_of(page)
        .unwrap_or(usize::MAX - (page - 1))
}

/// Sets the stack size used by tasks and greenlets that do not ask for one.
pub fn set_default_stack_size(size: usize) {
    DEFAULT_SIZE.store(round_size(size), Ordering::Relaxed);
}

/// The stack size used by tasks and greenlets that do not ask for one.
pub fn default_stack_size() -> usize {
    DEFAULT_SIZE.load(Ordering::Relaxed)
}

/// Gives memory back while the thread has nothing to do; the hub calls it before it blocks.
///
/// Trims each size class's warm stacks down to [`LOW_WATER_BYTES`], and returns the
/// allocator's free pages after a burst big enough to have trimmed [`HEAP_TRIM_AFTER`] bytes of
/// stacks since the last time. With nothing to trim it only compares a few counters, so
/// calling it on every idle wait is fine.
pub(crate) fn trim_idle() {
    let due = POOL
        .try_with(|p| match p.try_borrow_mut() {
            Ok(mut p) => {
                let mut trimmed = 0;
                for class in &mut p.classes {
                    if class.warm.len() > class.low {
                        trimmed += class.trim(class.low);
                    }
                }
                p.trimmed = p.trimmed.saturating_add(trimmed);
                if p.trimmed >= HEAP_TRIM_AFTER {
                    p.trimmed = 0;
                    true
                } else {
                    false
                }
            }
            _ => false,
        })
        .unwrap_or(false);
    if due {
        trim_heap();
    }
}

/// This thread's idle stacks: how many, and the bytes of address space of the warm ones (an
/// upper bound on the memory they hold; clean stacks hold none).
pub(crate) fn pool_stats() -> (usize, usize) {
    POOL.try_with(|p| match p.try_borrow() {
        Ok(p) => p.classes.iter().fold((0, 0), |(n, warm), c| {
            (
                n + c.warm.len() + c.clean.len(),
                warm + c.warm.len() * c.size,
            )
        }),
        Err(_) => (0, 0),
    })
    .unwrap_or((0, 0))
}

/// Returns the allocator's free pages to the kernel (glibc only; elsewhere nothing to do).
pub(crate) fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only releases free heap memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Where one stack lies: `size` bytes from `bottom`, the lowest page being its guard, carved
/// from the chunk mapped at `chunk`.
#[derive(Clone, Copy, Debug)]
struct Slot {
    bottom: usize,
    size: usize,
    chunk: usize,
}

impl Slot {
    /// The range above the guard page: what a task may have touched.
    fn usable_range(self) -> (usize, usize) {
        (self.bottom + page_size(), self.size - page_size())
    }
}

/// A stack owned by one coroutine at a time. Dropping it returns it to the pool.
///
/// # Invariant
/// `[bottom, bottom + size)` is a readable, writable private mapping owned by this value alone,
/// except its lowest page (the guard), which faults on access.
#[derive(Debug)]
pub(crate) struct PooledStack {
    slot: Slot,
}

impl PooledStack {
    /// Takes a stack of at least `size` bytes from the pool, mapping a new chunk if needed.
    pub(crate) fn get(size: usize) -> io::Result<PooledStack> {
        let size = round_size(size);
        let pooled = POOL.try_with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.take(size)));
        let slot = match pooled {
            Ok(Some(slot)) => slot,
            _ => refill(size)?,
        };
        Ok(PooledStack { slot })
    }

    /// Returns the stack to this thread's pool for reuse (what dropping it does too).
    pub(crate) fn recycle(self) {
        drop(self);
    }

    /// Usable bytes (the guard page excluded).
    pub(crate) fn usable(&self) -> usize {
        self.slot.size - page_size()
    }

    /// The guard page's address range.
    pub(crate) fn guard_range(&self) -> (usize, usize) {
        (self.slot.bottom, self.slot.bottom + page_size())
    }
}

impl Drop for PooledStack {
    fn drop(&mut self) {
        let mut slot = Some(self.slot);
        // During thread exit the pool may already be gone: then the stack is an orphan.
        let _ = POOL.try_with(|p| {
            if let Ok(mut p) = p.try_borrow_mut() {
                p.put(slot.take().expect("the slot is put once"));
            }
        });
        if let Some(slot) = slot {
            release(&[slot]);
            orphan(vec![slot]);
        }
    }
}

// SAFETY: by the type's invariant the range is mapped, owned by this stack and its lowest page is
// a guard; base and limit are page-aligned and so meet STACK_ALIGNMENT.
unsafe impl Stack for PooledStack {
    #[inline]
    fn base(&self) -> StackPointer {
        StackPointer::new(self.slot.bottom + self.slot.size).expect("stack top is not null")
    }

    #[inline]
    fn limit(&self) -> StackPointer {
        StackPointer::new(self.slot.bottom).expect("stack bottom is not null")
    }
}

/// A thread's idle stacks, by size.
struct LocalPool {
    classes: Vec<SizeClass>,
    /// Bytes of stacks trimmed since [`trim_idle`] last trimmed the heap.
    trimmed: usize,
}

impl LocalPool {
    fn take(&mut self, size: usize) -> Option<Slot> {
        let class = self.classes.iter_mut().find(|c| c.size == size)?;
        class.warm.pop_back().or_else(|| class.clean.pop())
    }

    fn put(&mut self, slot: Slot) {
        let trimmed = self.class(slot.size).put(slot);
        self.trimmed = self.trimmed.saturating_add(trimmed);
    }

    fn class(&mut self, size: usize) -> &mut SizeClass {
        let i = match self.classes.iter().position(|c| c.size == size) {
            Some(i) => i,
            None => {
                self.classes.push(SizeClass::new(size));
                self.classes.len() - 1
            }
        };
        &mut self.classes[i]
    }
}

impl Drop for LocalPool {
    fn drop(&mut self) {
        for class in &mut self.classes {
            class.trim(0);
            orphan(std::mem::take(&mut class.clean));
        }
    }
}

/// Idle stacks of one size.
struct SizeClass {
    size: usize,
    /// Most warm stacks kept; one more triggers a trim.
    high: usize,
    /// Warm stacks left after a trim.
    low: usize,
    /// Stacks used since their last trim, coldest first: `take` pops the back, trims drain
    /// the front.
    warm: VecDeque<Slot>,
    /// Stacks with no resident pages (fresh or trimmed).
    clean: Vec<Slot>,
    /// Clean stacks past which [`SizeClass::unmap_spare_chunks`] runs next.
    unmap_at: usize,
}

impl SizeClass {
    fn new(size: usize) -> SizeClass {
        let high = (HIGH_WATER_BYTES / size).max(1);
        SizeClass {
            size,
            high,
            low: (LOW_WATER_BYTES / size).min(high - 1),
            warm: VecDeque::new(),
            clean: Vec::new(),
            unmap_at: 2 * CLEAN_KEEP_CHUNKS * chunk_stacks(size),
        }
    }

    /// Pools a stack that was used; returns how many bytes of stacks that trimmed.
    ///
    /// While the thread is busy, stacks are only trimmed past [`BURST_FACTOR`] times the high
    /// water mark (and then down to it): freeing pages costs about a microsecond a stack, which
    /// a burst of short tasks would otherwise pay on every exit (draining 100,000 parked
    /// waiters took 110 ms with trimming at 64× and 40–60 ms without). The rest waits for
    /// [`trim_idle`]: a thread keeps the stacks of its peak while it stays busy.
    #[inline]
    fn put(&mut self, slot: Slot) -> usize {
        self.warm.push_back(slot);
        if self.warm.len() > self.high.saturating_mul(BURST_FACTOR) {
            return self.trim(self.high);
        }
        0
    }

    /// Releases the pages of the coldest warm stacks until `keep` remain; returns the bytes
    /// (of address space) trimmed.
    fn trim(&mut self, keep: usize) -> usize {
        let n = self.warm.len().saturating_sub(keep);
        if n == 0 {
            return 0;
        }
        let cold: Vec<Slot> = self.warm.drain(..n).collect();
        release(&cold);
        self.clean.extend(cold);
        if self.warm.capacity() > 4 * self.high {
            self.warm.shrink_to(2 * self.high);
        }
        if self.clean.len() >= self.unmap_at {
            self.unmap_spare_chunks();
        }
        n * self.size
    }

    /// Unmaps chunks whose stacks are all clean until about [`CLEAN_KEEP_CHUNKS`] chunks' worth
    /// of clean stacks remain. The next attempt waits until the clean list doubles, so live
    /// stacks scattered over every chunk cost a sort now and then, not one per trim.
    fn unmap_spare_chunks(&mut self) {
        let per_chunk = chunk_stacks(self.size);
        let mut excess = self
            .clean
            .len()
            .saturating_sub(CLEAN_KEEP_CHUNKS * per_chunk);
        if sys::under_valgrind() {
            // Stacks registered with valgrind stay mapped (and registered) for good.
            self.unmap_at = usize::MAX;
            return;
        }
        self.clean.sort_unstable_by_key(|s| s.bottom);
        let mut kept = Vec::with_capacity(self.clean.len());
        for run in self.clean.chunk_by(|a, b| a.chunk == b.chunk) {
            if excess > 0 && run.len() == per_chunk {
                sys::unmap(run[0].chunk, per_chunk * self.size);
                excess = excess.saturating_sub(per_chunk);
            } else {
                kept.extend_from_slice(run);
            }
        }
        self.clean = kept;
        self.unmap_at = (2 * self.clean.len()).max(2 * CLEAN_KEEP_CHUNKS * per_chunk);
    }
}

/// Gives the usable pages of `slots` back to the kernel.
fn release(slots: &[Slot]) {
    let ranges: Vec<(usize, usize)> = slots.iter().map(|s| s.usable_range()).collect();
    sys::release_pages(&ranges);
}

/// Puts clean stacks on the global list.
fn orphan(slots: Vec<Slot>) {
    if slots.is_empty() {
        return;
    }
    ORPHANS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .extend(slots);
}

/// Finds stacks of `size` among orphans, or maps a new chunk; keeps one, pools the rest.
fn refill(size: usize) -> io::Result<Slot> {
    let mut fresh = adopt_orphans(size);
    if fresh.is_empty() {
        fresh = map_chunk(size)?;
    }
    let first = fresh.pop().expect("a refill yields at least one stack");
    let mut rest = Some(fresh);
    let _ = POOL.try_with(|p| {
        if let Ok(mut p) = p.try_borrow_mut() {
            let rest = rest.take().expect("the stacks are pooled once");
            p.class(size).clean.extend(rest);
        }
    });
    if let Some(rest) = rest {
        orphan(rest);
    }
    Ok(first)
}

fn adopt_orphans(size: usize) -> Vec<Slot> {
    let mut orphans = ORPHANS.lock().unwrap_or_else(PoisonError::into_inner);
    if orphans.is_empty() {
        return Vec::new();
    }
    let (mine, rest) = orphans.drain(..).partition(|s: &Slot| s.size == size);
    *orphans = rest;
    mine
}

/// How many stacks of `size` bytes a chunk holds.
fn chunk_stacks(size: usize) -> usize {
    (CHUNK_BYTES / size).clamp(1, CHUNK_STACKS)
}

/// Maps one chunk of stacks of `size` bytes and installs their guard pages. A chunk whose
/// guards could not all be installed is cut short (and so is never unmapped whole).
fn map_chunk(size: usize) -> io::Result<Vec<Slot>> {
    let count = chunk_stacks(size);
    let bytes = count
        .checked_mul(size)
        .ok_or_else(|| io::Error::new(io::ErrorKind::OutOfMemory, "stack size too large"))?;
    let base = sys::map(bytes).map_err(|e| exhausted("mmap of a stack chunk", e))?;
    let guarded = match sys::install_guards(base, size, count) {
        Ok(n) => n,
        Err(e) => {
            sys::unmap(base, bytes);
            return Err(e);
        }
    };
    if guarded < count {
        // Stacks already guarded stay usable; the rest of the chunk is released.
        sys::unmap(base + guarded * size, bytes - guarded * size);
    }
    let slots: Vec<Slot> = (0..guarded)
        .map(|i| Slot {
            bottom: base + i * size,
            size,
            chunk: base,
        })
        .collect();
    for s in &slots {
        sys::register_stack(s.bottom, s.bottom + s.size);
    }
    log::debug!("mapped a chunk of {guarded} stacks of {size} bytes");
    Ok(slots)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_stack_is_min_stack_size_with_its_guard_page() {
        let s = PooledStack::get(1).unwrap();
        assert_eq!(s.usable(), MIN_STACK_SIZE - page_size());
        let (lo, hi) = s.guard_range();
        assert_eq!(hi - lo, page_size());
    }

    #[test]
    fn a_returned_stack_is_the_next_one_handed_out() {
        let size = 40 * 1024;
        let a = PooledStack::get(size).unwrap();
        let bottom = a.slot.bottom;
        a.recycle();
        let b = PooledStack::get(size).unwrap();
        assert_eq!(b.slot.bottom, bottom);
    }

    #[test]
    fn warm_idle_stacks_are_capped_while_busy_and_trimmed_when_idle() {
        let size = 44 * 1024;
        let stacks: Vec<_> = (0..2000).map(|_| PooledStack::get(size).unwrap()).collect();
        drop(stacks);
        POOL.with(|p| {
            let mut p = p.borrow_mut();
            let class = p.class(size);
            assert!(class.warm.len() <= class.high * BURST_FACTOR);
        });
        trim_idle();
        POOL.with(|p| {
            let mut p = p.borrow_mut();
            let class = p.class(size);
            assert!(class.warm.len() <= class.low, "{} warm", class.warm.len());
            assert!(class.warm.len() * size <= LOW_WATER_BYTES);
            assert!(class.clean.len() >= 2000 - class.low);
        });
    }

    #[test]
    fn a_burst_past_the_busy_cap_is_trimmed_at_once() {
        let size = 16 * 1024 * 1024;
        let high = (HIGH_WATER_BYTES / size).max(1);
        let n = high * BURST_FACTOR + 8;
        let stacks: Vec<_> = (0..n).map(|_| PooledStack::get(size).unwrap()).collect();
        drop(stacks);
        POOL.with(|p| {
            let mut p = p.borrow_mut();
            let class = p.class(size);
            assert!(
                class.warm.len() <= high * BURST_FACTOR,
                "{} warm",
                class.warm.len()
            );
        });
    }

    #[test]
    fn chunks_whose_stacks_are_all_clean_are_unmapped() {
        let size = 56 * 1024;
        let per_chunk = chunk_stacks(size);
        let stacks: Vec<_> = (0..12 * per_chunk)
            .map(|_| PooledStack::get(size).unwrap())
            .collect();
        let mut chunks: Vec<usize> = stacks.iter().map(|s| s.slot.chunk).collect();
        chunks.dedup();
        assert_eq!(chunks.len(), 12);
        drop(stacks);
        trim_idle();
        let kept: Vec<usize> = POOL.with(|p| {
            let mut p = p.borrow_mut();
            let class = p.class(size);
            assert!(class.clean.len() < 2 * CLEAN_KEEP_CHUNKS * per_chunk);
            class
                .clean
                .iter()
                .chain(&class.warm)
                .map(|s| s.chunk)
                .collect()
        });
        // The pool no longer knows the unmapped chunks. (Checking the addresses with `mincore`
        // alone is racy here: another test's thread may map new memory at a freed address.)
        let forgotten: Vec<usize> = chunks
            .iter()
            .copied()
            .filter(|c| !kept.contains(c))
            .collect();
        assert!(forgotten.len() >= 4, "{} chunks unmapped", forgotten.len());
        // And at least one of them really is unmapped now.
        assert!(forgotten.iter().any(|&c| !is_mapped(c)));
    }

    fn is_mapped(addr: usize) -> bool {
        let mut vec = 0u8;
        // SAFETY: mincore writes one byte (one page) into `vec`; on an unmapped page it fails
        // with ENOMEM and writes nothing.
        unsafe { libc::mincore(addr as *mut libc::c_void, page_size(), &mut vec) == 0 }
    }

    #[test]
    fn trim_idle_trims_the_heap_once_after_a_big_trim() {
        let size = 48 * 1024;
        let stacks: Vec<_> = (0..2000).map(|_| PooledStack::get(size).unwrap()).collect();
        drop(stacks);
        let trimmed = || POOL.with(|p| p.borrow().trimmed);
        // This idle trim frees ~90 MiB of stacks, past HEAP_TRIM_AFTER: it trims the heap and
        // resets the counter.
        trim_idle();
        assert_eq!(trimmed(), 0);
        POOL.with(|p| assert!(p.borrow_mut().class(size).clean.len() >= 1000));
        trim_idle();
        assert_eq!(trimmed(), 0);
    }

    #[test]
    fn a_stack_returned_after_its_threads_pool_is_gone_becomes_an_orphan() {
        // A size no other test uses, so no other thread adopts the orphan before we look.
        const SIZE: usize = 52 * 1024;
        struct Late(Option<PooledStack>);
        impl Drop for Late {
            fn drop(&mut self) {
                self.0.take().unwrap().recycle();
            }
        }
        thread_local! {
            static LATE: RefCell<Late> = const { RefCell::new(Late(None)) };
        }
        let bottom = std::thread::spawn(|| {
            // LATE registers its destructor before POOL does, so it runs after POOL's.
            LATE.with(|_| ());
            let s = PooledStack::get(SIZE).unwrap();
            let bottom = s.slot.bottom;
            LATE.with(|l| l.borrow_mut().0 = Some(s));
            bottom
        })
        .join()
        .unwrap();
        let orphans = ORPHANS.lock().unwrap();
        assert!(orphans.iter().any(|s| s.bottom == bottom && s.size == SIZE));
    }
}
