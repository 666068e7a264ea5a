//! "Would block forever" (gevent's `LoopExit`) points at the line of the caller's blocking call,
//! not at grove's internals, for every blocking primitive.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Mutex;

use grove::sync::{AsyncResult, Channel, Event, Group, Mutex as GMutex, Queue, Semaphore};

static SEEN: Mutex<Option<(String, String)>> = Mutex::new(None);

/// Runs `f`, which must fail with "would block forever", and returns the panic's location.
#[track_caller]
fn panic_location(f: impl FnOnce()) -> String {
    *SEEN.lock().unwrap() = None;
    let err = catch_unwind(AssertUnwindSafe(f)).expect_err("should block forever");
    let text = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("would block forever"), "{text}");
    let (loc, _) = SEEN.lock().unwrap().take().expect("the hook saw the panic");
    loc
}

fn here(line: u32) -> String {
    format!("{}:{line}:", file!())
}

#[test]
fn every_blocking_primitive_reports_the_callers_line() {
    std::panic::set_hook(Box::new(|info| {
        let loc = info.location().map(|l| l.to_string()).unwrap_or_default();
        *SEEN.lock().unwrap() = Some((loc, String::new()));
    }));
    let mut failures = Vec::new();
    let mut check = |name: &str, loc: String, line: u32| {
        if !loc.starts_with(&here(line)) {
            failures.push(format!("{name}: {loc} (want line {line})"));
        }
    };

    let q: Queue<u8> = Queue::new();
    check("Queue::get", panic_location(|| drop(q.get())), line!());
    let full: Queue<u8> = Queue::bounded(1);
    full.put(1).unwrap();
    check("Queue::put", panic_location(|| drop(full.put(2))), line!());
    let ch: Channel<u8> = Channel::new();
    check("Channel::get", panic_location(|| drop(ch.get())), line!());
    check("Channel::put", panic_location(|| drop(ch.put(1))), line!());
    let sem = Semaphore::new(0);
    check(
        "Semaphore::acquire",
        panic_location(|| sem.acquire()),
        line!(),
    );
    let m = Rc::new(GMutex::new(0));
    let _held = m.lock();
    check("Mutex::lock", panic_location(|| drop(m.lock())), line!());
    let ev = Event::new();
    check("Event::wait", panic_location(|| ev.wait()), line!());
    let r: AsyncResult<u8> = AsyncResult::new();
    check(
        "AsyncResult::get",
        panic_location(|| drop(r.get())),
        line!(),
    );
    let g = Group::new();
    let q2 = q.clone();
    g.spawn(move || drop(q2.get()));
    check("Group::join", panic_location(|| g.join()), line!());
    let stuck = grove::spawn(move || drop(ch.get()));
    check(
        "JoinHandle::join",
        panic_location(|| drop(stuck.join())),
        line!(),
    );
    check(
        "sleep(MAX)",
        panic_location(|| grove::sleep(std::time::Duration::MAX)),
        line!() - 1,
    );
    let _ = std::panic::take_hook();
    assert!(failures.is_empty(), "{failures:#?}");
}
