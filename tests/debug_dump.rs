//! grove::debug::dump: what each task waits on, who holds it, where it was spawned; leaks;
//! the deadlock report's wait-for graph; the dump signal.

mod util;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use grove::debug;
use grove::sync::{Event, Mutex, Semaphore};

fn line_of<'a>(dump: &'a str, needle: &str) -> &'a str {
    dump.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{dump}"))
}

#[test]
fn the_dump_says_what_each_task_waits_on_and_where_it_was_spawned() {
    let m = Rc::new(Mutex::new(()));
    let ev = Event::new();
    let (m1, ev1) = (m.clone(), ev.clone());
    let holder = grove::Builder::new()
        .name("holder")
        .spawn(move || {
            let _g = m1.lock();
            ev1.wait();
        })
        .unwrap();
    let m2 = m.clone();
    let waiter = grove::Builder::new()
        .name("waiter")
        .spawn(move || drop(m2.lock()))
        .unwrap();
    let sleeper = grove::spawn(|| grove::sleep(Duration::from_secs(30)));
    let sleeper_line = line!() - 1;
    grove::yield_now();
    let dump = debug::dump().to_string();
    let holder_line = line_of(&dump, "'holder'");
    assert!(holder_line.contains("parked for"), "{holder_line}");
    assert!(holder_line.contains("on Event::wait"), "{holder_line}");
    assert!(
        holder_line.contains("tests/debug_dump.rs:"),
        "{holder_line}"
    );
    let waiter_line = line_of(&dump, "'waiter'");
    assert!(
        waiter_line.contains(&format!("on Mutex::lock held by task #{}", holder.id())),
        "{waiter_line}"
    );
    let sleeper_line_text = line_of(&dump, &format!("task #{}:", sleeper.id()));
    assert!(
        sleeper_line_text.contains("on sleep (wakes in 29."),
        "{sleeper_line_text}"
    );
    assert!(
        sleeper_line_text.contains(&format!("tests/debug_dump.rs:{sleeper_line}:")),
        "{sleeper_line_text}"
    );
    assert!(
        dump.lines().next().unwrap().starts_with("grove task dump"),
        "{dump}"
    );
    ev.set();
    holder.join().unwrap();
    waiter.join().unwrap();
    sleeper.kill();
}

#[test]
fn the_dump_names_the_fd_and_direction_of_an_io_wait() {
    use std::os::fd::AsRawFd;
    let listener = grove::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let _client = std::net::TcpStream::connect(addr).unwrap();
    let (conn, _) = listener.accept().unwrap();
    let fd = conn.as_raw_fd();
    let reader = grove::spawn(move || {
        let mut buf = [0u8; 8];
        let _ = std::io::Read::read(&mut &conn, &mut buf);
    });
    grove::yield_now();
    let dump = debug::dump().to_string();
    let line = line_of(&dump, &format!("task #{}:", reader.id()));
    assert!(line.contains(&format!("on fd {fd} readable")), "{line}");
    reader.kill();
}

#[test]
fn a_task_parked_on_a_semaphore_nobody_else_holds_can_never_wake() {
    let sem = Semaphore::new(0);
    let s = sem.clone();
    let leaked = grove::spawn(move || s.acquire());
    let s = sem.clone();
    let fine = grove::spawn(move || s.acquire());
    grove::yield_now();
    let dump = debug::dump().to_string();
    assert!(
        !line_of(&dump, &format!("task #{}:", leaked.id())).contains("can never wake"),
        "main still holds the semaphore:\n{dump}"
    );
    // One waiter is served, and main drops its handle: the other waiter is the only holder left.
    sem.release();
    drop(sem);
    grove::yield_now();
    let dump = debug::dump().to_string();
    let (a, b) = (leaked.id(), fine.id());
    let waiting = [a, b]
        .into_iter()
        .find(|id| dump.contains(&format!("task #{id}: parked")))
        .expect("one still waits");
    let line = line_of(&dump, &format!("task #{waiting}:"));
    assert!(line.contains("can never wake"), "{line}");
    if waiting == a {
        leaked.kill()
    } else {
        fine.kill()
    }
}

#[test]
fn a_greenlet_shows_its_parent() {
    use grove::greenlet::Greenlet;
    let outer = Greenlet::new(|_: ()| {
        let inner = Greenlet::new(|_: ()| {
            let dump = debug::dump().to_string();
            grove::greenlet::switch_to_parent(());
            drop(dump);
        });
        let inner_id_line = {
            inner.switch(());
            debug::dump().to_string()
        };
        assert!(inner_id_line.contains("suspended"), "{inner_id_line}");
        assert!(
            inner_id_line.contains("parent: greenlet #"),
            "{inner_id_line}"
        );
        grove::greenlet::switch_to_parent(());
    });
    outer.switch(());
}

#[test]
fn the_deadlock_report_names_holders_and_the_cycle() {
    let a = Rc::new(Mutex::new(()));
    let b = Rc::new(Mutex::new(()));
    let (a1, b1) = (a.clone(), b.clone());
    let first = grove::Builder::new()
        .name("first")
        .spawn(move || {
            let _a = a1.lock();
            grove::yield_now();
            let _b = b1.lock();
        })
        .unwrap();
    let (a2, b2) = (a.clone(), b.clone());
    let second = grove::Builder::new()
        .name("second")
        .spawn(move || {
            let _b = b2.lock();
            grove::yield_now();
            let _a = a2.lock();
        })
        .unwrap();
    let err = catch_unwind(AssertUnwindSafe(|| first.join())).unwrap_err();
    let text = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("would block forever"), "{text}");
    assert!(
        text.contains(&format!(
            "'second' waits on Mutex::lock held by task #{}",
            first_id(&text, "first")
        )),
        "{text}"
    );
    assert!(text.contains("Wait-for cycle: "), "{text}");
    assert!(
        text.contains("'first'") && text.contains("'second'"),
        "{text}"
    );
    drop(second);
}

/// The id the report gives the task named `name`.
fn first_id(text: &str, name: &str) -> u64 {
    let at = text.find(&format!(" '{name}'")).expect("named");
    let hash = text[..at].rfind('#').expect("an id");
    text[hash + 1..at].parse().expect("a number")
}

#[test]
fn main_waiting_on_a_mutex_held_by_a_parked_task_names_the_chain() {
    let m = Rc::new(Mutex::new(()));
    let ev = Event::new();
    let (m1, ev1) = (m.clone(), ev.clone());
    let _holder = grove::Builder::new()
        .name("holder")
        .spawn(move || {
            let _g = m1.lock();
            ev1.wait();
        })
        .unwrap();
    grove::yield_now();
    let err = catch_unwind(AssertUnwindSafe(|| drop(m.lock()))).unwrap_err();
    let text = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        text.contains("main waits on Mutex::lock held by task #"),
        "{text}"
    );
    assert!(text.contains("'holder' waits on Event::wait"), "{text}");
}

/// Child: a task parks, then the process signals itself; main idles in the hub.
fn signalled_child(enable_by_call: bool) {
    if enable_by_call {
        debug::dump_on_signal().unwrap();
    }
    let t = grove::Builder::new()
        .name("sleepy")
        .spawn(|| grove::sleep(Duration::from_secs(60)))
        .unwrap();
    grove::yield_now();
    // SAFETY: kill(2) with our own pid and a signal the handler above (or the environment
    // variable) installed a handler for.
    unsafe { libc::kill(libc::getpid(), libc::SIGUSR2) };
    // The hub is idle here (blocked in epoll until the sleep's deadline): the signal's eventfd
    // wakes it and it prints at once.
    grove::sleep(Duration::from_millis(300));
    t.kill();
}

#[test]
fn sigusr2_prints_a_dump_to_stderr_when_asked_for() {
    match util::child_scenario().as_deref() {
        Some("call") => return signalled_child(true),
        Some("env") => return signalled_child(false),
        _ => {}
    }
    let test = "sigusr2_prints_a_dump_to_stderr_when_asked_for";
    for how in ["call", "env"] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(util::CHILD_ENV, how)
            .env("GROVE_DUMP_SIGNAL", if how == "env" { "1" } else { "0" })
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{how}: {stderr}");
        assert!(stderr.contains("grove task dump"), "{how}: {stderr}");
        let line = line_of(&stderr, "'sleepy'");
        assert!(line.contains("on sleep (wakes in"), "{how}: {line}");
    }
}

#[test]
fn a_streamed_dump_lets_other_tasks_run_between_chunks_and_lists_every_task() {
    let parked: Vec<_> = (0..1200)
        .map(|_| grove::spawn(|| grove::sleep(Duration::from_secs(30))))
        .collect();
    let ticks = Rc::new(std::cell::Cell::new(0u32));
    let t = ticks.clone();
    let stop = Rc::new(std::cell::Cell::new(false));
    let s = stop.clone();
    let ticker = grove::spawn(move || {
        while !s.get() {
            t.set(t.get() + 1);
            grove::yield_now();
        }
    });
    grove::yield_now();
    let before = ticks.get();
    let mut out = Vec::new();
    let n = debug::dump_to(&mut out).unwrap();
    let during = ticks.get() - before;
    let text = String::from_utf8(out).unwrap();
    assert_eq!(n, 1201, "1200 sleepers and the ticker");
    assert_eq!(
        text.lines().filter(|l| l.contains("on sleep")).count(),
        1200
    );
    assert!(
        during >= 2,
        "the ticker ran between chunks ({during} ticks)"
    );
    stop.set(true);
    ticker.join().unwrap();
    for p in &parked {
        p.kill();
    }
}

#[test]
fn a_failing_writer_ends_the_dump_with_its_error() {
    struct Broken;
    impl std::io::Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let err = debug::dump_to(&mut Broken).unwrap_err();
    assert_eq!(err.to_string(), "disk full");
    assert!(debug::dump().to_string().contains("main: running"));
}

#[test]
fn a_task_waiting_on_a_mutex_main_holds_while_main_joins_it_is_named() {
    let m = Rc::new(Mutex::new(()));
    let guard = m.lock();
    let m1 = m.clone();
    let t = grove::Builder::new()
        .name("blocked")
        .spawn(move || drop(m1.lock()))
        .unwrap();
    let err = catch_unwind(AssertUnwindSafe(|| t.join())).unwrap_err();
    let text = util::panic_text(err.as_ref());
    assert!(
        text.contains("'blocked' waits on Mutex::lock held by main"),
        "{text}"
    );
    assert!(
        text.contains("main waits on JoinHandle::join of task #"),
        "{text}"
    );
    assert!(
        text.contains("Wait-for cycle: main → task #") && text.contains("'blocked' → main"),
        "{text}"
    );
    drop(guard);
}

#[test]
fn a_task_parked_on_an_event_nobody_else_holds_can_never_wake() {
    let ev = grove::sync::Event::new();
    let e = ev.clone();
    let waiter = grove::spawn(move || e.wait());
    grove::yield_now();
    let dump = debug::dump().to_string();
    assert!(
        !line_of(&dump, &format!("task #{}:", waiter.id())).contains("can never wake"),
        "main can still set the event:\n{dump}"
    );
    drop(ev); // only the waiter's own handle is left: nobody can set it any more
    let dump = debug::dump().to_string();
    let line = line_of(&dump, &format!("task #{}:", waiter.id()));
    assert!(line.contains("can never wake"), "{line}");
    waiter.kill();
}

#[test]
fn tasks_spawned_through_a_group_or_a_pool_show_the_callers_line() {
    let group = grove::sync::Group::new();
    let pool = grove::sync::Pool::new(2);
    let long = || grove::sleep(std::time::Duration::from_secs(30));
    let g_line = line!() + 1;
    let g = group.spawn(long);
    let p_line = line!() + 1;
    let p = pool.spawn(long);
    grove::yield_now();
    let dump = debug::dump().to_string();
    for (task, line) in [(g.id(), g_line), (p.id(), p_line)] {
        let text = line_of(&dump, &format!("task #{task}:"));
        assert!(
            text.contains(&format!("tests/debug_dump.rs:{line}:")),
            "{text}"
        );
    }
    group.kill();
    pool.kill();
}
