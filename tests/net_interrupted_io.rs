//! An I/O call parked inside a `Drop` that runs while its task is being killed: a timeout (or
//! a second kill) landing then must not start a second unwind; the call returns an error
//! instead (`ErrorKind::TimedOut`, "interrupted ... while the task was already unwinding").
//!
//! The hub returns `WakeReason::Interrupted` from `park` for a fiber that is already unwinding;
//! before that, the scenario aborted the child process.

mod util;

use std::cell::RefCell;
use std::io::{ErrorKind, Read};
use std::rc::Rc;
use std::time::Duration;

use grove::net::UnixStream;

/// Reads its socket when dropped, as a handler that drains a connection in `Drop` would.
struct ReadOnDrop(UnixStream, Rc<RefCell<Option<std::io::Result<usize>>>>);

impl Drop for ReadOnDrop {
    fn drop(&mut self) {
        let mut buf = [0; 8];
        *self.1.borrow_mut() = Some(self.0.read(&mut buf));
    }
}

#[test]
fn a_kill_during_a_read_in_drop_makes_the_read_fail_not_abort() {
    if util::child_scenario().is_some() {
        let (a, _b) = UnixStream::pair().unwrap();
        let result = Rc::new(RefCell::new(None));
        let r2 = result.clone();
        let task = grove::spawn(move || {
            let _ = grove::with_timeout(Duration::from_millis(30), || {
                let _guard = ReadOnDrop(a, r2);
                grove::sleep(Duration::from_secs(60));
            });
        });
        grove::yield_now(); // the task sleeps
        task.kill(); // it unwinds; its guard parks reading; the timeout lands meanwhile
        assert!(task.join().unwrap_err().is_killed());
        let err = result
            .borrow_mut()
            .take()
            .expect("the drop ran")
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        println!("read failed with: {err}");
        return;
    }
    let out = util::run_child_within(
        "a_kill_during_a_read_in_drop_makes_the_read_fail_not_abort",
        "kill-in-drop",
        Duration::from_secs(20),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("read failed with"), "{stdout}");
}
