//! A C shared library's libc calls become cooperative too — when the executable exports grove's
//! hooks (`-Wl,--export-dynamic`, set for the test binaries by build.rs): the library's `read`
//! and `usleep` resolve through its PLT to grove's definitions.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

const SOURCE: &str = r#"
#include <unistd.h>
int c_sleep_ms(int ms) { return usleep((useconds_t)ms * 1000); }
long c_read(int fd, void *buf, unsigned long n) { return (long)read(fd, buf, n); }
"#;

type SleepFn = unsafe extern "C" fn(i32) -> i32;
type ReadFn = unsafe extern "C" fn(i32, *mut u8, u64) -> i64;

/// Builds the library with the system C compiler (the one Rust links with) and loads it.
fn load() -> (SleepFn, ReadFn) {
    let dir = std::env::temp_dir().join(format!("grove-clib-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("lib.c");
    let lib = dir.join("libgrovetest.so");
    std::fs::write(&src, SOURCE).unwrap();
    let status = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&lib)
        .arg(&src)
        .status()
        .expect("run cc (the C compiler Rust links with)");
    assert!(status.success());
    let path = CString::new(lib.to_str().unwrap()).unwrap();
    // SAFETY: loading a library we just built; its symbols have the C signatures above.
    unsafe {
        let h = libc::dlopen(path.as_ptr(), libc::RTLD_NOW);
        assert!(!h.is_null(), "dlopen failed");
        let s = libc::dlsym(h, c"c_sleep_ms".as_ptr());
        let r = libc::dlsym(h, c"c_read".as_ptr());
        assert!(!s.is_null() && !r.is_null());
        (
            std::mem::transmute::<*mut libc::c_void, SleepFn>(s),
            std::mem::transmute::<*mut libc::c_void, ReadFn>(r),
        )
    }
}

#[test]
fn a_c_librarys_sleep_and_read_park_only_their_task() {
    let (c_sleep, c_read) = load();
    grove::monkey::patch_all();
    let start = Instant::now();
    // SAFETY (both tasks): the library's functions with valid arguments.
    let sleepers: Vec<_> = (0..5)
        .map(|_| grove::spawn(move || unsafe { c_sleep(100) }))
        .collect();
    for s in sleepers {
        assert_eq!(s.join().unwrap(), 0);
    }
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(100));
    assert!(
        took < Duration::from_millis(400),
        "5 x 100 ms ran serially: {took:?}"
    );

    let (a, mut b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let reader = grove::spawn(move || {
        let mut buf = [0u8; 4];
        // SAFETY: reading into a valid buffer.
        let n = unsafe { c_read(fd, buf.as_mut_ptr(), 4) };
        (n, buf)
    });
    let writer = grove::spawn(move || {
        grove::sleep(Duration::from_millis(30));
        b.write_all(b"c-ok").unwrap();
    });
    writer.join().unwrap();
    assert_eq!(reader.join().unwrap(), (4, *b"c-ok"));
    drop(a);
}
