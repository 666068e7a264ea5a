//! The blocking watchdog (gevent's `max_blocking_time`): a monitor thread, started only when
//! asked, samples every watched hub's heartbeat (its switch counter, a thread-local the hub
//! already keeps) and notices a hub that has not switched for longer than the threshold while
//! it is not idle in `epoll_wait` and has tasks. It then sends the hub's thread `SIGURG`, whose
//! handler — on the stuck thread, async-signal-safely — writes which task is running, where it
//! was spawned and the interrupted instruction's address to stderr with `write(2)`.
//!
//! Cost to the hub: nothing per switch (the counter is there anyway; it is an atomic only so
//! the monitor may read it), two stores around each blocking `epoll_wait`, one per spawn and
//! death, and one relaxed load per loop iteration to notice that the watchdog was turned on.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where a hub's heartbeat lives: its thread-locals.
pub(crate) struct Beat {
    pub(crate) switches: *const AtomicU64,
    pub(crate) idle: *const AtomicBool,
    pub(crate) live: *const AtomicUsize,
}

/// A watched hub.
///
/// # Invariant
/// `beat`'s pointers are to thread-locals of `thread`, which has not finished tearing its hub
/// down: the hub removes its entry (under `HUBS`'s lock) before its thread-locals can go, and
/// the monitor only reads them and signals `thread` while holding that lock.
struct Watched {
    beat: Beat,
    thread: libc::pthread_t,
    name: String,
    last: u64,
    since: Instant,
    /// The stall in progress was reported.
    reported: bool,
    last_report: Option<Instant>,
    /// Stalls not reported in full since the last report (rate limit).
    unreported: u64,
}

// SAFETY: the raw pointers are only dereferenced by the monitor while the invariant holds;
// `pthread_t` is an integer on Linux.
unsafe impl Send for Watched {}

static HUBS: Mutex<Vec<Watched>> = Mutex::new(Vec::new());
static GENERATION: AtomicU64 = AtomicU64::new(0);
static ENABLED: AtomicBool = AtomicBool::new(false);
static THRESHOLD_MS: AtomicU64 = AtomicU64::new(100);
static MONITOR: Mutex<bool> = Mutex::new(false);
/// How long the stall being reported has lasted (for the handler).
static STALL_MS: AtomicU64 = AtomicU64::new(0);
/// Where the object holding grove's code is loaded (so a report can give `exe+0x…`, what
/// `addr2line -e <binary>` takes), 0 if unknown.
static CODE_BASE: AtomicUsize = AtomicUsize::new(0);

/// Bumped whenever the watchdog is turned on or off (hubs compare it once per loop iteration).
#[inline(always)]
pub(crate) fn generation() -> u64 {
    GENERATION.load(Relaxed)
}

/// Whether the watchdog is on.
pub(crate) fn enabled() -> bool {
    ENABLED.load(Relaxed)
}

/// Turns the watchdog on with `threshold`, or off (`None`).
pub(crate) fn configure(threshold: Option<Duration>) -> io::Result<()> {
    if let Some(t) = threshold {
        THRESHOLD_MS.store(t.as_millis().clamp(1, u64::MAX.into()) as u64, Relaxed);
        install_handler()?;
        start_monitor()?;
    }
    ENABLED.store(threshold.is_some(), Relaxed);
    if threshold.is_none() {
        HUBS.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
    GENERATION.fetch_add(1, Relaxed);
    Ok(())
}

/// The calling hub joins the watch (once).
pub(crate) fn watch(beat: Beat) {
    // SAFETY: pthread_self has no preconditions.
    let thread = unsafe { libc::pthread_self() };
    let mut hubs = HUBS.lock().unwrap_or_else(|e| e.into_inner());
    if hubs.iter().any(|w| w.thread == thread) {
        return;
    }
    let name = std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .to_string();
    hubs.push(Watched {
        beat,
        thread,
        name,
        last: u64::MAX,
        since: Instant::now(),
        reported: false,
        last_report: None,
        unreported: 0,
    });
}

/// The calling hub leaves the watch (its thread is exiting).
pub(crate) fn unwatch() {
    // SAFETY: pthread_self has no preconditions.
    let thread = unsafe { libc::pthread_self() };
    if let Ok(mut hubs) = HUBS.lock() {
        hubs.retain(|w| w.thread != thread);
    }
}

fn start_monitor() -> io::Result<()> {
    let mut started = MONITOR.lock().unwrap_or_else(|e| e.into_inner());
    if !*started {
        std::thread::Builder::new()
            .name("grove-watchdog".into())
            .spawn(monitor)?;
        *started = true;
    }
    Ok(())
}

fn monitor() {
    loop {
        let threshold = Duration::from_millis(THRESHOLD_MS.load(Relaxed));
        std::thread::sleep((threshold / 4).max(Duration::from_millis(2)));
        if !enabled() {
            continue;
        }
        let now = Instant::now();
        let mut hubs = HUBS.lock().unwrap_or_else(|e| e.into_inner());
        for w in hubs.iter_mut() {
            check(w, now, threshold);
        }
    }
}

/// One look at one hub (the caller holds `HUBS`'s lock, which keeps `w`'s invariant).
fn check(w: &mut Watched, now: Instant, threshold: Duration) {
    // SAFETY: `Watched`'s invariant: the thread-locals are alive while the entry is listed.
    let (switches, idle, live) = unsafe {
        (
            (*w.beat.switches).load(Relaxed) >> 1,
            (*w.beat.idle).load(Relaxed),
            (*w.beat.live).load(Relaxed),
        )
    };
    if w.unreported > 0
        && w.last_report
            .is_some_and(|t| now - t >= Duration::from_secs(1))
    {
        eprintln!(
            "grove watchdog: {} more stalls of thread '{}' since the last full report",
            w.unreported, w.name
        );
        w.unreported = 0;
    }
    if switches != w.last || idle || live == 0 {
        if w.reported && w.last_report.is_some_and(|t| t >= w.since) {
            eprintln!(
                "grove watchdog: the hub of thread '{}' came back after {} ms",
                w.name,
                (now - w.since).as_millis()
            );
        }
        w.last = switches;
        w.since = now;
        w.reported = false;
        return;
    }
    let stalled = now - w.since;
    if w.reported || stalled < threshold {
        return;
    }
    w.reported = true;
    // Rate limit: one full report per second per hub; others are counted.
    if w.last_report
        .is_some_and(|t| now - t < Duration::from_secs(1))
    {
        w.unreported += 1;
        return;
    }
    w.last_report = Some(now);
    STALL_MS.store(stalled.as_millis() as u64, Relaxed);
    // SAFETY: `Watched`'s invariant: the thread is alive while its entry is listed.
    unsafe { libc::pthread_kill(w.thread, libc::SIGURG) };
}

fn install_handler() -> io::Result<()> {
    static DONE: Mutex<bool> = Mutex::new(false);
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return Ok(());
    }
    // SAFETY: dladdr reads the loader's tables for an address of our own code and fills the
    // zeroed `Dl_info` we pass; it is called here, outside any signal handler.
    unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        if libc::dladdr(on_sigurg as *const libc::c_void, &mut info) != 0 {
            CODE_BASE.store(info.dli_fbase as usize, Relaxed);
        }
    }
    // SAFETY: a `sigaction` whose handler only does async-signal-safe work (see `on_sigurg`).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigurg
            as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)
            as usize;
        sa.sa_flags = libc::SA_RESTART | libc::SA_SIGINFO;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(libc::SIGURG, &sa, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    *done = true;
    Ok(())
}

/// A fixed buffer the handler formats into (no allocation in a signal handler).
struct Buf {
    bytes: [u8; 1024],
    len: usize,
}

impl Buf {
    fn push(&mut self, s: &[u8]) {
        let n = s.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
    }

    fn num(&mut self, mut n: u64, base: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b"0123456789abcdef"[(n % base) as usize];
            n /= base;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }
}

/// On the stuck hub's thread: name what runs, where it was spawned and where it is.
extern "C" fn on_sigurg(_: libc::c_int, _: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: errno is thread-local; `__errno_location` is async-signal-safe.
    let errno = unsafe { *libc::__errno_location() };
    let mut b = Buf {
        bytes: [0; 1024],
        len: 0,
    };
    b.push(b"grove watchdog: the hub has not switched for ");
    b.num(STALL_MS.load(Relaxed), 10);
    b.push(b" ms: ");
    match crate::coro::fiber::current_for_signal() {
        Some(f) if f.kind != "thread" => {
            b.push(f.kind.as_bytes());
            b.push(b" #");
            b.num(f.id, 10);
            if let Some(n) = f.name {
                b.push(b" '");
                b.push(n.as_bytes());
                b.push(b"'");
            }
            b.push(b" (spawned at ");
            b.push(f.spawned_at.file().as_bytes());
            b.push(b":");
            b.num(u64::from(f.spawned_at.line()), 10);
            b.push(b":");
            b.num(u64::from(f.spawned_at.column()), 10);
            b.push(b") is running without yielding");
        }
        _ => b.push(b"main (the thread's own code, outside any task) is running without yielding"),
    }
    if let Some(pc) = interrupted_pc(ctx) {
        b.push(b"; interrupted at pc 0x");
        b.num(pc as u64, 16);
        let base = CODE_BASE.load(Relaxed);
        if base != 0 && pc >= base {
            b.push(b" (binary+0x");
            b.num((pc - base) as u64, 16);
            b.push(b" for addr2line)");
        }
    }
    b.push(b"\n");
    // SAFETY: write(2) is async-signal-safe; the buffer is live and `len` bytes long.
    unsafe {
        libc::write(2, b.bytes.as_ptr().cast(), b.len);
        *libc::__errno_location() = errno;
    }
}

/// The interrupted instruction's address, from the signal's context.
fn interrupted_pc(ctx: *mut libc::c_void) -> Option<usize> {
    if ctx.is_null() {
        return None;
    }
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        // SAFETY: for an SA_SIGINFO handler the kernel passes a valid `ucontext_t`.
        let uc = unsafe { &*(ctx as *const libc::ucontext_t) };
        Some(uc.uc_mcontext.gregs[libc::REG_RIP as usize] as usize)
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    None
}
