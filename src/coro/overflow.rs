//! Reports a task's, greenlet's or generator's stack overflow before the process dies.
//!
//! Every pooled stack has a guard page below it. Running past the stack faults on that page; the
//! `SIGSEGV`/`SIGBUS` handler installed here (on an alternate signal stack, since the faulting
//! stack is exhausted) checks whether the fault address lies in the guard page of the fiber
//! running on this thread and, if so, writes which task overflowed and how big its stack was,
//! then aborts. Any other fault is passed on to the handler that was installed before ours
//! (Rust's own, which reports overflows of thread stacks), or to the default action.

use std::cell::Cell;
use std::sync::Once;
use std::sync::OnceLock;

thread_local! {
    static ALT_STACK: Cell<Option<AltStack>> = const { Cell::new(None) };
    /// The innermost generator running on this thread: its guard page and usable stack size
    /// (all zero when none runs). Generators run inside their resumer's fiber, so the fault
    /// handler checks this first.
    static GENERATOR: Cell<(usize, usize, usize)> = const { Cell::new((0, 0, 0)) };
}

/// Records that a generator with this guard page and stack size runs now; returns what to
/// restore when it stops ([`leave_generator`]).
pub(crate) fn enter_generator(guard: (usize, usize), size: usize) -> (usize, usize, usize) {
    GENERATOR.replace((guard.0, guard.1, size))
}

/// Restores the generator record saved by [`enter_generator`].
pub(crate) fn leave_generator(saved: (usize, usize, usize)) {
    GENERATOR.set(saved);
}

static INSTALL: Once = Once::new();
static OLD_SEGV: OnceLock<SavedAction> = OnceLock::new();
static OLD_BUS: OnceLock<SavedAction> = OnceLock::new();

/// A previously installed `sigaction`, kept to chain faults that are not ours.
struct SavedAction(libc::sigaction);

// SAFETY: a sigaction is plain data (a handler address, a mask and flags); sharing it is harmless.
unsafe impl Sync for SavedAction {}
// SAFETY: as above.
unsafe impl Send for SavedAction {}

/// Installs the fault handler (once per process) and an alternate signal stack (once per thread).
pub(crate) fn install() {
    INSTALL.call_once(|| {
        install_handler(libc::SIGSEGV, &OLD_SEGV);
        install_handler(libc::SIGBUS, &OLD_BUS);
    });
    ensure_alt_stack();
}

fn install_handler(sig: libc::c_int, old: &OnceLock<SavedAction>) {
    // SAFETY: sigaction is plain data; all-zero is a valid empty value for it.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_fault as *const () as usize;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    // SAFETY: as above.
    let mut prev: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; the handler only does async-signal-safe work.
    if unsafe { libc::sigaction(sig, &action, &mut prev) } == 0 {
        let _ = old.set(SavedAction(prev));
    }
}

/// A signal stack this module mapped for a thread that had none; unmapped at thread exit.
struct AltStack {
    addr: usize,
    len: usize,
}

impl Drop for AltStack {
    fn drop(&mut self) {
        // SAFETY: an all-zero stack_t with SS_DISABLE only switches the alternate stack off.
        let mut off: libc::stack_t = unsafe { std::mem::zeroed() };
        off.ss_flags = libc::SS_DISABLE;
        // SAFETY: `off` is valid; the mapping is ours and no longer the signal stack once disabled.
        unsafe {
            libc::sigaltstack(&off, std::ptr::null_mut());
            libc::munmap(self.addr as *mut libc::c_void, self.len);
        }
    }
}

fn ensure_alt_stack() {
    // SAFETY: all-zero is a valid stack_t to receive the current setting.
    let mut cur: libc::stack_t = unsafe { std::mem::zeroed() };
    // SAFETY: a null new-stack pointer only queries.
    if unsafe { libc::sigaltstack(std::ptr::null(), &mut cur) } != 0 {
        return;
    }
    if cur.ss_flags & libc::SS_DISABLE == 0 {
        return;
    }
    let len = (64 * 1024usize).max(libc::SIGSTKSZ);
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    // SAFETY: a fresh anonymous mapping aliases nothing.
    let addr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, -1, 0) };
    if addr == libc::MAP_FAILED {
        return;
    }
    let new = libc::stack_t {
        ss_sp: addr,
        ss_flags: 0,
        ss_size: len,
    };
    // SAFETY: `new` describes the mapping just made, which lives until AltStack's Drop.
    if unsafe { libc::sigaltstack(&new, std::ptr::null_mut()) } == 0 {
        ALT_STACK.set(Some(AltStack {
            addr: addr as usize,
            len,
        }));
    }
}

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t for an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    if let Ok((lo, hi, size)) = GENERATOR.try_with(Cell::get) {
        if lo <= addr && addr < hi {
            report(b"generator", size, None, None);
            // SAFETY: abort is async-signal-safe.
            unsafe { libc::abort() };
        }
    }
    if let Some(f) = super::fiber::current_for_signal() {
        if f.guard.0 <= addr && addr < f.guard.1 {
            report(f.kind.as_bytes(), f.stack_size, f.name, Some(f.id));
            // SAFETY: abort is async-signal-safe.
            unsafe { libc::abort() };
        }
    }
    chain(sig, info, ctx);
}

/// Writes the overflow message to stderr without allocating: "grove: task 'name' has
/// overflowed its stack (stack size N bytes)" and how to get a bigger one.
fn report(kind: &[u8], stack_size: usize, name: Option<&str>, id: Option<u64>) {
    let mut id_digits = [0u8; 20];
    let (open, name, close): (&[u8], &[u8], &[u8]) = match (name, id) {
        (Some(n), _) => (b" '", n.as_bytes(), b"'"),
        (None, Some(id)) => (b" #", format_usize(id as usize, &mut id_digits), b""),
        (None, None) => (b"", b"", b""),
    };
    let mut digits = [0u8; 20];
    let size = format_usize(stack_size, &mut digits);
    let hint: &[u8] = match kind {
        b"generator" => b"Generator::with_stack_size",
        b"greenlet" => b"Greenlet::with_stack_size",
        _ => b"grove::Builder::stack_size",
    };
    for part in [
        &b"\ngrove: "[..],
        kind,
        open,
        name,
        close,
        b" has overflowed its stack (stack size ",
        size,
        b" bytes); give it a bigger stack with ",
        hint,
        b"\n",
    ] {
        // SAFETY: write(2) is async-signal-safe and the buffer is valid for its length.
        unsafe { libc::write(2, part.as_ptr().cast(), part.len()) };
    }
}

fn format_usize(mut n: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// Hands a fault that is not a task overflow to the previous handler, or the default action.
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let old = if sig == libc::SIGBUS {
        &OLD_BUS
    } else {
        &OLD_SEGV
    };
    let handler = old.get().map(|a| (a.0.sa_sigaction, a.0.sa_flags));
    match handler {
        Some((h, flags)) if h != libc::SIG_DFL && h != libc::SIG_IGN => {
            if flags & libc::SA_SIGINFO != 0 {
                type Action = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);
                // SAFETY: with SA_SIGINFO the saved address is a three-argument handler.
                let f: Action = unsafe { std::mem::transmute::<usize, Action>(h) };
                f(sig, info, ctx);
            } else {
                type Plain = extern "C" fn(libc::c_int);
                // SAFETY: without SA_SIGINFO the saved address is a one-argument handler.
                let f: Plain = unsafe { std::mem::transmute::<usize, Plain>(h) };
                f(sig);
            }
        }
        _ => {
            // SAFETY: restoring the default action; returning re-executes the faulting access,
            // which then terminates the process as it would have without grove.
            unsafe { libc::signal(sig, libc::SIG_DFL) };
        }
    }
}
