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
    // Each case on one line: the panic must point at that line.
    macro_rules! case {
        ($name:literal, $e:expr) => {{
            let loc = panic_location(|| {
                let _ = $e;
            });
            if !loc.starts_with(&here(line!())) {
                failures.push(format!("{}: {loc} (want line {})", $name, line!()));
            }
        }};
    }

    let q: Queue<u8> = Queue::new();
    case!("Queue::get", q.get());
    let full: Queue<u8> = Queue::bounded(1);
    full.put(1).unwrap();
    case!("Queue::put", full.put(2));
    let ch: Channel<u8> = Channel::new();
    case!("Channel::get", ch.get());
    case!("Channel::put", ch.put(1));
    let sem = Semaphore::new(0);
    case!("Semaphore::acquire", sem.acquire());
    let m = Rc::new(GMutex::new(0));
    let _held = m.lock();
    case!("Mutex::lock", m.lock());
    let ev = Event::new();
    case!("Event::wait", ev.wait());
    let r: AsyncResult<u8> = AsyncResult::new();
    case!("AsyncResult::get", r.get());
    let g = Group::new();
    let q2 = q.clone();
    g.spawn(move || q2.get());
    case!("Group::join", g.join());
    let stuck = grove::spawn(move || ch.get());
    case!("JoinHandle::join", stuck.join());
    case!("sleep(MAX)", grove::sleep(std::time::Duration::MAX));
    let _ = std::panic::take_hook();
    assert!(failures.is_empty(), "{failures:#?}");
}
