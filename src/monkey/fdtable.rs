//! What the hooks know about each fd, shared by every thread: lock-free and allocation-free
//! (chunks come from `mmap`, installed with a compare-and-swap), so a hook may consult it from a
//! signal handler.
//!
//! An entry holds the fd's state bits and a generation in one atomic word, and the user's
//! socket timeouts. The generation changes whenever the fd number is closed or replaced, so a
//! hub's registration of an older file under the same number is recognised as stale.

use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering::Relaxed};

use libc::c_int;

/// The entry describes the fd (it was classified, or the hooks created it).
pub(super) const KNOWN: u32 = 1;
/// A socket, pipe or FIFO: made non-blocking in the kernel, and cooperative.
pub(super) const COOP: u32 = 2;
/// The user asked for non-blocking mode (`O_NONBLOCK`, `SOCK_NONBLOCK`, `FIONBIO`): calls
/// return `EAGAIN` as libc would instead of parking.
pub(super) const USER_NB: u32 = 4;
/// A socket (connect, accept and the socket timeouts apply).
pub(super) const SOCKET: u32 = 8;
/// A byte stream (a stream socket or a pipe): a read that returns less than asked for emptied
/// the receive queue, so the next read waits for readiness instead of trying first.
pub(super) const STREAM: u32 = 16;
const STATE_BITS: u32 = 0xffff;
const GEN_ONE: u32 = 1 << 16;

const CHUNK: usize = 1024;
const CHUNKS: usize = 1024;
/// Fds from this number on are not tracked: their hooks behave like plain libc.
pub(super) const MAX_FD: usize = CHUNK * CHUNKS;

/// One fd's entry.
pub(super) struct Entry {
    word: AtomicU32,
    /// SO_RCVTIMEO in nanoseconds (0: none).
    rcv: AtomicU64,
    /// SO_SNDTIMEO in nanoseconds (0: none).
    snd: AtomicU64,
}

static TABLE: [AtomicPtr<Entry>; CHUNKS] = [const { AtomicPtr::new(std::ptr::null_mut()) }; CHUNKS];

/// The entry for `fd`, created on first use; `None` for fds out of range (or if memory for a
/// new chunk cannot be had).
#[inline]
pub(super) fn entry(fd: c_int) -> Option<&'static Entry> {
    let fd = usize::try_from(fd).ok().filter(|&f| f < MAX_FD)?;
    let chunk = TABLE[fd / CHUNK].load(std::sync::atomic::Ordering::Acquire);
    let chunk = if chunk.is_null() {
        new_chunk(fd / CHUNK)?
    } else {
        chunk
    };
    // SAFETY: a non-null chunk pointer refers to CHUNK entries that are never freed (see
    // `new_chunk`); `fd % CHUNK` is in range.
    Some(unsafe { &*chunk.add(fd % CHUNK) })
}

/// The entry for `fd` if its chunk exists (never allocates).
#[inline]
pub(super) fn existing(fd: c_int) -> Option<&'static Entry> {
    let fd = usize::try_from(fd).ok().filter(|&f| f < MAX_FD)?;
    let chunk = TABLE[fd / CHUNK].load(std::sync::atomic::Ordering::Acquire);
    if chunk.is_null() {
        return None;
    }
    // SAFETY: as in `entry`.
    Some(unsafe { &*chunk.add(fd % CHUNK) })
}

#[cold]
fn new_chunk(i: usize) -> Option<*mut Entry> {
    let bytes = CHUNK * std::mem::size_of::<Entry>();
    // SAFETY: an anonymous private mapping: no pointer argument, the kernel picks the address.
    // Zeroed memory is a valid `Entry` array (atomics of zero). mmap is async-signal-safe.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    let fresh = p.cast::<Entry>();
    match TABLE[i].compare_exchange(
        std::ptr::null_mut(),
        fresh,
        std::sync::atomic::Ordering::AcqRel,
        std::sync::atomic::Ordering::Acquire,
    ) {
        Ok(_) => Some(fresh),
        Err(winner) => {
            // SAFETY: `p` is the mapping made above, never published.
            unsafe { libc::munmap(p, bytes) };
            Some(winner)
        }
    }
}

impl Entry {
    /// The state bits (`KNOWN`, `COOP`, ...).
    #[inline]
    pub(super) fn state(&self) -> u32 {
        self.word.load(Relaxed) & STATE_BITS
    }

    /// The generation: changes each time the fd number is closed or replaced.
    #[inline]
    pub(super) fn generation(&self) -> u32 {
        self.word.load(Relaxed) >> 16
    }

    /// Describes a new file under this number (after socket, accept, dup, classification).
    pub(super) fn set(&self, state: u32, rcv: u64, snd: u64) {
        self.rcv.store(rcv, Relaxed);
        self.snd.store(snd, Relaxed);
        let gen = self.word.load(Relaxed) & !STATE_BITS;
        self.word.store(gen | state, Relaxed);
    }

    /// The fd number was closed (or replaced): forget it, and move to a new generation.
    pub(super) fn closed(&self) {
        let w = self.word.load(Relaxed);
        self.word
            .store((w & !STATE_BITS).wrapping_add(GEN_ONE), Relaxed);
        self.rcv.store(0, Relaxed);
        self.snd.store(0, Relaxed);
    }

    /// Sets or clears the user's non-blocking mode.
    pub(super) fn set_user_nonblocking(&self, on: bool) {
        if on {
            self.word.fetch_or(USER_NB, Relaxed);
        } else {
            self.word.fetch_and(!USER_NB, Relaxed);
        }
    }

    /// The receive (`read`) or send (`write`) timeout in nanoseconds, 0 for none.
    pub(super) fn timeout(&self, write: bool) -> u64 {
        if write {
            self.snd.load(Relaxed)
        } else {
            self.rcv.load(Relaxed)
        }
    }

    /// Records a socket timeout the user set (0: none).
    pub(super) fn set_timeout(&self, write: bool, nanos: u64) {
        if write {
            self.snd.store(nanos, Relaxed)
        } else {
            self.rcv.store(nanos, Relaxed)
        }
    }

    /// Both timeouts (to copy them to an accepted or duplicated fd).
    pub(super) fn timeouts(&self) -> (u64, u64) {
        (self.rcv.load(Relaxed), self.snd.load(Relaxed))
    }
}
